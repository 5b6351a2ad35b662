"""``@otelite.trace`` and ``otelite.span``: application code as nested spans.

The wrappers keep the wrapped function's kind (sync, coroutine, generator,
async generator), signature and return value. Telemetry work runs inside
``_guard`` so it can never change what the function returns or raises. A
generator's span covers its whole iteration: the span's context is attached
only while the generator body runs (never across a ``yield``), and the span ends
exactly once, whether the generator is exhausted, closed, broken out of, or
garbage-collected.

Size: over 500 lines because sync functions, coroutines, generators and async
generators each need their own wrapper, and they must stay in step.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import AsyncGenerator, Generator, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union, overload

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace import Span, SpanKind

from otelite import _guard, _spans, _state
from otelite import _semconv as sc
from otelite._context import clean_attributes
from otelite._exceptions import ConfigurationError

if TYPE_CHECKING:
    from typing_extensions import ParamSpec

    P = ParamSpec("P")

R = TypeVar("R")

# kind -> (gen_ai.operation.name, attribute holding the name, OpenTelemetry span kind)
GENAI_KINDS: Mapping[str, tuple[str, Optional[str], SpanKind]] = {
    "tool": (sc.OP_EXECUTE_TOOL, sc.GEN_AI_TOOL_NAME, SpanKind.INTERNAL),
    "agent": (sc.OP_INVOKE_AGENT, sc.GEN_AI_AGENT_NAME, SpanKind.INTERNAL),
    "workflow": (sc.OP_INVOKE_WORKFLOW, sc.GEN_AI_WORKFLOW_NAME, SpanKind.INTERNAL),
    "retriever": (sc.OP_RETRIEVAL, None, SpanKind.CLIENT),
}
MAX_CAPTURED_ITEMS = 1000
_SELF_NAMES = ("self", "cls")


class DecorationError(ConfigurationError, TypeError):
    """``@otelite.trace`` was used on something it cannot trace, or with a bad option.

    Raised at decoration time only; it is both a :class:`ConfigurationError` and a
    ``TypeError``.
    """


def _underlying(func: Any) -> Any:
    """The function a ``functools.partial`` (nested or not) finally calls."""
    while isinstance(func, functools.partial):
        func = func.func
    return func


def _names(func: Any) -> tuple[str, str]:
    """Default span name and ``code.function.name`` of a callable, without memory addresses.

    Functions and methods use their qualified name; a ``functools.partial`` that of the
    function it wraps; a callable object its class name (``code.function.name`` points
    at ``Class.__call__``).
    """
    inner = _underlying(func)
    qualname = getattr(inner, "__qualname__", None)
    if isinstance(qualname, str) and qualname:
        return qualname, f"{getattr(inner, '__module__', None) or '?'}.{qualname}"
    cls = type(inner)
    return cls.__qualname__, f"{cls.__module__}.{cls.__qualname__}.__call__"


def _flavour(func: Any) -> str:
    """``"asyncgen"``, ``"gen"``, ``"coroutine"`` or ``"sync"``: which wrapper ``func`` needs.

    Looks through ``functools.partial`` and, for callable objects, at ``__call__``.
    """
    inner = _underlying(func)
    candidates = [func, inner]
    if not (inspect.isfunction(inner) or inspect.ismethod(inner) or inspect.isbuiltin(inner)):
        candidates.append(inspect.getattr_static(type(inner), "__call__", None))
    for candidate in candidates:
        if candidate is None:
            continue
        if inspect.isasyncgenfunction(candidate):
            return "asyncgen"
        if inspect.isgeneratorfunction(candidate):
            return "gen"
        if inspect.iscoroutinefunction(candidate):
            return "coroutine"
    return "sync"


class _Spec:
    """Everything about a decorated function that is fixed at decoration time."""

    __slots__ = (
        "attributes",
        "capture_input",
        "capture_output",
        "input_key",
        "name",
        "output_key",
        "signature",
        "skip_first",
        "span_kind",
    )

    def __init__(
        self,
        func: Callable[..., Any],
        name: Optional[str],
        kind: Optional[str],
        attributes: Optional[Mapping[str, Any]],
        capture_input: Optional[bool],
        capture_output: Optional[bool],
    ) -> None:
        default_name, code_name = _names(func)
        base_name = name or default_name
        attrs: dict[str, Any] = {sc.CODE_FUNCTION_NAME: code_name}
        self.span_kind = SpanKind.INTERNAL
        self.input_key, self.output_key = sc.OTELITE_INPUT, sc.OTELITE_OUTPUT
        self.name = base_name
        if kind is not None:
            attrs[sc.OTELITE_SPAN_KIND] = kind
            genai = GENAI_KINDS.get(kind)
            if genai is not None:
                operation, name_key, self.span_kind = genai
                self.name = f"{operation} {base_name}"
                attrs[sc.GEN_AI_OPERATION_NAME] = operation
                if name_key is not None:
                    attrs[name_key] = base_name
                if kind == "tool":
                    attrs[sc.GEN_AI_TOOL_TYPE] = "function"
                    self.input_key = sc.GEN_AI_TOOL_CALL_ARGUMENTS
                    self.output_key = sc.GEN_AI_TOOL_CALL_RESULT
        attrs.update(clean_attributes(attributes or {}, "@otelite.trace(attributes=): {!r}"))
        self.attributes = attrs
        self.capture_input = capture_input
        self.capture_output = capture_output
        try:
            self.signature: Optional[inspect.Signature] = inspect.signature(func)
        except (TypeError, ValueError):
            self.signature = None
        params = list(self.signature.parameters) if self.signature else []
        self.skip_first = bool(params) and params[0] in _SELF_NAMES

    def start(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Optional[Span]:
        """Start the span (not yet current) and record the inputs when capture is on."""
        if _spans.is_suppressed():
            return None
        active = _state.active()
        span = active.tracer.start_span(self.name, kind=self.span_kind, attributes=self.attributes)
        capture = self.capture_input if self.capture_input is not None else active.content.capture
        if capture and span.is_recording() and self.signature is not None:
            try:
                bound = self.signature.bind_partial(*args, **kwargs)
            except TypeError:
                return span  # the call itself will raise the same TypeError
            arguments = dict(bound.arguments)
            if self.skip_first and arguments:
                arguments.pop(next(iter(arguments)))
            span.set_attribute(self.input_key, active.content.render(arguments))
        return span

    def finish(self, span: Span, result: Any = None, has_result: bool = True) -> None:
        """Record the output (when capture is on) and end the span."""
        try:
            if has_result and span.is_recording():
                active = _state.active()
                capture = (
                    self.capture_output
                    if self.capture_output is not None
                    else active.content.capture
                )
                if capture:
                    span.set_attribute(self.output_key, active.content.render(result))
        finally:
            span.end()

    def fail(self, span: Span, exc: BaseException) -> None:
        """Record ``exc`` on the span and end it."""
        try:
            _spans.record_error(span, exc)
        finally:
            span.end()


def _start(spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Optional[Span]:
    try:
        return spec.start(args, kwargs)
    except Exception as exc:
        _guard.report("starting a @trace span", exc)
        return None


def _finish(spec: _Spec, span: Span, result: Any, has_result: bool = True) -> None:
    try:
        spec.finish(span, result, has_result)
    except Exception as exc:
        _guard.report("ending a @trace span", exc)


def _fail(spec: _Spec, span: Span, exc: BaseException) -> None:
    try:
        spec.fail(span, exc)
    except Exception as inner:
        _guard.report("recording an error on a @trace span", inner)


def _wrap_sync(func: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        span = _start(spec, args, kwargs)
        if span is None:
            return func(*args, **kwargs)
        token = otel_context.attach(otel_trace.set_span_in_context(span))
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            _fail(spec, span, exc)
            raise
        finally:
            otel_context.detach(token)
        _finish(spec, span, result)
        return result

    return wrapper


def _wrap_coroutine(func: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        span = _start(spec, args, kwargs)
        if span is None:
            return await func(*args, **kwargs)
        token = otel_context.attach(otel_trace.set_span_in_context(span))
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:  # includes CancelledError, re-raised as is
            _fail(spec, span, exc)
            raise
        finally:
            otel_context.detach(token)
        _finish(spec, span, result)
        return result

    return wrapper


def _capture_items(spec: _Spec) -> Optional[list[Any]]:
    """A list to collect yielded items in, when the output is going to be recorded."""
    try:
        capture = spec.capture_output
        if capture is None:
            capture = _state.active().content.capture
        return [] if capture else None
    except Exception as exc:
        _guard.report("reading the capture settings", exc)
        return None


def _wrap_generator(func: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        span = _start(spec, args, kwargs)
        if span is None:
            return (yield from func(*args, **kwargs))
        ctx = otel_trace.set_span_in_context(span)
        items = _capture_items(spec)
        ended = False
        try:
            token = otel_context.attach(ctx)
            try:
                gen = func(*args, **kwargs)
            finally:
                otel_context.detach(token)
            send_value: Any = None
            exc_to_throw: Optional[BaseException] = None
            while True:
                # The span is current only while the generator body runs, never across
                # the yield below: the caller's own spans must not nest under it.
                token = otel_context.attach(ctx)
                try:
                    if exc_to_throw is not None:
                        item = gen.throw(exc_to_throw)
                    else:
                        item = gen.send(send_value)
                except StopIteration as stop:
                    ended = True
                    _finish(spec, span, items if items is not None else stop.value, True)
                    return stop.value
                except BaseException as exc:
                    ended = True
                    _fail(spec, span, exc)
                    raise
                finally:
                    otel_context.detach(token)
                if items is not None and len(items) < MAX_CAPTURED_ITEMS:
                    items.append(item)
                exc_to_throw = None
                try:
                    send_value = yield item
                except GeneratorExit:
                    # Closed early, broken out of, or garbage-collected: not an error.
                    gen.close()
                    raise
                except BaseException as exc:
                    exc_to_throw = exc
        finally:
            if not ended:
                _finish(spec, span, items, items is not None)

    return wrapper


def _is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is asyncio's ``CancelledError`` (asyncio is not imported for this)."""
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)


