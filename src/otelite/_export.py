"""Building exporters and processors: the one module that imports exporter code.

OTLP exporter modules are imported only when an endpoint is configured, and
gRPC only when ``protocol="grpc"``, so ``import otelite`` stays light.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Status

from otelite import _context, _guard
from otelite._content import redact_error_secrets
from otelite._sqlite import SpanWriter

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricsData


def otlp_span_exporter(url: str, protocol: str, headers: Mapping[str, str]) -> SpanExporter:
    """An OTLP span exporter for ``url`` over ``protocol``."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter(
            endpoint=url, headers=dict(headers) or None, insecure=url.startswith("http://")
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=url, headers=dict(headers) or None)


def otlp_metric_exporter(url: str, protocol: str, headers: Mapping[str, str]) -> MetricExporter:
    """An OTLP metric exporter for ``url`` over ``protocol``."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )

        return GrpcMetricExporter(
            endpoint=url, headers=dict(headers) or None, insecure=url.startswith("http://")
        )
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(endpoint=url, headers=dict(headers) or None)


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


class LocalStoreExporter(SpanExporter):
    """Writes spans into the local SQLite store (used behind a BatchSpanProcessor)."""

    def __init__(self, path: Path, retention_s: Optional[float] = None) -> None:
        self._writer = SpanWriter(path, retention_s)
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self._writer.write(spans)
        except Exception as exc:
            _guard.report(f"writing spans to the local store {self.path}", exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._writer.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def batch(exporter: SpanExporter) -> SpanProcessor:
    """The standard batching processor: exports off the application thread."""
    return BatchSpanProcessor(exporter)


class SwappableProcessor(SpanProcessor):
    """The one processor otelite adds to a provider; reconfiguring swaps what is inside.

    OpenTelemetry offers no way to remove a processor from a provider, so otelite
    adds this one once and replaces its contents when ``configure()`` runs again.
    """

    def __init__(self) -> None:
        self._processors: tuple[SpanProcessor, ...] = ()
        self._lock = threading.Lock()

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
        for processor in self.replace(()):
            with _guard.contained("shutting down a span processor"):
                processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        ok = True
        for processor in self._processors:
            with _guard.contained("flushing a span processor"):
                ok = processor.force_flush(timeout_millis) and ok
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
