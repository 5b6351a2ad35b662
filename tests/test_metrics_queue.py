"""LLM-call metrics are recorded off the caller's thread: complete, exactly once, under faults."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import TracerProvider

import fakeopenai
import otelite
from otelite import _metrics
from otelite._export import dropped_counts

MESSAGES = [{"role": "user", "content": "Hi"}]
POINT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "server.address": "api.openai.com",
    "server.port": 443,
}


@pytest.fixture(autouse=True)
def _instrumented() -> Iterator[None]:
    """openai is instrumented for every test here; otelite is shut down afterwards."""
    otelite.instrument_openai()
    yield
    otelite.uninstrument_openai()
    otelite.shutdown()


def _chat() -> Any:
    client = fakeopenai.client(
        lambda request: fakeopenai.json_response(fakeopenai.chat_completion())
    )
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


class KeptExporter(MetricExporter):
    """Keeps every export's data."""

    def __init__(self) -> None:
        super().__init__()
        self.exported: list[Any] = []

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
        self.exported.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass

    def durations(self) -> list[int]:
        """The call counts of every exported duration point."""
        return [
            p.count
            for data in self.exported
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == "gen_ai.client.operation.duration"
            for p in m.data.data_points
        ]


def _configure(reader: Any) -> TracerProvider:
    provider = TracerProvider()
    otelite.configure(
        tracer_provider=provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
        local_store=False,
    )
    return provider


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out.setdefault(metric.name, []).extend(metric.data.data_points)
    return out


def _call_counts(points: dict[str, list[Any]]) -> list[int]:
    return [p.count for p in points.get("gen_ai.client.operation.duration", [])]


@pytest.fixture
def stalled() -> Iterator[None]:
    """The recording thread cannot record: its lock is held until the test ends."""
    _metrics.drain()
    with _metrics._queue.lock:
        yield


def test_a_collection_right_after_the_call_sees_every_measurement() -> None:
    """A reader collecting right after the call gets the duration, both token counts and the cost."""
    reader = InMemoryMetricReader()
    _configure(reader)
    _chat()
    points = _points(reader)
    assert [(dict(p.attributes), p.count) for p in points["gen_ai.client.operation.duration"]] == [
        (POINT, 1)
    ]
    tokens = {
        dict(p.attributes)["gen_ai.token.type"]: (p.count, p.sum)
        for p in points["gen_ai.client.token.usage"]
    }
    assert tokens == {"input": (1, 12), "output": (1, 3)}
    assert [dict(p.attributes) for p in points["otelite.client.cost"]] == [POINT]
    assert points["otelite.client.cost"][0].value > 0
    assert "otelite.sdk.metrics.pending" not in points  # the hook reports nothing itself


def test_measurements_are_not_recorded_on_the_callers_thread(stalled: None) -> None:
    """An ended call has recorded nothing when it returns; the otelite-metrics thread records it."""
    reader = InMemoryMetricReader()
    _configure(reader)
    calls = []
    original = _metrics.CallMeasurements.record

    def record(self: Any) -> None:
        calls.append(threading.current_thread().name)
        original(self)

    _metrics.CallMeasurements.record = record  # type: ignore[method-assign]
    try:
        _chat()
        assert calls == []
        assert len(_metrics._queue.items) == 1
        _metrics._queue.lock.release()
        try:
            _metrics._queue.wake.set()
            for _ in range(
                1000
            ):  # the recording thread takes it (bounded wait, no timing asserted)
                if calls:
                    break
                threading.Event().wait(0.01)
        finally:
            _metrics._queue.lock.acquire()
        assert calls == ["otelite-metrics"]
    finally:
        _metrics.CallMeasurements.record = original  # type: ignore[method-assign]


def test_exemplars_link_points_to_the_calls_trace() -> None:
    """The duration point's exemplar carries the trace and span id of the call's span."""
    reader = InMemoryMetricReader()
    provider = _configure(reader)
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    with trace.get_tracer("test", tracer_provider=provider).start_as_current_span("parent"):
        _chat()
    (llm,) = [s for s in spans.get_finished_spans() if s.name.startswith("chat")]
    (point,) = _points(reader)["gen_ai.client.operation.duration"]
    exemplars = list(getattr(point, "exemplars", None) or [])
    if not exemplars:
        pytest.skip("this opentelemetry-sdk records no exemplars")
    assert [(e.trace_id, e.span_id) for e in exemplars] == [
        (llm.context.trace_id, llm.context.span_id)
    ]


