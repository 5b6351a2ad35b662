"""The control flow of an instrumented LLM call, the same for every client library.

An adapter describes each patched method with a :class:`Surface`: hooks that
read the request, the response and the stream, optionally change the
arguments sent (to ask for usage in a stream) and take over result types of
its own (raw responses). This module owns everything else: the re-entrancy
guard (a call made inside an instrumented call is not recorded twice), the
step-back when another instrumentation already records the call, starting and
ending the span, the sync and async wrapper factories, stream proxies, resend
counting, and containment: a failing hook never changes what the caller gets.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Mapping
from typing import Any, Callable, Optional

from opentelemetry import trace as _trace

from otelite import _guard
from otelite import _semconv as sc
from otelite._llm._call import Invocation, Outcome, Request, start
from otelite._llm._streams import AsyncStreamProxy, StreamRecorder, SyncStreamProxy

RequestReader = Callable[[Any, Mapping[str, Any]], Request]
OutcomeReader = Callable[[Any, Request, Mapping[str, Any]], Outcome]
ContentReader = Callable[[Mapping[str, Any]], dict[str, Any]]
AccumulatorFactory = Callable[[Request, Mapping[str, Any], bool, bool], Any]
# (instance, kwargs, request, stream_usage setting) -> the arguments to send instead, or None
Prepare = Callable[[Any, Mapping[str, Any], Request, bool], Optional[Mapping[str, Any]]]
# (call, result) -> what the caller gets, or NOT_MINE when the core should handle it
Takeover = Callable[["Call", Any], Any]

_perf_counter = time.perf_counter
_time_ns = time.time_ns

NOT_MINE = object()
"""Returned by a :data:`Takeover` hook for results it leaves to the core."""

# Set while an instrumented call runs: a call made inside it (a helper calling ``create``,
# a judge using an instrumented client) is not recorded twice. Its value holds the most
# retries the client took for the call, for ``http.request.resend_count``.
inside_call: contextvars.ContextVar[Optional[list[int]]] = contextvars.ContextVar(
    "otelite_llm_call", default=None
)


class Surface:
    """How to read one patched method: the adapter's hooks (it owns no control flow)."""

    __slots__ = ("accumulator", "content", "is_stream", "outcome", "prepare", "request", "takeover")

    def __init__(
        self,
        request: RequestReader,
        outcome: OutcomeReader,
        content: Optional[ContentReader] = None,
        accumulator: Optional[AccumulatorFactory] = None,
        *,
        is_stream: Callable[[Any], bool],
        prepare: Optional[Prepare] = None,
        takeover: Optional[Takeover] = None,
    ) -> None:
        self.request = request
        self.outcome = outcome
        self.content = content
        self.accumulator = accumulator
        self.is_stream = is_stream
        self.prepare = prepare
        self.takeover = takeover


class Call:
    """One intercepted call: what to read it with, its span, and the arguments sent."""

    __slots__ = ("hide_usage", "invocation", "is_async", "kwargs", "surface")

    def __init__(
        self,
        surface: Surface,
        invocation: Invocation,
        kwargs: Mapping[str, Any],
        hide_usage: bool,
        is_async: bool,
    ) -> None:
        self.surface = surface
        self.invocation = invocation
        self.kwargs = kwargs
        self.hide_usage = hide_usage
        self.is_async = is_async

    def finish(self, result: Any) -> Any:
        """End the span from ``result`` (or hand back a stream proxy); never raises."""
        invocation = self.invocation
        surface = self.surface
        try:
            if surface.is_stream(result):
                factory = surface.accumulator
                if factory is None:
                    invocation.end(Outcome({}))
                    return result
                capture = invocation.active.content.capture
                recorder = StreamRecorder(
                    invocation, factory(invocation.request, self.kwargs, capture, self.hide_usage)
                )
                if self.is_async:
                    return AsyncStreamProxy(result, recorder)
                return SyncStreamProxy(result, recorder)
            if surface.takeover is not None:
                taken = surface.takeover(self, result)
                if taken is not NOT_MINE:
                    return taken
            ended = (_perf_counter(), _time_ns())  # before the response is read (and counted)
            invocation.end(surface.outcome(result, invocation.request, self.kwargs), ended=ended)
        except Exception as exc:
            _guard.report("reading an LLM response", exc)
            invocation.end(Outcome({}))
        return result


