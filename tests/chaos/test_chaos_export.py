"""Delivery under collector faults: exit, flush and reconfigure are bounded; big batches split.

Every fault runs against a fake on 127.0.0.1: a closed port, a blackhole (a socket that
accepts connections and never answers), a receiver answering 429 with ``Retry-After: 30``
or 500 forever, and trace-only backends that refuse metrics (HTTP 405/404, gRPC
UNIMPLEMENTED). Exit behaviour is measured in subprocesses. Duration bounds are generous
"does not hang" limits: the defects they guard against took 10 to 50 seconds.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

import otelite
from exit_timing import exit_seconds
from otelite import _export
from otlp_receiver import Received, http_receiver

EXIT_BOUND_S = 6.0  # default exit budget is 2 s; the defect took 10-54 s
PROMPT_S = 3.0  # for calls that must not wait on the collector at all (the defect: 20 s)
REQUEST_LIMIT = 4 * 1024 * 1024


@pytest.fixture(autouse=True)
def _no_metrics_from_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    """configure() here exports no metrics: otelite's delivery counters would keep an exporter
    retrying against a dead collector into the next test (the metrics tests build theirs)."""
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")


# --- fakes ---------------------------------------------------------------------------------


@contextmanager
def closed_port() -> Iterator[str]:
    """A base URL where nothing listens."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    yield f"http://127.0.0.1:{port}"


@contextmanager
def blackhole() -> Iterator[str]:
    """A base URL that accepts TCP connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)  # the kernel completes handshakes; nobody ever reads or replies
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@contextmanager
def answering(
    status: int,
    headers: Optional[dict[str, str]] = None,
    paths: tuple[str, ...] = (),
    max_body: Optional[int] = None,
) -> Iterator[tuple[str, Received]]:
    """An OTLP/HTTP receiver that answers ``status`` on ``paths`` (every path when empty).

    Other paths are served normally (``/v1/traces`` decoded into the Received), except
    that, like a Collector, a request body over ``max_body`` bytes gets 413.
    """
    received = Received()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                received.paths.append(self.path)
            too_big = max_body is not None and len(body) > max_body
            if too_big or not paths or self.path in paths:
                self.send_response(413 if too_big else status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            with lock:
                received.traces.append(ExportTraceServiceRequest.FromString(body))
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def fault(kind: str) -> Iterator[str]:
    """A base URL showing the collector fault ``kind``."""
    if kind == "closed_port":
        with closed_port() as url:
            yield url
    elif kind == "blackhole":
        with blackhole() as url:
            yield url
    elif kind == "429_retry_after":
        with answering(429, {"Retry-After": "30"}) as (url, _):
            yield url
    else:
        assert kind == "500_forever"
        with answering(500) as (url, _):
            yield url


FAULTS = ["closed_port", "blackhole", "429_retry_after", "500_forever"]


def run_script(
    code: str, env: dict[str, str], cwd: Path
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``code`` in a fresh interpreter; return the result and the seconds its exit took.

    The script prints ``time.monotonic()`` as its last act before the interpreter exits.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL", "OTELITE"))}
    # These tests count what is dropped; with the outbox on (tests/chaos/test_chaos_outbox.py)
    # failed exports are kept instead.
    clean["OTELITE_OUTBOX"] = "false"
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result, exit_seconds(result, time.monotonic())


def provider() -> TracerProvider:
    """An isolated SDK provider."""
    return TracerProvider(resource=Resource.create({"service.name": "chaos"}))


@contextmanager
def collector_like() -> Iterator[tuple[str, Received]]:
    """A healthy OTLP/HTTP receiver that refuses requests over 4 MiB, as a Collector does."""
    with answering(200, paths=("/none",), max_body=REQUEST_LIMIT) as (url, received):
        yield url, received


def otlp_batch(url: str) -> _export.BatchProcessor:
    """otelite's batching processor in front of an OTLP/HTTP exporter to ``url``."""
    return _export.batch(_export.otlp_span_exporter(url + "/v1/traces", "http/protobuf", {}))


def flushed_only(url: str) -> _export.BatchProcessor:
    """Like :func:`otlp_batch`, but nothing leaves the queue until a flush (no timer race)."""
    processor = otlp_batch(url)
    processor.schedule_delay_s = 3600
    return processor


