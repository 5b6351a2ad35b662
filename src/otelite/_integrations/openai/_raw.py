"""``with_raw_response`` and ``with_streaming_response``: the span ends when the body is read.

The adapter's takeover hook for the core: openai hands back an ``APIResponse``
(or the legacy one) instead of the parsed object; the proxy ends the call's span
when the caller parses or closes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import wrapt

from otelite._llm import NOT_MINE, Call, Outcome, _changes

if TYPE_CHECKING:
    _Proxy = wrapt.ObjectProxy[Any]
else:
    _Proxy = wrapt.ObjectProxy


def _parsed_result(call: Call, parsed: Any, headers: Any = None) -> Any:
    # The raw response is the one place a successful call's headers are exposed:
    # API-change detection reads its deprecation headers while the span ends.
    token = _changes.response_headers.set(headers)
    try:
        return call.finish(parsed)
    finally:
        _changes.response_headers.reset(token)


class _LegacyResponseProxy(_Proxy):
    """``with_raw_response``: the body is read; ``parse()`` gives the object the span is made from."""

    def __init__(self, wrapped: Any, call: Call) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_parsed: dict[Any, Any] = {}
        if not getattr(wrapped, "_stream", False):
            # Not a stream: parse now (openai caches it) so the span ends with the call.
            self.parse()

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        parsed = self.__wrapped__.parse(*args, **kwargs)
        key = kwargs.get("to")
        if key in self._self_parsed:
            return self._self_parsed[key]
        result = _parsed_result(self._self_call, parsed, getattr(self.__wrapped__, "headers", None))
        self._self_parsed[key] = result
        return result


class _RawResponseProxy(_Proxy):
    """``with_streaming_response`` (sync): the span ends when the body is parsed or closed."""

    def __init__(self, wrapped: Any, call: Call) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_result: Any = None
        self._self_done = False

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        parsed = self.__wrapped__.parse(*args, **kwargs)
        if self._self_done:
            return self._self_result if self._self_result is not None else parsed
        self._self_done = True
        self._self_result = _parsed_result(
            self._self_call, parsed, getattr(self.__wrapped__, "headers", None)
        )
        return self._self_result

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            if not self._self_done:
                self._self_call.invocation.end(Outcome({}))


class _AsyncRawResponseProxy(_Proxy):
    """``with_streaming_response`` (async): the span ends when the body is parsed or closed."""

    def __init__(self, wrapped: Any, call: Call) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_result: Any = None
        self._self_done = False

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        parsed = await self.__wrapped__.parse(*args, **kwargs)
        if self._self_done:
            return self._self_result if self._self_result is not None else parsed
        self._self_done = True
        self._self_result = _parsed_result(
            self._self_call, parsed, getattr(self.__wrapped__, "headers", None)
        )
        return self._self_result

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            if not self._self_done:
                self._self_call.invocation.end(Outcome({}))


def takeover(call: Call, result: Any) -> Any:
    """The core's takeover hook: a proxy for openai's raw response types, else ``NOT_MINE``."""
    name = type(result).__name__
    if name == "LegacyAPIResponse":
        return _LegacyResponseProxy(result, call)
    if name == "APIResponse":
        return _RawResponseProxy(result, call)
    if name == "AsyncAPIResponse":
        return _AsyncRawResponseProxy(result, call)
    return NOT_MINE
