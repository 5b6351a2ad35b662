"""Span helpers shared by the decorators and the integrations.

Errors are recorded here, and only here: the exception event is built by otelite
(not ``Span.record_exception``) so that its message, its stack trace (every
chained cause included) and the status description pass through
:meth:`ContentPolicy.clean_error` whatever the capture setting. With content
capture off, an HTTP error (anything with a 4xx/5xx ``status_code``, or a
``response`` that has one: openai's ``APIStatusError``, httpx's
``HTTPStatusError``) is reduced to its status and error type/code, because its
message quotes the response body.
"""

from __future__ import annotations

import re
import traceback
from typing import Any, Optional

from opentelemetry import context as otel_context
from opentelemetry.trace import Span, Status, StatusCode

from otelite import _semconv as sc
from otelite import _state
from otelite._content import ContentPolicy

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


EXCEPTION_EVENT = "exception"
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
EXCEPTION_STACKTRACE = "exception.stacktrace"
EXCEPTION_ESCAPED = "exception.escaped"

# A message this long is replaced wherever it is printed, not only after its type name.
_MIN_REPLACED = 16
# An error type or code worth keeping when the body is dropped: a short identifier.
_CODE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "<exception str() failed>"


def _attr(obj: Any, name: str) -> Any:
    try:
        return getattr(obj, name, None)
    except Exception:  # a property that raises (httpx's .request when unset)
        return None


def http_status(exc: BaseException) -> Optional[int]:
    """The HTTP status of an error answer (4xx/5xx), found by duck typing; else ``None``."""
    status = _attr(exc, "status_code")
    if not isinstance(status, int) or isinstance(status, bool):
        response = _attr(exc, "response")
        status = _attr(response, "status_code") if response is not None else None
    if isinstance(status, int) and not isinstance(status, bool) and 400 <= status <= 599:
        return status
    return None


def _code(value: Any) -> Optional[str]:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and _CODE.match(value):
        return value
    return None


def http_summary(status: int, error_type: Any = None, code: Any = None) -> str:
    """``HTTP 401 (type: invalid_request_error, code: invalid_api_key)``: no body text."""
    details = [
        f"{label}: {value}"
        for label, value in (("type", _code(error_type)), ("code", _code(code)))
        if value is not None
    ]
    return f"HTTP {status} ({', '.join(details)})" if details else f"HTTP {status}"


def _message(exc: BaseException, policy: ContentPolicy) -> tuple[str, str]:
    """``(raw, recorded)`` messages of one exception: recorded is reduced or redacted."""
    raw = _safe_str(exc)
    status = http_status(exc) if not policy.capture else None
    if status is not None:
        return raw, policy.clean_error(http_summary(status, _attr(exc, "type"), _attr(exc, "code")))
    return raw, policy.clean_error(raw)


def _policy() -> ContentPolicy:
    return _state.active().content


def error_message(exc: BaseException, policy: Optional[ContentPolicy] = None) -> str:
    """The message otelite records for ``exc``: redacted, and reduced for HTTP errors when capture is off."""
    return _message(exc, policy or _policy())[1]


def error_text(exc: BaseException, policy: Optional[ContentPolicy] = None) -> str:
    """``"{ExceptionName}: {error_message}"``, as in a span's status description."""
    return f"{type(exc).__name__}: {error_message(exc, policy)}"


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what ``traceback`` prints with it: causes, contexts, group members."""
    seen: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        if current.__cause__ is not None:
            pending.append(current.__cause__)
        elif current.__context__ is not None and not current.__suppress_context__:
            pending.append(current.__context__)
        members = _attr(current, "exceptions")  # an ExceptionGroup (3.11+)
        if isinstance(members, tuple):
            pending.extend(m for m in members if isinstance(m, BaseException))
    return seen


def stacktrace(exc: BaseException, policy: ContentPolicy) -> str:
    """The formatted traceback of ``exc`` (causes included), reduced and redacted."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    for link in _chain(exc):
        raw, recorded = _message(link, policy)
        if raw and raw != recorded:
            name = error_type(link)  # the name traceback prints before the message
            text = text.replace(f"{name}: {raw}", f"{name}: {recorded}")
            if len(raw) >= _MIN_REPLACED and raw in text:  # printed some other way
                text = text.replace(raw, recorded)
    return policy.clean_error(text)


def exception_attributes(exc: BaseException, policy: ContentPolicy) -> dict[str, Any]:
    """The attributes of the exception event OpenTelemetry records, minus secrets."""
    cls = type(exc)
    module = cls.__module__
    return {
        EXCEPTION_TYPE: f"{module}.{cls.__qualname__}"
        if module and module != "builtins"
        else cls.__qualname__,
        EXCEPTION_MESSAGE: error_message(exc, policy),
        EXCEPTION_STACKTRACE: stacktrace(exc, policy),
        EXCEPTION_ESCAPED: "False",
    }


def record_error(span: Span, exc: BaseException) -> None:
    """Mark ``span`` failed by ``exc``: exception event, ERROR status, ``error.type``.

    Every string taken from the exception is redacted (see the module docstring).
    """
    if not span.is_recording():
        return
    policy = _policy()
    attributes = exception_attributes(exc, policy)
    span.add_event(EXCEPTION_EVENT, attributes)
    span.set_status(
        Status(StatusCode.ERROR, f"{type(exc).__name__}: {attributes[EXCEPTION_MESSAGE]}")
    )
    span.set_attribute(sc.ERROR_TYPE, error_type(exc))