# --- exit ------------------------------------------------------------------------------------

EXIT_SCRIPT = """
    import time
    import otelite
    otelite.configure(endpoint={url!r}, service_name="chaos")
    for i in range({spans}):
        with otelite.span("work", i=i):
            pass
    {extra}
    print("EXITING", time.monotonic(), flush=True)
"""


@pytest.mark.parametrize("kind", FAULTS)
def test_exit_is_bounded_whatever_the_collector_does(kind: str, tmp_path: Path) -> None:
    """Exit with spans buffered returns within the 2 s budget and says, in one line, what was lost."""
    with fault(kind) as url:
        result, exit_s = run_script(EXIT_SCRIPT.format(url=url, spans=20, extra=""), {}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert exit_s < EXIT_BOUND_S, (exit_s, result.stderr)
    summary = [line for line in result.stderr.splitlines() if "could not be delivered" in line]
    assert len(summary) == 1, result.stderr
    assert summary[0].startswith(f"otelite: 20 spans could not be delivered to {url}/v1/traces (")


@pytest.mark.parametrize("kind", ["closed_port", "blackhole"])
def test_exit_is_bounded_over_grpc(kind: str, tmp_path: Path) -> None:
    """Over OTLP/gRPC too, exit with spans buffered returns within the budget and reports the loss."""
    with fault(kind) as url:
        result, exit_s = run_script(
            EXIT_SCRIPT.format(url=url, spans=20, extra=""),
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            tmp_path,
        )
    assert result.returncode == 0, result.stderr
    assert exit_s < EXIT_BOUND_S, (exit_s, result.stderr)
    summary = [line for line in result.stderr.splitlines() if "could not be delivered" in line]
    assert summary == [f"otelite: 20 spans could not be delivered to {url} (shutdown timeout: 20)"]


def test_exit_after_a_busy_period_is_bounded(tmp_path: Path) -> None:
    """After a burst far larger than the queue, exit to a blackhole is still bounded; drops are counted."""
    with blackhole() as url:
        result, exit_s = run_script(
            EXIT_SCRIPT.format(url=url, spans=20000, extra=""), {}, tmp_path
        )
    assert result.returncode == 0, result.stderr
    assert exit_s < EXIT_BOUND_S, (exit_s, result.stderr)
    summary = [line for line in result.stderr.splitlines() if "could not be delivered" in line]
    assert len(summary) == 1, result.stderr
    assert summary[0].startswith(
        f"otelite: 20000 spans could not be delivered to {url}/v1/traces ("
    )
    assert "queue full: " in summary[0]


def test_exit_budget_is_configurable(tmp_path: Path) -> None:
    """OTELITE_EXIT_TIMEOUT shortens the exit budget (0.2 s against a blackhole)."""
    with blackhole() as url:
        result, exit_s = run_script(
            EXIT_SCRIPT.format(url=url, spans=5, extra=""),
            {"OTELITE_EXIT_TIMEOUT": "0.2"},
            tmp_path,
        )
    assert result.returncode == 0, result.stderr
    assert exit_s < 1.5, (exit_s, result.stderr)
    assert "otelite: 5 spans could not be delivered" in result.stderr


def test_exit_budget_from_configure(tmp_path: Path) -> None:
    """configure(exit_timeout=0.2) shortens the exit budget as the variable does."""
    with blackhole() as url:
        extra = f"otelite.configure(endpoint={url!r}, service_name='chaos', exit_timeout=0.2)"
        result, exit_s = run_script(EXIT_SCRIPT.format(url=url, spans=5, extra=extra), {}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert exit_s < 1.5, (exit_s, result.stderr)
    assert "otelite: 5 spans could not be delivered" in result.stderr


@pytest.mark.parametrize("value", [0, -1, "soon", float("nan"), True])
def test_bad_exit_timeout_is_a_configuration_error(value: object) -> None:
    """A bad exit_timeout is refused by configure() with a message naming the argument."""
    with pytest.raises(otelite.ConfigurationError, match=r"^exit_timeout: .* positive number"):
        otelite.configure(local_store=False, exit_timeout=value)  # type: ignore[arg-type]


def test_exit_delivers_to_a_healthy_collector(tmp_path: Path) -> None:
    """At exit every buffered span reaches a healthy receiver, and nothing is reported lost."""
    with http_receiver() as (url, received):
        result, exit_s = run_script(EXIT_SCRIPT.format(url=url, spans=50, extra=""), {}, tmp_path)
        names = sorted((s["name"], s["attributes"]["i"]) for s in received.spans())
    assert result.returncode == 0, result.stderr
    assert exit_s < EXIT_BOUND_S
    assert names == sorted(("work", i) for i in range(50))
    assert "not delivered" not in result.stderr


# --- force_flush and shutdown -----------------------------------------------------------------


@pytest.mark.parametrize("kind", FAULTS)
def test_force_flush_honours_its_timeout(kind: str, contained_errors: None) -> None:
    """force_flush(timeout_millis=500) returns False within ~2 s when nothing can be delivered."""
    with fault(kind) as url:
        otelite.configure(tracer_provider=provider(), local_store=False, endpoint=url)
        with otelite.span("lost"):
            pass
        started = time.monotonic()
        assert otelite.force_flush(timeout_millis=500) is False
        assert time.monotonic() - started < PROMPT_S
        started = time.monotonic()
        otelite.shutdown()
        assert time.monotonic() - started < EXIT_BOUND_S


def test_force_flush_true_when_everything_was_delivered() -> None:
    """force_flush returns True on a healthy receiver, with every span delivered whole."""
    with http_receiver() as (url, received):
        otelite.configure(tracer_provider=provider(), local_store=False, endpoint=url)
        for i in range(100):
            with otelite.span("ok", i=i):
                pass
        assert otelite.force_flush(timeout_millis=5000) is True
        spans = received.spans()
    assert sorted(s["attributes"]["i"] for s in spans) == list(range(100))
    assert {(s["name"], s["resource"]["service.name"]) for s in spans} == {("ok", "chaos")}


def test_export_requests_time_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_EXPORTER_OTLP_TIMEOUT (seconds) bounds one export: a blackholed batch fails, counted, well before the flush timeout."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "0.5")
    with blackhole() as url:
        processor = flushed_only(url)
        tp = provider()
        tp.add_span_processor(processor)
        tp.get_tracer("chaos").start_span("s").end()
        started = time.monotonic()
        assert processor.force_flush(30000) is False
        assert time.monotonic() - started < 15  # the flush itself would have waited 30 s
        processor.shutdown()
    assert processor.dropped == {
        "queue_full": 0,
        "export_failed": 1,
        "too_large": 0,
        "shutdown_timeout": 0,
    }


def test_batch_settings_follow_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_BSP_* set the queue, batch size and delay; invalid values fall back to the defaults."""
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1000")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "250")
    processor = otlp_batch("http://127.0.0.1:9")
    assert (processor.max_queue, processor.max_batch, processor.schedule_delay_s) == (
        100,
        100,
        0.25,
    )
    assert processor.max_request_bytes == REQUEST_LIMIT
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "lots")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "-1")
    monkeypatch.delenv("OTEL_BSP_SCHEDULE_DELAY")
    processor = otlp_batch("http://127.0.0.1:9")
    assert (processor.max_queue, processor.max_batch, processor.schedule_delay_s) == (
        2048,
        512,
        1.0,
    )


def test_processor_counts_what_it_drops(caplog: pytest.LogCaptureFixture) -> None:
    """Drops are counted by reason (queue full, export failed, shutdown timeout) and logged once."""
    with answering(500) as (url, _):
        processor = _export.BatchProcessor(
            _export.otlp_span_exporter(url + "/v1/traces", "http/protobuf", {}, timeout_s=0.5),
            max_queue=10,
            max_batch=100,  # with the long delay: nothing leaves the queue before shutdown
            schedule_delay_s=60,
        )
        tp = provider()
        tp.add_span_processor(processor)
        tracer = tp.get_tracer("chaos")
        for i in range(25):
            tracer.start_span("s", attributes={"i": i}).end()
        with caplog.at_level(logging.WARNING, logger="otelite"):
            processor.shutdown_within(time.monotonic() + 3.0)
    assert processor.exported == 0
    assert processor.dropped["queue_full"] == 15
    assert processor.dropped["too_large"] == 0
    assert processor.dropped["export_failed"] + processor.dropped["shutdown_timeout"] == 10
    ours = [r.getMessage() for r in caplog.records if r.name == "otelite"]
    assert ours == [
        f"otelite: 25 spans could not be delivered to {url}/v1/traces ("
        + ", ".join(
            f"{reason.replace('_', ' ')}: {n}" for reason, n in processor.dropped.items() if n
        )
        + ")"
    ]


def test_reconfigure_does_not_wait_for_the_old_collector(contained_errors: None) -> None:
    """configure() with a changed setting returns at once although the old endpoint hangs; force_flush tells."""
    with blackhole() as url, http_receiver() as (good, received):
        tp = provider()
        otelite.configure(tracer_provider=tp, local_store=False, endpoint=url)
        for _ in range(10):
            with otelite.span("to-blackhole"):
                pass
        swappable = tp._otelite_processor  # type: ignore[attr-defined]
        old = [p for p in swappable.processors if isinstance(p, _export.BatchProcessor)]
        started = time.monotonic()
        otelite.configure(tracer_provider=tp, local_store=False, endpoint=good)
        assert time.monotonic() - started < PROMPT_S
        with otelite.span("to-receiver"):
            pass
        assert tp.force_flush(5000)  # the current exporters only
        assert [s["name"] for s in received.spans()] == ["to-receiver"]
        # otelite.force_flush() also waits for the replaced exporter, which cannot deliver.
        assert otelite.force_flush(timeout_millis=300) is False
        assert len(old) == 1
        assert old[0] in _export.retiring()  # still draining in the background
        old[0].shutdown_within(time.monotonic() + 0.5)
    assert old[0].dropped["shutdown_timeout"] == 10


# --- request size ------------------------------------------------------------------------------


def test_one_huge_span_does_not_sink_its_batch() -> None:
    """A batch with one span over 4 MiB delivers the 29 others; the huge one is counted too_large."""
    with collector_like() as (url, received):
        processor = flushed_only(url)
        tp = provider()
        tp.add_span_processor(processor)
        tracer = tp.get_tracer("chaos")
        for i in range(30):
            value = "x" * (5 * 1024 * 1024) if i == 7 else "small"
            tracer.start_span("s", attributes={"i": i, "payload": value}).end()
        assert processor.force_flush(10000) is False  # one span could not be delivered
        spans = received.spans()
        processor.shutdown()
    assert len(received.paths) == len(received.traces)  # no request was refused
    assert sorted(s["attributes"]["i"] for s in spans) == [i for i in range(30) if i != 7]
    assert all(s["attributes"]["payload"] == "small" for s in spans)
    assert processor.dropped == {
        "queue_full": 0,
        "export_failed": 0,
        "too_large": 1,
        "shutdown_timeout": 0,
    }


def test_large_spans_are_split_into_requests_under_4_mib(monkeypatch: pytest.MonkeyPatch) -> None:
    """400 spans of 200 KB each all arrive, in requests that each stay under 4 MiB."""
    monkeypatch.setenv("OTELITE_MAX_QUEUE_MB", "256")  # all 80 MB are queued before the flush
    with collector_like() as (url, received):
        processor = flushed_only(url)
        tp = provider()
        tp.add_span_processor(processor)
        tracer = tp.get_tracer("chaos")
        for i in range(400):
            tracer.start_span("s", attributes={"i": i, "payload": "y" * 200_000}).end()
        assert processor.force_flush(30000) is True
        sizes = [request.ByteSize() for request in received.traces]
        assert set(received.paths) == {"/v1/traces"}
        spans = received.spans()
        processor.shutdown()
    assert sorted(s["attributes"]["i"] for s in spans) == list(range(400))
    assert max(sizes) < REQUEST_LIMIT
    assert processor.dropped == dict.fromkeys(_export.DROP_REASONS, 0)


def test_span_size_estimate_is_an_upper_bound() -> None:
    """The per-span size estimate used to split requests is never below what the span adds to a request."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import SpanLimits

    tp = TracerProvider(span_limits=SpanLimits(max_attributes=10_000))
    spans: list[Any] = []

    class Keep(_export.ContextAttributesProcessor):
        def on_end(self, span: Any) -> None:
            spans.append(span)

    tp.add_span_processor(Keep())
    tracer = tp.get_tracer("chaos")
    tracer.start_span("empty").end()
    tracer.start_span("many", attributes={f"k{i}": i for i in range(5000)}).end()
    tracer.start_span("tiny-strings", attributes={f"k{i}": "v" for i in range(5000)}).end()
    tracer.start_span("big", attributes={"payload": "z" * 3_000_000}).end()
    tracer.start_span("unicode", attributes={"text": "été ✓ 漢字" * 10_000}).end()
    tracer.start_span("arrays", attributes={"tags": ["a"] * 5000, "nums": [1.5] * 5000}).end()
    with tracer.start_as_current_span("events") as span:
        for i in range(100):
            span.add_event("e", {"i": i, "text": "x" * 100})
    first = spans[0]  # what one more span adds to a request that has the resource and scope
    alone = encode_spans([first]).ByteSize()
    for span in spans:
        actual = encode_spans([first, span]).ByteSize() - alone
        assert actual <= _export.span_size(span) <= actual * 3 + 200, span.name


# --- metrics to trace-only backends -------------------------------------------------------------


def record_and_flush(exporter: Any, times: int) -> None:
    """Record a counter and export it ``times`` times through ``exporter``."""
    meters = MeterProvider(
        metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)]
    )
    counter = meters.get_meter("chaos").create_counter("chaos.calls")
    for _ in range(times):
        counter.add(1)
        meters.force_flush(5000)
    meters.shutdown(5000)