def _begin(
    surface: Surface,
    instance: Any,
    kwargs: dict[str, Any],
    is_async: bool,
    other_span: Callable[[], bool],
) -> Optional[Call]:
    if inside_call.get() is not None or other_span():
        return None
    try:
        request = surface.request(instance, kwargs)
    except Exception as exc:
        _guard.report("reading an LLM request", exc)
        return None
    content = surface.content
    invocation = start(request, (lambda: content(kwargs)) if content is not None else None)
    if invocation is None:
        return None
    sent: Mapping[str, Any] = kwargs
    if surface.prepare is not None:
        try:
            changed = surface.prepare(instance, kwargs, request, invocation.active.stream_usage)
        except Exception as exc:
            _guard.report("preparing an LLM request", exc)
            changed = None
        if changed is not None:
            sent = changed
    return Call(surface, invocation, sent, sent is not kwargs, is_async)


def note_retry(taken: Any) -> None:
    """The client is building attempt ``taken`` (0 first) of the current call's request."""
    resends = inside_call.get()
    if resends is not None and isinstance(taken, int) and taken > resends[0]:
        resends[0] = taken


def _record_resends(call: Call, resends: list[int]) -> None:
    """``http.request.resend_count`` on the span when the client retried (semconv: only then)."""
    if resends[0] > 0:
        with _guard.contained("recording retries"):
            call.invocation.span.set_attribute(sc.HTTP_REQUEST_RESEND_COUNT, resends[0])


def _never() -> bool:
    return False


def sync_wrapper(surface: Surface, other_span: Callable[[], bool] = _never) -> Callable[..., Any]:
    """A ``wrapt`` wrapper for a sync method described by ``surface``."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = _begin(surface, instance, kwargs, False, other_span)
        if call is None:
            return wrapped(*args, **kwargs)
        resends = [0]
        token = inside_call.set(resends)
        try:
            result = wrapped(*args, **call.kwargs)
        except BaseException as exc:
            _record_resends(call, resends)
            call.invocation.fail(exc)
            raise
        finally:
            inside_call.reset(token)
        if resends[0] > 0:
            _record_resends(call, resends)
        return call.finish(result)

    return wrapper


def async_wrapper(surface: Surface, other_span: Callable[[], bool] = _never) -> Callable[..., Any]:
    """A ``wrapt`` wrapper for an async method described by ``surface``."""

    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = _begin(surface, instance, kwargs, True, other_span)
        if call is None:
            return await wrapped(*args, **kwargs)
        resends = [0]
        token = inside_call.set(resends)
        try:
            result = await wrapped(*args, **call.kwargs)
        except BaseException as exc:  # includes CancelledError
            _record_resends(call, resends)
            call.invocation.fail(exc)
            raise
        finally:
            inside_call.reset(token)
        if resends[0] > 0:
            _record_resends(call, resends)
        return call.finish(result)

    return wrapper


_CLIENT = _trace.SpanKind.CLIENT
_GENAI_MARKS = (sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_REQUEST_MODEL)


def other_llm_span(family: str) -> Optional[str]:
    """Call time: the scope of another instrumentation's LLM span this call runs in, if any.

    ``family`` is a word the other instrumentation's scope name contains (``"openai"``).
    """
    span = _trace.get_current_span()
    if getattr(span, "kind", None) is not _CLIENT:
        return None
    try:
        if not span.is_recording():
            return None
        scope = str(getattr(getattr(span, "instrumentation_scope", None), "name", None) or "")
        if scope == sc.INSTRUMENTATION_SCOPE:
            return None
        attributes = getattr(span, "attributes", None) or {}
        marked = any(key in attributes for key in _GENAI_MARKS)
        if not (marked or family in scope or "genai" in scope):
            return None
    except Exception as exc:
        _guard.report("looking for another instrumentation's LLM span", exc)
        return None
    return scope or "unknown"
