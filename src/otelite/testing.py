"""Helpers for testing code instrumented with otelite.

:func:`capture_spans` points otelite's instrumentation at an in-memory
provider for the duration of a block (or a test, through the ``capture_spans``
pytest fixture), so tests can assert on whole spans and metric points without
touching the exporters an application configured. Ids can be made sequential
and :meth:`Captured.as_dicts` replaces timestamps with a step clock, so whole
spans compare equal run after run.

Example:
    >>> import otelite
    >>> from otelite.testing import capture_spans
    >>> @otelite.trace
    ... def answer(q: str) -> str:
    ...     return "42"
    >>> with capture_spans() as captured:
    ...     _ = answer("life?")
    >>> [s["name"] for s in captured.as_dicts()]
    ['answer']
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Callable, Optional

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

from otelite import _semconv as sc
from otelite import _settings, _state
from otelite._content import DEFAULT_MAX_CONTENT_LENGTH
from otelite._export import ContextAttributesProcessor

__all__ = ["Captured", "SequentialIdGenerator", "capture_spans"]

TEST_SERVICE_NAME = "otelite-test"


class SequentialIdGenerator(IdGenerator):
    """Trace ids and span ids 1, 2, 3, ... so that tests can name them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trace = 0
        self._span = 0

    def generate_span_id(self) -> int:
        with self._lock:
            self._span += 1
            return self._span

    def generate_trace_id(self) -> int:
        with self._lock:
            self._trace += 1
            return self._trace


class Captured:
    """Spans and metric points recorded inside :func:`capture_spans`."""

    def __init__(self, exporter: InMemorySpanExporter, reader: InMemoryMetricReader) -> None:
        self.exporter = exporter
        self.reader = reader

    @property
    def spans(self) -> list[ReadableSpan]:
        """Finished spans, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name``; raises if there are none or several."""
        found = [s for s in self.spans if s.name == name]
        if len(found) != 1:
            names = sorted({s.name for s in self.spans})
            raise AssertionError(
                f"expected one span named {name!r}, found {len(found)}; spans: {names}"
            )
        return found[0]

    def clear(self) -> None:
        """Forget the spans captured so far."""
        self.exporter.clear()

    def as_dicts(
        self, *, step_clock: bool = True, short_stacktraces: bool = True
    ) -> list[dict[str, Any]]:
        """Finished spans as plain dicts, in start order, ready for ``==`` comparisons.

        With ``step_clock``, every timestamp is replaced by its rank among all the
        timestamps captured (1, 2, 3, ...), so the order of events is kept and the
        values are stable. With ``short_stacktraces``, ``exception.stacktrace``
        keeps only its last line (``ValueError: boom``).
        """
        spans = sorted(
            self.spans, key=lambda s: (s.start_time or 0, s.context.span_id if s.context else 0)
        )
        stamps: set[int] = set()
        for s in spans:
            stamps.update(t for t in (s.start_time, s.end_time) if t is not None)
            stamps.update(e.timestamp for e in s.events)
        rank = {t: i + 1 for i, t in enumerate(sorted(stamps))}

        def clock(value: Optional[int]) -> Optional[int]:
            if value is None or not step_clock:
                return value
            return rank[value]

        def attrs(values: Optional[Mapping[str, Any]]) -> dict[str, Any]:
            out = {k: list(v) if isinstance(v, tuple) else v for k, v in (values or {}).items()}
            trace_text = out.get("exception.stacktrace")
            if short_stacktraces and isinstance(trace_text, str):
                out["exception.stacktrace"] = trace_text.strip().splitlines()[-1]
            return out

        result = []
        for s in spans:
            assert s.context is not None
            result.append(
                {
                    "name": s.name,
                    "kind": s.kind.name,
                    "trace_id": s.context.trace_id,
                    "span_id": s.context.span_id,
                    "parent_id": s.parent.span_id if s.parent else None,
                    "start_time": clock(s.start_time),
                    "end_time": clock(s.end_time),
                    "status": s.status.status_code.name,
                    "status_description": s.status.description,
                    "attributes": attrs(s.attributes),
                    "events": [
                        {
                            "name": e.name,
                            "timestamp": clock(e.timestamp),
                            "attributes": attrs(e.attributes),
                        }
                        for e in s.events
                    ],
                }
            )
        return result

    def metrics(self) -> dict[str, list[dict[str, Any]]]:
        """Metric points by instrument name: each with its attributes and value fields."""
        data = self.reader.get_metrics_data()
        out: dict[str, list[dict[str, Any]]] = {}
        if data is None:
            return out
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    points = out.setdefault(metric.name, [])
                    for point in metric.data.data_points:
                        entry: dict[str, Any] = {"attributes": dict(point.attributes or {})}
                        for key in ("value", "sum", "count", "min", "max"):
                            if hasattr(point, key):
                                entry[key] = getattr(point, key)
                        if hasattr(point, "bucket_counts"):
                            entry["bucket_counts"] = list(getattr(point, "bucket_counts", ()))
                            entry["explicit_bounds"] = list(getattr(point, "explicit_bounds", ()))
                        points.append(entry)
        return out


@contextmanager
def capture_spans(
    *,
    capture_content: bool = False,
    deterministic_ids: bool = True,
    redact: Optional[Callable[[str], str]] = None,
    redact_builtin: bool = True,
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH,
    resource_attributes: Optional[Mapping[str, Any]] = None,
    prices: Optional[Mapping[str, Any]] = None,
    stream_usage: bool = True,
    checks: Sequence[Any] = (),
) -> Iterator[Captured]:
    """Collect the spans and metrics otelite records inside the block, in memory.

    The application's own configuration (exporters, the global provider) is left
    alone and restored afterwards. ``capture_content``, the redaction options,
    ``prices``, ``stream_usage`` and ``checks`` work as in ``configure()``.
    """
    exporter = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    resource = Resource({sc.SERVICE_NAME: TEST_SERVICE_NAME, **(resource_attributes or {})})
    id_generator: IdGenerator = (
        SequentialIdGenerator() if deterministic_ids else RandomIdGenerator()
    )
    tracer_provider = TracerProvider(
        resource=resource, id_generator=id_generator, shutdown_on_exit=False
    )
    tracer_provider.add_span_processor(ContextAttributesProcessor())
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(
        metric_readers=[reader], resource=resource, shutdown_on_exit=False
    )
    policies = _settings.policies(
        use_env=False,
        capture_content=capture_content,
        redact=redact,
        redact_builtin=redact_builtin,
        max_content_length=max_content_length,
        prices=prices,
        stream_usage=stream_usage,
        checks=checks,
    )
    active = _state.Active(
        _state.tracer_from(tracer_provider),
        _state.meter_from(meter_provider),
        policies.content,
        policies.prices,
        policies.stream_usage,
        policies.checks,
    )
    try:
        with _state.override(active):
            yield Captured(exporter, reader)
    finally:
        # The meter provider stays readable after the block, so tests can assert then.
        tracer_provider.shutdown()
