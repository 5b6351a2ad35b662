"""Chaos: bursts into the local store are absorbed, and only a memory cap drops (counted).

The store's writer is paused by a gate (an Event) where a test needs the queue to fill:
nothing here depends on how fast this machine writes. Several processes writing one
store run as real subprocesses with a generous exit budget and a timeout.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult

from otelite import _export

BURST = 20_000
NO_HANG_S = 30.0  # "does not block": the caller would otherwise wait for the gate (60 s)
ATTRIBUTES = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}


@contextmanager
def gated_store(path: Path) -> Iterator[tuple[_export.BatchProcessor, threading.Event]]:
    """The local store's batch processor (as configure() builds it) whose writer waits for a gate."""
    exporter = _export.LocalStoreExporter(path / "otelite.db")
    gate = threading.Event()
    write = exporter.export

    def gated(spans: Sequence[ReadableSpan]) -> SpanExportResult:
        gate.wait(60)
        return write(spans)

    exporter.export = gated  # type: ignore[method-assign]
    processor = _export.batch(exporter, shutdown_timeout_s=60)
    try:
        yield processor, gate
    finally:
        gate.set()
        processor.shutdown()


def burst(processor: _export.BatchProcessor, count: int) -> float:
    """End ``count`` identical spans through ``processor``; seconds the caller spent."""
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("burst")
    started = time.monotonic()
    for i in range(count):
        with tracer.start_as_current_span("burst", attributes=ATTRIBUTES) as span:
            span.set_attribute("i", i)
    return time.monotonic() - started


def stored(path: Path) -> list[tuple[str, str, str, str]]:
    conn = sqlite3.connect(path / "otelite.db")
    try:
        return conn.execute(
            "SELECT name, kind, operation, model FROM spans ORDER BY start_time_ns"
        ).fetchall()
    finally:
        conn.close()


def stored_indices(path: Path) -> list[int]:
    conn = sqlite3.connect(path / "otelite.db")
    try:
        rows = conn.execute("SELECT json_extract(attributes, '$.i') FROM spans").fetchall()
    finally:
        conn.close()
    return sorted(int(row[0]) for row in rows)


NO_DROPS = {"queue_full": 0, "export_failed": 0, "too_large": 0, "shutdown_timeout": 0}


def test_store_queue_absorbs_a_20000_span_burst_while_the_writer_is_paused(
    tmp_path: Path,
) -> None:
    """A 20,000-span burst waits in memory for a stalled store writer; every span is then stored."""
    with gated_store(tmp_path) as (processor, gate):
        spent = burst(processor, BURST)
        assert not gate.is_set()  # the whole burst was taken while the writer was stalled
        assert spent < NO_HANG_S
        assert processor.dropped == NO_DROPS
        gate.set()
        assert processor.force_flush(60_000) is True
        assert processor.dropped == NO_DROPS
        assert processor.exported == BURST
    assert stored_indices(tmp_path) == list(range(BURST))
    assert set(stored(tmp_path)) == {("burst", "INTERNAL", "chat", "gpt-4o-mini")}


def test_store_queue_drops_and_counts_over_its_memory_cap_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over OTELITE_MAX_QUEUE_MB the caller does not wait: new spans are dropped and counted."""
    monkeypatch.setenv("OTELITE_MAX_QUEUE_MB", "1")
    # No timed export and no size-triggered batch: only the cap decides what is queued.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1000000")
    with gated_store(tmp_path) as (processor, gate):
        assert processor.max_queue is None  # the store's queue has no span count limit
        assert processor.max_queue_bytes == 1024 * 1024
        spent = burst(processor, 2_000)
        assert not gate.is_set()
        assert spent < NO_HANG_S
        # Every span of the burst has the same estimate: 3 kB, 96 bytes per attribute
        # (3 here), plus the length of the string values.
        kept = len(processor._queue)
        assert kept == 1024 * 1024 // (3072 + 3 * 96 + len("chat") + len("gpt-4o-mini"))
        assert processor.exported == 0
        assert processor.dropped == {**NO_DROPS, "queue_full": 2_000 - kept}
        assert processor._queued_bytes <= 1024 * 1024
        gate.set()
        processor.force_flush(60_000)
        assert processor.exported == kept
    assert stored_indices(tmp_path) == list(range(kept))  # the first ones, in order


def test_store_write_refused_as_locked_is_retried_then_counted(
    tmp_path: Path, contained_errors: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch refused with "database is locked" is written again; refused every time, it is counted."""
    monkeypatch.setattr(_export.time, "sleep", lambda seconds: None)  # the back-off
    exporter = _export.LocalStoreExporter(tmp_path / "otelite.db")
    write = exporter._writer.write
    refusals = [2]

    def busy_write(spans: Sequence[ReadableSpan]) -> None:
        if refusals[0]:
            refusals[0] -= 1
            raise sqlite3.OperationalError("database is locked")
        write(spans)

    monkeypatch.setattr(exporter._writer, "write", busy_write)
    processor = _export.BatchProcessor(exporter, max_queue=None, max_batch=10_000)
    burst(processor, 100)
    processor.force_flush(30_000)
    assert (processor.exported, processor.dropped) == (100, NO_DROPS)
    assert refusals == [0]
    refusals[0] = _export.STORE_WRITE_ATTEMPTS  # locked every time
    burst(processor, 10)
    processor.force_flush(30_000)
    processor.shutdown()
    assert (processor.exported, processor.dropped) == (100, {**NO_DROPS, "export_failed": 10})
    assert refusals == [0]
    assert stored_indices(tmp_path) == list(range(100))


