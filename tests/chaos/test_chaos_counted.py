"""Counted, never silent: every span and metric point not delivered is counted and visible.

Drops are counted by reason in the ``otelite.sdk.dropped`` counter and the conventions'
``otel.sdk.*`` SDK metrics (read on the metric reader's thread), reported by
``force_flush()`` returning ``False``, summed up in one line at exit that says where
the spans are kept, and shown by ``otelite status`` with the last export error.
Fakes run on 127.0.0.1; exit behaviour is measured in subprocesses.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import otelite
from otelite import _delivery, _export, cli
from otelite.cli import _status
from storefixture import build_store

SECRET = "hunter2-very-secret"
API_KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz012345"


# --- fakes ---------------------------------------------------------------------------------


class FakeExporter(SpanExporter):
    """Accepts, refuses, or blocks (until released) each export."""

    def __init__(self, result: SpanExportResult = SpanExportResult.SUCCESS) -> None:
        self.result = result
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()
        self.exported: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(30)
        if self.result == SpanExportResult.SUCCESS:
            self.exported.extend(s.name for s in spans)
        return self.result

    def shutdown(self) -> None:
        self.release.set()


def tracer_provider(processor: Any) -> TracerProvider:
    """An isolated SDK provider with ``processor``."""
    provider = TracerProvider(resource=Resource.create({"service.name": "counted"}))
    provider.add_span_processor(processor)
    return provider


def metrics_reader() -> tuple[InMemoryMetricReader, MeterProvider]:
    """An explicit meter provider whose otelite meter carries the delivery counters."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    _export.observe(meter_provider.get_meter("otelite"))
    return reader, meter_provider


def points(reader: InMemoryMetricReader) -> dict[str, dict[frozenset[tuple[str, Any]], int]]:
    """Metric name -> attribute set -> value, from one collection."""
    found: dict[str, dict[frozenset[tuple[str, Any]], int]] = {}
    data = reader.get_metrics_data()
    if data is None:
        return found
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                series = found.setdefault(metric.name, {})
                for point in metric.data.data_points:
                    series[frozenset(dict(point.attributes or {}).items())] = int(
                        getattr(point, "value", 0)
                    )
    return found


def dropped(reader_points: dict[str, Any], signal: str, reason: str) -> int:
    """The ``otelite.sdk.dropped`` value for ``signal`` and ``reason`` (0 when absent)."""
    key = frozenset({("otelite.signal", signal), ("otelite.drop.reason", reason)})
    return int(reader_points.get("otelite.sdk.dropped", {}).get(key, 0))


def component(processor: _export.BatchProcessor, **extra: str) -> frozenset[tuple[str, str]]:
    """The attribute set of ``processor``'s ``otel.sdk.processor.*`` series."""
    attrs = {
        "otel.component.name": processor._tally.component,
        "otel.component.type": "batching_span_processor",
        **extra,
    }
    return frozenset(attrs.items())


def end_spans(provider: TracerProvider, n: int, name: str = "work") -> None:
    """End ``n`` spans on ``provider``."""
    tracer = provider.get_tracer("counted")
    for i in range(n):
        with tracer.start_as_current_span(name, attributes={"i": i}):
            pass


# --- the counter, by reason ---------------------------------------------------------------


def test_queue_full_is_counted() -> None:
    """Spans dropped on a full queue are counted with reason queue_full, and flush says False."""
    reader, _ = metrics_reader()
    before = points(reader)
    exporter = FakeExporter()
    exporter.release.clear()
    processor = _export.BatchProcessor(exporter, max_queue=2, max_batch=1, schedule_delay_s=0.01)
    provider = tracer_provider(processor)
    end_spans(provider, 1)
    assert exporter.entered.wait(5)  # the first span is in flight: the queue holds 2 more
    end_spans(provider, 5)
    after = points(reader)
    assert processor.dropped == {
        "queue_full": 3,
        "export_failed": 0,
        "too_large": 0,
        "shutdown_timeout": 0,
    }
    assert dropped(after, "spans", "queue_full") - dropped(before, "spans", "queue_full") == 3
    processed = after["otel.sdk.processor.span.processed"]
    assert processed[component(processor, **{"error.type": "queue_full"})] == 3
    assert after["otel.sdk.processor.span.queue.size"][component(processor)] == 2
    assert after["otel.sdk.processor.span.queue.capacity"][component(processor)] == 2
    exporter.release.set()
    assert processor.force_flush(5000) is False  # 3 of the spans ended before it were dropped
    assert exporter.exported == ["work"] * 3
    assert processor.force_flush(5000) is True  # each drop is reported once
    processor.shutdown()


