"""Durability: what otelite keeps under bursts, exits, worker processes, outages and torn files.

Run with `nox -s durability` (`--long` for the 60 s outage; default 10 s). Every scenario
runs in real processes against fakes on 127.0.0.1 (an OTLP/HTTP collector that can be
slow, stopped and restarted on the same port), with otelite's default settings. It
writes the table into docs/reliability.md (between its durability markers) and prints it.

Newer settings are used when this otelite has them (checked with inspect.signature):
``configure(handle_signals=True)`` for the SIGTERM and worker rows, ``configure(outbox=True)``
for the outage rows; the table says which were on.
"""

from __future__ import annotations

import argparse
import gzip
import inspect
import os
import platform
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional

import otelite

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "reliability.md"
START, END = "<!-- durability:start -->", "<!-- durability:end -->"
CHILD_TIMEOUT_S = 600.0

_params = inspect.signature(otelite.configure).parameters
HAS_SIGNALS = "handle_signals" in _params
HAS_OUTBOX = "outbox" in _params


# --- a fake OTLP/HTTP collector ------------------------------------------------------------


@dataclass
class Collected:
    """Span ids received (every copy), across restarts of the collector."""

    ids: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def unique(self) -> int:
        with self.lock:
            return len(set(self.ids))

    @property
    def total(self) -> int:
        with self.lock:
            return len(self.ids)


class Collector:
    """An OTLP/HTTP receiver on 127.0.0.1 that answers after ``delay_s``; stop and start it at will."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.received = Collected()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self._server: Optional[ThreadingHTTPServer] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                answer = b""
                if self.path.split("?")[0].endswith("/v1/traces"):
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    ids = [
                        span.span_id
                        for rs in request.resource_spans
                        for ss in rs.scope_spans
                        for span in ss.spans
                    ]
                    if collector.delay_s:
                        time.sleep(collector.delay_s)
                    with collector.received.lock:
                        collector.received.ids.extend(ids)
                    answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that went away (its process exited): nothing to report

        server = Server(("127.0.0.1", self.port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()


@contextmanager
def collector(delay_s: float = 0.0) -> Iterator[Collector]:
    fake = Collector(delay_s)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


# --- running children ------------------------------------------------------------------


def child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELITE_"))}
    env["OTELITE_HOME"] = str(home)
    env["OTEL_METRICS_EXPORTER"] = "none"  # spans are what is counted here
    env["PYTHONWARNINGS"] = "ignore::DeprecationWarning"  # fork() with threads (3.12+)
    return env


def script(workdir: Path, name: str, body: str) -> Path:
    path = workdir / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


_captured: list[str] = []  # children's stderr in the current scenario
# The exit summary line: "otelite: 3 spans could not be delivered to URL (reason: n)..."
_SUMMARY = re.compile(r"otelite: (\d+) spans? could not be delivered to (.+?) \(")


def capture(err: str) -> None:
    _captured.append(err)
    sys.stderr.write(err[-2000:])


def counted(where: str) -> int:
    """Spans the children reported (in their exit summary line) as not delivered to ``where``."""
    return sum(
        int(m.group(1))
        for text in _captured
        for m in _SUMMARY.finditer(text)
        if where in m.group(2)
    )


def notes(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def lost(kept: int, total: int, where: str) -> str:
    """How many were lost, and how many of those the children counted."""
    if kept >= total:
        return ""
    return f"{total - kept:,} lost, {counted(where):,} counted"


def run(workdir: Path, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(path), *args],
        cwd=workdir,
        env=child_env(workdir / "home"),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    if result.returncode != 0:
        sys.stderr.write(f"{path.name} {' '.join(args)} exited {result.returncode}\n")
    capture(result.stderr)
    return result


def stored(db: Path, name: Optional[str] = None) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        if name is None:
            return int(conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0])
        return int(conn.execute("SELECT COUNT(*) FROM spans WHERE name = ?", (name,)).fetchone()[0])
    finally:
        conn.close()


def outbox_spans(workdir: Path) -> int:
    """Spans waiting in the outbox (its ``outbox`` table), in any SQLite file under ``workdir``.

    Spans, not rows: one row is one OTLP request of many spans.
    """
    total = 0
    for db in workdir.rglob("*.db"):
        try:
            conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
            try:
                total += int(
                    conn.execute("SELECT COALESCE(SUM(spans), 0) FROM outbox").fetchone()[0]
                )
            finally:
                conn.close()
        except sqlite3.Error:  # not an outbox
            continue
    return total


def drain(workdir: Path, url: str, store: Optional[Path], limit_s: float) -> None:
    """Start otelite again with the same endpoint (and store) until the outbox is empty."""
    args = [url, str(limit_s)] + ([str(store)] if store is not None else [])
    run(workdir, script(workdir, "drain_until_empty", DRAIN_UNTIL_EMPTY), *args)


@dataclass
class Row:
    scenario: str
    kept: int
    total: int
    detail: str = ""

    def line(self) -> str:
        if self.total and self.kept == self.total:
            percent = "100"
        else:  # rounded down: "100" only when nothing was lost
            share = self.kept / self.total if self.total else 0.0
            percent = f"{int(share * 10000) / 100:.2f}"
        detail = f" ({self.detail})" if self.detail else ""
        return f"| {self.scenario} | {self.kept:,} / {self.total:,}{detail} | {percent} % |"


# --- scenarios -------------------------------------------------------------------------

PRELUDE = """
import inspect, os, sys, time, threading
import otelite
from opentelemetry import trace

