"""Token usage as OpenAI-compatible servers report it, read once for every caller.

The ``usage`` object of chat completions, completions, embeddings and the
Responses API (``prompt_tokens``/``input_tokens``, their details with cached
and audio tokens, reasoning tokens), read from the client library's objects or
from plain JSON alike. The OpenAI adapter and the judge client both read usage
here, so a judge call is priced with its cached tokens like any other call.
"""

from __future__ import annotations

import functools
from typing import Any, Optional

from otelite import _semconv as sc

Attributes = dict[str, Any]


def field(obj: Any, name: str) -> Any:
    """A field of a dict (request parameters) or an object (openai's models); ``None`` when absent."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


_ABSENT = object()


@functools.lru_cache(maxsize=1024)
def _class_defines(cls: Any, name: str) -> bool:
    return any(name in vars(klass) for klass in cls.__mro__)


def member(obj: Any, name: str) -> Any:
    """:func:`field`, for a name the object may not declare (an optional field).

    A pydantic model (openai's) is asked for a name it does not declare only through
    its extras: asking the model raises and catches an AttributeError inside pydantic,
    which costs more than the rest of the call's reading. Anything else, and a name
    the model or its class does have, is read as :func:`field` reads it.
    """
    if isinstance(obj, dict):
        return obj.get(name)
    extra = getattr(obj, "__pydantic_extra__", _ABSENT)
    if (
        extra is not _ABSENT
        and name not in getattr(obj, "__dict__", ())
        and not _class_defines(obj.__class__, name)
    ):
        return extra.get(name) if isinstance(extra, dict) else None
    return getattr(obj, name, None)


def count(value: Any) -> Optional[int]:
    """A token count: a non-negative int, else ``None`` (unreadable counts are never used)."""
    if type(value) is int:  # the common case, first: a plain int (bool is not one)
        return value if value >= 0 else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


_CHAT_DETAILS = (
    "prompt_tokens_details",
    "completion_tokens_details",
    "input_tokens_details",
    "output_tokens_details",
)
_RESPONSES_DETAILS = (*_CHAT_DETAILS[2:], *_CHAT_DETAILS[:2])


def _details(details: Any, first: str, second: str) -> tuple[Optional[int], Optional[int]]:
    """Two counts of a details object (a model's declared fields, else read by name)."""
    known = details if isinstance(details, dict) else getattr(details, "__dict__", None)
    if type(known) is dict and first in known and second in known:
        one, two = known[first], known[second]
    else:
        one, two = member(details, first), member(details, second)
    return (
        None if one is None else count(one),
        None if two is None else count(two),
    )


class Usage:
    """Token counts read from a response's usage object."""

    __slots__ = ("audio_in", "audio_out", "cached", "input", "output", "reasoning", "unreadable")

    def __init__(self, usage: Any, input_key: str, output_key: str) -> None:
        plain = isinstance(usage, dict)
        # openai's models keep their declared fields in __dict__: read there when it holds the
        # counts (one lookup each). A field it lacks is read from the object: an older client
        # declares no details field and keeps the details as extras.
        fields = usage if plain else getattr(usage, "__dict__", None)
        if type(fields) is not dict or input_key not in fields or output_key not in fields:
            fields = None
        if fields is not None:
            raw_in, raw_out = fields[input_key], fields[output_key]
        else:  # embeddings declare no output count
            raw_in, raw_out = member(usage, input_key), member(usage, output_key)
        # Plain non-negative ints, the common case, without a call; else count() decides.
        self.input = raw_in if type(raw_in) is int and raw_in >= 0 else count(raw_in)
        self.output = raw_out if type(raw_out) is int and raw_out >= 0 else count(raw_out)
        # A server that sends negative or non-numeric counts: recorded as unreadable, never priced.
        self.unreadable = (raw_in is not None and self.input is None) or (
            raw_out is not None and self.output is None
        )
        if self.unreadable:
            self.input = self.output = None
        # Details named after the counts (prompt_tokens_details with prompt_tokens); a plain
        # dict from a server that mixes the two namings is read under either name. An
        # object is only asked for its own names: a missing attribute on openai's models
        # costs an exception.
        own_in, own_out, other_in, other_out = (
            _CHAT_DETAILS if input_key == "prompt_tokens" else _RESPONSES_DETAILS
        )
        if fields is not None and own_in in fields and own_out in fields:
            details_in, details_out = fields[own_in], fields[own_out]
        else:
            details_in, details_out = member(usage, own_in), member(usage, own_out)
        if plain:
            details_in = details_in or usage.get(other_in)
            details_out = details_out or usage.get(other_out)
        if details_in is None:
            self.cached = self.audio_in = None
        else:
            self.cached, self.audio_in = _details(details_in, "cached_tokens", "audio_tokens")
        if details_out is None:
            self.reasoning = self.audio_out = None
        else:
            self.reasoning, self.audio_out = _details(
                details_out, "reasoning_tokens", "audio_tokens"
            )

    def apply(self, attrs: Attributes) -> None:
        if self.unreadable:
            attrs[sc.OTELITE_USAGE_UNREADABLE] = True
            return
        if self.input is not None:
            attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = self.input
        if self.output is not None:
            attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = self.output
        if self.cached is not None:
            attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = self.cached
        if self.reasoning is not None:
            attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = self.reasoning