def test_export_failed_is_counted() -> None:
    """Spans an exporter refuses are counted as export_failed, on the processor and exporter series."""
    reader, _ = metrics_reader()
    before = points(reader)
    processor = _export.BatchProcessor(
        FakeExporter(SpanExportResult.FAILURE), max_batch=4, schedule_delay_s=0.01
    )
    end_spans(tracer_provider(processor), 4)
    assert processor.force_flush(5000) is False
    after = points(reader)
    assert dropped(after, "spans", "export_failed") - dropped(before, "spans", "export_failed") == 4
    processed = after["otel.sdk.processor.span.processed"]
    assert processed[component(processor)] == 4  # passed to the exporter
    assert component(processor, **{"error.type": "export_failed"}) not in processed
    exported = after["otel.sdk.exporter.span.exported"]
    key = frozenset({("otel.component.type", "FakeExporter"), ("error.type", "export_failed")})
    assert exported[key] >= 4
    processor.shutdown()


def test_too_large_is_counted() -> None:
    """A span larger than the request limit is counted as too_large; the rest is delivered."""
    reader, _ = metrics_reader()
    before = points(reader)
    exporter = FakeExporter()
    processor = _export.BatchProcessor(
        exporter, max_batch=8, schedule_delay_s=0.01, max_request_bytes=128 * 1024
    )
    provider = tracer_provider(processor)
    tracer = provider.get_tracer("counted")
    with tracer.start_as_current_span("huge", attributes={"blob": "x" * 200_000}):
        pass
    end_spans(provider, 2, "small")
    assert processor.force_flush(5000) is False
    after = points(reader)
    assert dropped(after, "spans", "too_large") - dropped(before, "spans", "too_large") == 1
    processed = after["otel.sdk.processor.span.processed"]
    assert processed[component(processor, **{"error.type": "too_large"})] == 1
    assert exporter.exported == ["small", "small"]
    processor.shutdown()


def test_shutdown_timeout_is_counted() -> None:
    """Spans still buffered when shutdown's budget runs out are counted as shutdown_timeout."""
    reader, _ = metrics_reader()
    before = points(reader)
    exporter = FakeExporter()
    exporter.release.clear()
    processor = _export.BatchProcessor(exporter, max_batch=2, schedule_delay_s=0.01)
    end_spans(tracer_provider(processor), 5)
    assert processor.force_flush(100) is False  # the exporter hangs: flush gives up in time
    import time

    assert processor.shutdown_within(time.monotonic() + 0.2) is False
    after = points(reader)
    gained = dropped(after, "spans", "shutdown_timeout") - dropped(
        before, "spans", "shutdown_timeout"
    )
    assert gained == 5
    exporter.release.set()


def test_metric_points_that_fail_are_counted() -> None:
    """Metric points an OTLP metrics export could not deliver are counted (signal metrics)."""
    reader, _ = metrics_reader()
    source = InMemoryMetricReader()
    app_meters = MeterProvider(metric_readers=[source])
    counter = app_meters.get_meter("app").create_counter("requests")
    counter.add(1, {"route": "a"})
    counter.add(1, {"route": "b"})
    data = source.get_metrics_data()
    assert data is not None

    class Refusing:
        _preferred_temporality = None
        _preferred_aggregation = None

        def export(self, metrics_data: Any, timeout_millis: float = 10_000) -> Any:
            return MetricExportResult.FAILURE

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            return None

    guard = _export.MetricsEndpointGuard(Refusing(), "http://127.0.0.1:9/v1/metrics", 1.0)  # type: ignore[arg-type]
    before = points(reader)
    assert guard.export(data) == MetricExportResult.FAILURE
    after = points(reader)
    assert (
        dropped(after, "metrics", "export_failed") - dropped(before, "metrics", "export_failed")
        == 2
    )
    key = frozenset({("error.type", "export_failed")})
    exported_before = before.get("otel.sdk.exporter.metric_data_point.exported", {}).get(key, 0)
    assert after["otel.sdk.exporter.metric_data_point.exported"][key] - exported_before == 2
    guard.shutdown()
    app_meters.shutdown()


