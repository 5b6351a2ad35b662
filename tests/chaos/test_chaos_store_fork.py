"""Chaos: the local store across fork() and a full disk; metrics memory on the instrument-only path.

Fork and exit behaviour runs in a subprocess with a timeout, so a hang fails the test
instead of hanging pytest; the forked child is killed by its parent after a bound.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

import otelite
from otelite.store import LocalStore, _writer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

# Parent: the store's export thread is stopped inside a write transaction (holding the
# writer's lock) when the main thread forks. The child records a span and exits normally
# (otelite flushes at exit); the parent gives it CHILD_BOUND_S to exit, then kills it.
_FORK_SCRIPT = """
import json, os, signal, sys, threading, time, warnings

warnings.simplefilter("ignore", DeprecationWarning)  # 3.12: fork() with threads running

import otelite
from otelite.store import _writer

store, mode = sys.argv[1], sys.argv[2]
CHILD_BOUND_S = 10.0
parent_pid = os.getpid()
in_write = threading.Event()
resume = threading.Event()
original_row = _writer.SpanWriter._row


def slow_row(self, conn, span, *hexes):
    # Only the parent's first span stalls, inside the transaction, with the lock held.
    if os.getpid() == parent_pid and span.name == "parent-busy":
        in_write.set()
        resume.wait(30)
    return original_row(self, conn, span, *hexes)


_writer.SpanWriter._row = slow_row
otelite.configure(local_store=store)
if mode == "busy":
    # The write in progress ends as soon as fork() starts (a short batch being committed).
    os.register_at_fork(before=resume.set)
with otelite.span("parent-busy"):
    pass
threading.Thread(target=otelite.force_flush, daemon=True).start()
if not in_write.wait(30):
    print(json.dumps({"error": "the export thread never started writing"}))
    sys.exit(3)

pid = os.fork()
if pid == 0:
    with otelite.span("child-span", origin="child"):
        pass
    sys.exit(0)  # a normal exit: otelite flushes and shuts down at exit

resume.set()
deadline = time.monotonic() + CHILD_BOUND_S
status = None
while time.monotonic() < deadline:
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = st
        break
    time.sleep(0.02)
if status is None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
with otelite.span("parent-after"):
    pass
flushed = otelite.force_flush()
otelite.shutdown()
print(json.dumps({
    "child_exit": None if status is None else os.waitstatus_to_exitcode(status),
    "parent_flushed": flushed,
}))
"""


def _run_fork_script(tmp_path: Path, mode: str) -> tuple[dict[str, Any], str]:
    script = tmp_path / "fork_script.py"
    script.write_text(textwrap.dedent(_FORK_SCRIPT))
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELITE_"))}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the parent process hung\n{err}")
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), err


def _stored(store: Path) -> tuple[list[tuple[str, dict[str, Any]]], str]:
    with LocalStore(store) as reader:
        spans = sorted((s.name, s.attributes) for s in reader.all_spans())
    conn = sqlite3.connect(str(store / "otelite.db"))
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    return spans, integrity


def test_fork_during_store_write_child_exits_and_stores_its_spans(tmp_path: Path) -> None:
    """fork() while the export thread is inside a store write: the child exits normally and its span is stored."""
    result, err = _run_fork_script(tmp_path, "busy")
    assert result == {"child_exit": 0, "parent_flushed": True}, err
    spans, integrity = _stored(tmp_path / "store")
    assert spans == [
        ("child-span", {"origin": "child"}),
        ("parent-after", {}),
        ("parent-busy", {}),
    ]
    assert integrity == "ok"
    assert "Traceback" not in err


def test_fork_while_store_write_is_stuck_child_still_exits(tmp_path: Path) -> None:
    """fork() while a store write is stuck: the child exits within the bound, drops its spans with a warning, the parent's data is intact."""
    result, err = _run_fork_script(tmp_path, "stuck")
    assert result == {"child_exit": 0, "parent_flushed": True}, err
    spans, integrity = _stored(tmp_path / "store")
    # The child never touches SQLite (the parent's transaction was open at fork): its span is
    # dropped with one warning saying why, and the parent's spans are all there.
    assert spans == [("parent-after", {}), ("parent-busy", {})]
    assert integrity == "ok"
    assert err.count("forked while the local store") == 1, err


_READER_SCRIPT = """
import json, os, sys, time

import otelite
from otelite.store import LocalStore

store = sys.argv[1]
otelite.configure(local_store=store)
with otelite.span("before-fork"):
    pass
otelite.force_flush()
reader = LocalStore(store)
parent_conn = reader._conn
assert [s.name for s in reader.all_spans()] == ["before-fork"]
read_end, write_end = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(read_end)
    names = [s.name for s in reader.all_spans()]
    own = reader._conn is not parent_conn
    reader.close()
    os.write(write_end, json.dumps({"names": names, "own_connection": own}).encode())
    os.close(write_end)
    sys.exit(0)
os.close(write_end)
deadline = time.monotonic() + 10
while time.monotonic() < deadline and os.waitpid(pid, os.WNOHANG)[0] == 0:
    time.sleep(0.02)
child = json.loads(os.read(read_end, 65536) or b"null")
with otelite.span("after-fork"):
    pass
otelite.force_flush()
print(json.dumps({
    "child": child,
    "parent_same_connection": reader._conn is parent_conn,
    "parent_reads": sorted(s.name for s in reader.all_spans()),
}))
reader.close()
otelite.shutdown()
"""


