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
from collections.abc import Iterator
from typing import Any, Callable, NamedTuple, Optional

from otelite import _guard

DEFAULT_MAX_CONTENT_LENGTH = 8192
TRUNCATION_MARKER = "…[truncated {} chars]"
REDACTION_FAILED = "[otelite: content dropped because the redact hook failed]"


class LazyPattern:
    """A regular expression compiled on first use, so that ``import otelite`` compiles none."""

    __slots__ = ("_compiled", "_source")

    def __init__(self, source: str) -> None:
        self._source = source
        self._compiled: Optional[re.Pattern[str]] = None

    def compiled(self) -> re.Pattern[str]:
        pattern = self._compiled
        if pattern is None:  # two threads may both compile: harmless
            pattern = self._compiled = re.compile(self._source)
        return pattern

    def sub(self, replacement: Any, text: str) -> str:
        return self.compiled().sub(replacement, text)

    def search(self, text: str) -> Optional[re.Match[str]]:
        return self.compiled().search(text)

    def match(self, text: str) -> Optional[re.Match[str]]:
        return self.compiled().match(text)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return self.compiled().finditer(text)


# A key straddling the cut must still be seen whole by the patterns below.
_REDACTION_MARGIN = 256

_KEY_MASK = "[REDACTED:api_key]"
_CREDENTIALS_MASK = "[REDACTED:credentials]"

# Each rule: substrings of which one must be in the lower-cased text for the pattern
# to be worth running (a plain ``in`` is far cheaper than a regex scan), the
# pattern, and its replacement. They run in this order.
_Rule = tuple[tuple[str, ...], LazyPattern, str]

# ``scheme://user:password@host`` (and ``scheme://token@host``).
_URL_USERINFO = LazyPattern(r"://(?!\[REDACTED)[^\s/?#@\"'<>]+@")
# Secret query parameters: ?api_key=, &key=, ?token=, ?sig=, ?code= (Azure Functions) ...
_QUERY_SECRET = LazyPattern(
    r"(?i)([?&;](?:[A-Za-z0-9_\-]*(?:key|token|secret|password|passwd)|sig|signature|code|auth)=)"
    r"(?!\[REDACTED)[^&#\s\"'<>]+"
)
# The value after a credential's name, in headers (``api-key: v``), assignments
# (``AZURE_OPENAI_API_KEY=v``), JSON/dict dumps (``"api-key": "v"``) and header
# tuples (``(b'x-api-key', b'v')``); an optional auth scheme goes with the value.
_NAMED_SECRET = LazyPattern(
    r"(?i)((?:api[_\-]?key|authorization|auth[_\-]?token|access[_\-]?token"
    r"|refresh[_\-]?token|token|secret|subscription[_\-]?key|password|passwd)"
    r"""(?:["']?[ \t]*[:=][ \t]*|["'][ \t]*,[ \t]*)(?:b?["'])?)"""
    r"(?!\[REDACTED)"
    r"(?:(?:bearer|basic|token|digest|apikey)[ \t]+)?"
    r"""[^\s"',;&)}\]\[]+"""
)

