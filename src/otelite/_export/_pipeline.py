"""What otelite puts in a provider: batching processors built from the environment
(``batch()``), the swappable processor and metric exporter, the context attributes
processor, and flushing or shutting down several processors in parallel."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Optional

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from otelite import _context, _env, _guard
from otelite._export._batch import BatchProcessor
from otelite._export._bounds import _positive_env, _remaining, run_bounded
from otelite._export._scrub import scrub_error_data
from otelite._export._sizes import MAX_REQUEST_BYTES, max_queue_bytes
from otelite._export._store import LocalStoreExporter
from otelite._export._tally import resend_command

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricsData

    from otelite._outbox import Outbox

DEFAULT_STORE_BATCH = 2048
"""Most spans the local store writes in one transaction when ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` is unset."""


class ContextAttributesProcessor(SpanProcessor):
    """Copies the context attributes onto each span as it starts.

    Attributes the span set itself are kept: explicit beats inherited.
    """

    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        value = otel_context.get_value(_context.KEY, parent_context)
        if not value or not isinstance(value, Mapping):
            return
        existing = span.attributes or _context.EMPTY
        for key, attr in value.items():
            if key not in existing:
                span.set_attribute(key, list(attr) if isinstance(attr, tuple) else attr)

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def note_store(processors: Sequence[SpanProcessor], protocol: str) -> None:
    """Tell ``processors`` about the local store among them (where drops are recorded, and
    where the spans the other destinations missed are kept)."""
    stores = [
        p
        for p in processors
        if isinstance(p, BatchProcessor) and isinstance(p.exporter, LocalStoreExporter)
    ]
    if not stores:
        return
    store_exporter = stores[0].exporter
    assert isinstance(store_exporter, LocalStoreExporter)
    path = store_exporter.path
    for processor in processors:
        if isinstance(processor, BatchProcessor):
            processor.record_in = path
            if processor is not stores[0]:
                processor.kept_in = path
                processor.resend = resend_command(path, processor.destination, protocol)


def shutdown_all(processors: Iterable[SpanProcessor], deadline: float) -> bool:
    """Shut ``processors`` down in parallel, all done by ``deadline``; ``True`` if all delivered."""
    ours = [p for p in processors if isinstance(p, BatchProcessor)]
    others = [p for p in processors if not isinstance(p, BatchProcessor)]
    for processor in ours:
        processor.begin_shutdown()
    ok = True
    for other in others:
        ok = (
            run_bounded(
                other.shutdown,
                _remaining(deadline),
                "shutting down a span processor",
                inline_fallback=True,
            )
            and ok
        )
    for processor in ours:
        ok = processor.shutdown_within(deadline) and ok
    return ok


def flush_all(processors: Iterable[SpanProcessor], deadline: float) -> bool:
    """Flush ``processors`` in parallel, waiting until ``deadline`` at most."""
    processors = list(processors)
    tokens = [(p, p.begin_flush()) for p in processors if isinstance(p, BatchProcessor)]
    ok = True
    for other in processors:
        if not isinstance(other, BatchProcessor):
            ok = _flush_other(other, deadline) and ok
    for processor, token in tokens:
        ok = processor.wait_flush(token, deadline) and ok
    return ok


def _flush_other(processor: SpanProcessor, deadline: float) -> bool:
    flushed: list[bool] = []
    millis = int(_remaining(deadline) * 1000)
    finished = run_bounded(
        lambda: flushed.append(processor.force_flush(millis)),
        _remaining(deadline),
        "flushing a span processor",
    )
    return finished and all(flushed)


_retiring: weakref.WeakSet[BatchProcessor] = weakref.WeakSet()


def retire(processors: Iterable[SpanProcessor], timeout_s: float) -> None:
    """Shut replaced processors down on a background thread, within ``timeout_s``.

    The caller (``configure()``) does not wait; exit still delivers what they hold.
    """
    processors = list(processors)
    if not processors:
        return
    for processor in processors:
        if isinstance(processor, BatchProcessor):
            _retiring.add(processor)
    deadline = time.monotonic() + timeout_s

    def run() -> None:
        with _guard.contained("shutting down replaced span processors"):
            shutdown_all(processors, deadline)

    thread = threading.Thread(target=run, name="otelite retire processors", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # at interpreter exit: shut them down right away instead
        run()


def retiring() -> list[BatchProcessor]:
    """Replaced processors whose shutdown may still be running."""
    return [p for p in list(_retiring) if not p._stopped]


class SwappableProcessor(SpanProcessor):
    """The one processor otelite adds to a provider; reconfiguring swaps what is inside.

    OpenTelemetry offers no way to remove a processor from a provider, so otelite
    adds this one once and replaces its contents when ``configure()`` runs again.
    """

    def __init__(self, shutdown_timeout_s: float = 2.0) -> None:
        self._processors: tuple[SpanProcessor, ...] = ()
        self._lock = threading.Lock()
        self.shutdown_timeout_s = shutdown_timeout_s

    @property
    def processors(self) -> tuple[SpanProcessor, ...]:
        """The processors currently inside."""
        return self._processors

    def replace(self, processors: Sequence[SpanProcessor]) -> tuple[SpanProcessor, ...]:
        """Install ``processors``; return the previous ones (the caller shuts them down)."""
        with self._lock:
            old, self._processors = self._processors, tuple(processors)
        return old

    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        # Runs for every span: a plain try/except is much cheaper than _guard.contained().
        for processor in self._processors:
            try:
                processor.on_start(span, parent_context=parent_context)
            except Exception as exc:
                _guard.report("a span processor's on_start", exc)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            span = scrub_error_data(span)
        except Exception as exc:
            # Never export error data that could not be scrubbed.
            _guard.report("scrubbing a span's error data", exc)
            return
        for processor in self._processors:
            try:
                processor.on_end(span)
            except Exception as exc:
                _guard.report("a span processor's on_end", exc)

    def shutdown(self) -> None:
        with _guard.contained("shutting down span processors"):
            shutdown_all(self.replace(()), time.monotonic() + self.shutdown_timeout_s)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        ok = False
        with _guard.contained("flushing span processors"):
            ok = flush_all(self._processors, time.monotonic() + max(timeout_millis, 0) / 1000)
        return ok


class SwappableMetricExporter(MetricExporter):
    """The exporter behind the MeterProvider otelite installs globally.

    A global MeterProvider can be installed only once and never gains readers, so
    otelite keeps it for the life of the process and reconfiguring swaps the OTLP
    exporter inside; with none inside, metrics are collected and dropped.
    """

    def __init__(self, first: MetricExporter) -> None:
        super().__init__(
            preferred_temporality=getattr(first, "_preferred_temporality", None),
            preferred_aggregation=getattr(first, "_preferred_aggregation", None),
        )
        self._inner: Optional[MetricExporter] = first
        self._lock = threading.Lock()

    def replace(self, exporter: Optional[MetricExporter]) -> Optional[MetricExporter]:
        """Export through ``exporter`` from now on; return the previous one."""
        with self._lock:
            old, self._inner = self._inner, exporter
        return old

    def detach(self, exporter: MetricExporter) -> bool:
        """Stop exporting through ``exporter`` if it is still the one inside."""
        with self._lock:
            if self._inner is not exporter:
                return False
            self._inner = None
        return True

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        inner = self._inner
        if inner is None:
            return MetricExportResult.SUCCESS
        return inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        inner = self._inner
        return True if inner is None else inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        inner = self.replace(None)
        if inner is not None:
            inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def batch(
    exporter: SpanExporter, shutdown_timeout_s: float = 2.0, outbox: Optional[Outbox] = None
) -> BatchProcessor:
    """otelite's batching processor: exports off the application thread, within bounds.

    Every queue is capped in memory (``OTELITE_MAX_QUEUE_MB``). The local store's
    queue has no span count limit: a burst waits in memory for the writer, however
    many spans it has, up to that cap. An OTLP queue is also bounded by
    ``OTEL_BSP_MAX_QUEUE_SIZE`` spans (default 2048), whichever comes first; with an
    ``outbox``, spans past that count spill to it instead of being dropped.
    ``OTEL_BSP_SCHEDULE_DELAY`` and ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` apply to both
    (the store writes 2048 spans per transaction unless the latter is set). OTLP
    requests are kept under the Collector's default 4 MiB; the local store has no
    request size.
    """
    to_store = isinstance(exporter, LocalStoreExporter)
    limit = None if to_store else MAX_REQUEST_BYTES
    max_queue: Optional[int] = None
    if to_store:
        max_batch = int(_positive_env(_env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, DEFAULT_STORE_BATCH))
    else:
        max_queue = max(int(_positive_env(_env.OTEL_BSP_MAX_QUEUE_SIZE, 2048)), 1)
        max_batch = min(int(_positive_env(_env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512)), max_queue)
    return BatchProcessor(
        exporter,
        max_queue=max_queue,
        max_queue_bytes=max_queue_bytes(),
        max_batch=max(max_batch, 1),
        schedule_delay_s=_positive_env(_env.OTEL_BSP_SCHEDULE_DELAY, 1000) / 1000,
        max_request_bytes=limit,
        shutdown_timeout_s=shutdown_timeout_s,
        outbox=outbox,
    )
