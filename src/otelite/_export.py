"""Building exporters and processors: the one module that imports exporter code.

OTLP exporter modules are imported only when an endpoint is configured, and
gRPC only when ``protocol="grpc"``, so ``import otelite`` stays light.

Delivery is bounded (decision D9): otelite batches spans with its own
:class:`BatchProcessor`, whose worker thread is the only one that ever waits on
a collector. ``force_flush`` and ``shutdown`` wait at most their timeout and
return ``False`` when that was not enough; what could not be delivered is
counted by reason (:data:`DROP_REASONS`) and summed up in one log line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricReader
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

from otelite import _context, _delivery, _env, _guard
from otelite import _semconv as sc
from otelite._content import redact_error_secrets
from otelite.store._writer import SpanWriter

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Meter, Observation
    from opentelemetry.sdk.metrics.export import MetricsData

    from otelite._outbox import Outbox

logger = logging.getLogger("otelite")

DEFAULT_EXPORT_TIMEOUT_S = 10.0
"""Seconds one OTLP request may take when ``OTEL_EXPORTER_OTLP_TIMEOUT`` is not set."""

MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""The OpenTelemetry Collector's default limit for one OTLP request (4 MiB)."""

_REQUEST_MARGIN = 64 * 1024  # room for the resource, the scope and the framing

DEFAULT_MAX_QUEUE_MB = 64.0
"""Memory a batch queue may hold before new spans are dropped (``OTELITE_MAX_QUEUE_MB``)."""

DEFAULT_STORE_BATCH = 2048
"""Most spans the local store writes in one transaction when ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` is unset."""

DROP_REASONS = ("queue_full", "export_failed", "too_large", "shutdown_timeout")
"""Why a span was not delivered: the keys of :attr:`BatchProcessor.dropped`."""

# --- exit deadline -----------------------------------------------------------------------

_exit_deadline: Optional[float] = None


def set_exit_deadline(deadline: Optional[float]) -> None:
    """From now on, no wait in this module goes past ``deadline`` (a ``time.monotonic()``)."""
    global _exit_deadline
    _exit_deadline = deadline


def _clamp(deadline: float) -> float:
    exit_deadline = _exit_deadline
    return deadline if exit_deadline is None else min(deadline, exit_deadline)


def _remaining(deadline: float) -> float:
    return max(0.0, _clamp(deadline) - time.monotonic())