@pytest.mark.parametrize("status", [405, 404])
def test_metrics_stop_after_a_trace_only_backend_refuses_them(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    """After one 405/404 on /v1/metrics, no more metric requests, one warning naming the fixes, no SDK error."""
    with answering(status, paths=("/v1/metrics",)) as (url, received):
        exporter = _export.otlp_metric_exporter(url + "/v1/metrics", "http/protobuf", {})
        with caplog.at_level(logging.DEBUG):
            record_and_flush(exporter, 3)
        paths = list(received.paths)
    assert paths == ["/v1/metrics"]
    port = url.rsplit(":", 1)[1]

    def other_test(record: logging.LogRecord) -> bool:  # an earlier test's exporter, retrying
        found = re.search(r"port=(\d+)", record.getMessage())
        return found is not None and found.group(1) != port

    warnings = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING
        and "metric" in r.name + r.getMessage()
        and not other_test(r)
    ]
    assert [r.name for r in warnings] == ["otelite"]
    message = warnings[0].getMessage()
    assert f"{url}/v1/metrics does not accept metrics (HTTP {status})" in message
    assert "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" in message
    assert "OTEL_METRICS_EXPORTER=none" in message


def test_metrics_stop_after_grpc_unimplemented(caplog: pytest.LogCaptureFixture) -> None:
    """A gRPC backend without the metrics service (UNIMPLEMENTED) gets one metrics call and one warning."""
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    calls: list[str] = []

    class Interceptor(grpc.ServerInterceptor):  # type: ignore[misc]
        def intercept_service(self, continuation: Any, details: Any) -> Any:
            calls.append(details.method)
            return continuation(details)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), interceptors=[Interceptor()])
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
        trace_service_pb2_grpc.TraceServiceServicer(), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        exporter = _export.otlp_metric_exporter(url, "grpc", {})
        with caplog.at_level(logging.DEBUG):
            record_and_flush(exporter, 3)
    finally:
        server.stop(grace=None)
    assert calls == ["/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"]
    warnings = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and "metric" in r.name + r.getMessage()
    ]
    assert [r.name for r in warnings] == ["otelite"]
    assert f"{url} does not accept metrics (gRPC UNIMPLEMENTED)" in warnings[0].getMessage()


