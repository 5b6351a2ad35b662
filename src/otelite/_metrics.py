"""The GenAI client metrics: created once per meter, shared by every LLM call recorder.

The OpenAI wrapper and the evaluation judges both record LLM calls; the
instruments (with the conventions' bucket advice) live here so both use the same.
The dashboards and alert rules in ``otelite/integrations/grafana`` query these
instruments by name (``docs/grafana.md`` is the reference): each recording site
calls one helper here, so what a dashboard sees is decided in one place.

An LLM call's measurements are not recorded on the caller's thread: the call
hands one :class:`CallMeasurements` to :func:`defer` (an append to a bounded
queue) and a background thread records them, as does every metric collection
(a reader's ``collect``, ``force_flush``, the final collection at shutdown) before
it reads the instruments, so no collection misses a call that ended before it.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional

from opentelemetry.metrics import (
    CallbackOptions,
    Counter,
    Histogram,
    Meter,
    NoOpHistogram,
    Observation,
)

from otelite import _context, _guard
from otelite import _semconv as sc

if TYPE_CHECKING:
    from otelite._dimensions import Limiter


def _histogram(
    meter: Meter, name: str, unit: str, description: str, buckets: Sequence[float]
) -> Histogram:
    try:
        return meter.create_histogram(
            name,
            unit=unit,
            description=description,
            explicit_bucket_boundaries_advisory=list(buckets),
        )
    except TypeError:
        # opentelemetry-api older than 1.28 has no bucket advice: the SDK's default buckets apply.
        return meter.create_histogram(name, unit=unit, description=description)


class _Instruments:
    __slots__ = (
        "api_changes",
        "cost",
        "duration",
        "is_noop",
        "per_chunk",
        "score",
        "token_details",
        "tokens",
        "ttfc",
    )

    def __init__(self, meter: Meter) -> None:
        self.duration = _histogram(
            meter,
            sc.METRIC_OPERATION_DURATION,
            "s",
            "GenAI operation duration",
            sc.DURATION_BUCKETS,
        )
        self.tokens = _histogram(
            meter,
            sc.METRIC_TOKEN_USAGE,
            "{token}",
            "Number of input and output tokens used",
            sc.TOKEN_BUCKETS,
        )
        self.ttfc = _histogram(
            meter,
            sc.METRIC_TIME_TO_FIRST_CHUNK,
            "s",
            "Time to receive the first chunk of a streamed response",
            sc.DURATION_BUCKETS,
        )
        self.per_chunk = _histogram(
            meter,
            sc.METRIC_TIME_PER_OUTPUT_CHUNK,
            "s",
            "Time between consecutive chunks of a streamed response",
            sc.DURATION_BUCKETS,
        )
        self.cost: Counter = meter.create_counter(
            sc.METRIC_COST,
            unit="USD",
            description="Cost of GenAI calls, from token usage and prices",
        )
        self.token_details: Counter = meter.create_counter(
            sc.METRIC_TOKEN_DETAILS,
            unit="{token}",
            description="Cached input and reasoning output tokens (already in the input/output counts)",
        )
        self.score = _histogram(
            meter,
            sc.METRIC_EVALUATION_SCORE,
            "1",
            "Evaluation scores, by evaluator",
            sc.SCORE_BUCKETS,
        )
        self.api_changes: Counter = meter.create_counter(
            sc.METRIC_API_CHANGES,
            unit="{change}",
            description="Changes seen in a provider's API (response model, fingerprint, shape)",
        )
        self.is_noop = isinstance(self.duration, NoOpHistogram)
        # Read at every collection of this meter, before its instruments are: records
        # the calls still queued, so the collection sees them. It reports nothing itself.
        meter.create_observable_gauge(
            sc.METRIC_SDK_METRICS_PENDING,
            callbacks=[_drain_before_collection],
            unit="{call}",
            description="otelite's hook that records queued LLM-call measurements (no data)",
        )

    def live(self) -> bool:
        """Whether a record reaches a meter provider: not the API's no-op meter, nor its proxy
        before an SDK meter provider is set (then a call's measurements are not even queued,
        as they would not have been recorded inline)."""
        if self.is_noop:
            return False
        return getattr(self.duration, "_real_instrument", self) is not None


MAX_METERS = 16  # meters whose instruments are kept; the oldest is forgotten beyond that

_instruments_lock = threading.Lock()
# id(meter) -> (meter, its instruments), oldest first. Instrumentation asks for the meter
# of the current provider on every call; the meter is kept with its instruments so a
# recycled id can never return another meter's instruments.
_instruments: dict[int, tuple[Meter, _Instruments]] = {}


def instruments(meter: Meter) -> _Instruments:
    """The GenAI histograms on ``meter`` (created once per meter; the cache is bounded)."""
    found = _instruments.get(id(meter))
    if found is not None and found[0] is meter:
        return found[1]
    with _instruments_lock:
        found = _instruments.get(id(meter))
        if found is not None and found[0] is meter:
            return found[1]
        made = _Instruments(meter)
        _instruments.pop(id(meter), None)
        while len(_instruments) >= MAX_METERS:
            del _instruments[next(iter(_instruments))]
        _instruments[id(meter)] = (meter, made)
        return made


def dimension_attributes(
    limiter: Optional[Limiter], request: Mapping[str, Any]
) -> Mapping[str, Any]:
    """The opt-in dimension labels of a call starting now (empty unless configured)."""
    if limiter is None:
        return {}
    return limiter.attributes(_context.current_attributes(), request)


def record_score(
    meter: Meter, name: str, value: Optional[float], kind: str, passed: Optional[bool]
) -> None:
    """Record one evaluation score (scores without a value are not recorded)."""
    if value is None:
        return
    attrs: dict[str, Any] = {
        sc.GEN_AI_EVALUATION_NAME: name,
        sc.OTELITE_EVALUATION_KIND: kind,
    }
    if passed is not None:
        attrs[sc.OTELITE_EVALUATION_PASSED] = passed
    traffic = _context.current_attributes().get(sc.OTELITE_TRAFFIC)
    if traffic is not None:
        attrs[sc.OTELITE_TRAFFIC] = traffic
    instruments(meter).score.record(float(value), attrs)


def record_api_change(
    meter: Meter, provider: str, kind: str, attributes: Optional[Mapping[str, Any]] = None
) -> None:
    """Count one change seen in a provider's API (``kind``: e.g. ``response_model``,
    ``fingerprint``, ``schema``).

    Called by API-change detection (``otelite._llm._changes``); the "API health"
    dashboards and the ``OteliteApiChangeSeen`` alert read ``otelite.api.changes``.
    """
    attrs: dict[str, Any] = dict(attributes or {})
    attrs[sc.GEN_AI_PROVIDER_NAME] = provider
    attrs[sc.OTELITE_API_CHANGE_KIND] = kind
    instruments(meter).api_changes.add(1, attrs)


# --- recording off the caller's thread ------------------------------------------------

logger = logging.getLogger("otelite")

MAX_QUEUED = 16384
"""Calls whose measurements may wait; past that a call's measurements are dropped and counted."""
WAKE_AT = 1024
"""Queued calls that wake the recording thread before its next tick."""
TICK_S = 0.5
"""How often the recording thread records what is queued."""