def run_bounded(
    target: Callable[[], object], timeout_s: float, name: str, inline_fallback: bool = False
) -> bool:
    """Run ``target`` on a daemon thread; wait at most ``timeout_s``. ``True`` if it finished.

    At interpreter exit Python may refuse new threads (3.12+): then ``target`` runs
    inline when ``inline_fallback`` says it cannot block, and is skipped otherwise.
    """
    done = threading.Event()

    def run() -> None:
        try:
            with _guard.contained(name):
                target()
        finally:
            done.set()

    thread = threading.Thread(target=run, name=f"otelite {name}", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # "can't create new thread at interpreter shutdown"
        if inline_fallback:
            run()
        return done.is_set()
    return _wait_event(done, time.monotonic() + timeout_s)


def _STOP() -> None:
    """Queued to a :class:`_Runner` to end its thread."""


class _Runner:
    """A daemon thread that runs calls for callers who wait a bounded time.

    Started ahead of need, so that it exists at interpreter exit (when Python may
    refuse to start threads).
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], threading.Event]] = (
            queue.SimpleQueue()
        )
        self.name = name
        self._thread = threading.Thread(target=self._run, name=f"otelite {name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            target, done = self._jobs.get()
            if target is _STOP:
                done.set()
                return
            try:
                with _guard.contained(self.name):
                    target()
            finally:
                done.set()

    def stop(self) -> None:
        """End the thread once the calls already queued are done."""
        self._jobs.put((_STOP, threading.Event()))

    def call(self, target: Callable[[], object], timeout_s: float) -> bool:
        """Run ``target`` on the thread; ``True`` if it finished within ``timeout_s``."""
        done = threading.Event()
        self._jobs.put((target, done))
        return _wait_event(done, time.monotonic() + timeout_s)


def _wait_event(event: threading.Event, deadline: float) -> bool:
    # Short slices, so that an exit that starts meanwhile shortens the wait.
    while not event.is_set():
        remaining = _remaining(deadline)
        if remaining <= 0:
            return event.is_set()
        event.wait(min(remaining, 0.05))
    return True


# --- exporters ----------------------------------------------------------------------------


def export_timeout_s() -> float:
    """Seconds one OTLP request may take.

    ``OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`` / ``OTEL_EXPORTER_OTLP_TIMEOUT`` are read as the
    OpenTelemetry Python exporters read them (seconds); unset or invalid means 10.
    """
    var = _env.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT
    if var.read() is None:
        var = _env.OTEL_EXPORTER_OTLP_TIMEOUT
    return _positive_env(var, DEFAULT_EXPORT_TIMEOUT_S)


def otlp_span_exporter(
    url: str, protocol: str, headers: Mapping[str, str], timeout_s: Optional[float] = None
) -> SpanExporter:
    """An OTLP span exporter for ``url`` over ``protocol`` whose requests time out."""
    timeout = timeout_s if timeout_s is not None else export_timeout_s()
    timeout_kw: dict[str, Any] = {"timeout": timeout}  # typed as int by older SDKs
    exporter: SpanExporter
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        exporter = GrpcSpanExporter(
            endpoint=url,
            headers=dict(headers) or None,
            insecure=url.startswith("http://"),
            **timeout_kw,
        )
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(
            endpoint=url,
            headers=dict(headers) or None,
            **timeout_kw,
        )
    _set_destination(exporter, url)
    return exporter


def prometheus_reader() -> MetricReader:
    """The ``otelite[prometheus]`` extra's metric reader (what ``/metrics`` serves)."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    return PrometheusMetricReader()


def otlp_metric_exporter(
    url: str, protocol: str, headers: Mapping[str, str], timeout_s: Optional[float] = None
) -> MetricExporter:
    """An OTLP metric exporter for ``url`` that stops after the endpoint refuses metrics."""
    timeout = timeout_s if timeout_s is not None else export_timeout_s()
    timeout_kw: dict[str, Any] = {"timeout": timeout}  # typed as int by older SDKs
    inner: MetricExporter
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )

        inner = GrpcMetricExporter(
            endpoint=url,
            headers=dict(headers) or None,
            insecure=url.startswith("http://"),
            **timeout_kw,
        )
        return MetricsEndpointGuard(inner, url, timeout)
    import requests
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    guard_box: list[MetricsEndpointGuard] = []
    session = requests.Session()

    def on_response(response: Any, *args: Any, **kwargs: Any) -> None:
        if guard_box:
            guard_box[0].saw_status(getattr(response, "status_code", None))

    session.hooks["response"].append(on_response)
    inner = OTLPMetricExporter(
        endpoint=url,
        headers=dict(headers) or None,
        **timeout_kw,
        session=session,
    )
    guard = MetricsEndpointGuard(inner, url, timeout)
    guard_box.append(guard)
    return guard


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


# HTTP answers meaning "this endpoint does not take metrics" (trace-only backends).
_UNSUPPORTED_HTTP = frozenset({404, 405, 501})
_GRPC_EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.grpc.exporter"


class _UnsupportedFilter(logging.Filter):
    """Spots the exporter's own log line for a refused metrics export, and hides it."""

    def __init__(self, guard: MetricsEndpointGuard) -> None:
        super().__init__()
        self._guard = weakref.ref(guard)

    def filter(self, record: logging.LogRecord) -> bool:
        guard = self._guard()
        if guard is None or record.thread != guard.exporting_thread:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        if any(getattr(arg, "name", None) == "UNIMPLEMENTED" for arg in args):
            guard.saw_unimplemented()
        return not guard.refused


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


def _without_unlinked_exemplars(metrics_data: MetricsData) -> MetricsData:
    """``metrics_data`` without exemplars that name no span.

    opentelemetry-sdk 1.28 keeps an exemplar for a measurement taken outside any span
    (an observable counter's callback) with no span or trace id, and its OTLP encoder
    then fails the whole export on ``None.to_bytes``. Such an exemplar links to
    nothing, so dropping it loses nothing; data without one is returned as it is.
    """
    import dataclasses

    def unlinked(point: Any) -> bool:
        return any(
            e.span_id is None or e.trace_id is None for e in getattr(point, "exemplars", None) or ()
        )

    def points_of(metric: Any) -> Sequence[Any]:
        return getattr(metric.data, "data_points", None) or ()

    metrics = [
        m for rm in metrics_data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    ]
    if not any(unlinked(p) for m in metrics for p in points_of(m)):
        return metrics_data

    def clean_point(point: Any) -> Any:
        if not unlinked(point):
            return point
        kept = [e for e in point.exemplars if e.span_id is not None and e.trace_id is not None]
        return dataclasses.replace(point, exemplars=kept)

    def clean_metric(metric: Any) -> Any:
        points = [clean_point(p) for p in points_of(metric)]
        return dataclasses.replace(
            metric, data=dataclasses.replace(metric.data, data_points=points)
        )

    return dataclasses.replace(
        metrics_data,
        resource_metrics=[
            dataclasses.replace(
                rm,
                scope_metrics=[
                    dataclasses.replace(sm, metrics=[clean_metric(m) for m in sm.metrics])
                    for sm in rm.scope_metrics
                ],
            )
            for rm in metrics_data.resource_metrics
        ],
    )