PARAMS = inspect.signature(otelite.configure).parameters
def extra(**wanted):
    return {k: v for k, v in wanted.items() if k in PARAMS}
"""


def threads_slow_collector(workdir: Path) -> list[Row]:
    """8 threads x 5,000 calls, OTLP to a collector answering in 2 s, local store on."""
    body = PRELUDE + textwrap.dedent(
        """
    otelite.configure(endpoint=sys.argv[1], local_store=sys.argv[2], service_name="threads",
                      **extra(outbox=True))

    def work(t):
        for i in range(5000):
            with otelite.span("call", thread=t, i=i):
                pass

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads: th.start()
    for th in threads: th.join()
    """
    )
    path = script(workdir, "threads", body)
    store = workdir / "store"
    with collector(delay_s=2.0) as fake:
        run(workdir, path, fake.url, str(store))
        time.sleep(2.5)  # a request the exit left in flight is answered by now
        during = fake.received.unique
        held = outbox_spans(workdir)
        if HAS_OUTBOX and held:  # the next start (same endpoint and store) drains the outbox
            drain(workdir, fake.url, store, 180.0)
        delivered = fake.received.unique
        dupes = fake.received.total - delivered
    kept = stored(store / "otelite.db", "call")
    detail = ""
    if HAS_OUTBOX:
        detail = (
            f"{during:,} during the run, {held:,} kept in the outbox at exit and delivered "
            f"by the next start; {dupes} duplicate(s)"
        )
    return [
        Row(
            "8 threads × 5,000 calls, slow (2 s) collector: OTLP delivered",
            delivered,
            40_000,
            notes(lost(delivered, 40_000, "http://"), detail),
        ),
        Row(
            "8 threads × 5,000 calls, slow (2 s) collector: local store",
            kept,
            40_000,
            lost(kept, 40_000, "local store"),
        ),
    ]


WRITER = (
    PRELUDE
    + """
store, index, count, start_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
otelite.configure(local_store=store, service_name=f"writer-{index}")
tracer = trace.get_tracer("burst")
while time.time() < start_at:  # every process starts its burst at the same moment
    time.sleep(0.001)
for i in range(count):
    with tracer.start_as_current_span("burst"):
        pass
"""
)


def processes_burst(workdir: Path) -> list[Row]:
    """4 processes x 10,000 bare spans into one store, all at once."""
    path = script(workdir, "writer", WRITER)
    store = workdir / "store"
    start_at = time.time() + 3.0
    env = child_env(workdir / "home")
    procs = [
        subprocess.Popen(
            [sys.executable, str(path), str(store), str(n), "10000", str(start_at)],
            cwd=workdir,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=CHILD_TIMEOUT_S)
        capture(err)
    kept = stored(store / "otelite.db")
    return [
        Row(
            "4 processes × 10,000 spans into one store, burst",
            kept,
            40_000,
            lost(kept, 40_000, "local store"),
        )
    ]


def tight_loop(workdir: Path) -> list[Row]:
    """One process, 20,000 bare spans in a tight loop, store on."""
    path = script(workdir, "writer", WRITER)
    store = workdir / "store"
    run(workdir, path, str(store), "0", "20000", "0")
    kept = stored(store / "otelite.db")
    return [
        Row(
            "one process, 20,000 bare spans in a tight loop (store)",
            kept,
            20_000,
            lost(kept, 20_000, "local store"),
        )
    ]


def sigterm(workdir: Path) -> list[Row]:
    """SIGTERM 0.5 s after 3,000 spans (docker stop, Kubernetes, systemd)."""
    body = PRELUDE + textwrap.dedent(
        """
    otelite.configure(local_store=sys.argv[1], service_name="sigterm", **extra(handle_signals=True))
    tracer = trace.get_tracer("sigterm")
    for i in range(3000):
        with tracer.start_as_current_span("work"):
            pass
    print("ready", flush=True)
    time.sleep(60)
    """
    )
    path = script(workdir, "sigterm", body)
    store = workdir / "store"
    proc = subprocess.Popen(
        [sys.executable, str(path), str(store)],
        cwd=workdir,
        env=child_env(workdir / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=CHILD_TIMEOUT_S)
    capture(err)
    handler = "handle_signals=True" if HAS_SIGNALS else "no handler in this otelite"
    kept = stored(store / "otelite.db")
    return [
        Row(
            "SIGTERM 0.5 s after 3,000 spans",
            kept,
            3_000,
            notes(handler, lost(kept, 3_000, "local store")),
        )
    ]


WORKERS = (
    PRELUDE
    + """