class CallMeasurements:
    """Everything one ended LLM call records in metrics, built on the caller's thread."""

    __slots__ = (
        "attributes",
        "cached_tokens",
        "chunk_gaps",
        "cost",
        "duration",
        "input_tokens",
        "made",
        "output_tokens",
        "reasoning_tokens",
        "span_context",
        "ttfc",
    )

    def __init__(
        self,
        made: _Instruments,
        attributes: Mapping[str, Any],
        duration: float,
        input_tokens: Optional[int],
        output_tokens: Optional[int],
        cost: Optional[float],
        details: Mapping[str, Any],
        ttfc: Optional[float],
        chunk_gaps: Optional[Sequence[float]],
        span_context: Any,
    ) -> None:
        self.made = made
        self.attributes = attributes
        self.duration = duration
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cost = cost
        # From the outcome's attributes (not kept: they may hold captured content).
        self.cached_tokens = details.get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)
        self.reasoning_tokens = details.get(sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS)
        self.ttfc = ttfc
        self.chunk_gaps = chunk_gaps
        self.span_context = span_context  # exemplars link to the call's trace

    def record(self) -> None:
        from opentelemetry import trace

        made, attrs = self.made, self.attributes
        context = (
            trace.set_span_in_context(trace.NonRecordingSpan(self.span_context))
            if self.span_context is not None
            else None
        )
        made.duration.record(self.duration, attrs, context)
        if self.input_tokens is not None:
            made.tokens.record(
                self.input_tokens, {**attrs, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_INPUT}, context
            )
        if self.output_tokens is not None:
            made.tokens.record(
                self.output_tokens, {**attrs, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_OUTPUT}, context
            )
        if self.cost is not None:
            made.cost.add(self.cost, attrs, context)
        for value, detail in (
            (self.cached_tokens, sc.TOKEN_DETAIL_CACHE_READ),
            (self.reasoning_tokens, sc.TOKEN_DETAIL_REASONING),
        ):
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                made.token_details.add(value, {**attrs, sc.OTELITE_TOKEN_DETAIL: detail}, context)
        if self.ttfc is not None:
            made.ttfc.record(self.ttfc, attrs, context)
        if self.chunk_gaps:
            # Without the call's context: an exemplar per chunk gap would cost more than the
            # gap's record itself, and the call's other points already link to its trace.
            record = made.per_chunk.record
            for gap in self.chunk_gaps:
                record(gap, attrs)


