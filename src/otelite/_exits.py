"""Graceful exits: SIGTERM/SIGINT and ``multiprocessing`` workers keep their spans.

Signals
    ``docker stop``, Kubernetes and systemd end a process with SIGTERM, whose default
    action kills it at once: ``atexit`` never runs and buffered spans are lost. otelite's
    handler (``configure(handle_signals=...)``) delivers what is buffered, within the exit
    budget, and then does exactly what would have happened without it: the previous
    Python handler is called (an app's own, or ``default_int_handler`` that raises
    ``KeyboardInterrupt``), or the default action is restored and the signal raised
    again (the process ends "killed by SIGTERM", status -15).

    The handler cannot deadlock: it runs in the main thread between two bytecodes, where
    the interrupted code may hold any of otelite's locks, so it takes none. It puts the
    signal number in a ``queue.SimpleQueue`` (reentrant, made for signal handlers) and
    returns; a helper thread, started when the handler was installed, flushes (bounded)
    and then sends the same signal to the main thread, whose handler now chains to the
    previous disposition. A second signal while the flush runs chains at once. When that
    disposition is the default action (the process is killed, no ``atexit`` runs), the
    helper runs the exit path instead of a flush: what is not delivered within the budget
    is kept in the outbox or counted, and summed up, as at a normal exit.

multiprocessing
    Worker processes (``Process``, ``Pool``, ``ProcessPoolExecutor``) with the fork and
    forkserver start methods end with ``os._exit``: ``atexit`` never runs. Before that,
    ``multiprocessing.util._exit_function`` runs the finalizers registered with
    ``multiprocessing.util.Finalize(..., exitpriority=...)`` (Python 3.9-3.13). otelite
    registers one in every worker: through ``multiprocessing.util.register_after_fork``
    (run by each child's bootstrap, after it clears the finalizers inherited from the
    parent), and directly when ``configure()`` runs inside a worker (spawn or forkserver
    children configure themselves, e.g. in a pool's initializer).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any, Callable, Optional, Union

from otelite import _env
from otelite._exceptions import ConfigurationError

logger = logging.getLogger("otelite")

_Disposition = Union[Callable[[int, Optional[FrameType]], Any], int, None]

_STOP = -1

# signal number -> what was installed before otelite's handler (kept after uninstalling:
# a handler installed later that chains to otelite's still reaches it).
_previous: dict[int, _Disposition] = {}
_installed: set[int] = set()  # signals whose handler otelite installed and has not removed
_pending: set[int] = set()  # signals whose flush is running (the next one chains at once)
_jobs: Optional[queue.SimpleQueue[int]] = None
_helper_pid: Optional[int] = None


def handled_signals() -> tuple[int, ...]:
    """The signals otelite may handle here (SIGINT; SIGTERM off Windows)."""
    signals = [signal.SIGINT]
    if os.name != "nt" and hasattr(signal, "SIGTERM"):
        signals.append(signal.SIGTERM)
    return tuple(signals)


def parse_handle_signals(value: object) -> Optional[bool]:
    """``handle_signals`` (or ``OTELITE_HANDLE_SIGNALS``): ``True``, ``False`` or ``None`` (auto)."""
    if value is None:
        var = _env.OTELITE_HANDLE_SIGNALS
        if var.read() is None:
            return None
        return var.read_bool()
    if not isinstance(value, bool):
        raise ConfigurationError(
            f"handle_signals: expected True, False or None (automatic), got {type(value).__name__}"
        )
    return value


def _is_default(signum: int, disposition: _Disposition) -> bool:
    if disposition == signal.SIG_DFL:
        return True
    return signum == signal.SIGINT and disposition is signal.default_int_handler


def apply(handle_signals: Optional[bool], owns_provider: bool) -> None:
    """Install or remove the handlers as ``configure()`` asks; set up the worker hook.

    ``handle_signals=None`` installs a handler where otelite created the tracer provider
    and the signal still has its default disposition; ``True`` also chains to an app's own
    handler; ``False`` installs nothing (and removes what an earlier call installed).
    """
    _watch_workers()
    if handle_signals is False:
        uninstall()
        return
    if handle_signals is None and not owns_provider:
        return
    if threading.current_thread() is not threading.main_thread():
        logger.debug("otelite: configure() runs outside the main thread; no signal handler")
        return
    for signum in handled_signals():
        try:
            current = signal.getsignal(signum)
            if current is _handle:
                continue
            if current is None or current == signal.SIG_IGN:
                continue  # installed outside Python, or ignored on purpose: leave it
            if handle_signals is None and not _is_default(signum, current):
                continue  # the app's own handler: replaced only when asked explicitly
            _start_helper()
            signal.signal(signum, _handle)
        except (ValueError, OSError, RuntimeError) as exc:
            # Not the main interpreter, or no thread can be started: skip.
            logger.debug("otelite: no handler for signal %d: %s", signum, exc)
            continue
        _previous[signum] = current
        _installed.add(signum)


def uninstall() -> None:
    """Restore what otelite's handlers replaced (``otelite.shutdown()``)."""
    global _jobs, _helper_pid
    if not _installed:
        return
    if threading.current_thread() is not threading.main_thread():
        logger.debug("otelite: shutdown() runs outside the main thread; signal handlers stay")
        return
    for signum in list(_installed):
        try:
            if signal.getsignal(signum) is _handle:
                previous = _previous.get(signum)
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        except (ValueError, OSError) as exc:
            logger.debug("otelite: could not restore signal %d: %s", signum, exc)
        _installed.discard(signum)
    jobs, _jobs, _helper_pid = _jobs, None, None
    if jobs is not None:
        jobs.put(_STOP)