def _wrap_async_generator(func: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        span = _start(spec, args, kwargs)
        if span is None:
            agen = func(*args, **kwargs)
            try:
                value: Any = None
                while True:
                    try:
                        item = await agen.asend(value)
                    except StopAsyncIteration:
                        return
                    value = yield item
            finally:
                await agen.aclose()
        ctx = otel_trace.set_span_in_context(span)
        items = _capture_items(spec)
        ended = False
        try:
            token = otel_context.attach(ctx)
            try:
                agen = func(*args, **kwargs)
            finally:
                otel_context.detach(token)
            send_value: Any = None
            exc_to_throw: Optional[BaseException] = None
            while True:
                token = otel_context.attach(ctx)
                try:
                    if exc_to_throw is not None:
                        item = await agen.athrow(exc_to_throw)
                    else:
                        item = await agen.asend(send_value)
                except StopAsyncIteration:
                    ended = True
                    _finish(spec, span, items, items is not None)
                    return
                except BaseException as exc:
                    ended = True
                    if exc_to_throw is not None and _is_cancellation(exc):
                        # Cancelled while suspended at a yield: the consumer stopped
                        # iterating (asyncio.run shutting down async generators left
                        # behind by a break does this); closed early, not an error.
                        _finish(spec, span, items, items is not None)
                    else:
                        _fail(spec, span, exc)
                    raise
                finally:
                    otel_context.detach(token)
                if items is not None and len(items) < MAX_CAPTURED_ITEMS:
                    items.append(item)
                exc_to_throw = None
                try:
                    send_value = yield item
                except GeneratorExit:
                    await agen.aclose()
                    raise
                except BaseException as exc:
                    exc_to_throw = exc
        finally:
            if not ended:
                _finish(spec, span, items, items is not None)

    return wrapper


def _decorate(
    func: Any,
    name: Optional[str],
    kind: Optional[str],
    attributes: Optional[Mapping[str, Any]],
    capture_input: Optional[bool],
    capture_output: Optional[bool],
) -> Any:
    if isinstance(func, (classmethod, staticmethod)):
        inner = _decorate(func.__func__, name, kind, attributes, capture_input, capture_output)
        return type(func)(inner)
    if isinstance(func, type):
        raise DecorationError(
            f"@otelite.trace: {func.__qualname__} is a class, and tracing it would replace the "
            "class with a function; decorate its methods instead (put @otelite.trace above "
            "def __call__, def run, ...)"
        )
    if not callable(func):
        raise DecorationError(
            f"@otelite.trace: expected a function or method, got {type(func).__name__} "
            f"({func!r}); write @otelite.trace or @otelite.trace(name=...) above a def"
        )
    spec = _Spec(func, name, kind, attributes, capture_input, capture_output)
    flavour = _flavour(func)
    if flavour == "asyncgen":
        return _wrap_async_generator(func, spec)
    if flavour == "gen":
        return _wrap_generator(func, spec)
    if flavour == "coroutine":
        return _wrap_coroutine(func, spec)
    return _wrap_sync(func, spec)


def _check_options(
    name: Optional[str],
    kind: Optional[str],
    attributes: Optional[Mapping[str, Any]],
    capture_input: Optional[bool],
    capture_output: Optional[bool],
) -> None:
    if name is not None and (not isinstance(name, str) or not name):
        raise DecorationError(f"@otelite.trace: name must be a non-empty str, got {name!r}")
    if kind is not None and (not isinstance(kind, str) or not kind):
        raise DecorationError(
            f"@otelite.trace: kind must be a non-empty str such as 'tool' or 'retriever', got {kind!r}"
        )
    if attributes is not None and not isinstance(attributes, Mapping):
        raise DecorationError(
            f"@otelite.trace: attributes must be a mapping, got {type(attributes).__name__}"
        )
    for argument, value in (("capture_input", capture_input), ("capture_output", capture_output)):
        if value is not None and not isinstance(value, bool):
            raise DecorationError(
                f"@otelite.trace: {argument} must be True, False or None, got {value!r}"
            )


@overload
def trace(func: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def trace(
    name: Optional[str] = None,
    /,
    *,
    kind: Optional[str] = None,
    attributes: Optional[Mapping[str, Any]] = None,
    capture_input: Optional[bool] = None,
    capture_output: Optional[bool] = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def trace(
    func: Union[Callable[..., Any], str, None] = None,
    /,
    *,
    name: Optional[str] = None,
    kind: Optional[str] = None,
    attributes: Optional[Mapping[str, Any]] = None,
    capture_input: Optional[bool] = None,
    capture_output: Optional[bool] = None,
) -> Any:
    """Record each call of a function as a span, nested under the current one.

    Works on functions, coroutines, generators, async generators, methods,
    class methods and static methods; the wrapped function keeps its signature.
    Exceptions are recorded and re-raised unchanged.

    ``kind`` maps to the GenAI conventions where one exists: ``"tool"`` gives an
    ``execute_tool {name}`` span with ``gen_ai.tool.name``, ``"agent"``
    ``invoke_agent {name}``, ``"workflow"`` ``invoke_workflow {name}``,
    ``"retriever"`` ``retrieval {name}``. Any other kind (``"task"``, ``"chain"``,
    ``"rerank"``, ...) is recorded as ``otelite.span.kind``.

    Inputs (bound arguments, ``self``/``cls`` left out) and the return value are
    recorded as JSON only when content capture is on; ``capture_input`` and
    ``capture_output`` override that for one function (``False`` keeps a
    sensitive function's data out even when capture is on).

    Example:
        >>> import otelite
        >>> @otelite.trace
        ... def rewrite(question: str) -> str:
        ...     return question.strip()
        >>> @otelite.trace(kind="tool", name="search")
        ... async def search(query: str) -> list[str]:
        ...     return []
        >>> rewrite("  hi ")
        'hi'
    """
    if isinstance(func, str):
        if name is not None:
            raise DecorationError(
                "@otelite.trace: give the span name once, positionally or as name="
            )
        name, func = func, None
    _check_options(name, kind, attributes, capture_input, capture_output)
    if func is not None:
        return _decorate(func, name, kind, attributes, capture_input, capture_output)

    def decorator(f: Callable[P, R]) -> Callable[P, R]:
        return _decorate(f, name, kind, attributes, capture_input, capture_output)  # type: ignore[no-any-return]

    return decorator


def span(name: str, /, **attributes: Any) -> AbstractContextManager[Span]:
    """Record a block of code as a span, current inside the block; yields the span.

    Exceptions raised in the block are recorded on the span and propagate unchanged.
    Attribute values follow OpenTelemetry's rules and never raise: ``None`` is dropped,
    values OpenTelemetry cannot hold become JSON text, strings are size-capped.

    Example:
        >>> import otelite
        >>> with otelite.span("rerank", top_k=3) as s:
        ...     s.set_attribute("reranked", 3)
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"otelite.span: name must be a non-empty str, got {name!r}")
    attrs: dict[str, Any] = {}
    if attributes:
        with _guard.contained("reading otelite.span() attributes"):
            attrs = clean_attributes(attributes, "otelite.span(): attribute {!r}")
    return _span_block(name, attrs)


@contextmanager
def _span_block(name: str, attrs: dict[str, Any]) -> Iterator[Span]:
    current: Span = otel_trace.INVALID_SPAN
    try:
        if not _spans.is_suppressed():
            current = _state.active().tracer.start_span(name, attributes=attrs)
    except Exception as exc:
        _guard.report("starting an otelite.span", exc)
    token = otel_context.attach(otel_trace.set_span_in_context(current))
    try:
        yield current
    except BaseException as exc:
        with _guard.contained("recording an error on an otelite.span"):
            _spans.record_error(current, exc)
        raise
    finally:
        otel_context.detach(token)
        with _guard.contained("ending an otelite.span"):
            current.end()
