"""Asking for usage in streams: ``stream_options={"include_usage": true}`` when safe.

Only for providers known to accept it (``otelite.enable_stream_usage`` adds
more), never when the caller reads the raw body, never for Azure api-versions
that reject it. The extra usage chunk is hidden from the caller by the stream's
accumulator. When no usage will arrive, the tokenizer starts loading off the
caller's thread so the stream's estimate is exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from otelite import _guard, _registries, _tokens
from otelite import _semconv as sc
from otelite._integrations.openai._fields import _given
from otelite._llm import Request

_AZURE_STREAM_USAGE_SINCE = "2024-09-01"  # older Azure api-versions reject stream_options
_RAW_HEADER = "x-stainless-raw-response"


def _with_stream_usage(
    instance: Any, kwargs: Mapping[str, Any], request: Request, enabled: bool
) -> Optional[dict[str, Any]]:
    """The call's arguments with usage requested, or ``None`` to leave the call alone."""
    if not enabled or kwargs.get("stream") is not True or _given(kwargs.get("stream_options")):
        return None
    if request.provider not in _registries.stream_usage_providers:
        return None
    headers = kwargs.get("extra_headers")
    if isinstance(headers, Mapping) and any(str(k).lower() == _RAW_HEADER for k in headers):
        return None  # the caller reads the raw body: it must be exactly what it asked for
    if request.provider == sc.PROVIDER_AZURE_OPENAI:
        version = getattr(getattr(instance, "_client", None), "_api_version", None)
        if not isinstance(version, str) or version[:10] < _AZURE_STREAM_USAGE_SINCE:
            return None
    return {**kwargs, "stream_options": {"include_usage": True}}


def prepare(
    instance: Any, kwargs: Mapping[str, Any], request: Request, enabled: bool
) -> Optional[Mapping[str, Any]]:
    """The core's prepare hook: usage requested in a stream, or the tokenizer warmed up."""
    injected = _with_stream_usage(instance, kwargs, request, enabled)
    if injected is not None:
        return injected
    if kwargs.get("stream") is True and request.model:
        # No usage will arrive: have the encoding loading (off this thread) while it streams.
        options = kwargs.get("stream_options")
        if not (isinstance(options, Mapping) and options.get("include_usage")):
            with _guard.contained("preloading a tokenizer"):
                _tokens.preload(request.model)
    return None
