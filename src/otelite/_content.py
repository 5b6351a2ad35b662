"""Turning captured values into span-safe text: JSON, redaction, size caps.

Content (prompts, completions, function inputs and outputs) is recorded only
when capture is on (decision D2). When it is, every value passes through
:meth:`ContentPolicy.render`: serialised to JSON, given to the user's redaction
hook, scrubbed by the built-in patterns, then cut to ``max_length`` with a
visible marker. API keys are scrubbed even when the built-in patterns are off.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Optional

from otelite import _guard

DEFAULT_MAX_CONTENT_LENGTH = 8192
TRUNCATION_MARKER = "…[truncated {} chars]"
REDACTION_FAILED = "[otelite: content dropped because the redact hook failed]"

# A key straddling the cut must still be seen whole by the patterns below.
_REDACTION_MARGIN = 256

_API_KEY_PATTERNS = (
    re.compile(r"\bsk-(?:proj-|ant-|or-v1-|svcacct-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/\-]{16,}=*"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}\b"),
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"\b(?:\d[ \-]?){12,18}\d\b")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"[ \-]", "", match.group(0))
    return "[REDACTED:card]" if _luhn_ok(digits) else match.group(0)


EMAIL_PATTERN = _EMAIL
CARD_PATTERN = _CARD


def is_card_number(text: str) -> bool:
    """Whether ``text`` (digits with optional spaces or dashes) passes the Luhn check."""
    return _luhn_ok(re.sub(r"[ \-]", "", text))


def redact_api_keys(text: str) -> str:
    """Replace API keys and bearer tokens with ``[REDACTED:api_key]``.

    Example:
        >>> redact_api_keys("key=sk-abcdefghijklmnopqrstuvwx")
        'key=[REDACTED:api_key]'
    """
    for pattern in _API_KEY_PATTERNS:
        text = pattern.sub("[REDACTED:api_key]", text)
    return text


def redact_builtin(text: str) -> str:
    """Apply every built-in pattern: API keys, e-mail addresses, card numbers (Luhn-checked).

    Example:
        >>> redact_builtin("mail ana@example.com, card 4111 1111 1111 1111")
        'mail [REDACTED:email], card [REDACTED:card]'
    """
    text = redact_api_keys(text)
    text = _EMAIL.sub("[REDACTED:email]", text)
    return _CARD.sub(_mask_card, text)


def _json_default(value: Any) -> Any:
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump) and not isinstance(value, type):
        return model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return repr(value)


def to_json(value: Any) -> str:
    """Serialise any value to JSON text; what JSON cannot hold becomes its ``repr``."""
    try:
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return json.dumps(repr(value), ensure_ascii=False)


def truncate(text: str, max_length: int) -> str:
    """Cut ``text`` to ``max_length`` characters, saying how much was dropped."""
    if len(text) <= max_length:
        return text
    return text[:max_length] + TRUNCATION_MARKER.format(len(text) - max_length)


@dataclass(frozen=True)
class ContentPolicy:
    """Whether content is captured, and how it is cleaned before it reaches a span."""

    capture: bool = False
    redact: Optional[Callable[[str], str]] = None
    redact_builtin: bool = True
    max_length: int = DEFAULT_MAX_CONTENT_LENGTH

    def clean(self, text: str) -> str:
        """Redact and size-cap a string that is about to be recorded."""
        original_length = len(text)
        text = text[: self.max_length + _REDACTION_MARGIN]
        if self.redact is not None:
            try:
                redacted: object = self.redact(text)
            except Exception as exc:
                _guard.report("the redact hook given to configure()", exc)
                return REDACTION_FAILED
            if not isinstance(redacted, str):
                _guard.report(
                    "the redact hook given to configure()",
                    TypeError(f"redact hook returned {type(redacted).__name__}, expected str"),
                )
                return REDACTION_FAILED
            text = redacted
        text = redact_builtin(text) if self.redact_builtin else redact_api_keys(text)
        if original_length > self.max_length or len(text) > self.max_length:
            dropped = max(original_length, len(text)) - self.max_length
            return text[: self.max_length] + TRUNCATION_MARKER.format(dropped)
        return text

    def render(self, value: Any) -> str:
        """Serialise ``value`` to JSON, then :meth:`clean` it."""
        return self.clean(to_json(value))