def test_metric_exporters_leave_no_threads_behind() -> None:
    """Each metric exporter's helper thread ends when the exporter shuts down (reconfiguring never piles up threads)."""

    def helpers() -> int:
        return sum(t.name == "otelite metric export" for t in threading.enumerate())

    before = helpers()
    exporters = [
        _export.otlp_metric_exporter("http://127.0.0.1:9/v1/metrics", "http/protobuf", {})
        for _ in range(20)
    ]
    assert helpers() == before + 20
    for exporter in exporters:
        exporter.shutdown()
    deadline = time.monotonic() + 5
    while helpers() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert helpers() == before


def test_trace_only_backend_run_prints_one_line(tmp_path: Path) -> None:
    """A whole run against a backend refusing metrics: spans delivered, one warning on stderr, nothing else."""
    code = """
        import time
        import otelite
        from otelite import _config
        otelite.configure()
        calls = _config.active().meter.create_counter("otelite.test.calls")
        calls.add(1)
        with otelite.span("traced"):
            pass
        otelite.force_flush()
        calls.add(1)
        otelite.force_flush()
        print("EXITING", time.monotonic(), flush=True)
    """
    with answering(405, paths=("/v1/metrics",)) as (url, received):
        result, exit_s = run_script(code, {"OTEL_EXPORTER_OTLP_ENDPOINT": url}, tmp_path)
        names = [s["name"] for s in received.spans()]
        metric_requests = [p for p in received.paths if p == "/v1/metrics"]
    assert result.returncode == 0, result.stderr
    assert names == ["traced"]
    assert metric_requests == ["/v1/metrics"]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"otelite: {url}/v1/metrics does not accept metrics (HTTP 405)")
    assert exit_s < EXIT_BOUND_S


