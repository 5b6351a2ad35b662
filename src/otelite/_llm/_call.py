"""One LLM call = one span: the provider-independent lifecycle.

An adapter (one per client library) turns a request into a :class:`Request`
and a response, or a stream's chunks, into an :class:`Outcome`. The lifecycle
lives here, used by the instrumentation wrappers (``_flow``) and by otelite's
own judge client alike: starting the CLIENT span with the sampling-relevant attributes, recording
content only when capture is on, errors, and the GenAI metrics. Every step runs
under ``_guard``, so a failure here never changes what the caller gets.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

from opentelemetry.trace import Span, SpanKind

from otelite import _context, _guard, _spans, _state
from otelite import _semconv as sc
from otelite._llm import _changes
from otelite._metrics import CallMeasurements, defer, dimension_attributes, instruments

if TYPE_CHECKING:
    from otelite import _pricing
    from otelite._llm._lean import Lean

Attributes = dict[str, Any]

_pricing_module: Optional[ModuleType] = None


def _load_pricing() -> ModuleType:
    # The price catalog loads on the first priced call anyway; its module does too, so that
    # `import otelite` stays light.
    global _pricing_module
    from otelite import _pricing

    _pricing_module = _pricing
    return _pricing


class Request:
    """What an adapter read from the call's arguments."""

    __slots__ = ("attributes", "model", "operation", "provider", "server_address", "server_port")

    def __init__(
        self,
        operation: str,
        provider: str,
        model: Optional[str],
        server_address: Optional[str],
        server_port: Optional[int],
        attributes: Attributes,
    ) -> None:
        self.operation = operation
        self.provider = provider
        self.model = model
        self.server_address = server_address
        self.server_port = server_port
        self.attributes = attributes


class Outcome:
    """What an adapter read from a response (or a finished stream)."""

    __slots__ = (
        "attributes",
        "audio_input_tokens",
        "audio_output_tokens",
        "cache_read_tokens",
        "estimated",
        "fingerprint",
        "input_tokens",
        "output",
        "output_tokens",
        "refused",
        "response_model",
        "service_tier",
        "signals",
        "structure",
        "text",
    )

    def __init__(
        self,
        attributes: Attributes,
        response_model: Optional[str] = None,
        input_tokens: Optional[int] = None,
        output_tokens: Optional[int] = None,
        output: Optional[Callable[[], Any]] = None,
        *,
        cache_read_tokens: int = 0,
        audio_input_tokens: int = 0,
        audio_output_tokens: int = 0,
        service_tier: Optional[str] = None,
        estimated: bool = False,
        text: Optional[Callable[[], str]] = None,
        refused: bool = False,
        structure: Optional[Callable[[], Optional[Mapping[str, Iterable[str]]]]] = None,
        fingerprint: Optional[str] = None,
        signals: Optional[Callable[[], list[str]]] = None,
    ) -> None:
        self.attributes = attributes
        self.response_model = response_model
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        # Built only when content capture is on.
        self.output = output
        self.cache_read_tokens = cache_read_tokens
        self.audio_input_tokens = audio_input_tokens
        self.audio_output_tokens = audio_output_tokens
        self.service_tier = service_tier
        self.estimated = estimated
        # The output's plain text, read only by online checks that need it.
        self.text = text
        self.refused = refused
        # For API-change detection (_changes): the response's field names by path prefix
        # (lazy; None when unreadable), its system fingerprint, deprecation notices in the body.
        self.structure = structure
        self.fingerprint = fingerprint
        self.signals = signals


class Accumulator(Protocol):
    """Collects a stream's chunks and reports the outcome seen so far."""

    def add(self, chunk: Any) -> bool:
        """Account for a chunk; ``True`` hides it from the caller (a usage chunk otelite asked for)."""
        ...

    def outcome(self, failed: bool) -> Outcome:
        """The outcome so far; ``failed``: the stream raised (else it ended or was left early)."""
        ...


Clock = tuple[float, int]  # (time.perf_counter(), time.time_ns()) at one instant


def stop_clock() -> Clock:
    """The instant a call ended, read before any work on its result (such as counting tokens)."""
    return time.perf_counter(), time.time_ns()


