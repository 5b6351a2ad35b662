"""Counting what was and was not delivered: drop reasons, tallies, the summary line, and
otelite's self-observability instruments."""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from opentelemetry.sdk.metrics.export import MetricExportResult

from otelite import _metrics
from otelite import _semconv as sc

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Meter, Observation
    from opentelemetry.sdk.metrics.export import MetricsData

    from otelite._export._batch import BatchProcessor

DROP_REASONS = ("queue_full", "export_failed", "too_large", "shutdown_timeout")
"""Why a span was not delivered: the keys of :attr:`BatchProcessor.dropped`."""

_destinations: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _set_destination(exporter: Any, text: str) -> None:
    from otelite._content import safe_url

    if "://" in text:
        text = safe_url(text)  # a password or a token in the URL never reaches a log line
    with contextlib.suppress(TypeError):  # not weak-referenceable: named by its type
        _destinations[exporter] = text


def destination(exporter: Any) -> str:
    """Where ``exporter`` sends spans, for log lines."""
    try:
        return _destinations.get(exporter) or type(exporter).__name__
    except TypeError:
        return type(exporter).__name__


def _count_points(metrics_data: MetricsData) -> int:
    return sum(
        len(getattr(metric.data, "data_points", ()))
        for resource_metrics in metrics_data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    )


class _MetricCounts:
    """Metric points exported and not delivered (``export_failed``) through OTLP, process-wide."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start from zero (in a forked child: the parent reports its own counts)."""
        self.lock = threading.Lock()
        self.exported = 0
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)

    def add(self, result: MetricExportResult, points: int) -> None:
        with self.lock:
            if result == MetricExportResult.SUCCESS:
                self.exported += points
            else:
                self.dropped["export_failed"] += points


metric_counts = _MetricCounts()


class _Tally:
    """One processor's counts; kept when the processor is gone, since the counters are cumulative."""

    __slots__ = ("attempted", "component", "dropped", "exported", "exporter_type", "processor")

    def __init__(self, processor: BatchProcessor, component: str, exporter_type: str) -> None:
        self.processor = weakref.ref(processor)
        self.component = component
        self.exporter_type = exporter_type
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.exported = 0  # spans the exporter accepted
        self.attempted = 0  # spans passed to the exporter


_tallies: list[_Tally] = []
_tallies_lock = threading.Lock()


def register(processor: BatchProcessor, exporter_type: str) -> _Tally:
    """A new tally for ``processor``, named ``batching_span_processor/<n>`` in the metrics."""
    with _tallies_lock:
        component = f"{sc.COMPONENT_BATCHING_SPAN_PROCESSOR}/{len(_tallies)}"
        tally = _Tally(processor, component, exporter_type)
        _tallies.append(tally)
    return tally


def after_fork_in_child() -> None:
    """Start the counts from zero: the parent reports its own."""
    global _tallies_lock
    _tallies_lock = threading.Lock()
    _tallies.clear()
    metric_counts.reset()


def undelivered_line(
    count: int,
    destination: str,
    reasons: Mapping[str, int],
    kept_in: Optional[Path] = None,
    resend: Optional[str] = None,
) -> str:
    """The one line that says, at shutdown, how many spans did not reach ``destination``.

    ``reasons`` maps a reason of :data:`DROP_REASONS` to its count; ``kept_in`` is the
    local store that holds a copy of those spans, ``resend`` the command that sends
    them again.
    """
    noun = "span" if count == 1 else "spans"
    details = ", ".join(f"{reason.replace('_', ' ')}: {n}" for reason, n in reasons.items() if n)
    line = f"otelite: {count} {noun} could not be delivered to {destination} ({details})"
    if kept_in is not None:
        line += f"; kept in the local store {kept_in}"
        if resend:
            line += f", resend with `{resend}`"
    return line


def resend_command(store: Path, destination: str, protocol: str) -> Optional[str]:
    """The ``otelite export otlp`` command line that replays ``store`` to ``destination``."""
    import shlex

    if "://" not in destination:
        return None
    endpoint = destination
    if protocol != "grpc" and endpoint.endswith("/v1/traces"):
        endpoint = endpoint[: -len("/v1/traces")]
    command = (
        f"otelite export otlp --store {shlex.quote(str(store))} --endpoint {shlex.quote(endpoint)}"
    )
    return command + (" --protocol grpc" if protocol == "grpc" else "")


# --- self-observability metrics ----------------------------------------------------------

_observed: set[int] = set()  # ids of the meters the instruments below are registered on
_observed_meters: list[Any] = []  # those meters, kept so that an id is never reused


