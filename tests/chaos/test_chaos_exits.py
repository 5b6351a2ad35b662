"""Chaos: SIGTERM, SIGINT and multiprocessing workers keep every span.

Each scenario runs a real Python process. Spans are held in otelite's queue until exit
(a 60 s schedule delay and batches larger than the run), so a span reaches the store or
the collector only when otelite flushes on the signal or at the worker's exit. The only
time bounds are generous "does not hang" limits.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Optional

import pytest

from otelite import _outbox
from otlp_receiver import http_receiver

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGTERM") or os.name == "nt", reason="POSIX signals"
)

BOUND_S = 60  # a process that hangs fails the test after this
# Delivering 3,000 spans over OTLP on SIGTERM takes about 0.4 s on an idle machine and 1.7 s
# with eight busy processes on two cores: close to the default 2 s exit budget. Where every
# span must arrive, the budget is this (and the exit is still timed against it).
SLOW_MACHINE_EXIT_TIMEOUT_S = 20

# Spans stay queued until otelite flushes: nothing is exported on a timer or by size.
HOLD_ENV = {
    "OTEL_BSP_SCHEDULE_DELAY": "60000",
    "OTEL_BSP_MAX_QUEUE_SIZE": "20000",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "20000",
    "OTEL_METRICS_EXPORTER": "none",
}

_SIGNAL_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sqlite3, sys, time

    import otelite

    store, options = sys.argv[1], json.loads(sys.argv[2])
    out = lambda **kw: print(json.dumps(kw), flush=True)


    def rows():
        if not os.path.exists(store):
            return 0
        with sqlite3.connect(store) as conn:
            return conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0]


    def app_handler(signum, frame):
        out(event="app handler", signum=signum, rows=rows())
        os._exit(5)


    if options.get("app_handler"):
        signal.signal(signal.SIGTERM, app_handler)
    kwargs = dict(options.get("configure", {}))
    if options.get("endpoint"):
        kwargs["endpoint"] = options["endpoint"]
    else:
        kwargs["local_store"] = store
    if options.get("explicit_provider"):
        from opentelemetry.sdk.trace import TracerProvider

        kwargs["tracer_provider"] = TracerProvider()
    otelite.configure(**kwargs)
    def name(handler):
        if handler is app_handler:
            return "app_handler"
        if getattr(handler, "__module__", None) == "otelite._exits":
            return "otelite"
        for label in ("SIG_DFL", "SIG_IGN", "default_int_handler"):
            if handler == getattr(signal, label):
                return label
        return repr(handler)


    out(
        event="configured",
        sigterm=name(signal.getsignal(signal.SIGTERM)),
        sigint=name(signal.getsignal(signal.SIGINT)),
    )
    if options.get("stop"):
        sys.exit(0)
    if options.get("shutdown_first"):
        otelite.shutdown()
        out(
            event="after shutdown",
            sigterm=name(signal.getsignal(signal.SIGTERM)),
            sigint=name(signal.getsignal(signal.SIGINT)),
        )
        sys.exit(0)
    for i in range(options.get("spans", 3000)):
        with otelite.span("work", i=i):
            pass
    try:
        out(event="ready")
        time.sleep(120)
    except KeyboardInterrupt:
        out(event="KeyboardInterrupt", rows=rows())
        raise
    out(event="slept through")
    """
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELITE_"))}
    env.update(HOLD_ENV)
    env.update(extra)
    return env


def _rows(store: Path) -> int:
    if not store.exists():
        return 0
    with sqlite3.connect(store) as conn:
        count: int = conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0]
    return count