import concurrent.futures, multiprocessing

def task(i):
    with otelite.span("task"):
        pass
    return i

def body(n):
    for i in range(n):
        task(i)

if __name__ == "__main__":
    otelite.configure(local_store=sys.argv[1], service_name="workers", **extra(handle_signals=True))
    ctx = multiprocessing.get_context("fork")
    kind, count = sys.argv[2], int(sys.argv[3])
    if kind == "Pool":
        pool = ctx.Pool(4)
        pool.map(task, range(count))
        pool.close()
        pool.join()
    elif kind == "Process":
        procs = [ctx.Process(target=body, args=(count // 4,)) for _ in range(4)]
        for p in procs: p.start()
        for p in procs: p.join()
    else:
        with concurrent.futures.ProcessPoolExecutor(4, mp_context=ctx) as ex:
            list(ex.map(task, range(count)))
"""
)


def workers(workdir: Path) -> list[Row]:
    """multiprocessing Pool / Process / ProcessPoolExecutor workers (fork start method)."""
    path = script(workdir, "workers", WORKERS)
    rows = []
    hook = "with otelite's hook" if HAS_SIGNALS else "no worker hook in this otelite"
    for kind, count in (("Pool", 3000), ("Process", 500), ("ProcessPoolExecutor", 3000)):
        store = workdir / f"store-{kind}"
        _captured.clear()
        run(workdir, path, str(store), kind, str(count))
        kept = stored(store / "otelite.db", "task")
        rows.append(
            Row(
                f"multiprocessing {kind} workers (fork), spans made in workers",
                kept,
                count,
                notes(hook, lost(kept, count, "local store")),
            )
        )
    return rows


STEADY = (
    PRELUDE
    + """
url, count, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
otelite.configure(endpoint=url, service_name="steady", **extra(outbox=True))
tracer = trace.get_tracer("steady")
next_at = time.monotonic()
for i in range(count):
    with tracer.start_as_current_span("steady"):
        pass
    next_at += 1 / rate
    time.sleep(max(0.0, next_at - time.monotonic()))
"""
)

DRAIN = (
    PRELUDE
    + """
otelite.configure(endpoint=sys.argv[1], service_name="steady", **extra(outbox=True))
time.sleep(float(sys.argv[2]))
"""
)

DRAIN_UNTIL_EMPTY = (
    PRELUDE
    + """
import sqlite3
from pathlib import Path
url, limit_s = sys.argv[1], float(sys.argv[2])
store = Path(sys.argv[3]) if len(sys.argv) > 3 else None
where = {"local_store": str(store)} if store is not None else {}
otelite.configure(endpoint=url, service_name="drain", **where, **extra(outbox=True))
outbox = (store if store is not None else Path(".otelite")) / "outbox.db"

def waiting():
    try:
        conn = sqlite3.connect(f"{outbox.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0

deadline = time.monotonic() + limit_s
while waiting() and time.monotonic() < deadline:
    time.sleep(0.2)
"""
)


def collector_down(workdir: Path) -> list[Row]:
    """The collector is down for the whole run (400 spans); then a later start with it up."""
    steady = script(workdir, "steady", STEADY)
    fake = Collector()  # not started: nothing listens on its port
    run(workdir, steady, fake.url, "400", "200")
    held = outbox_spans(workdir)
    detail = "no outbox in this otelite"
    delivered = 0
    if HAS_OUTBOX:
        fake.start()
        try:
            run(workdir, script(workdir, "drain", DRAIN), fake.url, "15")
            delivered = fake.received.unique
            dupes = fake.received.total - delivered
        finally:
            fake.stop()
        detail = (
            f"outbox held {held:,} spans after the run; delivered by the next start, "
            f"{dupes} duplicate(s)"
        )
    return [
        Row(
            "collector down for the whole run (400 spans), delivered",
            delivered,
            400,
            notes(lost(delivered, 400, "http://"), detail),
        )
    ]


def outage(workdir: Path, outage_s: float) -> list[Row]:
    """Steady traffic (20 spans/s); the collector is down for ``outage_s``, then back."""
    steady = script(workdir, "steady", STEADY)
    rate, before, after = 20.0, 2.0, 5.0
    count = int(rate * (before + outage_s + after))
    fake = Collector()
    fake.start()
    proc = subprocess.Popen(
        [sys.executable, str(steady), fake.url, str(count), str(rate)],
        cwd=workdir,
        env=child_env(workdir / "home"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(before)
        fake.stop()
        time.sleep(outage_s)
        fake.start()
        _, err = proc.communicate(timeout=CHILD_TIMEOUT_S)
        capture(err)
        if HAS_OUTBOX:
            run(workdir, script(workdir, "drain", DRAIN), fake.url, "15")
        delivered = fake.received.unique
        dupes = fake.received.total - delivered
    finally:
        fake.stop()
    return [
        Row(
            f"collector down {outage_s:g} s under steady traffic, then back, delivered",
            delivered,
            count,
            notes(
                lost(delivered, count, "http://"),
                f"{dupes} duplicate(s)",
                "" if HAS_OUTBOX else "no outbox in this otelite",
            ),
        )
    ]


PROMPTS = """
import shutil, sys, threading, time
from pathlib import Path
from otelite.prompts import PromptRegistry

live_dir, scratch_dir = Path(sys.argv[1]), Path(sys.argv[2])
scratch = PromptRegistry(scratch_dir)
VERSIONS = 40
files, labels = [], []
for k in range(1, VERSIONS + 1):
    scratch.push("qa", template="Answer from the context.\\n" * 200 + f"v{k} Q: {{{{question}}}}")
    scratch.set_label("qa", "production", k)
    files.append((scratch_dir / "qa" / f"v{k:04d}.prompt").name)
    labels.append((scratch_dir / "qa" / "labels.json").read_bytes())
(live_dir / "qa").mkdir(parents=True)
shutil.copy(scratch_dir / "qa" / files[0], live_dir / "qa" / files[0])
(live_dir / "qa" / "labels.json").write_bytes(labels[0])
registry = PromptRegistry(live_dir)
stop = threading.Event()


def in_place(target, data):  # like cp, an editor or git checkout: same inode, in pieces
    with open(target, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        time.sleep(0.001)
        f.write(data[len(data) // 2 :])


def writer():  # a deploy every 50 ms: a new version file, then the label moves to it
    for k in range(1, VERSIONS):
        if stop.is_set():
            return
        in_place(live_dir / "qa" / files[k], (scratch_dir / "qa" / files[k]).read_bytes())
        in_place(live_dir / "qa" / "labels.json", labels[k])
        time.sleep(0.05)


time.sleep(0.3)  # the app has been running: it has served the deployed version once
registry.get("qa").compile(question="q")
thread = threading.Thread(target=writer)
thread.start()
reads = failed = 0
while thread.is_alive():
    reads += 1
    try:
        text = registry.get("qa").compile(question="q")
        if "Q: q" not in text:
            failed += 1
    except Exception:
        failed += 1
thread.join()
time.sleep(2.0)  # every file is whole now (and past any reload interval)
after = 0
for _ in range(100):
    try:
        after += f"v{VERSIONS} Q: q" in registry.get("qa").compile(question="q")
    except Exception:
        pass
print(reads, failed, after)
"""


def prompt_file(workdir: Path) -> list[Row]:
    """A prompt version file rewritten in place while the app reads it."""
    path = script(workdir, "prompts", PROMPTS)
    result = run(workdir, path, str(workdir / "prompts"), str(workdir / "scratch"))
    try:
        reads, failed, after = (int(x) for x in result.stdout.split()[-3:])
    except ValueError:
        return [Row("prompt file written in place while the app reads it", 0, 1, "did not run")]
    return [
        Row(
            "prompt file written in place while the app reads it, good reads",
            reads - failed,
            reads,
            f"once the files were whole again: {after} / 100 reads of the last version",
        )
    ]


# --- the store writer's ingest rate ----------------------------------------------------

LLM_ATTRIBUTES = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.id": "chatcmpl-0123456789abcdef",
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.usage.input_tokens": 812,
    "gen_ai.usage.output_tokens": 96,
    "gen_ai.usage.cost": 0.0001794,
    "server.address": "api.openai.com",
    "server.port": 443,
    "user.id": "user-42",
    "session.id": "session-7",
}


def ingest(spans: int = 20_000, batch: int = 2048) -> str:
    """Spans per second that SpanWriter.write stores, wall clock and CPU time, one process."""
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    from otelite.store._writer import SpanWriter

    class Keep(SpanExporter):
        def __init__(self) -> None:
            self.spans: list[ReadableSpan] = []

        def export(self, spans: Any) -> SpanExportResult:
            self.spans.extend(spans)
            return SpanExportResult.SUCCESS

    parts = []
    for label, attributes in (
        ("bare spans", {}),
        ("LLM-call spans (13 attributes)", LLM_ATTRIBUTES),
    ):
        keep = Keep()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(keep))
        tracer = provider.get_tracer("ingest")
        for _ in range(spans):
            with tracer.start_as_current_span("chat gpt-4o-mini", attributes=attributes):
                pass
        with tempfile.TemporaryDirectory(prefix="otelite-ingest-") as tmp:
            writer = SpanWriter(Path(tmp) / "otelite.db")
            wall, cpu = time.perf_counter(), time.process_time()
            for start in range(0, spans, batch):
                writer.write(keep.spans[start : start + batch])
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            writer.close()
        parts.append(f"{label} {spans / wall:,.0f}/s ({spans / cpu:,.0f}/s of CPU time)")
    return f"Store writer ingest, one process, {batch} spans per transaction: " + ", ".join(parts)


# --- main ------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--long", action="store_true", help="a 60 s outage instead of 10 s")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the table")
    parser.add_argument("--only", nargs="*", help="run only these scenarios (by function name)")
    args = parser.parse_args()
    outage_s = 60.0 if args.long else 10.0
    scenarios = [
        threads_slow_collector,
        processes_burst,
        tight_loop,
        sigterm,
        workers,
        collector_down,
        lambda w: outage(w, outage_s),
        prompt_file,
    ]
    names = [
        "threads_slow_collector",
        "processes_burst",
        "tight_loop",
        "sigterm",
        "workers",
        "collector_down",
        "outage",
        "prompt_file",
    ]
    rows: list[Row] = []
    for name, scenario in zip(names, scenarios):
        if args.only and name not in args.only:
            continue
        started = time.monotonic()
        _captured.clear()
        with tempfile.TemporaryDirectory(prefix=f"otelite-durability-{name}-") as tmp:
            try:
                found = scenario(Path(tmp))
            except Exception as exc:  # one broken scenario must not hide the others
                found = [Row(name, 0, 1, f"failed: {type(exc).__name__}: {exc}")]
        for row in found:
            print(row.line(), flush=True)
        print(f"  ({name}: {time.monotonic() - started:.1f} s)", file=sys.stderr, flush=True)
        rows.extend(found)
    rate = ingest()
    print(rate, flush=True)
    load = ""
    if hasattr(os, "getloadavg"):
        load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    command = "nox -s durability" + (" -- --long" if args.long else "")
    text = "\n".join(
        [
            "## Measured: what is kept",
            "",
            f"`{command}` (benchmarks/durability.py) on Python {platform.python_version()}, "
            f"otelite {otelite.__version__}, {os.cpu_count()} CPUs{load}, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
            "Real processes, fakes on 127.0.0.1, default settings"
            + (", configure(handle_signals=True)" if HAS_SIGNALS else "")
            + (", configure(outbox=True)" if HAS_OUTBOX else "")
            + ".",
            "",
            rate + ".",
            "",
            "| scenario | kept | % |",
            "|---|---|---|",
            *(row.line() for row in rows),
            "",
        ]
    )
    if not args.only:
        # The table lives between two markers of the reliability page; the rest is prose.
        page = args.out.read_text() if args.out.exists() else f"{START}\n{END}\n"
        head, _, rest = page.partition(START)
        _, _, tail = rest.partition(END)
        args.out.write_text(f"{head}{START}\n{text}{END}{tail}")
    print()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
