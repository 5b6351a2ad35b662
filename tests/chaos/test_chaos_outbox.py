"""Durable OTLP delivery: spans whose export failed wait in an on-disk outbox and are resent.

A counting collector on 127.0.0.1 records every span id it accepts; it can be made to
refuse (closed port, 503, 429 with ``Retry-After``), recover, and restart on the same
port. Backoff is made small through the outbox's module constants, so no test waits on
real backoff; duration bounds are generous "does not hang" limits.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import TracerProvider

import otelite
from exit_timing import exit_seconds
from otelite import _config, _export, _outbox

WAIT_S = 20.0  # "eventually" bound for deliveries that take well under a second
EXIT_BOUND_S = 6.0  # the exit budget is 2 s


class CountingCollector:
    """An OTLP/HTTP collector that records each accepted span, and can fail on demand.

    ``answer`` is the status of the next requests (200 accepts and records; anything else
    records nothing); ``retry_after`` goes with a non-200 answer. ``stop()`` shuts the
    server down gracefully (requests in flight are answered) and frees the port;
    ``start()`` listens on the same port again.
    """

    def __init__(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self.answer = 200
        self.retry_after: Optional[str] = None
        self.delay_s = 0.0
        self.spans: list[tuple[str, str, str]] = []  # (trace id, span id, name), in arrival order
        self.requests: list[tuple[float, int]] = []  # (monotonic time, status answered)
        self.lock = threading.Lock()
        self.on_accept: Optional[Callable[[int], None]] = None
        self._server: Optional[ThreadingHTTPServer] = None

    def start(self) -> None:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if collector.delay_s:
                    time.sleep(collector.delay_s)
                if self.path.partition("?")[0] != "/v1/traces":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with collector.lock:
                    status = collector.answer
                    collector.requests.append((time.monotonic(), status))
                    if status == 200:
                        request = ExportTraceServiceRequest.FromString(body)
                        for rs in request.resource_spans:
                            for ss in rs.scope_spans:
                                for span in ss.spans:
                                    collector.spans.append(
                                        (span.trace_id.hex(), span.span_id.hex(), span.name)
                                    )
                        accepted = len(collector.requests)
                reply = ExportTraceServiceResponse().SerializeToString() if status == 200 else b""
                self.send_response(status)
                if status != 200 and collector.retry_after is not None:
                    self.send_header("Retry-After", collector.retry_after)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                if status == 200 and collector.on_accept is not None:
                    collector.on_accept(accepted)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def span_ids(self) -> list[str]:
        with self.lock:
            return [span_id for _, span_id, _ in self.spans]


@pytest.fixture
def collector() -> Iterator[CountingCollector]:
    """A counting collector, not started (its port is closed until ``start()``)."""
    c = CountingCollector()
    yield c
    c.stop()


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small backoff, short export timeout, small batches, quick batching."""
    monkeypatch.setattr(_outbox, "_BACKOFF_BASE_S", 0.01)
    monkeypatch.setattr(_outbox, "_BACKOFF_MAX_S", 0.05)
    monkeypatch.setattr(_outbox, "_IDLE_POLL_S", 0.05)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "10")
    monkeypatch.delenv("OTELITE_OUTBOX", raising=False)
    monkeypatch.delenv("OTELITE_OUTBOX_MAX_MB", raising=False)