def _run_signalled(
    tmp_path: Path,
    options: dict[str, Any],
    signum: Optional[int],
    env: Optional[dict[str, str]] = None,
    exit_within: Optional[float] = None,
) -> tuple[int, list[dict[str, Any]], Path]:
    """Run the script, send ``signum`` once it is ready; its exit status and JSON lines.

    Its stderr is kept beside ``store``, in ``stderr.txt``. A process still running after
    ``BOUND_S`` is killed and fails the test. With
    ``exit_within``, the process must have ended that many seconds after the signal (its
    exit alone is timed: not the interpreter's start-up, nor the spans it made).
    """
    run_dir = Path(tempfile.mkdtemp(dir=tmp_path))  # a fresh store for each run
    script = run_dir / "app.py"
    script.write_text(_SIGNAL_SCRIPT)
    store = run_dir / "otelite.db"
    lines: list[dict[str, Any]] = []
    signalled: Optional[float] = None
    stderr = (run_dir / "stderr.txt").open("w")
    with (
        stderr,
        subprocess.Popen(
            [sys.executable, str(script), str(store), json.dumps(options)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env if env is not None else _env(),
            cwd=run_dir,
        ) as proc,
    ):
        hung = threading.Event()

        def kill() -> None:  # reading stdout has no timeout of its own
            hung.set()
            proc.kill()

        watchdog = threading.Timer(BOUND_S, kill)
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(json.loads(line))
                if lines[-1]["event"] == "ready" and signum is not None:
                    signalled = time.monotonic()
                    proc.send_signal(signum)
            proc.wait(BOUND_S)
            ended = time.monotonic()
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
    assert not hung.is_set(), (f"still running after {BOUND_S} s", lines)
    if exit_within is not None:
        assert signalled is not None, lines
        assert ended - signalled < exit_within, (ended - signalled, lines)
    return proc.returncode, lines, store


def test_sigterm_keeps_every_span_and_ends_killed_by_sigterm(tmp_path: Path) -> None:
    """SIGTERM right after 3,000 spans: all reach the store, the process dies by SIGTERM."""
    status, lines, store = _run_signalled(tmp_path, {}, signal.SIGTERM)
    assert lines[0] == {"event": "configured", "sigterm": "otelite", "sigint": "otelite"}
    assert [line["event"] for line in lines] == ["configured", "ready"]
    assert status == -signal.SIGTERM
    assert _rows(store) == 3000


def test_sigterm_keeps_every_span_sent_over_otlp(tmp_path: Path) -> None:
    """SIGTERM with an OTLP endpoint: the collector receives all 3,000 spans, once each."""
    budget = SLOW_MACHINE_EXIT_TIMEOUT_S
    with http_receiver() as (url, received):
        status, lines, store = _run_signalled(
            tmp_path,
            {"endpoint": url},
            signal.SIGTERM,
            _env(OTELITE_EXIT_TIMEOUT=str(budget)),
            exit_within=budget + 5,
        )
        spans = received.spans()
    assert status == -signal.SIGTERM
    assert [line["event"] for line in lines] == ["configured", "ready"]
    assert len(spans) == 3000
    assert sorted(s["attributes"]["i"] for s in spans) == list(range(3000))
    assert {s["name"] for s in spans} == {"work"}
    assert not store.exists()


def test_sigterm_with_a_collector_that_never_answers_keeps_the_spans_in_the_outbox(
    tmp_path: Path,
) -> None:
    """SIGTERM while the collector accepts and never answers: the process still ends within
    the exit budget, killed by SIGTERM, and the spans it could not deliver are kept in the
    outbox and summed up on stderr, as at a normal exit (they were lost without a word)."""
    budget = 1.0
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(512)  # accepts connections, never answers
    try:
        status, lines, store = _run_signalled(
            tmp_path,
            {"endpoint": f"http://127.0.0.1:{silent.getsockname()[1]}", "spans": 200},
            signal.SIGTERM,
            _env(OTELITE_EXIT_TIMEOUT=str(budget), OTEL_EXPORTER_OTLP_TIMEOUT="30"),
            exit_within=budget + 5,
        )
    finally:
        silent.close()
    assert status == -signal.SIGTERM
    assert [line["event"] for line in lines] == ["configured", "ready"]
    pending = _outbox.pending(store.parent / ".otelite" / "outbox.db")
    assert [spans for _, spans in pending.values()] == [200]
    stderr = (store.parent / "stderr.txt").read_text()
    assert "200 span(s) could not be delivered" in stderr, stderr
    assert "kept in the outbox" in stderr, stderr
    assert "shutdown timeout" not in stderr, stderr  # nothing counted as dropped
    assert not store.exists()


def test_sigint_raises_keyboard_interrupt_after_spans_are_kept(tmp_path: Path) -> None:
    """SIGINT: KeyboardInterrupt in the main thread as usual, with every span already stored."""
    status, lines, _ = _run_signalled(tmp_path, {}, signal.SIGINT)
    assert [line["event"] for line in lines] == ["configured", "ready", "KeyboardInterrupt"]
    assert lines[2]["rows"] == 3000
    # Uncaught KeyboardInterrupt: Python ends the process by SIGINT, as without otelite.
    assert status == -signal.SIGINT


def test_sigint_and_sigterm_end_the_process_as_without_otelite(tmp_path: Path) -> None:
    """With handle_signals=False (nothing installed) the exit statuses are the same."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        on, _, _ = _run_signalled(tmp_path, {"spans": 10}, signum)
        off, lines, _ = _run_signalled(
            tmp_path, {"spans": 10, "configure": {"handle_signals": False}}, signum
        )
        assert on == off == -signum
        if signum == signal.SIGINT:
            assert lines[-1] == {"event": "KeyboardInterrupt", "rows": 0}


def test_handle_signals_false_installs_nothing(tmp_path: Path) -> None:
    """handle_signals=False (or OTELITE_HANDLE_SIGNALS=false): default dispositions stay."""
    status, lines, store = _run_signalled(
        tmp_path, {"configure": {"handle_signals": False}}, signal.SIGTERM
    )
    assert lines[0] == {
        "event": "configured",
        "sigterm": "SIG_DFL",
        "sigint": "default_int_handler",
    }
    assert status == -signal.SIGTERM
    assert _rows(store) == 0  # the spans were still queued: nothing flushed them
    status, lines, store = _run_signalled(
        tmp_path, {"spans": 1}, signal.SIGTERM, _env(OTELITE_HANDLE_SIGNALS="false")
    )
    assert lines[0] == {
        "event": "configured",
        "sigterm": "SIG_DFL",
        "sigint": "default_int_handler",
    }
    assert status == -signal.SIGTERM


def test_app_handler_is_kept_by_default(tmp_path: Path) -> None:
    """An app's SIGTERM handler installed before configure() is not replaced by default."""
    status, lines, _ = _run_signalled(tmp_path, {"app_handler": True}, signal.SIGTERM)
    assert lines[0] == {"event": "configured", "sigterm": "app_handler", "sigint": "otelite"}
    assert lines[-1] == {"event": "app handler", "signum": signal.SIGTERM, "rows": 0}
    assert status == 5


def test_app_handler_is_chained_after_the_flush_when_asked(tmp_path: Path) -> None:
    """handle_signals=True: otelite flushes first, then calls the app's own handler."""
    options = {"app_handler": True, "configure": {"handle_signals": True}}
    status, lines, _ = _run_signalled(tmp_path, options, signal.SIGTERM)
    assert lines[0] == {"event": "configured", "sigterm": "otelite", "sigint": "otelite"}
    assert lines[-1] == {"event": "app handler", "signum": signal.SIGTERM, "rows": 3000}
    assert status == 5


def test_no_handler_on_a_provider_otelite_did_not_create(tmp_path: Path) -> None:
    """With the app's own TracerProvider, handlers are installed only when asked."""
    _, lines, _ = _run_signalled(tmp_path, {"explicit_provider": True, "stop": True}, None)
    assert lines[0] == {
        "event": "configured",
        "sigterm": "SIG_DFL",
        "sigint": "default_int_handler",
    }
    options = {"explicit_provider": True, "stop": True, "configure": {"handle_signals": True}}
    _, lines, _ = _run_signalled(tmp_path, options, None)
    assert lines[0] == {"event": "configured", "sigterm": "otelite", "sigint": "otelite"}


def test_shutdown_restores_the_previous_handlers(tmp_path: Path) -> None:
    """otelite.shutdown() puts back what its handlers replaced."""
    status, lines, _ = _run_signalled(tmp_path, {"shutdown_first": True}, None)
    assert lines == [
        {"event": "configured", "sigterm": "otelite", "sigint": "otelite"},
        {"event": "after shutdown", "sigterm": "SIG_DFL", "sigint": "default_int_handler"},
    ]
    assert status == 0


# --- multiprocessing -----------------------------------------------------------------------

_WORKERS_SCRIPT = textwrap.dedent(
    """
    import multiprocessing, sys
    from concurrent.futures import ProcessPoolExecutor

    import otelite

    STORE = sys.argv[1]


    def init():
        otelite.configure(local_store=STORE)  # spawn/forkserver: the worker sets itself up


    def work(task):
        init()  # fork: already configured in the parent (the same settings do nothing)
        for i in range(100):
            with otelite.span("work", task=task, i=i):
                pass
        return 100


    if __name__ == "__main__":
        method, kind = sys.argv[2], sys.argv[3]
        ctx = multiprocessing.get_context(method)
        if method == "fork":
            otelite.configure(local_store=STORE)
        if kind == "pool":
            with ctx.Pool(2, initializer=init) as pool:  # __exit__ terminates the workers
                done = sum(pool.map(work, range(30)))
        elif kind == "pool-close":
            pool = ctx.Pool(2, initializer=init)
            done = sum(pool.map(work, range(30)))
            pool.close()
            pool.join()
        elif kind == "executor":
            with ProcessPoolExecutor(2, mp_context=ctx, initializer=init) as executor:
                done = sum(executor.map(work, range(30)))
        else:
            processes = [ctx.Process(target=work, args=(n,)) for n in range(5)]
            for p in processes:
                p.start()
            for p in processes:
                p.join()
            done = 100 * sum(p.exitcode == 0 for p in processes)
        print(done, flush=True)
    """
)


def _start_methods() -> list[str]:
    import multiprocessing

    return [
        m for m in ("fork", "forkserver", "spawn") if m in multiprocessing.get_all_start_methods()
    ]


@pytest.mark.parametrize("method", _start_methods())
@pytest.mark.parametrize(
    ("kind", "expected"),
    [("pool", 3000), ("pool-close", 3000), ("executor", 3000), ("process", 500)],
)
def test_multiprocessing_workers_keep_every_span(
    tmp_path: Path, method: str, kind: str, expected: int
) -> None:
    """Pool, Process and ProcessPoolExecutor workers (fork, forkserver, spawn) keep all spans."""
    script = tmp_path / "workers.py"
    script.write_text(_WORKERS_SCRIPT)
    store = tmp_path / "otelite.db"
    proc = subprocess.run(
        [sys.executable, str(script), str(store), method, kind],
        capture_output=True,
        text=True,
        env=_env(PYTHONWARNINGS="ignore::DeprecationWarning"),
        cwd=tmp_path,
        timeout=BOUND_S,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(expected)]
    assert _rows(store) == expected
    with sqlite3.connect(store) as conn:
        names = {name for (name,) in conn.execute("SELECT DISTINCT name FROM spans")}
    assert names == {"work"}