def _processor_points() -> tuple[
    dict[tuple[tuple[str, str], ...], int], dict[tuple[tuple[str, str], ...], int]
]:
    """Spans processed and exported, summed by attribute set, from every processor's tally."""
    processed: dict[tuple[tuple[str, str], ...], int] = {}
    exported: dict[tuple[tuple[str, str], ...], int] = {}
    with _tallies_lock:
        tallies = list(_tallies)
    for tally in tallies:
        if not tally.attempted and not any(tally.dropped.values()):
            continue  # a processor that has seen nothing adds no series (and no export)
        component: tuple[tuple[str, str], ...] = (
            (sc.OTEL_COMPONENT_NAME, tally.component),
            (sc.OTEL_COMPONENT_TYPE, sc.COMPONENT_BATCHING_SPAN_PROCESSOR),
        )
        processed[component] = processed.get(component, 0) + tally.attempted
        for reason in ("queue_full", "too_large", "shutdown_timeout"):
            if tally.dropped[reason]:
                key = (*component, (sc.ERROR_TYPE, reason))
                processed[key] = processed.get(key, 0) + tally.dropped[reason]
        kind: tuple[tuple[str, str], ...] = ((sc.OTEL_COMPONENT_TYPE, tally.exporter_type),)
        exported[kind] = exported.get(kind, 0) + tally.exported
        if tally.dropped["export_failed"]:
            key = (*kind, (sc.ERROR_TYPE, "export_failed"))
            exported[key] = exported.get(key, 0) + tally.dropped["export_failed"]
    return processed, exported


def dropped_counts() -> dict[tuple[str, str], int]:
    """Everything not delivered in this process so far: (signal, reason) -> count."""
    counts: dict[tuple[str, str], int] = {}
    with _tallies_lock:
        tallies = list(_tallies)
    for tally in tallies:
        for reason, n in tally.dropped.items():
            if n:
                key = (sc.SIGNAL_SPANS, reason)
                counts[key] = counts.get(key, 0) + n
    with metric_counts.lock:
        for reason, n in metric_counts.dropped.items():
            if n:
                counts[(sc.SIGNAL_METRICS, reason)] = n
    queued_out = _metrics.dropped()  # LLM calls whose measurements found the queue full
    if queued_out:
        key = (sc.SIGNAL_METRICS, "queue_full")
        counts[key] = counts.get(key, 0) + queued_out
    return counts


def observe(meter: Meter) -> None:
    """Register otelite's delivery counters on ``meter`` (once per meter).

    Observable instruments: the SDK reads them on the metric reader's thread, so
    counting costs the application's threads nothing.
    """
    from opentelemetry.metrics import Observation

    if id(meter) in _observed:
        return
    _observed.add(id(meter))
    _observed_meters.append(meter)

    def observations(points: Mapping[tuple[tuple[str, str], ...], int]) -> list[Observation]:
        return [Observation(n, dict(attributes)) for attributes, n in points.items()]

    def processed(options: CallbackOptions) -> Iterable[Observation]:
        return observations(_processor_points()[0])

    def exported(options: CallbackOptions) -> Iterable[Observation]:
        return observations(_processor_points()[1])

    def dropped(options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(n, {sc.OTELITE_SIGNAL: signal, sc.OTELITE_DROP_REASON: reason})
            for (signal, reason), n in sorted(dropped_counts().items())
        ]

    def metric_points(options: CallbackOptions) -> Iterable[Observation]:
        with metric_counts.lock:
            sent = metric_counts.exported
            failed = metric_counts.dropped["export_failed"]
        found = [Observation(sent, {})] if sent else []
        if failed:
            found.append(Observation(failed, {sc.ERROR_TYPE: "export_failed"}))
        return found

    def live() -> list[tuple[_Tally, BatchProcessor]]:
        with _tallies_lock:
            tallies = list(_tallies)
        pairs = [(tally, tally.processor()) for tally in tallies]
        return [(t, p) for t, p in pairs if p is not None and not p._stopped and p._accepted]

    def component(tally: _Tally) -> dict[str, str]:
        return {
            sc.OTEL_COMPONENT_NAME: tally.component,
            sc.OTEL_COMPONENT_TYPE: sc.COMPONENT_BATCHING_SPAN_PROCESSOR,
        }

    def queue_size(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(len(p._queue), component(t)) for t, p in live()]

    def queue_capacity(options: CallbackOptions) -> Iterable[Observation]:
        # A queue bounded by memory only (the local store's) has no capacity in spans.
        return [
            Observation(p.max_queue, component(t)) for t, p in live() if p.max_queue is not None
        ]

    meter.create_observable_counter(
        sc.METRIC_SDK_PROCESSOR_SPAN_PROCESSED,
        [processed],
        unit="{span}",
        description="Spans the batching processor finished with: passed to the exporter, "
        "or dropped (error.type)",
    )
    meter.create_observable_counter(
        sc.METRIC_SDK_EXPORTER_SPAN_EXPORTED,
        [exported],
        unit="{span}",
        description="Spans exported, or whose export failed (error.type)",
    )
    meter.create_observable_up_down_counter(
        sc.METRIC_SDK_PROCESSOR_SPAN_QUEUE_SIZE,
        [queue_size],
        unit="{span}",
        description="Spans in the batching processor's queue",
    )
    meter.create_observable_up_down_counter(
        sc.METRIC_SDK_PROCESSOR_SPAN_QUEUE_CAPACITY,
        [queue_capacity],
        unit="{span}",
        description="How many spans the batching processor's queue holds at most",
    )
    meter.create_observable_counter(
        sc.METRIC_SDK_EXPORTER_METRIC_POINT_EXPORTED,
        [metric_points],
        unit="{data_point}",
        description="Metric points exported over OTLP, or whose export failed (error.type)",
    )
    meter.create_observable_counter(
        sc.METRIC_SDK_DROPPED,
        [dropped],
        unit="1",
        description="Spans and metric points otelite could not deliver, by reason",
    )