_RULES: tuple[_Rule, ...] = (
    (("://",), _URL_USERINFO, f"://{_CREDENTIALS_MASK}@"),
    (("=",), _QUERY_SECRET, rf"\1{_KEY_MASK}"),
    (("key", "auth", "token", "secret", "passw"), _NAMED_SECRET, rf"\1{_KEY_MASK}"),
    (("sk-",), LazyPattern(r"\bsk-(?:proj-|ant-|or-v1-|svcacct-)?[A-Za-z0-9_\-]{16,}"), _KEY_MASK),
    (("k_live_", "k_test_"), LazyPattern(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"), _KEY_MASK),
    (("bearer",), LazyPattern(r"(?i)\bbearer\s+[A-Za-z0-9._~+/\-]{16,}=*"), _KEY_MASK),
    (("akia",), LazyPattern(r"\bAKIA[0-9A-Z]{16}\b"), _KEY_MASK),
    (("aiza",), LazyPattern(r"\bAIza[0-9A-Za-z_\-]{35}\b"), _KEY_MASK),
    (
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        LazyPattern(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
        _KEY_MASK,
    ),
    (("github_pat_",), LazyPattern(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), _KEY_MASK),
    (("xox",), LazyPattern(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}\b"), _KEY_MASK),
    (("gsk_",), LazyPattern(r"\bgsk_[A-Za-z0-9]{20,}"), _KEY_MASK),  # Groq
    (("hf_",), LazyPattern(r"\bhf_[A-Za-z0-9]{30,}"), _KEY_MASK),  # Hugging Face
    (("xai-", "pplx-"), LazyPattern(r"\b(?:xai|pplx)-[A-Za-z0-9]{20,}"), _KEY_MASK),
    (  # JWT
        ("eyj",),
        LazyPattern(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
        _KEY_MASK,
    ),
)

# A bare 32-hex token with letters and digits (an Azure OpenAI key, but also an MD5
# or a trace id). Error text often carries a key with nothing naming it (httpx:
# "Illegal header value b'<key>\n'"), so error data masks these; content does not.
_BARE_HEX32 = LazyPattern(
    r"(?<![A-Za-z0-9_\-])(?=[0-9a-fA-F]{0,31}[a-fA-F])(?=[0-9a-fA-F]{0,31}[0-9])"
    r"[0-9a-fA-F]{32}(?![A-Za-z0-9_\-])"
)

# Bounded parts (RFC 5321 limits) keep the scan linear on long runs of name characters.
_EMAIL = LazyPattern(r"\b[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z]{2,63}\b")
_CARD = LazyPattern(r"\b(?:\d[ \-]?){12,18}\d\b")


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
    """Replace credentials with ``[REDACTED:api_key]`` (``[REDACTED:credentials]`` in URLs).

    Known key shapes (OpenAI, Anthropic, AWS, Google, GitHub, Slack, Stripe, Groq,
    Hugging Face, JWTs), bearer tokens, values of credential-named headers and
    settings (``Authorization``, ``api-key``, ``x-api-key``, ``*_API_KEY=``,
    ``password=``, ...), secret URL query parameters (``api_key=``, ``key=``,
    ``token=``, ``sig=``, ``code=``) and URL user info (``https://user:pass@host``).
    Redacted text is left as it is when redacted again.

    Example:
        >>> redact_api_keys("key=sk-abcdefghijklmnopqrstuvwx")
        'key=[REDACTED:api_key]'
        >>> redact_api_keys("api-key: 3f9a1c7e5b2d4f608a1e9c3b7d5f2a4c")
        'api-key: [REDACTED:api_key]'
    """
    lower = text.lower()
    for triggers, pattern, replacement in _RULES:
        if any(t in lower for t in triggers):
            text = pattern.sub(replacement, text)
    return text


def redact_error_secrets(text: str) -> str:
    """:func:`redact_api_keys`, plus bare 32-hex tokens (Azure keys): for error data.

    Example:
        >>> redact_error_secrets("Illegal header value b'3f9a1c7e5b2d4f608a1e9c3b7d5f2a4c'")
        "Illegal header value b'[REDACTED:api_key]'"
    """
    return _BARE_HEX32.sub(_KEY_MASK, redact_api_keys(text))


def redact_builtin(text: str) -> str:
    """Apply every built-in pattern: API keys, e-mail addresses, card numbers (Luhn-checked).

    Example:
        >>> redact_builtin("mail ana@example.com, card 4111 1111 1111 1111")
        'mail [REDACTED:email], card [REDACTED:card]'
    """
    text = redact_api_keys(text)
    if "@" in text:
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


class ContentPolicy(NamedTuple):
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

    def clean_error(self, text: str) -> str:
        """Redact error text (an exception message, a stack trace, an error body), always.

        Whatever the capture setting: the user's hook, then the built-in patterns
        with the error-only ones (bare 32-hex keys). A failing hook is reported and
        skipped; the built-in patterns still run, so raw text is never returned.
        Not size-capped: a stack trace's end is what matters.
        """
        if self.redact is not None:
            try:
                redacted: object = self.redact(text)
            except Exception as exc:
                redacted = exc
            if isinstance(redacted, str):
                text = redacted
            else:
                # The hook's own error could quote the text it was given: report its type only.
                _guard.report(
                    "the redact hook given to configure() (on error text)",
                    RuntimeError(
                        f"the redact hook {'raised' if isinstance(redacted, Exception) else 'returned'} "
                        f"{type(redacted).__name__}; the built-in patterns were applied alone"
                    ),
                )
        text = redact_builtin(text) if self.redact_builtin else redact_api_keys(text)
        return _BARE_HEX32.sub(_KEY_MASK, text)


CONTROL_OR_SPACE = LazyPattern(r"[\x00-\x20\x7f]")  # never valid in a URL


def safe_url(value: str) -> str:
    """``value`` fit for a message or a log line: password, query values and fragment masked."""
    text = CONTROL_OR_SPACE.sub("?", value)
    text = re.sub(r"(//[^/?#@]*?:)[^/?#@]*@", r"\1***@", text)
    text = re.sub(r"([?&][^=&#]*=)[^&#]*", r"\1***", text)
    return re.sub(r"#.*$", "#***", text)
