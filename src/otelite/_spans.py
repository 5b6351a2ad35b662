"""Span helpers shared by the decorators and the integrations."""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, Status, StatusCode

from otelite import _semconv as sc

try:  # opentelemetry-api exposes the key every instrumentation checks
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
except ImportError:  # pragma: no cover - very old API versions
    _SUPPRESS_INSTRUMENTATION_KEY = otel_context.create_key("suppress_instrumentation")

SUPPRESS_KEY = _SUPPRESS_INSTRUMENTATION_KEY


def is_suppressed() -> bool:
    """True inside ``suppress_instrumentation()``: otelite then creates no spans."""
    return bool(otel_context.get_value(_SUPPRESS_INSTRUMENTATION_KEY))


def error_type(exc: BaseException) -> str:
    """``error.type`` for an exception: its fully qualified class name (builtins unqualified)."""
    cls = type(exc)
    module = cls.__module__
    if module in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def record_error(span: Span, exc: BaseException) -> None:
    """Mark ``span`` failed by ``exc``: exception event, ERROR status, ``error.type``."""
    if not span.is_recording():
        return
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    span.set_attribute(sc.ERROR_TYPE, error_type(exc))