# --- fork -------------------------------------------------------------------------------------------


def test_forked_child_delivers_its_own_spans(tmp_path: Path) -> None:
    """After fork(), the child's processor has a fresh worker: its spans arrive, none of the parent's twice."""
    code = """
        import os, time
        import otelite
        otelite.configure(endpoint={url!r})
        with otelite.span("parent-before"):
            pass
        pid = os.fork()
        if pid == 0:
            with otelite.span("child"):
                pass
            ok = otelite.force_flush(timeout_millis=5000)
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        with otelite.span("parent-after"):
            pass
        assert otelite.force_flush(timeout_millis=5000)
        print("EXITING", time.monotonic(), flush=True)
    """
    if not hasattr(os, "fork"):
        pytest.skip("no fork() on this platform")
    with http_receiver() as (url, received):
        result, _ = run_script(code.format(url=url), {}, tmp_path)
        names = sorted(s["name"] for s in received.spans())
    assert result.returncode == 0, result.stderr
    assert names == ["child", "parent-after", "parent-before"]


def test_exemplars_that_name_no_span_are_dropped_before_encoding() -> None:
    """An exemplar with no span id (opentelemetry-sdk 1.28, observable callbacks) never fails
    the OTLP metrics export: it is dropped, the linked one and the point's value are kept."""
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
    from opentelemetry.sdk.metrics import Exemplar
    from opentelemetry.sdk.metrics.export import (
        AggregationTemporality,
        Metric,
        MetricsData,
        NumberDataPoint,
        ResourceMetrics,
        ScopeMetrics,
        Sum,
    )
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

    from otelite._export import _without_unlinked_exemplars

    linked = Exemplar({}, 3, 1, span_id=0x1, trace_id=0x2)
    unlinked = Exemplar({}, 4, 1, span_id=None, trace_id=None)  # type: ignore[arg-type]
    point = NumberDataPoint({"k": "v"}, 0, 1, 7, exemplars=[linked, unlinked])
    metric = Metric("m", "", "1", Sum([point], AggregationTemporality.CUMULATIVE, True))
    data = MetricsData(
        [ResourceMetrics(Resource({}), [ScopeMetrics(InstrumentationScope("s"), [metric], "")], "")]
    )
    cleaned = _without_unlinked_exemplars(data)
    [kept_point] = cleaned.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points
    assert (kept_point.value, kept_point.attributes, kept_point.exemplars) == (
        7,
        {"k": "v"},
        [linked],
    )
    encode_metrics(cleaned)  # does not raise
    clean_data = _without_unlinked_exemplars(cleaned)
    assert clean_data is cleaned  # nothing to drop: the same object, no copy
