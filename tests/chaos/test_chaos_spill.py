"""A slow collector and a full queue: with the outbox on, nothing is lost; every loss is counted.

With the outbox on, spans that find the in-memory OTLP queue full spill to the outbox
(written by a spill thread, never the caller's), in the order they were queued, and the
outbox's sender delivers them once, in trace order. With the outbox off they are
dropped and counted as ``queue_full``. Spans that end while their processor shuts down
are counted, not discarded. The counting collector records every span id it accepts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from test_chaos_outbox import CountingCollector, make_traces, outbox_spans, wait_for

import otelite
from otelite import _export, _outbox

WAIT_S = 30.0


@pytest.fixture
def collector() -> Iterator[CountingCollector]:
    """A counting collector that answers every request after 0.5 s, until told otherwise."""
    c = CountingCollector()
    c.delay_s = 0.5
    c.start()
    yield c
    c.stop()


@pytest.fixture(autouse=True)
def small_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 50-span OTLP queue, batches of 10, quick batching and small backoff."""
    monkeypatch.setattr(_outbox, "_BACKOFF_BASE_S", 0.01)
    monkeypatch.setattr(_outbox, "_BACKOFF_MAX_S", 0.05)
    monkeypatch.setattr(_outbox, "_IDLE_POLL_S", 0.05)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "5")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "50")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10")
    monkeypatch.delenv("OTELITE_OUTBOX", raising=False)
    monkeypatch.delenv("OTELITE_OUTBOX_MAX_MB", raising=False)
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")  # spans are what is counted here


def otlp_processor() -> _export.BatchProcessor:
    from otelite import _config

    swappable = _config._state.swappable
    assert swappable is not None
    found = [p for p in swappable.processors if isinstance(p, _export.BatchProcessor)]
    assert len(found) == 1
    return found[0]


def burst(provider: TracerProvider, threads: int, traces: int) -> dict[str, list[str]]:
    """``threads`` threads each end ``traces`` traces of 10 spans at once; span ids per trace."""
    ended: dict[str, list[str]] = {}
    lock = threading.Lock()

    def work() -> None:
        mine = make_traces(provider, traces=traces, spans_per_trace=10)
        with lock:
            ended.update(mine)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return ended


def test_full_queue_spills_to_the_outbox_and_every_span_arrives_once_in_trace_order(
    collector: CountingCollector,
) -> None:
    """4 threads end 2,000 spans into a 50-span queue while the collector is slow: all arrive once."""
    provider = TracerProvider()
    otelite.configure(tracer_provider=provider, endpoint=collector.url)  # store off, outbox on
    processor = otlp_processor()
    ended = burst(provider, threads=4, traces=50)
    assert sum(len(ids) for ids in ended.values()) == 2000
    assert wait_for(lambda: processor.outboxed > 0, WAIT_S), "nothing spilled to the outbox"
    collector.delay_s = 0.0  # the collector catches up
    assert wait_for(lambda: len(collector.spans) >= 2000, WAIT_S), len(collector.spans)
    time.sleep(0.3)  # a duplicate would show up here
    received = collector.span_ids()
    assert len(received) == len(set(received)) == 2000
    assert set(received) == {i for ids in ended.values() for i in ids}
    for trace_id, ids in ended.items():
        order = [span_id for t, span_id, _ in collector.spans if t == trace_id]
        assert order == ids, f"trace {trace_id} arrived out of order"
    assert processor.dropped == dict.fromkeys(_export.DROP_REASONS, 0)
    assert processor.outbox is not None
    assert wait_for(lambda: outbox_spans(processor.outbox.path) == 0)  # type: ignore[union-attr]
    assert processor.outbox.delivered == processor.outboxed
    assert processor.exported + processor.outboxed == 2000


def test_full_queue_without_outbox_counts_queue_full(collector: CountingCollector) -> None:
    """With the outbox off, spans that find the queue full are dropped and counted as queue_full."""
    provider = TracerProvider()
    otelite.configure(tracer_provider=provider, endpoint=collector.url, outbox=False)
    processor = otlp_processor()
    burst(provider, threads=4, traces=50)
    collector.delay_s = 0.0
    assert processor.force_flush(30_000) is False
    assert processor.outbox is None
    assert processor.outboxed == 0
    dropped = processor.dropped
    assert dropped["queue_full"] > 0
    assert {r: n for r, n in dropped.items() if r != "queue_full"} == {
        "export_failed": 0,
        "too_large": 0,
        "shutdown_timeout": 0,
    }
    assert len(set(collector.span_ids())) + dropped["queue_full"] == 2000
    assert not Path(".otelite", _outbox.FILENAME).exists()


class _Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def test_span_ending_during_shutdown_is_counted(caplog: pytest.LogCaptureFixture) -> None:
    """A span that ends after its processor began shutting down is counted, not discarded."""
    exporter = _Keep()
    processor = _export.BatchProcessor(exporter, max_queue=100, schedule_delay_s=0.01)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("late")
    with tracer.start_as_current_span("early"):
        pass
    processor.begin_shutdown()
    with tracer.start_as_current_span("late"):
        pass
    with caplog.at_level(logging.WARNING, logger="otelite"):
        delivered = processor.shutdown_within(time.monotonic() + 5)
    assert delivered is False
    assert [s.name for s in exporter.spans] == ["early"]
    assert processor.dropped == {
        "queue_full": 0,
        "export_failed": 0,
        "too_large": 0,
        "shutdown_timeout": 1,
    }
    assert [r.getMessage() for r in caplog.records if r.name == "otelite"] == [
        "otelite: 1 span could not be delivered to _Keep (shutdown timeout: 1)"
    ]
    with tracer.start_as_current_span("after"):  # after shutdown: still counted
        pass
    assert processor.dropped["shutdown_timeout"] == 2


def test_spill_during_a_failing_direct_attempt_keeps_trace_order(
    collector: CountingCollector,
) -> None:
    """A direct attempt that fails after spans spilled meanwhile is sent before them, in order."""
    collector.answer = 503  # the first (direct) attempt waits 0.5 s, then fails
    provider = TracerProvider()
    otelite.configure(tracer_provider=provider, endpoint=collector.url)
    processor = otlp_processor()
    ended = burst(provider, threads=4, traces=50)
    assert wait_for(lambda: len(collector.requests) >= 1, WAIT_S)
    assert wait_for(lambda: processor.outboxed == 2000, WAIT_S), processor.outboxed
    collector.delay_s = 0.0
    collector.answer = 200
    assert wait_for(lambda: len(collector.spans) >= 2000, WAIT_S), len(collector.spans)
    time.sleep(0.3)  # a duplicate would show up here
    received = collector.span_ids()
    assert len(received) == len(set(received)) == 2000
    for trace_id, ids in ended.items():
        order = [span_id for t, span_id, _ in collector.spans if t == trace_id]
        assert order == ids, f"trace {trace_id} arrived out of order"
    assert processor.dropped == dict.fromkeys(_export.DROP_REASONS, 0)
    assert processor.exported == 0
    assert processor.outbox is not None
    assert wait_for(lambda: processor.outbox.delivered == 2000)  # type: ignore[union-attr]
