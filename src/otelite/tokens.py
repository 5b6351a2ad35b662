"""Token counting for OpenAI models, usable on its own.

``count_tokens(text, model)`` and ``count_message_tokens(messages, model, tools=None)``
return a :class:`TokenCount` — an ``int`` with ``.estimated`` and ``.encoding``.
The right tiktoken encoding is chosen per model family (``o200k_base`` for
gpt-4o, gpt-4.1, gpt-5 and the o-series; ``cl100k_base`` for gpt-4, gpt-3.5 and
text-embedding-3), dated snapshots and fine-tuned names (``ft:<base>:...``)
resolve to their base. Encodings load on a background thread; these functions
wait for one at most ``wait`` seconds (default 10, ``0`` never waits). Without
an encoding (still loading, offline, nothing cached) the count is an estimate
of one token per four characters, marked ``estimated`` with ``encoding=None``.
``prefetch()`` loads the encodings now, on the calling thread.

Example:
    >>> from otelite.tokens import count_message_tokens, count_tokens
    >>> n = count_tokens("hello world", "gpt-4o")
    >>> isinstance(n, int)
    True
"""

from __future__ import annotations

from otelite._tokens import (
    CHARS_PER_TOKEN,
    TokenCount,
    base_model,
    count_message_tokens,
    count_tokens,
    encoding_for,
    prefetch,
)

__all__ = [
    "CHARS_PER_TOKEN",
    "TokenCount",
    "base_model",
    "count_message_tokens",
    "count_tokens",
    "encoding_for",
    "prefetch",
]