def _start_helper() -> None:
    global _jobs, _helper_pid
    if _jobs is not None and _helper_pid == os.getpid():
        return
    jobs: queue.SimpleQueue[int] = queue.SimpleQueue()
    thread = threading.Thread(
        target=_helper, args=(jobs,), name="otelite signal flush", daemon=True
    )
    thread.start()
    _jobs, _helper_pid = jobs, os.getpid()


def _handle(signum: int, frame: Optional[FrameType]) -> None:
    """otelite's signal handler: takes no lock, waits for nothing."""
    jobs = _jobs
    if signum in _pending or jobs is None or _helper_pid != os.getpid():
        # The flush is done (or a second signal came meanwhile, or nothing can flush).
        _pending.discard(signum)
        _chain(signum, frame)
        return
    _pending.add(signum)
    jobs.put(signum)


def _chain(signum: int, frame: Optional[FrameType]) -> None:
    """Do what the signal would have done without otelite."""
    previous = _previous.get(signum, signal.SIG_DFL)
    if previous == signal.SIG_IGN:
        return
    if callable(previous):
        previous(signum, frame)
        return
    # The default action (SIGTERM: the process is killed by the signal, exit status -15).
    signal.signal(signum, signal.SIG_DFL)
    _installed.discard(signum)
    signal.raise_signal(signum)


def _helper(jobs: queue.SimpleQueue[int]) -> None:
    while True:
        signum = jobs.get()
        if signum == _STOP:
            return
        try:
            _flush(signum)
        finally:
            if signum in _pending:
                _wake_main(signum)


def _no_flush(timeout_millis: int) -> bool:
    return True


# What the configuration hands in with set_hooks() (``_config`` sits above this module).
_hooks: dict[str, Callable[..., Any]] = {
    "exit_timeout": lambda: 2.0,
    "force_flush": _no_flush,
    "is_configured": lambda: False,
    "at_exit": lambda: None,
}


def set_hooks(
    *,
    exit_timeout: Callable[[], float],
    force_flush: Callable[[int], bool],
    is_configured: Callable[[], bool],
    at_exit: Callable[[], None],
) -> None:
    """Tell this module how to flush and how long it may take (called once by ``_config``)."""
    _hooks.update(
        exit_timeout=exit_timeout,
        force_flush=force_flush,
        is_configured=is_configured,
        at_exit=at_exit,
    )