class _Queue:
    """The calls waiting to be recorded, and the thread that records them."""

    def __init__(self) -> None:
        self.items: collections.deque[CallMeasurements] = collections.deque()
        self.lock = threading.Lock()  # one drainer at a time: a drain ends with an empty queue
        self.wake = threading.Event()
        self.worker: Optional[threading.Thread] = None
        self.dropped = 0
        self.warned = False


_queue = _Queue()


def defer(measurements: CallMeasurements) -> None:
    """Queue one call's measurements (the caller's whole cost); never blocks, never raises."""
    queue = _queue
    items = queue.items
    if len(items) >= MAX_QUEUED:
        _drop(queue)
        return
    items.append(measurements)
    if queue.worker is None:
        _start_worker(queue)
    elif len(items) >= WAKE_AT and not queue.wake.is_set():
        queue.wake.set()


def _drop(queue: _Queue) -> None:
    queue.dropped += 1
    if not queue.warned:
        queue.warned = True
        logger.warning(
            "otelite: %d LLM calls' metrics are waiting to be recorded; the measurements of "
            "further calls are dropped until the queue drains (counted in otelite.sdk.dropped, "
            "otelite.signal=metrics, otelite.drop.reason=queue_full)",
            MAX_QUEUED,
        )


def dropped() -> int:
    """LLM calls whose measurements were dropped because the queue was full (this process)."""
    return _queue.dropped


def _start_worker(queue: _Queue) -> None:
    with queue.lock:
        if queue.worker is not None:
            return
        worker = threading.Thread(target=_run, args=(queue,), name="otelite-metrics", daemon=True)
        queue.worker = worker
    try:
        worker.start()
    except RuntimeError:  # interpreter shutdown: the final collection records the queue
        queue.worker = None


def _run(queue: _Queue) -> None:
    while queue is _queue:  # a forked child starts its own queue and thread
        queue.wake.wait(TICK_S)
        queue.wake.clear()
        drain(queue)


def drain(queue: Optional[_Queue] = None) -> None:
    """Record every queued call now, on this thread (collections, flush, exit call this)."""
    queue = _queue if queue is None else queue
    items = queue.items
    if not items:
        return
    with queue.lock:
        while True:
            try:
                measurements = items.popleft()
            except IndexError:
                return
            try:
                measurements.record()
            except Exception as exc:  # a failing SDK or view: reported, never raised
                _guard.report("recording LLM call metrics", exc)


def _drain_before_collection(options: CallbackOptions) -> Iterable[Observation]:
    try:
        drain()
    except Exception as exc:
        _guard.report("recording LLM call metrics", exc)
    return ()


def _after_fork_in_child() -> None:
    # The parent records what it queued; the child starts empty, with its own lock and thread.
    global _queue
    _queue = _Queue()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
