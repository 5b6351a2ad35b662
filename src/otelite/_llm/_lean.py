"""The lean path: the common call, begun and ended without the general objects.

Most calls in production look alike: content capture off, no online checks, no
metric dimensions, no compiled prompts, a response of the client's own models
with usage, a model whose price does not depend on the time of day, and nothing
new for API-change detection. For those, an adapter may begin the span with
:func:`begin` and end it with :func:`finish`, from values it read itself,
rather than through :class:`~otelite._llm._call.Request`, ``Outcome``, the
surface's hooks and :meth:`Invocation.end`. The span, its attributes, the
metrics, the cost, the context roll-up and the change detector's count are the
same as the general path's (``tests/test_lean.py`` compares the two on every
recorded response).

Anything else is handed over: :func:`finish` returns ``False`` having changed
nothing, and :func:`handover` makes the general :class:`Invocation` around the
span already started, which then ends the call as it ends any other.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Optional

from opentelemetry.trace import Span, SpanKind

from otelite import _context, _guard, _state
from otelite import _semconv as sc
from otelite._llm import _call, _changes
from otelite._llm._call import Attributes, Invocation, Request, _shape, _shapes
from otelite._metrics import CallMeasurements, defer, instruments

_CLIENT = SpanKind.CLIENT
_perf_counter = time.perf_counter


class Lean:
    """A call begun on the lean path: what it was started with, and its span."""

    __slots__ = (
        "active",
        "attributes",
        "base",
        "hides",
        "key",
        "sent",
        "span",
        "started",
        "traffic",
    )

    def __init__(
        self,
        active: _state.Active,
        key: tuple[str, str, Optional[str], Optional[str], Optional[int]],
        attributes: Attributes,
        base: Attributes,
        span: Span,
        traffic: Any,
    ) -> None:
        self.active = active
        self.key = key  # (operation, provider, requested model, server address, port)
        self.attributes = attributes  # the request's own attributes, as a Request holds them
        self.base = base  # the attributes every call of this key starts with (shared: not changed)
        self.span = span
        self.traffic = traffic
        # Set by an adapter that sends other arguments than the caller's (usage asked for in
        # a stream): those arguments, and that a chunk may be hidden from the caller.
        self.sent: Optional[Mapping[str, Any]] = None
        self.hides = False
        self.started = _perf_counter()


def begin(
    active: _state.Active,
    operation: str,
    provider: str,
    model: Optional[str],
    address: Optional[str],
    port: Optional[int],
    attributes: Attributes,
) -> Optional[Lean]:
    """Start the call's span as :class:`Invocation` starts it; ``None`` when that fails."""
    key = (operation, provider, model, address, port)
    try:
        shape = _shapes.get(key)
        if shape is None:
            shape = _shape(key)
        name, base = shape
        traffic = attributes.get(sc.OTELITE_TRAFFIC)
        if traffic is None:
            traffic = _context.current_attributes().get(sc.OTELITE_TRAFFIC)
        span = active.tracer.start_span(name, kind=_CLIENT, attributes={**base, **attributes})
        return Lean(active, key, attributes, base, span, traffic)
    except Exception as exc:
        _guard.report("starting an LLM call span", exc)
        return None


def handover(lean: Lean) -> Invocation:
    """The general :class:`Invocation` of a lean call, to end it the general way (content
    capture is off on the lean path: there is no content to hand over)."""
    return Invocation(Request(*lean.key, lean.attributes), None, True, lean)


def finish(
    lean: Lean,
    attrs: Attributes,
    model: str,
    fingerprint: Optional[str],
    reasons: list[str],
    tokens: tuple[int, Optional[int], int, int, int],
    tier: Optional[str],
    ended: tuple[float, int],
    first_chunk: Optional[float] = None,
    chunk_gaps: Optional[list[float]] = None,
) -> bool:
    """End a lean call from what the adapter read; ``False``, with nothing done, to hand over.

    ``attrs`` holds the response's attributes as the adapter's outcome reader would
    set them (ids, model, finish reasons, OpenAI's fields, usage); ``tokens`` is
    (input, output, cached, audio in, audio out), the first two as recorded. The cost
    attributes, the time to first chunk, the span's end, the roll-up and the metrics
    are added here as :meth:`Invocation.end` adds them.
    """
    operation, provider, requested, _, _ = lean.key
    active = lean.active
    try:
        pricing = _call._pricing_module or _call._load_pricing()
        hit = pricing.resolved(provider, (model, requested), tier, active.prices)
        if hit is None:
            return False
        _, price, source, version, date, override = hit
        input_tokens, output_tokens, cached, audio_in, audio_out = tokens
        usd = None
        if not (cached or audio_in or audio_out):
            usd = pricing.flat_usd(price, input_tokens, output_tokens or 0)
        if usd is None:
            usage = pricing.TokenUsage(
                input_tokens, output_tokens or 0, cached, 0, audio_in, audio_out
            )
            usd = pricing.cost_usd(price, usage)
        # Last: the only step that changes anything (it counts the call when it holds).
        if _changes.enabled and not _changes.steady(
            (provider, operation, requested or ""), model, fingerprint, reasons
        ):
            return False
    except Exception as exc:
        _guard.report("reading an LLM response", exc)
        return False
    span = lean.span
    ended_at, ended_ns = ended
    try:
        if span.is_recording():
            attrs[sc.GEN_AI_USAGE_COST] = usd
            attrs[sc.OTELITE_COST_SOURCE] = source
            if version:
                attrs[sc.OTELITE_COST_CATALOG_VERSION] = version
                attrs[sc.OTELITE_COST_CATALOG_DATE] = date
            attrs[sc.OTELITE_COST_ESTIMATED] = False
            attrs[sc.OTELITE_COST_OVERRIDE] = override
            if first_chunk is not None:
                attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = first_chunk - lean.started
            span.set_attributes(attrs)
    except Exception as exc:
        _guard.report("recording an LLM response", exc)
    finally:
        span.end(end_time=ended_ns)
    _context.count_call(input_tokens, output_tokens, usd)
    try:
        made = instruments(active.meter)
        if made.live():
            metric_attrs = lean.base.copy()
            if lean.traffic is not None:
                metric_attrs[sc.OTELITE_TRAFFIC] = lean.traffic
            metric_attrs[sc.GEN_AI_RESPONSE_MODEL] = model
            defer(
                CallMeasurements(
                    made,
                    metric_attrs,
                    ended_at - lean.started,
                    input_tokens,
                    output_tokens,
                    usd,
                    attrs,
                    first_chunk - lean.started if first_chunk is not None else None,
                    chunk_gaps,
                    span.get_span_context(),
                )
            )
    except Exception as exc:
        _guard.report("queueing LLM call metrics", exc)
    return True