def _flush(signum: int) -> None:
    from otelite import _guard

    with _guard.contained("flushing on a signal"):
        timeout_s = _hooks["exit_timeout"]()
        deadline = time.monotonic() + timeout_s
        if _previous.get(signum, signal.SIG_DFL) == signal.SIG_DFL and _hooks["is_configured"]():
            # The signal's default action follows: the process is killed, and no atexit
            # handler runs. So the exit path runs here, within the same budget: what is
            # not delivered by then is kept in the outbox or counted, and summed up, as
            # at any exit.
            _hooks["at_exit"]()
        else:
            # An app's handler or KeyboardInterrupt follows: the process may go on.
            _hooks["force_flush"](int(timeout_s * 1000))
        # The signal may come while the process is already exiting (atexit, or a worker's
        # exit finalizer): its processors are no longer configured but still delivering.
        _wait_for_shutdowns(deadline)


def _wait_for_shutdowns(deadline: float) -> None:
    from otelite import _export

    while time.monotonic() < deadline:
        if not any(
            isinstance(p, _export.BatchProcessor) and p._stopping and not p._stopped
            for p in list(_export._forkables)
        ):
            return
        time.sleep(0.01)


def _wake_main(signum: int) -> None:
    """Send ``signum`` to the main thread: it interrupts a blocking call there, too."""
    try:
        if hasattr(signal, "pthread_kill"):
            main = threading.main_thread().ident
            if main is not None:
                signal.pthread_kill(main, signum)
                return
        signal.raise_signal(signum)
    except (OSError, ValueError) as exc:  # the main thread is gone: nothing to chain to
        logger.debug("otelite: could not re-raise signal %d: %s", signum, exc)


# --- multiprocessing workers -------------------------------------------------------------


class _Token:
    """A weak-referenceable key for ``multiprocessing.util.register_after_fork``."""


_TOKEN = _Token()
_finalizer: Any = None
_watching = False


def _watch_workers() -> None:
    """Make every ``multiprocessing`` worker of this process flush before it exits."""
    global _watching
    if not _watching:
        _watching = True
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
    if _in_worker():
        _register_worker_flush()
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is not None:
            # Run again by the worker's bootstrap if configure() ran before it (spawn
            # imports the main module first), since the bootstrap clears finalizers.
            mp_util.register_after_fork(_TOKEN, _register_worker_flush)


def _in_worker() -> bool:
    mp_process = sys.modules.get("multiprocessing.process")
    if mp_process is None:
        return False
    try:
        current = mp_process.current_process()
        return bool(getattr(current, "_inheriting", False)) or (
            mp_process.parent_process() is not None
        )
    except Exception:  # an unexpected multiprocessing version: no hook
        return False


def _register_worker_flush(_token: object = None) -> None:
    global _finalizer
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is None:
        return
    finalizer = _finalizer
    if finalizer is not None and finalizer.still_active():
        return
    _finalizer = mp_util.Finalize(None, _flush_worker, exitpriority=0)


def _flush_worker() -> None:
    from otelite import _guard

    with _guard.contained("flushing a multiprocessing worker"):
        if _hooks["is_configured"]():
            _hooks["at_exit"]()


def _after_fork_in_child() -> None:
    global _jobs, _helper_pid
    try:
        _pending.clear()
        _jobs, _helper_pid = None, None
        if _installed and any(signal.getsignal(s) is _handle for s in _installed):
            _start_helper()  # the parent's helper thread does not exist here
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is not None:
            # Runs in the child's multiprocessing bootstrap (not for a bare os.fork()).
            mp_util.register_after_fork(_TOKEN, _register_worker_flush)
    except Exception as exc:  # never break a fork
        logger.debug("otelite: after fork: %s", exc)
