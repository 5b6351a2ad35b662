"""OTLP exporters: the factories (the only code that imports exporter modules), the
metrics endpoint guard, and the OTLP encoding of a span batch.

Exporter modules are imported only when an endpoint is configured, and gRPC only when
``protocol="grpc"``, so ``import otelite`` stays light.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter

from otelite import _env
from otelite._export._bounds import _forkables, _positive_env, _Runner, run_bounded
from otelite._export._tally import _count_points, _set_destination, metric_counts

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricsData

logger = logging.getLogger("otelite")

DEFAULT_EXPORT_TIMEOUT_S = 10.0
"""Seconds one OTLP request may take when ``OTEL_EXPORTER_OTLP_TIMEOUT`` is not set."""


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


def encode_spans_request(spans: Sequence[ReadableSpan]) -> bytes:
    """The OTLP ``ExportTraceServiceRequest`` bytes for ``spans``, as the HTTP exporter posts them."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return bytes(encode_spans(spans).SerializePartialToString())