def test_configure_registers_the_counters_on_its_meter_provider(tmp_path: Path) -> None:
    """configure(meter_provider=...) puts the delivery counters on that provider; the store's
    queue is bounded by memory, so it reports no capacity in spans."""
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    provider = TracerProvider()
    otelite.configure(
        local_store=tmp_path / "store", tracer_provider=provider, meter_provider=meter_provider
    )
    with otelite.span("one"):
        pass
    assert otelite.force_flush(5000) is True
    found = points(reader)
    assert {
        "otel.sdk.processor.span.processed",
        "otel.sdk.processor.span.queue.size",
        "otel.sdk.exporter.span.exported",
    } <= set(found)
    assert "otel.sdk.processor.span.queue.capacity" not in found
    store_series = {
        attrs: n
        for attrs, n in found["otel.sdk.exporter.span.exported"].items()
        if ("otel.component.type", "otelite_local_store_exporter") in attrs
    }
    assert sum(store_series.values()) >= 1


# --- the line at exit --------------------------------------------------------------------------


@contextmanager
def refusing_collector() -> Iterator[str]:
    """A base URL whose OTLP endpoints answer 400 Bad Request (not retried) to everything."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b"bad request"
            self.send_response(400)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


EXIT_SCRIPT = """
import otelite
otelite.configure(endpoint={endpoint!r}, local_store={store!r}, service_name="counted")
for i in range({spans}):
    with otelite.span("work", i=i):
        pass
