"""Content rendering: JSON, built-in redaction, user hooks and size caps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otelite._content import ContentPolicy, redact_api_keys, redact_builtin, to_json


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key sk-proj-AbCdEfGhIjKlMnOpQrStUv123", "key [REDACTED:api_key]"),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abcdefgh",
            "Authorization: [REDACTED:api_key]",
        ),
        ("aws AKIAABCDEFGHIJKLMNOP here", "aws [REDACTED:api_key] here"),
        ("token ghp_" + "a" * 36, "token [REDACTED:api_key]"),
        ("no secrets here, sk-short", "no secrets here, sk-short"),
    ],
)
def test_api_keys_removed(text: str, expected: str) -> None:
    """API keys and bearer tokens are replaced; short look-alikes are kept."""
    assert redact_api_keys(text) == expected


def test_builtin_patterns_emails_and_luhn_cards() -> None:
    """E-mails and Luhn-valid card numbers are masked; other digit runs stay."""
    text = "write to bob.smith+x@mail.example.org; card 4111-1111-1111-1111; order 1234567890123"
    assert redact_builtin(text) == (
        "write to [REDACTED:email]; card [REDACTED:card]; order 1234567890123"
    )


def test_api_keys_removed_even_with_builtin_off() -> None:
    """redact_builtin=False keeps e-mails but never API keys."""
    policy = ContentPolicy(capture=True, redact_builtin=False)
    assert policy.clean("a@b.io sk-abcdefghijklmnopqrstu") == "a@b.io [REDACTED:api_key]"


def test_user_hook_runs_before_builtin_and_bad_return_is_dropped(contained_errors: None) -> None:
    """The user's hook sees the raw text; a hook returning a non-str drops the content."""
    seen: list[str] = []

    def hook(text: str) -> str:
        seen.append(text)
        return text.upper()

    assert ContentPolicy(redact=hook).clean("x@y.com") == "[REDACTED:email]"
    assert seen == ["x@y.com"]
    bad = ContentPolicy(redact=lambda s: None)  # type: ignore[arg-type,return-value]
    assert bad.clean("anything") == "[otelite: content dropped because the redact hook failed]"


def test_key_straddling_the_cut_is_still_removed() -> None:
    """Truncation happens after redaction: a key at the limit never leaks a prefix."""
    text = "x" * 14 + " sk-abcdefghijklmnopqrstuvwxyz"
    out = ContentPolicy(max_length=20).clean(text)
    assert "sk-" not in out
    assert out.startswith("x" * 14 + " [REDA")
    assert out.endswith("chars]")


def test_to_json_handles_unusual_values() -> None:
    """Sets, bytes and arbitrary objects become JSON-safe text instead of failing."""

    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque>"

    assert to_json({"s": {2, 1}, "b": b"abc", "o": Opaque()}) == (
        '{"s": [1, 2], "b": "<3 bytes>", "o": "<Opaque>"}'
    )
    cyclic: list[object] = []
    cyclic.append(cyclic)
    assert to_json(cyclic).startswith('"[[')


@given(st.text(max_size=300))
def test_clean_never_raises_and_respects_the_cap(text: str) -> None:
    """Any text comes out as a string within max_length plus the marker."""
    out = ContentPolicy(max_length=50).clean(text)
    assert isinstance(out, str)
    assert len(out) <= 50 + len("…[truncated 999999 chars]")