def test_values_arrive_when_the_calling_thread_exits_right_after_the_call() -> None:
    """Calls made on short-lived threads are all recorded after the threads are gone."""
    reader = InMemoryMetricReader()
    _configure(reader)
    threads = [threading.Thread(target=_chat) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _call_counts(_points(reader)) == [5]


def test_force_flush_leaves_nothing_queued(stalled: None) -> None:
    """otelite.force_flush() records the queued calls, so the export after it has them."""
    exporter = KeptExporter()
    meters = MeterProvider(
        metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)]
    )
    otelite.configure(tracer_provider=TracerProvider(), meter_provider=meters, local_store=False)
    _chat()
    assert len(_metrics._queue.items) == 1
    _metrics._queue.lock.release()  # held by the fixture: the drain needs it
    try:
        assert otelite.force_flush()
        assert len(_metrics._queue.items) == 0
        meters.force_flush()
    finally:
        _metrics._queue.lock.acquire()
    assert exporter.durations() == [1]
    meters.shutdown()


def test_the_final_collection_of_a_users_meter_provider_has_the_last_calls() -> None:
    """An app shutting down its own MeterProvider right after a call still exports that call."""
    exporter = KeptExporter()
    meters = MeterProvider(
        metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)]
    )
    otelite.configure(tracer_provider=TracerProvider(), meter_provider=meters, local_store=False)
    _chat()
    meters.shutdown()
    assert exporter.durations() == [1]


def test_a_full_queue_drops_and_counts_and_never_blocks(
    stalled: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Past the queue's size, calls still return; their measurements are dropped, counted, logged once."""
    monkeypatch.setattr(_metrics, "MAX_QUEUED", 3)
    before = _metrics.dropped()
    reader = InMemoryMetricReader()
    _configure(reader)
    with caplog.at_level(logging.WARNING, logger="otelite"):
        results = [_chat() for _ in range(5)]  # returns while the recording thread is stalled
    assert [r.choices[0].message.content for r in results] == ["Paris."] * 5
    assert len(_metrics._queue.items) == 3
    assert _metrics.dropped() - before == 2
    assert dropped_counts()[("metrics", "queue_full")] >= 2
    warnings = [r for r in caplog.records if "waiting to be recorded" in r.getMessage()]
    assert len(warnings) <= 1  # once per process: an earlier test may have logged it
    _metrics._queue.lock.release()
    try:
        assert _call_counts(_points(reader)) == [3]
    finally:
        _metrics._queue.lock.acquire()


def test_a_failing_instrument_never_reaches_the_caller(
    contained_errors: None, caplog: pytest.LogCaptureFixture
) -> None:
    """An SDK that raises while recording is reported; the call and later calls are unaffected."""
    reader = InMemoryMetricReader()
    _configure(reader)
    made = _metrics.instruments(otelite._state.active().meter)
    original = made.duration

    class Broken:
        def record(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("reader exploded")

    made.duration = Broken()  # type: ignore[assignment]
    try:
        with caplog.at_level(logging.WARNING, logger="otelite"):
            assert _chat().choices[0].message.content == "Paris."
            _metrics.drain()
    finally:
        made.duration = original
    assert any("recording LLM call metrics" in r.getMessage() for r in caplog.records)
    _chat()
    assert _call_counts(_points(reader)) == [
        1
    ]  # the broken call's duration is lost, the next one is not


def test_a_reconfiguration_never_records_a_call_twice(stalled: None) -> None:
    """A call queued under one meter provider is recorded there only, after configure() changed it."""
    first, second = InMemoryMetricReader(), InMemoryMetricReader()
    _configure(first)
    _chat()
    _configure(second)
    _chat()
    _metrics._queue.lock.release()
    try:
        assert _call_counts(_points(first)) == [1]
        assert _call_counts(_points(second)) == [1]
        assert _call_counts(_points(first)) == [1]
    finally:
        _metrics._queue.lock.acquire()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_records_its_own_calls_and_not_the_parents(stalled: None) -> None:
    """After fork, the child records its calls with its own thread; the parent's queued call stays the parent's."""
    reader = InMemoryMetricReader()
    _configure(reader)
    _chat()  # queued in the parent, not yet recorded
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        status = 1
        try:
            _chat()
            counts = _call_counts(_points(reader))
            alive = _metrics._queue.worker is not None and _metrics._queue.worker.is_alive()
            os.write(write, f"{counts} {alive}".encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child == "[1] True"
    _metrics._queue.lock.release()
    try:
        assert _call_counts(_points(reader)) == [1]
    finally:
        _metrics._queue.lock.acquire()


def test_no_recording_thread_at_interpreter_shutdown_still_records_at_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When no thread can start (interpreter exit), the call is unaffected and the collection records it."""
    reader = InMemoryMetricReader()
    _configure(reader)
    monkeypatch.setattr(_metrics, "_queue", _metrics._Queue())

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    assert _chat().choices[0].message.content == "Paris."
    assert _metrics._queue.worker is None
    assert _call_counts(_points(reader)) == [1]