class MetricsEndpointGuard(MetricExporter):
    """Wraps an OTLP metric exporter: bounded exports, and none after a refusal.

    Trace-only backends (Phoenix, Tempo, Jaeger) answer metrics with HTTP 404/405
    or gRPC ``UNIMPLEMENTED``. After the first such answer this exporter stops
    sending metrics to that endpoint and logs one warning saying how to point
    metrics elsewhere or turn them off.
    """

    def __init__(self, inner: MetricExporter, url: str, timeout_s: float) -> None:
        super().__init__(
            preferred_temporality=getattr(inner, "_preferred_temporality", None),
            preferred_aggregation=getattr(inner, "_preferred_aggregation", None),
        )
        self.inner = inner
        self.url = url
        self.timeout_s = timeout_s
        self.refused = False
        self.exporting_thread: Optional[int] = None
        self._busy = False
        self._closed = False
        self._runner: Optional[_Runner] = _Runner("metric export")
        self._status: Optional[str] = None
        self._filter = _UnsupportedFilter(self)
        for name in {type(inner).__module__, _GRPC_EXPORTER_LOGGER}:
            logging.getLogger(name).addFilter(self._filter)
        _forkables.add(self)

    def saw_status(self, status: Optional[int]) -> None:
        """The HTTP status of a metrics request (called from the session's response hook)."""
        if status in _UNSUPPORTED_HTTP:
            self._status = f"HTTP {status}"
            self.refused = True

    def saw_unimplemented(self) -> None:
        """The gRPC exporter reported ``UNIMPLEMENTED``."""
        self._status = "gRPC UNIMPLEMENTED"
        self.refused = True

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        # Runs on the metric reader's thread: counting the points costs the caller nothing.
        result = self._export(metrics_data, timeout_millis)
        with contextlib.suppress(Exception):  # counting never fails an export
            metric_counts.add(result, _count_points(metrics_data))
        return result

    def _export(self, metrics_data: MetricsData, timeout_millis: float) -> MetricExportResult:
        from opentelemetry.sdk.metrics.export import MetricExportResult

        if self.refused or self._busy or self._closed:
            return MetricExportResult.FAILURE
        result: list[Any] = []

        def run() -> None:
            self.exporting_thread = threading.get_ident()
            try:
                data = _without_unlinked_exemplars(metrics_data)
                result.append(self.inner.export(data, timeout_millis=timeout_millis))
            except Exception as exc:  # older exporters let a refused connection escape
                logger.debug("otelite: exporting metrics failed: %r", exc)
                result.append(MetricExportResult.FAILURE)
            finally:
                self.exporting_thread = None
                self._busy = False

        runner = self._runner
        if runner is None:
            try:
                runner = self._runner = _Runner("metric export")
            except RuntimeError:  # at interpreter exit: no thread to bound the wait with
                return MetricExportResult.FAILURE
        self._busy = True
        finished = runner.call(run, min(timeout_millis / 1000, self.timeout_s + 1.0))
        if self._is_refused():  # set meanwhile, by the response hook or the log filter
            self._warn_refused()
            return MetricExportResult.FAILURE
        if finished and result and result[0] == MetricExportResult.SUCCESS:
            return MetricExportResult.SUCCESS
        return MetricExportResult.FAILURE

    def _is_refused(self) -> bool:
        return self.refused

    def _warn_refused(self) -> None:
        if getattr(self, "_warned", False):
            return
        self._warned = True
        logger.warning(
            "otelite: %s does not accept metrics (%s); otelite stops sending metrics there. "
            "Send them elsewhere with OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, or turn them off "
            "with OTEL_METRICS_EXPORTER=none",
            self.url,
            self._status,
        )

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._closed = True
        timeout = kwargs.get("timeout", timeout_millis)
        # The exporter's shutdown does not block unless an export is stuck (then skip it).
        run_bounded(
            self.inner.shutdown,
            min(float(timeout) / 1000, 2.0),
            "shutting down metric export",
            inline_fallback=not self._busy,
        )
        for name in {type(self.inner).__module__, _GRPC_EXPORTER_LOGGER}:
            logging.getLogger(name).removeFilter(self._filter)
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop()

    def _after_fork(self) -> None:
        self._busy = False
        self.exporting_thread = None
        self._runner = None  # its thread does not exist in the child; made again on use


# --- processors ---------------------------------------------------------------------------


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