def test_reader_opened_before_fork_reopens_in_the_child(tmp_path: Path) -> None:
    """A LocalStore opened before fork(): the child reads through its own connection, the parent's keeps working."""
    script = tmp_path / "reader_script.py"
    script.write_text(textwrap.dedent(_READER_SCRIPT))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELITE_"))}
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "store")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "child": {"names": ["before-fork"], "own_connection": True},
        "parent_same_connection": True,
        "parent_reads": ["after-fork", "before-fork"],
    }


def test_disk_full_reports_the_real_error(
    tmp_path: Path,
    contained_errors: None,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full disk during a store write: the warning's traceback names 'database or disk is full', not a failed rollback."""
    opened: list[sqlite3.Connection] = []
    real_open = _writer.open_for_writing

    def open_then_fill(path: Path) -> sqlite3.Connection:
        conn = real_open(path)
        # The file may not grow any more: the next page SQLite needs is SQLITE_FULL.
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        opened.append(conn)
        return conn

    monkeypatch.setattr(_writer, "open_for_writing", open_then_fill)
    otelite.configure(tracer_provider=TracerProvider(), local_store=tmp_path)
    for i in range(3):
        with otelite.span("lost", attributes={"blob": "x" * 200_000, "i": i}):
            pass
        otelite.force_flush()
    assert opened
    warnings = [r for r in caplog.records if r.name == "otelite" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = logging.Formatter().format(warnings[0])
    assert "writing spans to the local store" in text
    assert "database or disk is full" in text
    assert "cannot rollback" not in text
    assert "no transaction is active" not in text
    # The writer stays usable: once there is room again, the next batch is stored.
    for conn in opened:
        conn.execute("PRAGMA max_page_count = 1073741823")
    with otelite.span("kept"):
        pass
    assert otelite.force_flush()
    with LocalStore(tmp_path) as reader:
        assert [s.name for s in reader.all_spans()] == ["kept"]


# The instrument-only path: the app sets up a TracerProvider, no meter provider, and only
# instruments openai (no configure()). Per call, the wrapper asks _config.active() for the
# meter and _metrics.instruments() for its instruments; 10,000 calls must create them once.
_METRICS_SCRIPT = """
import gc, json, sys
sys.path.insert(0, sys.argv[1])

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import otelite
from otelite import _config, _metrics
from fakeopenai import Recorder, chat_completion, client, json_response

made = []
real_init = _metrics._Instruments.__init__


def counting_init(self, meter):
    made.append(meter)
    real_init(self, meter)


_metrics._Instruments.__init__ = counting_init
trace.set_tracer_provider(TracerProvider())
otelite.instrument_openai()
llm = client(Recorder(lambda request: json_response(chat_completion())))


def chat():
    llm.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def proxies():
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == "_ProxyHistogram")


def per_call_steps(n):
    # What every instrumented call does to reach its instruments.
    for _ in range(n):
        _metrics.instruments(_config.active().meter).duration.record(0.5, {"k": "v"})


chat()
before = _metrics.instruments(_config.active().meter)
after_first = {"made": len(made), "proxies": proxies(), "cache": len(_metrics._instruments)}
per_call_steps(10_000)
for _ in range(200):
    chat()
after_many = {"made": len(made), "proxies": proxies(), "cache": len(_metrics._instruments)}

reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
before.duration.record(7.0, {"made": "before the meter provider was set"})
chat()


def points(name):
    found = []
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    found.extend(
                        (dict(p.attributes), p.count, p.sum) for p in metric.data.data_points
                    )
    return found


duration = points("gen_ai.client.operation.duration")
print(json.dumps({
    "after_first": after_first,
    "after_many": after_many,
    "made_after_set": len(made),
    "early_instrument": [p[1:] for p in duration if p[0].get("made")],
    "chat_points": sum(p[1] for p in duration if p[0].get("gen_ai.operation.name") == "chat"),
}))
"""


def test_instrument_only_path_creates_instruments_once(tmp_path: Path) -> None:
    """instrument_openai() without configure(): 10,000 calls create the GenAI instruments once, proxies still follow a later meter provider."""
    script = tmp_path / "metrics_script.py"
    script.write_text(textwrap.dedent(_METRICS_SCRIPT))
    tests_dir = str(Path(__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELITE_"))}
    proc = subprocess.run(
        [sys.executable, str(script), tests_dir],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # One set of instruments (5 histograms, 3 counters) for the one (proxy) meter provider.
    assert result["after_first"] == {"made": 1, "proxies": 5, "cache": 1}
    assert result["after_many"] == {"made": 1, "proxies": 5, "cache": 1}
    # After set_meter_provider: one more set on the real provider, and the instruments made
    # through the proxy before it record into the real provider.
    assert result["made_after_set"] == 2
    assert result["early_instrument"] == [[1, 7.0]]
    assert result["chat_points"] == 1


def test_instruments_cache_is_bounded() -> None:
    """However many distinct meters instrumentation sees, the instruments cache stays bounded."""
    from opentelemetry.metrics import NoOpMeter

    from otelite import _metrics

    meters = [NoOpMeter(f"m{i}") for i in range(1000)]
    for meter in meters:
        _metrics.instruments(meter)
    assert len(_metrics._instruments) <= _metrics.MAX_METERS
    # The most recent meter is still cached: the same instruments come back.
    assert _metrics.instruments(meters[-1]) is _metrics.instruments(meters[-1])