def wait_for(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def otlp_processor() -> _export.BatchProcessor:
    swappable = _config._state.swappable
    assert swappable is not None
    found = [
        p
        for p in swappable.processors
        if isinstance(p, _export.BatchProcessor)
        and not isinstance(p.exporter, _export.LocalStoreExporter)
    ]
    assert len(found) == 1
    return found[0]


def make_traces(
    provider: TracerProvider, traces: int, spans_per_trace: int
) -> dict[str, list[str]]:
    """End ``spans_per_trace`` spans in each of ``traces`` traces; span ids per trace, in end order."""
    tracer = provider.get_tracer("outbox-test")
    ended: dict[str, list[str]] = {}
    for t in range(traces):
        with tracer.start_as_current_span(f"trace-{t}") as root:
            trace_id = format(root.get_span_context().trace_id, "032x")
            ids = ended.setdefault(trace_id, [])
            for i in range(spans_per_trace - 1):
                with tracer.start_as_current_span(f"step-{t}-{i}") as child:
                    pass
                ids.append(format(child.get_span_context().span_id, "016x"))
        ids.append(format(root.get_span_context().span_id, "016x"))
    return ended


def outbox_spans(path: Path) -> int:
    return sum(spans for _, spans in _outbox.pending(path).values())


def test_outage_then_recovery_delivers_every_span_exactly_once_in_trace_order(
    collector: CountingCollector,
) -> None:
    """Spans ended while the collector is down, then refusing (503, 429), all arrive once, in order."""
    provider = TracerProvider()
    otelite.configure(
        tracer_provider=provider, endpoint=collector.url
    )  # store off: .otelite/outbox.db
    outbox_path = Path(".otelite") / "outbox.db"
    ended = make_traces(provider, traces=5, spans_per_trace=8)
    assert wait_for(lambda: outbox_spans(outbox_path) == 40), "spans did not reach the outbox"
    collector.answer = 503
    collector.start()
    more = make_traces(provider, traces=5, spans_per_trace=8)  # queue behind the outbox
    assert wait_for(lambda: len(collector.requests) >= 3)
    collector.answer = 200
    assert wait_for(lambda: len(collector.spans) >= 80)
    time.sleep(0.3)  # a duplicate would show up here
    expected = {**ended, **more}
    received = collector.span_ids()
    assert sorted(received) == sorted(i for ids in expected.values() for i in ids)
    assert len(set(received)) == len(received) == 80
    for trace_id, ids in expected.items():
        order = [span_id for t, span_id, _ in collector.spans if t == trace_id]
        assert order == ids, f"trace {trace_id} arrived out of order"
    assert wait_for(lambda: outbox_spans(outbox_path) == 0)
    processor = otlp_processor()
    assert processor.dropped == dict.fromkeys(_export.DROP_REASONS, 0)
    assert processor.outboxed == 80
    assert processor.outbox is not None
    assert processor.outbox.delivered == 80


def test_retry_after_is_honoured(collector: CountingCollector) -> None:
    """After a 429 with Retry-After: 1, the outbox sends nothing for that second."""
    provider = TracerProvider()
    otelite.configure(tracer_provider=provider, endpoint=collector.url)
    make_traces(provider, traces=1, spans_per_trace=3)
    assert wait_for(lambda: outbox_spans(Path(".otelite/outbox.db")) == 3)
    collector.answer, collector.retry_after = 429, "1"
    collector.start()
    assert wait_for(lambda: len(collector.requests) >= 1)
    collector.answer = 200
    assert wait_for(lambda: len(collector.spans) == 3)
    (refused_at, status), (next_at, _) = collector.requests[0], collector.requests[1]
    assert status == 429
    assert next_at - refused_at >= 0.9, (
        collector.requests
    )  # without Retry-After the next try came after ~0.01 s


def run_child(
    code: str, env: dict[str, str], cwd: Path
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``code`` in a fresh interpreter; return the result and the seconds its exit took.

    ``code`` prints ``time.monotonic()`` as its last act (see ``exit_timing``): the exit is
    timed from there, without the interpreter's start-up.
    """
    full_env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
        "OTEL_METRICS_EXPORTER": "none",
        **env,
    }
    for name in ("OTELITE_HOME", "OTELITE_OUTBOX", "OTELITE_OUTBOX_MAX_MB"):
        full_env.pop(name, None) if name not in env else None
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc, exit_seconds(proc, time.monotonic())


WORK = """
import time
import otelite
from otelite import _outbox
_outbox._BACKOFF_BASE_S = 0.01
_outbox._BACKOFF_MAX_S = 0.05
from opentelemetry import trace
otelite.configure(endpoint={url!r}, service_name="outbox-child")
tracer = trace.get_tracer("child")
for i in range({n}):
    with tracer.start_as_current_span(f"child-{{i}}"):
        pass
"""
EXITING = """
print("EXITING", time.monotonic(), flush=True)
"""
CHILD = WORK + EXITING


def waiting_child(flag: str, label: str) -> str:
    """The same, ending only once an outbox has ``flag`` set (printed as ``label: True``)."""
    wait = f"""
deadline = time.monotonic() + 20
while time.monotonic() < deadline and not any(o.{flag} for o in list(_outbox._instances)):
    time.sleep(0.01)
print("{label}:", any(o.{flag} for o in list(_outbox._instances)), flush=True)
"""
    return WORK + wait + EXITING


# The outbox's sender has a request in flight.
SENDING_CHILD = waiting_child("_posting", "sending")


def test_exit_during_outage_leaves_the_outbox_and_the_next_process_drains_it(
    collector: CountingCollector, tmp_path: Path
) -> None:
    """A process exiting while the collector is down keeps its spans; the next start sends them once."""
    proc, exit_s = run_child(CHILD.format(url=collector.url, n=60), {}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert exit_s < EXIT_BOUND_S, (exit_s, proc.stderr)
    outbox_path = tmp_path / ".otelite" / "outbox.db"
    assert outbox_spans(outbox_path) == 60
    assert "kept in the outbox" in proc.stderr
    collector.start()
    provider = TracerProvider()
    otelite.configure(tracer_provider=provider, endpoint=collector.url)  # cwd is tmp_path
    assert wait_for(lambda: len(collector.spans) == 60)
    assert wait_for(lambda: outbox_spans(outbox_path) == 0)
    time.sleep(0.3)
    names = sorted(name for _, _, name in collector.spans)
    assert names == sorted(f"child-{i}" for i in range(60))
    assert len(set(collector.span_ids())) == 60


def test_collector_restarted_mid_drain_loses_nothing_and_duplicates_nothing(
    collector: CountingCollector, tmp_path: Path
) -> None:
    """The collector stops (gracefully) and comes back while the outbox drains: every span once."""
    proc, _ = run_child(
        CHILD.format(url=collector.url, n=150), {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "5"}, tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    outbox_path = tmp_path / ".otelite" / "outbox.db"
    assert outbox_spans(outbox_path) == 150
    restarted = threading.Event()

    def restart_after_some(accepted: int) -> None:
        if accepted == 8 and not restarted.is_set():
            restarted.set()
            threading.Thread(target=restart, daemon=True).start()

    def restart() -> None:
        collector.stop()
        time.sleep(0.3)
        collector.start()

    collector.on_accept = restart_after_some
    collector.delay_s = 0.01
    collector.start()
    otelite.configure(tracer_provider=TracerProvider(), endpoint=collector.url)
    assert wait_for(lambda: len(collector.spans) >= 150)
    assert restarted.is_set()
    assert wait_for(lambda: outbox_spans(outbox_path) == 0)
    time.sleep(0.3)
    ids = collector.span_ids()
    assert len(ids) == len(set(ids)) == 150
    assert sorted(name for _, _, name in collector.spans) == sorted(
        f"child-{i}" for i in range(150)
    )


def test_two_processes_draining_one_outbox_send_each_span_once(
    collector: CountingCollector, tmp_path: Path
) -> None:
    """Two processes started on the same outbox: one sender at a time, each span delivered once."""
    proc, _ = run_child(
        CHILD.format(url=collector.url, n=100), {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "5"}, tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    collector.delay_s = 0.01
    collector.start()
    drain = f"""
    import time, otelite
    from otelite import _outbox
    otelite.configure(endpoint={collector.url!r})
    path = __import__("pathlib").Path(".otelite/outbox.db")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _outbox.pending(path):
        time.sleep(0.02)
    """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(drain)],
            cwd=tmp_path,
            env={**os.environ, "OTEL_METRICS_EXPORTER": "none"},
        )
        for _ in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=60) == 0
    ids = collector.span_ids()
    assert len(ids) == len(set(ids)) == 100


def test_size_cap_evicts_oldest_first_and_counts(
    collector: CountingCollector, tmp_path: Path
) -> None:
    """Past its cap the outbox drops its oldest requests, counts them, and sends the newest."""
    provider = TracerProvider()
    tracer = provider.get_tracer("cap")
    spans = []
    for i in range(10):
        with tracer.start_as_current_span(f"span-{i}", attributes={"pad": "x" * 500}) as span:
            pass
        spans.append(span)
    one = len(_export.encode_spans_request([spans[0]]))
    path = tmp_path / "outbox.db"
    url = collector.url + "/v1/traces"
    box = _outbox.Outbox(path, url, {}, 1.0, max_bytes=3 * one + one // 2)
    box.close()  # no sender in this one: a request in a sender's hand is never evicted
    for span in spans:
        assert box.put(_export.encode_spans_request([span]), 1)
    assert box.evicted == 7
    sender = _outbox.Outbox(path, url, {}, 1.0, max_bytes=3 * one + one // 2)
    try:
        conn = sqlite3.connect(path)
        try:
            stats = dict(conn.execute("SELECT name, value FROM outbox_stats").fetchall())
        finally:
            conn.close()
        assert stats == {"evicted_spans": 7}
        assert _outbox.pending(path) == {url: (3, 3)}
        collector.start()
        sender.start()
        assert wait_for(lambda: len(collector.spans) == 3)
        time.sleep(0.2)
        assert [name for _, _, name in collector.spans] == ["span-7", "span-8", "span-9"]
    finally:
        sender.close()


def test_exit_is_bounded_while_the_outbox_holds_data(tmp_path: Path) -> None:
    """With a full outbox and a collector that never answers, exit still ends within the budget."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)  # accepts connections, never answers
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        # This run only fills the outbox: a budget that a loaded machine cannot overrun.
        first, _ = run_child(CHILD.format(url=url, n=50), {"OTELITE_EXIT_TIMEOUT": "30"}, tmp_path)
        assert first.returncode == 0, first.stderr
        outbox_path = tmp_path / ".otelite" / "outbox.db"
        assert outbox_spans(outbox_path) == 50
        proc, exit_s = run_child(
            SENDING_CHILD.format(url=url, n=50), {"OTEL_EXPORTER_OTLP_TIMEOUT": "30"}, tmp_path
        )
        assert proc.returncode == 0, proc.stderr
        assert "sending: True" in proc.stdout, proc.stdout  # the exit begins with it in flight
        assert exit_s < EXIT_BOUND_S, (exit_s, proc.stderr)  # that request would hang 30 s
        assert outbox_spans(outbox_path) == 100
    finally:
        sock.close()


# The batch processor's worker has a request in flight (the outbox is empty: its sender
# has nothing to post).
DIRECT_CHILD = waiting_child("_in_flight", "attempting")


def test_a_batch_being_sent_when_the_exit_budget_runs_out_is_kept_in_the_outbox(
    tmp_path: Path,
) -> None:
    """The exit begins while the worker waits on a collector that never answers: the exit
    still ends within the budget, and the batch it was sending is kept in the outbox (the
    next process sends it), not counted as dropped."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)  # accepts connections, never answers
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        proc, exit_s = run_child(
            DIRECT_CHILD.format(url=url, n=50), {"OTEL_EXPORTER_OTLP_TIMEOUT": "30"}, tmp_path
        )
    finally:
        sock.close()
    assert proc.returncode == 0, proc.stderr
    assert "attempting: True" in proc.stdout, proc.stdout  # the exit begins with it in flight
    assert exit_s < EXIT_BOUND_S, (exit_s, proc.stderr)  # that request would hang 30 s
    assert outbox_spans(tmp_path / ".otelite" / "outbox.db") == 50
    assert "kept in the outbox" in proc.stderr, proc.stderr
    assert "shutdown timeout" not in proc.stderr, proc.stderr  # nothing counted as dropped


def test_a_changed_endpoint_does_not_receive_another_endpoints_spans(
    collector: CountingCollector, tmp_path: Path
) -> None:
    """Rows kept for one URL are never sent to another one."""
    dead = CountingCollector()  # never started
    proc, _ = run_child(CHILD.format(url=dead.url, n=20), {}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    collector.start()
    provider = TracerProvider()
    otelite.configure(tracer_provider=provider, endpoint=collector.url)
    make_traces(provider, traces=1, spans_per_trace=2)
    assert wait_for(lambda: len(collector.spans) == 2)
    time.sleep(0.3)
    assert len(collector.spans) == 2
    assert _outbox.pending(tmp_path / ".otelite" / "outbox.db") == {
        dead.url + "/v1/traces": (2, 20)
    }


@pytest.mark.parametrize("how", ["argument", "variable"])
def test_outbox_opt_out_counts_failures_and_writes_nothing(
    how: str, collector: CountingCollector, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """configure(outbox=False) / OTELITE_OUTBOX=false: failed exports are dropped and counted, no file."""
    provider = TracerProvider()
    if how == "argument":
        otelite.configure(tracer_provider=provider, endpoint=collector.url, outbox=False)
    else:
        monkeypatch.setenv("OTELITE_OUTBOX", "false")
        otelite.configure(tracer_provider=provider, endpoint=collector.url)
    make_traces(provider, traces=1, spans_per_trace=4)
    assert otelite.force_flush(5000) is False
    processor = otlp_processor()
    assert processor.outbox is None
    assert processor.dropped["export_failed"] == 4
    assert processor.outboxed == 0
    assert not (tmp_path / ".otelite").exists()


def test_no_writable_location_counts_drops_and_never_raises(
    collector: CountingCollector, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the outbox cannot be created, failed spans are counted as dropped, nothing raises."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("OTELITE_HOME", str(blocker / "sub"))
    provider = TracerProvider()
    otelite.configure(tracer_provider=provider, endpoint=collector.url)
    make_traces(provider, traces=1, spans_per_trace=3)
    assert otelite.force_flush(5000) is False
    processor = otlp_processor()
    assert processor.dropped["export_failed"] == 3
    assert processor.outboxed == 0


def test_spans_queued_at_exit_go_to_the_outbox(tmp_path: Path) -> None:
    """Spans still queued when the exit budget runs out are kept in the outbox, not lost."""
    code = """
    import time
    import otelite
    from opentelemetry import trace
    otelite.configure(endpoint={url!r}, exit_timeout=0.5)
    tracer = trace.get_tracer("child")
    for i in range(3000):
        with tracer.start_as_current_span(f"child-{{i}}"):
            pass
    print("EXITING", time.monotonic(), flush=True)
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)  # accepts connections, never answers: the first request hangs
    try:
        proc, exit_s = run_child(
            code.format(url=f"http://127.0.0.1:{sock.getsockname()[1]}"),
            {
                "OTEL_BSP_SCHEDULE_DELAY": "60000",
                "OTEL_BSP_MAX_QUEUE_SIZE": "5000",
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10",
                "OTEL_EXPORTER_OTLP_TIMEOUT": "30",
            },
            tmp_path,
        )
    finally:
        sock.close()
    assert proc.returncode == 0, proc.stderr
    assert exit_s < EXIT_BOUND_S, (exit_s, proc.stderr)
    # The first batch (10) is in flight when the budget runs out: its answer would come
    # after the process ended, so it is kept, first, and the 2,990 still queued behind it.
    path = tmp_path / ".otelite" / "outbox.db"
    assert outbox_spans(path) == 3000
    with sqlite3.connect(path) as conn:
        rows = [n for (n,) in conn.execute("SELECT spans FROM outbox ORDER BY id")]
    assert rows[0] == 10
    assert sum(rows[1:]) == 2990
    assert "shutdown timeout" not in proc.stderr, proc.stderr


def test_reconfiguring_hands_the_outbox_over_at_once(collector: CountingCollector) -> None:
    """configure() again with the same endpoint: the new pipeline drains the old one's outbox."""
    provider = TracerProvider()
    otelite.configure(tracer_provider=provider, endpoint=collector.url, service_name="a")
    make_traces(provider, traces=2, spans_per_trace=5)
    assert wait_for(lambda: outbox_spans(Path(".otelite/outbox.db")) == 10)
    otelite.configure(tracer_provider=provider, endpoint=collector.url, service_name="b")
    collector.start()
    assert wait_for(lambda: len(collector.spans) == 10, timeout_s=10)  # a lease lasts 30 s
    time.sleep(0.3)
    assert len(set(collector.span_ids())) == len(collector.spans) == 10
