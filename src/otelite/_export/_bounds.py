"""Waits that end in time: the exit deadline, bounded calls on helper threads, fork bookkeeping."""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from typing import Any, Callable, Optional

from otelite import _env, _guard

logger = logging.getLogger("otelite")

_exit_deadline: Optional[float] = None


def set_exit_deadline(deadline: Optional[float]) -> None:
    """From now on, no wait in the export package goes past ``deadline`` (a ``time.monotonic()``)."""
    global _exit_deadline
    _exit_deadline = deadline


def exiting() -> bool:
    """Whether the process is exiting (the exit path set its deadline)."""
    return _exit_deadline is not None


def _clamp(deadline: float) -> float:
    exit_deadline = _exit_deadline
    return deadline if exit_deadline is None else min(deadline, exit_deadline)


def _remaining(deadline: float) -> float:
    return max(0.0, _clamp(deadline) - time.monotonic())


def run_bounded(
    target: Callable[[], object], timeout_s: float, name: str, inline_fallback: bool = False
) -> bool:
    """Run ``target`` on a daemon thread; wait at most ``timeout_s``. ``True`` if it finished.

    At interpreter exit Python may refuse new threads (3.12+): then ``target`` runs
    inline when ``inline_fallback`` says it cannot block, and is skipped otherwise.
    """
    done = threading.Event()

    def run() -> None:
        try:
            with _guard.contained(name):
                target()
        finally:
            done.set()

    thread = threading.Thread(target=run, name=f"otelite {name}", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # "can't create new thread at interpreter shutdown"
        if inline_fallback:
            run()
        return done.is_set()
    return _wait_event(done, time.monotonic() + timeout_s)


def _STOP() -> None:
    """Queued to a :class:`_Runner` to end its thread."""


class _Runner:
    """A daemon thread that runs calls for callers who wait a bounded time.

    Started ahead of need, so that it exists at interpreter exit (when Python may
    refuse to start threads).
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], threading.Event]] = (
            queue.SimpleQueue()
        )
        self.name = name
        self._thread = threading.Thread(target=self._run, name=f"otelite {name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            target, done = self._jobs.get()
            if target is _STOP:
                done.set()
                return
            try:
                with _guard.contained(self.name):
                    target()
            finally:
                done.set()

    def stop(self) -> None:
        """End the thread once the calls already queued are done."""
        self._jobs.put((_STOP, threading.Event()))

    def call(self, target: Callable[[], object], timeout_s: float) -> bool:
        """Run ``target`` on the thread; ``True`` if it finished within ``timeout_s``."""
        done = threading.Event()
        self._jobs.put((target, done))
        return _wait_event(done, time.monotonic() + timeout_s)


def _wait_event(event: threading.Event, deadline: float) -> bool:
    # Short slices, so that an exit that starts meanwhile shortens the wait.
    while not event.is_set():
        remaining = _remaining(deadline)
        if remaining <= 0:
            return event.is_set()
        event.wait(min(remaining, 0.05))
    return True


def _positive_env(var: _env.EnvVar, default: float) -> float:
    raw = var.read()
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value > 0 and value == value:
        return value
    logger.warning("otelite: %s=%r is not a positive number; using %s", var.name, raw, default)
    return default


# Objects with an ``_after_fork()`` method, called in a forked child (see ``_export``).
_forkables: weakref.WeakSet[Any] = weakref.WeakSet()