class Invocation:
    """One in-flight LLM call: its span, clock and metric attributes; ends exactly once."""

    __slots__ = (
        "_content",
        "_metric_base",
        "_open",
        "_run_checks_on",
        "active",
        "request",
        "span",
        "started",
    )

    def __init__(
        self,
        request: Request,
        content: Optional[Callable[[], Mapping[str, Any]]],
        checks: bool = True,
        lean: Optional[Lean] = None,
    ) -> None:
        # ``lean``: a call the lean path began (its span started from the same request),
        # handed over to be ended here.
        self.active = active = _state.active() if lean is None else lean.active
        self._run_checks_on = checks and bool(active.checks)
        self.request = request
        key = (
            request.operation,
            request.provider,
            request.model,
            request.server_address,
            request.server_port,
        )
        shape = _shapes.get(key)
        if shape is None:
            shape = _shape(key)
        name, base = shape
        metric_base = self._metric_base = base.copy()
        traffic = request.attributes.get(sc.OTELITE_TRAFFIC)
        if traffic is None:
            traffic = _context.current_attributes().get(sc.OTELITE_TRAFFIC)
        if traffic is not None:
            metric_base[sc.OTELITE_TRAFFIC] = traffic
        if active.dimensions is not None:
            metric_base.update(dimension_attributes(active.dimensions, request.attributes))
        self._open = [True]  # popped by the one end: list.pop is atomic
        self._content = content
        if lean is not None:
            self.span: Span = lean.span
            self.started = lean.started
            return
        attrs = {**base, **request.attributes}
        self.span = active.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs)
        if content is not None and active.content.capture and self.span.is_recording():
            with _guard.contained("recording the request content"):
                render = active.content.render
                for key_, value in content().items():
                    self.span.set_attribute(key_, render(value))
        self.started = time.perf_counter()

    def _claim_end(self) -> bool:
        try:
            self._open.pop()
        except IndexError:
            return False
        return True

    def _metric_attributes(
        self, response_model: Optional[str], error_type: Optional[str]
    ) -> Attributes:
        attrs = self._metric_base  # built at start; the call has ended, so it is extended in place
        if response_model:
            attrs[sc.GEN_AI_RESPONSE_MODEL] = response_model
        if error_type:
            attrs[sc.ERROR_TYPE] = error_type
        return attrs

    def end(
        self,
        outcome: Outcome,
        first_chunk: Optional[float] = None,
        chunk_gaps: Optional[list[float]] = None,
        error: Optional[BaseException] = None,
        ended: Optional[Clock] = None,
    ) -> Optional[_pricing.Cost]:
        """Record the outcome (and the error a stream ended with, if any), end the span, emit metrics.

        ``ended`` is when the call ended (see :func:`stop_clock`), taken before
        the outcome was read: the span's end and the duration are the
        provider's time as the client saw it, not otelite's. Returns the call's
        price (``None`` when unpriced or already ended).
        """
        try:  # _claim_end, inline: every call ends here
            self._open.pop()
        except IndexError:
            return None
        ended_at, ended_ns = ended if ended is not None else stop_clock()
        span = self.span
        error_type = None
        cost = self._price(outcome)
        try:
            if span.is_recording():
                attrs = outcome.attributes  # one set_attributes call: the span lock is taken once
                self._cost_attributes(attrs, outcome, cost)
                if first_chunk is not None:
                    attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = first_chunk - self.started
                if outcome.output is not None and self.active.content.capture:
                    attrs[sc.GEN_AI_OUTPUT_MESSAGES] = self.active.content.render(outcome.output())
                span.set_attributes(attrs)
            if error is not None:
                error_type = _spans.error_type(error)
                _spans.record_error(span, error)
            if _changes.enabled:
                try:  # not _guard.contained: a context manager costs more than the check
                    _changes.observe(self, outcome, error_type, error)
                except Exception as exc:
                    _guard.report("detecting API changes", exc)
            if self._run_checks_on:
                with _guard.contained("running online checks"):
                    self._run_checks(outcome, ended_at, error_type)
        finally:
            span.end(end_time=ended_ns)
        _context.count_call(
            outcome.input_tokens, outcome.output_tokens, cost.usd if cost is not None else None
        )
        self._record_metrics(outcome, ended_at, error_type, first_chunk, chunk_gaps, cost)
        return cost

    def _run_checks(self, outcome: Outcome, ended_at: float, error_type: Optional[str]) -> None:
        # Loaded on first use: apps without online checks never import them.
        from otelite import _checks

        request = self.request
        attrs = outcome.attributes
        finish = attrs.get(sc.GEN_AI_RESPONSE_FINISH_REASONS) or ()
        response_id = attrs.get(sc.GEN_AI_RESPONSE_ID)
        content = self._content
        call = _checks.Call(
            operation=request.operation,
            provider=request.provider,
            request_model=request.model,
            response_model=outcome.response_model,
            finish_reasons=[str(r) for r in finish],
            output_type=request.attributes.get(sc.GEN_AI_OUTPUT_TYPE),
            duration_s=ended_at - self.started,
            error_type=error_type,
            refused=outcome.refused,
            response_id=response_id if isinstance(response_id, str) else None,
            output_text=outcome.text,
            input_text=(lambda: _checks.messages_text(content())) if content is not None else None,
            span_context=self.span.get_span_context(),
        )
        _checks.run(self.active.checks, call, self.span, self.active.meter)

    def _price(self, outcome: Outcome) -> Optional[_pricing.Cost]:
        if outcome.input_tokens is None and outcome.output_tokens is None:
            return None
        try:
            pricing = _pricing_module or _load_pricing()
            usage = pricing.TokenUsage(
                input_tokens=outcome.input_tokens or 0,
                output_tokens=outcome.output_tokens or 0,
                cache_read_tokens=outcome.cache_read_tokens,
                input_audio_tokens=outcome.audio_input_tokens,
                output_audio_tokens=outcome.audio_output_tokens,
            )
            cost: Optional[_pricing.Cost] = pricing.price_call(
                self.request.provider,
                (outcome.response_model, self.request.model),
                usage,
                outcome.service_tier,
                self.active.prices,
                at=getattr(self.span, "start_time", None),  # priced at the call's start time
            )
            return cost
        except Exception as exc:
            _guard.report("pricing an LLM call", exc)
            return None

    @staticmethod
    def _cost_attributes(
        attrs: Attributes, outcome: Outcome, cost: Optional[_pricing.Cost]
    ) -> None:
        if outcome.input_tokens is None and outcome.output_tokens is None:
            return
        if cost is None:
            attrs[sc.OTELITE_COST_UNPRICED] = True
            return
        attrs[sc.GEN_AI_USAGE_COST] = cost.usd
        attrs[sc.OTELITE_COST_SOURCE] = cost.source
        if cost.version:
            attrs[sc.OTELITE_COST_CATALOG_VERSION] = cost.version
            attrs[sc.OTELITE_COST_CATALOG_DATE] = cost.date
        attrs[sc.OTELITE_COST_ESTIMATED] = outcome.estimated
        attrs[sc.OTELITE_COST_OVERRIDE] = cost.override

    def fail(self, exc: BaseException) -> None:
        """The call raised before any response: record the error, end the span, emit metrics."""
        if not self._claim_end():
            return
        ended_at, ended_ns = stop_clock()
        try:
            _spans.record_error(self.span, exc)
            if _changes.enabled:
                with _guard.contained("detecting API changes"):
                    _changes.observe(self, Outcome({}), _spans.error_type(exc), exc)
            if self._run_checks_on:
                with _guard.contained("running online checks"):
                    self._run_checks(Outcome({}), ended_at, _spans.error_type(exc))
        finally:
            self.span.end(end_time=ended_ns)
        self._record_metrics(Outcome({}), ended_at, _spans.error_type(exc), None, None, None)

    def _record_metrics(
        self,
        outcome: Outcome,
        ended_at: float,
        error_type: Optional[str],
        first_chunk: Optional[float],
        chunk_gaps: Optional[list[float]],
        cost: Optional[_pricing.Cost],
    ) -> None:
        # Recorded off the caller's thread (otelite._metrics.defer): here only a queue append.
        try:
            made = instruments(self.active.meter)
            if not made.live():
                return
            measurements = CallMeasurements(
                made,
                self._metric_attributes(outcome.response_model, error_type),
                ended_at - self.started,
                outcome.input_tokens,
                outcome.output_tokens,
                cost.usd if cost is not None else None,
                outcome.attributes,
                first_chunk - self.started if first_chunk is not None else None,
                chunk_gaps,
                self.span.get_span_context(),
            )
            defer(measurements)
        except Exception as exc:  # not _guard.contained: a context manager costs more
            _guard.report("queueing LLM call metrics", exc)


