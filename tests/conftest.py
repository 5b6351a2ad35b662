"""Shared fixtures: internal errors raise, and every test leaves otelite unconfigured."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import otelite
from otelite import _guard, _tokens
from otelite._llm import _changes

# Bugs in otelite must fail the tests instead of being contained and logged.
_guard.set_raise_internal_errors(True)

_OTEL_VARS = [
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_METRICS_EXPORTER",
    "OTEL_TRACES_SAMPLER",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    "OTELITE_HOME",
    "OTELITE_LOCAL_STORE",
    "OTELITE_SAMPLE_RATIO",
    "OTELITE_MAX_CONTENT_LENGTH",
    "OTELITE_REDACT_BUILTIN",
    "OTELITE_CHECKS",
    "OTELITE_RETENTION",
    "OTELITE_PRICES_FILE",
    "OTELITE_STREAM_USAGE",
    "OTELITE_OUTBOX",
    "OTELITE_OUTBOX_MAX_MB",
]


@pytest.fixture(autouse=True)
def _clean_otelite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test starts with no otelite configuration and no OTEL_* variables set."""
    for name in _OTEL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    # CLI tables size themselves to the terminal: every test sees the same 80 columns.
    monkeypatch.setenv("COLUMNS", "80")
    yield
    otelite.shutdown()
    _guard.reset_reported()
    _changes.reset()  # API-change baselines are learnt per test


@pytest.fixture(autouse=True)
def _warm_tokenizer() -> None:
    """Encodings are loaded, as in a warmed-up process: estimates are exact tiktoken counts.

    In production they load in the background and the first calls estimate chars/4;
    tests of that cold start reset them (tests/chaos/test_chaos_llm.py).
    """
    if os.environ.get("TIKTOKEN_CACHE_DIR"):  # never download from a test
        _tokens.prefetch()


@pytest.fixture
def contained_errors() -> Iterator[None]:
    """Internal errors are contained (as in production) for the duration of the test."""
    old = _guard.set_raise_internal_errors(False)
    _guard.reset_reported()
    try:
        yield
    finally:
        _guard.set_raise_internal_errors(old)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """A fresh directory for a local store."""
    path = tmp_path / "store"
    return path