_WRITER = """
import sys, time
import otelite
from opentelemetry import trace

store, index, count, start_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
otelite.configure(local_store=store, service_name=f"writer-{index}")
tracer = trace.get_tracer("burst")
while time.time() < start_at:  # all four start their burst together
    time.sleep(0.001)
for i in range(count):
    with tracer.start_as_current_span("burst") as span:
        span.set_attribute("writer", index)
        span.set_attribute("i", i)
"""


def test_four_processes_burst_into_one_store_and_keep_every_span(tmp_path: Path) -> None:
    """4 processes x 2,000 spans written at once into one store: all 8,000 kept, none dropped."""
    env = {
        **os.environ,
        "OTELITE_EXIT_TIMEOUT": "60",  # the machine's speed must not matter: exit may drain
        "OTEL_EXPORTER_OTLP_ENDPOINT": "",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
    }
    store = tmp_path / "store"
    start_at = time.time() + 3.0
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(_WRITER),
                str(store),
                str(n),
                "2000",
                str(start_at),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "not delivered" not in err, err
        assert "locked" not in err, err
    conn = sqlite3.connect(store / "otelite.db")
    try:
        rows = conn.execute(
            "SELECT json_extract(attributes, '$.writer'), COUNT(*), "
            "COUNT(DISTINCT json_extract(attributes, '$.i')) FROM spans GROUP BY 1 ORDER BY 1"
        ).fetchall()
    finally:
        conn.close()
    assert rows == [(n, 2000, 2000) for n in range(4)]


def test_store_rows_hold_the_same_attributes_whatever_the_span_keeps_them_in(
    tmp_path: Path,
) -> None:
    """SDK spans (fast attribute copy) and other ReadableSpans (public mapping) store equal rows."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanContext, TraceFlags

    exporter = _export.LocalStoreExporter(tmp_path / "otelite.db")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    attributes = {**ATTRIBUTES, "gen_ai.usage.input_tokens": 12, "tags": ("a", "b"), "ok": True}
    with provider.get_tracer("t").start_as_current_span("sdk", attributes=attributes):
        pass
    plain = ReadableSpan(
        name="plain",
        context=SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)),
        attributes=dict(attributes),
    )
    assert exporter.export([plain]) == SpanExportResult.SUCCESS
    exporter.shutdown()
    conn = sqlite3.connect(tmp_path / "otelite.db")
    try:
        rows = conn.execute(
            "SELECT name, model, operation, input_tokens, attributes FROM spans ORDER BY name"
        ).fetchall()
    finally:
        conn.close()
    text = (
        '{"gen_ai.operation.name":"chat","gen_ai.request.model":"gpt-4o-mini",'
        '"gen_ai.usage.input_tokens":12,"tags":["a","b"],"ok":true}'
    )
    assert rows == [
        ("plain", "gpt-4o-mini", "chat", 12, text),
        ("sdk", "gpt-4o-mini", "chat", 12, text),
    ]


def test_queue_memory_estimate_is_the_same_through_the_fast_and_the_public_path() -> None:
    """span_memory: SDK spans (inner dicts) and other ReadableSpans (public mappings) agree."""
    from opentelemetry.sdk.trace import Event

    attributes = {**ATTRIBUTES, "gen_ai.input.messages": "x" * 10_000, "n": 3}
    with TracerProvider().get_tracer("t").start_as_current_span("s", attributes=attributes) as span:
        span.add_event("gen_ai.evaluation.result", {"gen_ai.evaluation.explanation": "why"})
    plain = ReadableSpan(
        name="s",
        attributes=dict(attributes),
        events=[Event("gen_ai.evaluation.result", {"gen_ai.evaluation.explanation": "why"})],
    )
    assert isinstance(span, ReadableSpan)
    expected = 3072 + 4 * 96 + len("chat") + len("gpt-4o-mini") + 10_000 + 512 + 96 + 3
    assert _export.span_memory(span) == _export.span_memory(plain) == expected