Shape = tuple[str, Attributes]
# (operation, provider, model, server address, port) -> span name and the attributes every
# call to it starts with: built once, not per call. Bounded: cleared past MAX_SHAPES.
_shapes: dict[tuple[Any, ...], Shape] = {}
MAX_SHAPES = 1024


def _shape(key: tuple[Any, ...]) -> Shape:
    operation, provider, model, address, port = key
    attrs: Attributes = {sc.GEN_AI_OPERATION_NAME: operation, sc.GEN_AI_PROVIDER_NAME: provider}
    if model:
        attrs[sc.GEN_AI_REQUEST_MODEL] = model
    if address:
        attrs[sc.SERVER_ADDRESS] = address
        if port is not None:
            attrs[sc.SERVER_PORT] = port
    shape = (f"{operation} {model}" if model else operation, attrs)
    if len(_shapes) >= MAX_SHAPES:
        _shapes.clear()
    _shapes[key] = shape
    return shape


def start(
    request: Request,
    content: Optional[Callable[[], Mapping[str, Any]]] = None,
    *,
    checks: bool = True,
) -> Optional[Invocation]:
    """Begin an LLM call's span, or ``None`` when instrumentation is suppressed or fails.

    ``content`` gives the request's content attributes (called only when capture is
    on); ``checks=False`` skips online checks (a judge's own calls are never checked).
    """
    if _spans.is_suppressed():
        return None
    try:
        return Invocation(request, content, checks)
    except Exception as exc:
        _guard.report("starting an LLM call span", exc)
        return None