STORE_WRITE_ATTEMPTS = 4
"""Times a batch is written when SQLite answers "database is locked" (after its busy timeout)."""


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class LocalStoreExporter(SpanExporter):
    """Writes spans into the local SQLite store (used behind a BatchProcessor)."""

    def __init__(self, path: Path, retention_s: Optional[float] = None) -> None:
        self._writer = SpanWriter(path, retention_s)
        self.path = path
        _set_destination(self, f"the local store {path}")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        # Runs on the batch worker thread, never the caller's: SQLite's busy timeout
        # (30 s) waits there for other processes' writes; a batch still refused as
        # locked is retried a few times (each write is one transaction, rolled back on
        # failure, and a span already stored is ignored), then counted as failed.
        for attempt in range(STORE_WRITE_ATTEMPTS):
            try:
                self._writer.write(spans)
            except sqlite3.OperationalError as exc:
                if attempt + 1 < STORE_WRITE_ATTEMPTS and _is_busy(exc):
                    time.sleep(0.05 * (attempt + 1))
                    continue
                _guard.report(f"writing spans to the local store {self.path}", exc)
                return SpanExportResult.FAILURE
            except Exception as exc:
                _guard.report(f"writing spans to the local store {self.path}", exc)
                return SpanExportResult.FAILURE
            return SpanExportResult.SUCCESS
        return SpanExportResult.FAILURE  # pragma: no cover - the loop always returns

    def shutdown(self) -> None:
        self._writer.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def encode_spans_request(spans: Sequence[ReadableSpan]) -> bytes:
    """The OTLP ``ExportTraceServiceRequest`` bytes for ``spans``, as the HTTP exporter posts them."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return bytes(encode_spans(spans).SerializePartialToString())


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, (list, tuple)):
        return sum(_value_size(item) + 8 for item in value)
    return 11


def _attributes_size(attributes: Optional[Mapping[str, Any]]) -> int:
    if not attributes:
        return 0
    # Per attribute: the KeyValue, key, AnyValue and value headers (tag + length each).
    return sum(len(key) + _value_size(value) + 16 for key, value in attributes.items())


def span_size(span: ReadableSpan) -> int:
    """An upper estimate of the bytes ``span`` takes in an OTLP request."""
    size = 96 + _value_size(span.name) + _attributes_size(span.attributes)
    description = span.status.description if span.status is not None else None
    if description:
        size += _value_size(description)
    for event in span.events or ():
        size += 32 + _value_size(event.name) + _attributes_size(event.attributes)
    for link in span.links or ():
        size += 64 + _attributes_size(link.attributes)
    return size


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


def _exporter_type(exporter: SpanExporter) -> str:
    if isinstance(exporter, LocalStoreExporter):
        return "otelite_local_store_exporter"
    module = type(exporter).__module__
    if module.startswith("opentelemetry.exporter.otlp"):
        return "otlp_grpc_span_exporter" if ".grpc" in module else "otlp_http_span_exporter"
    return type(exporter).__name__


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


class _ErrorCapture(logging.Filter):
    """Keeps the last warning an exporter logs on a processor's worker thread (its export error)."""

    def __init__(self, processor: BatchProcessor) -> None:
        super().__init__()
        self._processor = weakref.ref(processor)

    def filter(self, record: logging.LogRecord) -> bool:
        processor = self._processor()
        if (
            processor is not None
            and record.levelno >= logging.WARNING
            and record.thread == processor._worker_ident
        ):
            with contextlib.suppress(Exception):  # a log line must never fail
                processor._saw_error(record.getMessage())
        return True


# Memory a finished span holds while queued, measured with tracemalloc on CPython 3.12
# (opentelemetry-sdk 1.3x): about 2.6 kB for a bare span, about 60 bytes more per
# attribute plus its value. Rounded up, so that the cap errs on the safe side.
_SPAN_BYTES = 3072
_ATTRIBUTE_BYTES = 96
_EVENT_BYTES = 512


def _strings_size(attributes: Optional[Mapping[str, Any]]) -> int:
    size = 0
    for value in attributes.values() if attributes else ():
        if value.__class__ is str:
            size += len(value)
    return size


def _plain(attributes: Any) -> Optional[Mapping[str, Any]]:
    # The SDK's BoundedAttributes takes a lock and calls __getitem__ per key when
    # iterated; its inner dict (private: looked up with getattr and checked) does not.
    inner = getattr(attributes, "_dict", None)
    return inner if type(inner) is dict else attributes


def span_memory(span: ReadableSpan) -> int:
    """A cheap upper estimate of the memory (bytes) ``span`` holds while it waits in a queue.

    Runs on the caller's thread for every span: a few lookups, and a walk over the
    attribute values only to add the length of strings (captured content is where
    the memory goes).
    """
    attributes = _plain(getattr(span, "_attributes", None))
    if attributes is None:
        attributes = span.attributes
    size = _SPAN_BYTES
    if attributes:
        size += _ATTRIBUTE_BYTES * len(attributes) + _strings_size(attributes)
    events = getattr(span, "_events", None)  # the property copies them into a new tuple
    if events is None:
        events = span.events
    if events:
        for event in events:
            attrs = _plain(event.attributes)
            size += _EVENT_BYTES
            if attrs:
                size += _ATTRIBUTE_BYTES * len(attrs) + _strings_size(attrs)
    return size