"""


def run_app(endpoint: str, store: Any, spans: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a small app in a fresh interpreter; it ends ``spans`` spans and exits."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL", "OTELITE"))}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(EXIT_SCRIPT.format(endpoint=endpoint, store=store, spans=spans)),
        ],
        env={**clean, "OTEL_METRICS_EXPORTER": "none"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def summary(stderr: str) -> list[str]:
    """The summary lines in ``stderr``."""
    return [line for line in stderr.splitlines() if "could not be delivered" in line]


def test_exit_line_with_the_store_says_where_the_spans_are(tmp_path: Path) -> None:
    """With the store on, the exit line says the spans are kept there and how to resend them."""
    with refusing_collector() as url:
        secret_url = url.replace("http://", f"http://app:{SECRET}@")
        result = run_app(secret_url, str(tmp_path / "store"), 3, tmp_path)
    masked = url.replace("http://", "http://app:***@")
    db = tmp_path / "store" / "otelite.db"
    assert result.returncode == 0, result.stderr
    assert summary(result.stderr) == [
        f"otelite: 3 spans could not be delivered to {masked}/v1/traces (export failed: 3); "
        f"kept in the local store {db}, resend with "
        f"`otelite export otlp --store {db} --endpoint '{masked}'`"
    ]
    assert SECRET not in result.stderr + result.stdout


def test_exit_line_without_the_store_and_for_one_span(tmp_path: Path) -> None:
    """With the store off, the line says only what was lost; one span is '1 span'."""
    with refusing_collector() as url:
        result = run_app(url, False, 1, tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary(result.stderr) == [
        f"otelite: 1 span could not be delivered to {url}/v1/traces (export failed: 1)"
    ]


def test_undelivered_line_wording() -> None:
    """The one function that builds the exit line: plurals, reasons, store and resend command."""
    line = _export.undelivered_line
    assert line(1, "X", {"queue_full": 1, "export_failed": 0}) == (
        "otelite: 1 span could not be delivered to X (queue full: 1)"
    )
    assert line(5, "X", {"queue_full": 2, "shutdown_timeout": 3}, Path("/s/otelite.db"), "cmd") == (
        "otelite: 5 spans could not be delivered to X (queue full: 2, shutdown timeout: 3); "
        "kept in the local store /s/otelite.db, resend with `cmd`"
    )
    assert _export.resend_command(Path("/a b/otelite.db"), "http://h:4317", "grpc") == (
        "otelite export otlp --store '/a b/otelite.db' --endpoint http://h:4317 --protocol grpc"
    )


def test_status_after_an_app_could_not_deliver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After the app exits, `otelite status` shows its drops and its last export error, redacted."""
    with refusing_collector() as url:
        secret_url = url.replace("http://", f"http://app:{SECRET}@")
        result = run_app(secret_url, str(tmp_path / "store"), 3, tmp_path)
    assert result.returncode == 0, result.stderr
    masked = url.replace("http://", "http://app:***@")
    assert cli.main(["status", "--store", str(tmp_path / "store"), "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)
    drops = [
        {k: d[k] for k in ("destination", "signal", "reason", "count")}
        for d in report["store"]["drops"]
    ]
    assert drops == [
        {
            "destination": f"{masked}/v1/traces",
            "signal": "spans",
            "reason": "export_failed",
            "count": 3,
        }
    ]
    [error] = report["store"]["errors"]
    assert error["destination"] == f"{masked}/v1/traces"
    assert "400" in error["error"]
    assert SECRET not in out


# --- otelite status ------------------------------------------------------------------------------

NOW = 1_767_225_600.0 + 86_400  # 2026-01-02 00:00:00 UTC


@pytest.fixture
def snapshot_store(tmp_path: Path) -> Path:
    """The fixed store, plus an outbox and a delivery record with a secret in its error."""
    build_store(tmp_path / "snap")
    db = tmp_path / "snap" / "otelite.db"
    with sqlite3.connect(str(db)) as conn:
        conn.execute("CREATE TABLE outbox (span_id TEXT, created_at REAL)")
        conn.executemany("INSERT INTO outbox VALUES (?, ?)", [("a", NOW - 600), ("b", NOW - 60)])
    conn.close()
    _delivery.record(
        db,
        "https://collector.example:4318/v1/traces",
        "spans",
        {"queue_full": 2, "export_failed": 40},
        "Failed to export batch code: 401, reason: bad key [REDACTED:api_key]",
        NOW - 300,
    )
    _delivery.record(
        db,
        "https://collector.example:4318/v1/traces",
        "spans",
        {"export_failed": 2},
        None,
        NOW - 200,
    )
    return db


def status_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment with an endpoint carrying a password and a secret header."""
    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_ENDPOINT", f"https://ops:{SECRET}@collector.example:4318"
    )
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer {API_KEY},x-team=blue")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "rag-api")
    monkeypatch.setenv("OTELITE_SAMPLE_RATIO", "0.25")
    monkeypatch.setenv("OTELITE_EXIT_TIMEOUT", "5")
    monkeypatch.setattr(_status, "_now", lambda: NOW)


def test_status_text_snapshot(
    snapshot_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`otelite status` prints settings, outbox, drops and the last error; never a secret."""
    status_env(monkeypatch)
    assert cli.main(["status", "--store", str(snapshot_store)]) == 0
    out = capsys.readouterr().out
    size = snapshot_store.stat().st_size / 1024
    assert out == textwrap.dedent(
        f"""\
        otelite {otelite.__version__}: what this environment configures (nothing was sent)
          OTEL_SDK_DISABLED false
          service name      rag-api
          traces            https://ops:***@collector.example:4318/v1/traces
          metrics           https://ops:***@collector.example:4318/v1/metrics
          protocol          http/protobuf
          headers           Authorization, x-team (values hidden)
          capture content   off
          sample ratio      0.25
          checks            none
          exit timeout      5 s
          local store       {snapshot_store} ({size:.1f} KiB)
          outbox            2 spans pending, oldest 2026-01-01 23:50:00Z (10m ago)
          undelivered       44 spans to https://collector.example:4318/v1/traces (export failed: 42, queue full: 2)
          last export error https://collector.example:4318/v1/traces at 2026-01-01 23:55:00Z (5m ago): Failed to export batch code: 401, reason: bad key [REDACTED:api_key]
        """
    )
    assert SECRET not in out
    assert API_KEY not in out
    assert "blue" not in out


def test_status_json_snapshot(
    snapshot_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`otelite status --json` gives the same report as data; never a secret."""
    status_env(monkeypatch)
    assert cli.main(["status", "--store", str(snapshot_store), "--json"]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)
    destination = "https://collector.example:4318/v1/traces"
    assert report == {
        "otelite": otelite.__version__,
        "sdk_disabled": False,
        "service_name": "rag-api",
        "traces_endpoint": "https://ops:***@collector.example:4318/v1/traces",
        "metrics_endpoint": "https://ops:***@collector.example:4318/v1/metrics",
        "protocol": "http/protobuf",
        "headers": ["Authorization", "x-team"],
        "capture_content": False,
        "sample_ratio": 0.25,
        "checks": [],
        "exit_timeout_s": 5.0,
        "store": {
            "path": str(snapshot_store),
            "exists": True,
            "bytes": snapshot_store.stat().st_size,
            "outbox": {
                "pending": 2,
                "oldest": "2026-01-01 23:50:00Z",
                "oldest_age_s": 600.0,
            },
            "drops": [
                {
                    "destination": destination,
                    "signal": "spans",
                    "reason": "export_failed",
                    "count": 42,
                    "updated_at": "2026-01-01 23:56:40Z",
                },
                {
                    "destination": destination,
                    "signal": "spans",
                    "reason": "queue_full",
                    "count": 2,
                    "updated_at": "2026-01-01 23:55:00Z",
                },
            ],
            "errors": [
                {
                    "destination": destination,
                    "error": "Failed to export batch code: 401, reason: bad key [REDACTED:api_key]",
                    "at": "2026-01-01 23:55:00Z",
                    "age_s": 300.0,
                }
            ],
        },
    }
    assert SECRET not in out
    assert API_KEY not in out
    assert "blue" not in out


def test_status_without_an_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store without an outbox table or delivery record says so instead of failing."""
    build_store(tmp_path / "plain")
    monkeypatch.setattr(_status, "_now", lambda: NOW)
    assert cli.main(["status", "--store", str(tmp_path / "plain")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-3:] == [
        "  outbox            no outbox",
        "  undelivered       nothing recorded",
        "  last export error none recorded",
    ]


def test_status_with_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the store off, or not created yet, status says so and exits 0."""
    monkeypatch.setenv("OTELITE_LOCAL_STORE", "false")
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[3:5] == [
        "  traces            not exported over OTLP",
        "  metrics           not exported over OTLP",
    ]
    assert out[-1] == "  local store       off (drops and export errors are not recorded)"
    monkeypatch.delenv("OTELITE_LOCAL_STORE")
    monkeypatch.setenv("OTELITE_HOME", str(tmp_path / "nothing-yet"))
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        out[-1]
        == f"  local store       {tmp_path / 'nothing-yet' / 'otelite.db'} (not created yet)"
    )
    assert not (tmp_path / "nothing-yet").exists()  # status creates nothing


@pytest.mark.parametrize("kind", ["missing", "corrupt", "not_otelite"])
def test_status_with_a_bad_store(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing, corrupt or foreign store given with --store: a clear message, exit code 2."""
    store = tmp_path / "bad"
    db = store / "otelite.db"
    if kind != "missing":
        store.mkdir()
    if kind == "corrupt":
        db.write_bytes(b"this is not a database" * 100)
    if kind == "not_otelite":
        with sqlite3.connect(str(db)) as conn:
            conn.execute("CREATE TABLE t (x)")
        conn.close()
    assert cli.main(["status", "--store", str(store)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    expected = {
        "missing": f"otelite: {db}: no local store here; give --store a directory or .db file "
        "that a configured app has recorded into\n",
        "corrupt": f"otelite: {db}: not a readable otelite store (file is not a database)\n",
        "not_otelite": f"otelite: {db}: this SQLite file is not an otelite store (no schema version)\n",
    }
    assert captured.err == expected[kind]


def test_status_with_bad_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad variable is reported as configure() would report it, with exit code 2."""
    monkeypatch.setenv("OTELITE_SAMPLE_RATIO", "lots")
    assert cli.main(["status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("otelite: OTELITE_SAMPLE_RATIO: ")
    assert "Traceback" not in err


def test_an_idle_processor_adds_no_series() -> None:
    """A processor that has seen no span adds no series, so an idle app sends no extra metrics."""
    reader, _ = metrics_reader()
    processor = _export.BatchProcessor(FakeExporter(), schedule_delay_s=0.01)
    found = points(reader)
    for name in (
        "otel.sdk.processor.span.processed",
        "otel.sdk.processor.span.queue.size",
        "otel.sdk.processor.span.queue.capacity",
    ):
        assert not any(
            ("otel.component.name", processor._tally.component) in attrs
            for attrs in found.get(name, {})
        )
    processor.shutdown()
