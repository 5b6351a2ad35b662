"""The OpenAI adapter: reads ``openai``'s requests, responses and chunks for the LLM-call core.

The only package that imports ``openai``. It owns no control flow: the core
(``otelite._llm``) starts and ends spans, wraps sync and async methods, proxies
streams and guards against recording a call twice; this package gives it one
:class:`~otelite._llm.Surface` of hooks per patched method. Its role files:

* ``_fields``: servers, models, providers, shared request parameters, usage;
* ``_content``: messages, instructions and tool definitions (capture on only);
* ``_chat``: chat completions, legacy completions and embeddings;
* ``_responses``: the Responses API;
* ``_raw``: ``with_raw_response`` / ``with_streaming_response`` results;
* ``_stream_usage``: asking for usage in streams;
* ``_patch``: the patch targets, ``instrument_openai()`` and its undo.

Chat completions, legacy completions, embeddings and the Responses API are
covered, sync and async, plain and streamed, including the ``parse`` helpers.
docs/adapters.md walks through this package as the model for a new provider.
"""

from __future__ import annotations

from otelite._integrations.openai._chat import ChatAccumulator
from otelite._integrations.openai._patch import (
    instrument_openai,
    is_instrumented,
    uninstrument_openai,
)
from otelite._integrations.openai._responses import ResponsesAccumulator
from otelite._registries import disable_stream_usage, enable_stream_usage

__all__ = [
    "ChatAccumulator",
    "ResponsesAccumulator",
    "disable_stream_usage",
    "enable_stream_usage",
    "instrument_openai",
    "is_instrumented",
    "uninstrument_openai",
]