class BatchProcessor(SpanProcessor):
    """Batches finished spans and exports them on its own daemon thread, within bounds.

    * The queue is bounded by a span count (``max_queue``, ``None`` for no count)
      and by memory (``max_queue_bytes``, estimated with :func:`span_memory`); a
      span that does not fit is dropped and counted (``queue_full``). The caller
      never waits for room.
    * ``force_flush(timeout_millis)`` and ``shutdown`` wait at most their timeout:
      a collector that hangs, refuses or retries only ever holds the worker thread.
      They return ``False`` when the spans were not all delivered in time.
    * With ``max_request_bytes``, a batch is split so that no request exceeds it;
      a single span larger than that is dropped and counted (``too_large``).
    * Spans that could not be delivered are counted by reason in :attr:`dropped`
      and summed up in one log line at shutdown.
    * After ``fork()`` the child gets a fresh lock, queue and worker thread.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue: Optional[int] = 2048,
        max_queue_bytes: Optional[int] = None,
        max_batch: int = 512,
        schedule_delay_s: float = 1.0,
        max_request_bytes: Optional[int] = None,
        shutdown_timeout_s: float = 2.0,
        outbox: Optional[Outbox] = None,
    ) -> None:
        self.exporter = exporter
        self.outbox = outbox
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.max_batch = max_batch
        self.schedule_delay_s = schedule_delay_s
        self.max_request_bytes = max_request_bytes
        self.shutdown_timeout_s = shutdown_timeout_s
        self.destination = destination(exporter)
        self.record_in: Optional[Path] = None  # the store db where drops and errors are kept
        self.kept_in: Optional[Path] = None  # the store that also holds this processor's spans
        self.resend: Optional[str] = None  # the command that sends them again
        self._reset()
        self._capture = _ErrorCapture(self)
        self._capture_loggers = {type(exporter).__module__, _GRPC_EXPORTER_LOGGER}
        for name in self._capture_loggers:
            logging.getLogger(name).addFilter(self._capture)
        _forkables.add(self)

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[ReadableSpan] = deque()
        self._sizes: deque[int] = deque()  # memory estimates, with max_queue_bytes
        self._queued_bytes = 0
        self._worker: Optional[threading.Thread] = None
        self._pid = os.getpid()
        self._accepted = 0  # spans ever put in the queue
        self._settled = 0  # of those, exported or dropped
        self._in_flight = 0
        self._urgent = False
        self._stopping = False
        self._stopped = False
        self._summarised = False
        self._worker_ident: Optional[int] = None
        self._reported = 0  # drops already reported by a flush returning False
        self._last_error: Optional[str] = None  # not yet recorded in the store
        with _tallies_lock:
            component = f"{sc.COMPONENT_BATCHING_SPAN_PROCESSOR}/{len(_tallies)}"
            self._tally = _Tally(self, component, _exporter_type(self.exporter))
            _tallies.append(self._tally)
        self.dropped = self._tally.dropped
        self._recorded: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.outboxed = 0  # spans kept in the outbox for later delivery (not dropped)

    @property
    def exported(self) -> int:
        """Spans the exporter accepted."""
        return self._tally.exported

    def _saw_error(self, text: str) -> None:
        self._last_error = redact_error_secrets(" ".join(text.split()))[:1000]

    def _record(self) -> None:
        """Add the drops and the last error not yet recorded to the store (if one is known)."""
        db = self.record_in
        if db is None:
            return
        with self._cond:
            deltas = {r: n - self._recorded.get(r, 0) for r, n in self.dropped.items()}
            error, self._last_error = self._last_error, None
            if not any(deltas.values()) and error is None:
                return
            self._recorded = dict(self.dropped)
        try:
            _delivery.record(db, self.destination, sc.SIGNAL_SPANS, deltas, error, time.time())
        except Exception as exc:  # busy or unwritable: retried with the next change
            logger.debug("otelite: could not record undelivered spans in %s", db, exc_info=exc)
            with self._cond:
                for reason, n in deltas.items():
                    self._recorded[reason] = self._recorded.get(reason, 0) - n
                if self._last_error is None:
                    self._last_error = error

    def _after_fork(self) -> None:
        # The parent's thread does not exist here and its lock may be held forever;
        # the parent still delivers the spans queued before the fork.
        stopping = self._stopping
        self._reset()
        self._stopping = self._stopped = stopping

    # -- SpanProcessor ------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if self._pid != os.getpid():  # forked without the at-fork hook (should not happen)
            self._after_fork()
        if not span.context or not span.context.trace_flags.sampled:
            return
        max_bytes = self.max_queue_bytes
        size = span_memory(span) if max_bytes is not None else 0
        with self._cond:
            if self._stopping:
                return
            max_queue = self.max_queue
            if (max_queue is not None and len(self._queue) >= max_queue) or (
                max_bytes is not None and self._queued_bytes + size > max_bytes
            ):
                self.dropped["queue_full"] += 1
                return
            self._queue.append(span)
            if max_bytes is not None:
                self._sizes.append(size)
                self._queued_bytes += size
            self._accepted += 1
            if self._worker is None:
                self._start_worker()
            if len(self._queue) >= self.max_batch:
                self._urgent = True
                self._cond.notify_all()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        token = self.begin_flush()
        return self.wait_flush(token, time.monotonic() + max(timeout_millis, 0) / 1000)

    def shutdown(self) -> None:
        self.shutdown_within(time.monotonic() + self.shutdown_timeout_s)

    # -- two-phase flush and shutdown (so that several processors drain in parallel) -----

    def begin_flush(self) -> tuple[int, int]:
        """Ask the worker to export what is queued now; returns what to wait for."""
        with self._cond:
            self._urgent = True
            self._cond.notify_all()
            return self._accepted, self._reported

    def wait_flush(self, token: tuple[int, int], deadline: float) -> bool:
        """Wait until the spans of ``token`` are settled; ``False`` on timeout or failure.

        A drop is reported by the first flush that ends after it (including drops of
        spans that never got into the queue), then not again.
        """
        target, reported = token
        with self._cond:
            while self._settled < target and self._worker is not None:
                remaining = _remaining(deadline)
                if remaining <= 0:
                    self._reported = max(self._reported, self._failures())
                    return False
                self._cond.wait(min(remaining, 0.05))
            failures = self._failures()
            self._reported = max(self._reported, failures)
            return self._settled >= target and failures == reported

    def begin_shutdown(self) -> None:
        """Stop taking spans and tell the worker to export what is queued, then stop."""
        with self._cond:
            self._stopping = True
            self._urgent = True
            self._cond.notify_all()

    def shutdown_within(self, deadline: float) -> bool:
        """Drain and stop before ``deadline``; count what is left. ``True`` if all was delivered."""
        self.begin_shutdown()
        with self._cond:
            if self._stopped:
                return True
            while self._worker is not None and self._worker.is_alive():
                remaining = _remaining(deadline)
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.05))
            queued = list(self._queue) if self.outbox is not None else []
            left = len(self._queue) + self._in_flight
            if left:
                self.dropped["shutdown_timeout"] += left
                self._settled += left
                self._queue.clear()
                self._sizes.clear()
                self._queued_bytes = 0
                self._in_flight = 0
            self._stopped = True
            self._cond.notify_all()
        # The exit path may write to disk: spans still queued go to the outbox (the batch
        # in flight, if any, may still reach the collector: it stays counted as dropped).
        kept = self._keep(queued) if queued else 0
        with self._cond:
            self.dropped["shutdown_timeout"] -= kept
            self.outboxed += kept
            failures = self._failures()
        if self.outbox is not None:
            self.outbox.close()
        # Unless an export is stuck, the exporter's shutdown does not block: run it even
        # when Python refuses new threads at exit (it closes the local store cleanly).
        run_bounded(
            self.exporter.shutdown,
            _remaining(deadline),
            "shutting down an exporter",
            inline_fallback=not left,
        )
        with _guard.contained("recording undelivered spans"):
            self._record()
        for name in self._capture_loggers:
            logging.getLogger(name).removeFilter(self._capture)
        self._summarise()
        return failures == 0

    # -- worker ---------------------------------------------------------------------------

    def _gave_up(self) -> bool:
        return self._stopped

    def _failures(self) -> int:
        # Spans kept in the outbox are not lost, but not delivered either: flush says False.
        return sum(self.dropped.values()) + self.outboxed

    def _keep(self, spans: list[ReadableSpan]) -> int:
        """Put ``spans`` in the outbox (one request per chunk); how many were kept."""
        outbox = self.outbox
        if outbox is None:
            return 0
        chunks, _ = self._chunks(spans)
        return sum(len(chunk) for chunk in chunks if self._put(chunk))

    def _put(self, chunk: list[ReadableSpan]) -> bool:
        """Keep ``chunk`` in the outbox as the OTLP request it would have been sent as."""
        outbox = self.outbox
        if outbox is None:
            return False
        try:
            body = encode_spans_request(chunk)
        except Exception as exc:
            _guard.report("encoding spans for the outbox", exc)
            return False
        return outbox.put(body, len(chunk))

    def _start_worker(self) -> None:
        worker = threading.Thread(target=self._run, name="otelite batch export", daemon=True)
        try:
            worker.start()
        except RuntimeError:  # at interpreter exit: the span stays queued and is counted
            return
        self._worker = worker

    def _run(self) -> None:
        cond = self._cond
        self._worker_ident = threading.get_ident()
        while True:
            with cond:
                if not self._urgent and not self._stopping:
                    cond.wait(self.schedule_delay_s)
                if self._stopped or (self._stopping and not self._queue):
                    self._worker = None
                    cond.notify_all()
                    return
                batch = [
                    self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))
                ]
                if self._sizes:
                    sizes = self._sizes
                    self._queued_bytes -= sum(sizes.popleft() for _ in range(len(batch)))
                self._in_flight = len(batch)
                if not self._queue:
                    self._urgent = False
            if batch:
                try:
                    exported, failed, too_large = self._export(batch)
                except Exception as exc:  # a bug here must not kill the worker
                    _guard.report("exporting a batch of spans", exc)
                    exported, failed, too_large = 0, len(batch), 0
                with cond:
                    if self._gave_up():  # shutdown gave up on this batch and counted it already
                        self._worker = None
                        cond.notify_all()
                        return
                    self._tally.exported += exported
                    self._tally.attempted += exported + failed
                    self.dropped["export_failed"] += failed
                    self.dropped["too_large"] += too_large
                    self._settled += len(batch)
                    self._in_flight = 0
                    cond.notify_all()
                    changed = self._last_error is not None or self.dropped != self._recorded
                if changed and self.record_in is not None:
                    with _guard.contained("recording undelivered spans"):
                        self._record()

    def _chunks(self, batch: list[ReadableSpan]) -> tuple[list[list[ReadableSpan]], int]:
        limit = self.max_request_bytes
        if limit is None:
            return [batch], 0
        resource = batch[0].resource
        budget = (
            limit - _REQUEST_MARGIN - _attributes_size(resource.attributes if resource else None)
        )
        chunks: list[list[ReadableSpan]] = []
        current: list[ReadableSpan] = []
        used = too_large = 0
        for span in batch:
            size = span_size(span)
            if size > budget:
                too_large += 1
                continue
            if current and used + size > budget:
                chunks.append(current)
                current, used = [], 0
            current.append(span)
            used += size
        if current:
            chunks.append(current)
        return chunks, too_large

    def _export(self, batch: list[ReadableSpan]) -> tuple[int, int, int]:
        exported = failed = 0
        chunks, too_large = self._chunks(batch)
        outbox = self.outbox
        for chunk in chunks:
            if self._stopped:
                break
            # While earlier spans wait in the outbox, new ones queue behind them there:
            # the sender delivers in order, so order within a trace is kept.
            if outbox is not None:
                exported_now, failed_now = self._via_outbox(outbox, chunk)
                exported += exported_now
                failed += failed_now
                continue
            try:
                result = self.exporter.export(chunk)
            except Exception as exc:
                logger.debug("otelite: exporting to %s failed", self.destination, exc_info=exc)
                self._saw_error(f"{type(exc).__name__}: {exc}")
                result = SpanExportResult.FAILURE
            if result == SpanExportResult.SUCCESS:
                exported += len(chunk)
            else:
                failed += len(chunk)
                if self._last_error is None:
                    self._last_error = f"the exporter reported a failure ({len(chunk)} spans)"
        return exported, failed, too_large

    def _via_outbox(self, outbox: Outbox, chunk: list[ReadableSpan]) -> tuple[int, int]:
        """Export ``chunk`` with an outbox behind: (exported, failed) span counts.

        One direct attempt, unless earlier requests wait in the outbox (then the chunk
        queues behind them: order within a trace is kept); a failed attempt is kept.
        """
        try:
            body = encode_spans_request(chunk)
        except Exception as exc:
            _guard.report("encoding spans for export", exc)
            return 0, len(chunk)
        if not outbox.has_pending():
            outcome = outbox.send_now(body)
            if outcome == "sent":
                return len(chunk), 0
            if outbox.last_error:  # not sent: `otelite status` shows why
                self._saw_error(outbox.last_error)
            if outcome == "refused":
                logger.debug(
                    "otelite: %s refused a request: %s", self.destination, outbox.last_error
                )
                return 0, len(chunk)
            if self._stopped:  # shutdown gave up on this batch and counted it
                return 0, len(chunk)
        if outbox.put(body, len(chunk)):
            self._count_kept(len(chunk))
            return 0, 0
        return 0, len(chunk)

    def _count_kept(self, n: int) -> None:
        with self._cond:
            self.outboxed += n

    def _summarise(self) -> None:
        with self._cond:
            if self._summarised:
                return
            self._summarised = True
            dropped = {reason: n for reason, n in self.dropped.items() if n}
        outbox = self.outbox
        waiting = outbox.kept - outbox.delivered - outbox.evicted if outbox is not None else 0
        if outbox is not None and waiting > 0:
            logger.warning(
                "otelite: %d span(s) could not be delivered to %s yet: kept in the outbox %s, "
                "sent when otelite next runs with this endpoint",
                waiting,
                self.destination,
                outbox.path,
            )
        if dropped:
            logger.warning(
                "%s",
                undelivered_line(
                    sum(dropped.values()), self.destination, dropped, self.kept_in, self.resend
                ),
            )


def _positive_env(var: _env.EnvVar, default: float) -> float:
    raw = var.read()
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value > 0 and value == value:
        return value
    logger.warning("otelite: %s=%r is not a positive number; using %s", var.name, raw, default)
    return default


def max_queue_bytes() -> int:
    """The memory cap of each batch queue, from ``OTELITE_MAX_QUEUE_MB`` (default 64 MB)."""
    return int(_positive_env(_env.OTELITE_MAX_QUEUE_MB, DEFAULT_MAX_QUEUE_MB) * 1024 * 1024)


def batch(
    exporter: SpanExporter, shutdown_timeout_s: float = 2.0, outbox: Optional[Outbox] = None
) -> BatchProcessor:
    """otelite's batching processor: exports off the application thread, within bounds.

    Every queue is capped in memory (``OTELITE_MAX_QUEUE_MB``). The local store's
    queue has no span count limit: a burst waits in memory for the writer, however
    many spans it has, up to that cap. An OTLP queue is also bounded by
    ``OTEL_BSP_MAX_QUEUE_SIZE`` spans (default 2048), whichever comes first.
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


