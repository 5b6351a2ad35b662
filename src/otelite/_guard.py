"""Containment of otelite's own failures (decision D4: never break the app).

Telemetry code runs inside :func:`contained` (a context manager) or is wrapped
with :func:`guarded`. A failure is logged once per place it happens, with its
traceback, and then swallowed, so the user's code carries on as if otelite were
absent. Tests flip :func:`set_raise_internal_errors` (or set
``OTELITE_RAISE_INTERNAL_ERRORS=1``) so that bugs surface instead of hiding.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable, TypeVar

from otelite import _env

logger = logging.getLogger("otelite")

_F = TypeVar("_F", bound=Callable[..., Any])

_lock = threading.Lock()
_reported: set[str] = set()
_raise_internal_errors: bool = _env.RAISE_INTERNAL_ERRORS.read_bool()


def set_raise_internal_errors(value: bool) -> bool:
    """Make internal errors raise (``True``) or be contained; returns the old value."""
    global _raise_internal_errors
    old = _raise_internal_errors
    _raise_internal_errors = value
    return old


def report(where: str, exc: BaseException) -> None:
    """Log an internal failure once per ``where``; re-raise it when tests asked to."""
    if _raise_internal_errors:
        raise exc
    with _lock:
        first = where not in _reported
        _reported.add(where)
    if first:
        logger.warning(
            "otelite: internal error in %s (the application is unaffected; "
            "further errors here are not logged)",
            where,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
    else:
        logger.debug("otelite: internal error in %s", where, exc_info=exc)


@contextmanager
def contained(where: str) -> Iterator[None]:
    """Run a block of telemetry code, containing any ``Exception`` it raises."""
    try:
        yield
    except Exception as exc:
        report(where, exc)


def guarded(where: str, default: Any = None) -> Callable[[_F], _F]:
    """Decorate a telemetry function so its failures are contained; it then returns ``default``."""

    def decorate(func: _F) -> _F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except Exception as exc:
                report(where, exc)
                return default

        return wrapper  # type: ignore[return-value]

    return decorate


def reset_reported() -> None:
    """Forget which places have already logged (used by tests)."""
    with _lock:
        _reported.clear()