# --- defence in depth: error data is scrubbed again on its way out ----------------------

_EXCEPTION_TEXT_KEYS = ("exception.message", "exception.stacktrace")


class _ScrubbedSpan(ReadableSpan):
    """A copy of an ended span with scrubbed events and status; everything else is the original's."""

    def __init__(self, original: ReadableSpan, status: Status, events: Sequence[Event]) -> None:
        super().__init__(
            name=original.name,
            context=original.context,
            parent=original.parent,
            resource=original.resource,
            attributes=original.attributes,
            events=events,
            links=original.links,
            kind=original.kind,
            status=status,
            start_time=original.start_time,
            end_time=original.end_time,
            instrumentation_scope=original.instrumentation_scope,
        )
        self._original = original

    @property
    def dropped_attributes(self) -> int:
        return int(getattr(self._original, "dropped_attributes", 0))

    @property
    def dropped_events(self) -> int:
        return int(getattr(self._original, "dropped_events", 0))

    @property
    def dropped_links(self) -> int:
        return int(getattr(self._original, "dropped_links", 0))


def scrub_error_data(span: ReadableSpan) -> ReadableSpan:
    """``span``, or a copy whose exception events and status description hold no credentials.

    otelite records its own errors already redacted (``_spans.record_error``); this
    catches what other code records on spans that reach otelite's exporters and
    store: ``record_exception`` by another instrumentation (httpx's "Illegal header
    value b'Bearer sk-…'"), the SDK's ``use_span``, the application. Only the
    built-in credential patterns run here (they leave redacted text as it is), not
    the user's hook. Spans without error data are returned as they are, at the cost
    of two attribute reads.
    """
    status = span.status
    description = status.description
    events = span.events
    if not description and not any(e.name == "exception" for e in events):
        return span
    changed = False
    if description:
        scrubbed = redact_error_secrets(description)
        if scrubbed != description:
            status, changed = Status(status.status_code, scrubbed), True
    new_events: list[Event] = []
    for event in events:
        attributes = event.attributes
        if event.name == "exception" and attributes:
            updates = {}
            for key in _EXCEPTION_TEXT_KEYS:
                value = attributes.get(key)
                if isinstance(value, str):
                    scrubbed = redact_error_secrets(value)
                    if scrubbed != value:
                        updates[key] = scrubbed
            if updates:
                event = Event(event.name, {**attributes, **updates}, event.timestamp)
                changed = True
        new_events.append(event)
    return _ScrubbedSpan(span, status, new_events) if changed else span


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


# --- fork safety --------------------------------------------------------------------------

_forkables: weakref.WeakSet[Any] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    with contextlib.suppress(Exception):
        global _tallies_lock
        _tallies_lock = threading.Lock()
        _tallies.clear()  # the parent reports its own counts; the child's start at zero
        metric_counts.reset()
    for item in list(_forkables):
        with contextlib.suppress(Exception):  # never break a fork
            item._after_fork()
    _retiring.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
