"""Shared fixtures: internal errors raise, and every test leaves otelite unconfigured."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import otelite
from otelite import _env, _guard, _registries, _tokens, prompts
from otelite._llm import _changes

# Bugs in otelite must fail the tests instead of being contained and logged.
_guard.set_raise_internal_errors(True)

# The test process serves OTLP/gRPC (the fake collectors) while it starts subprocesses.
# With gRPC's fork handlers on, grpcio 1.80 and later can abort the forked child before
# it execs ("epoll_wait error: Bad file descriptor"; grpc/grpc#43055). These tests fork
# only to exec, or without gRPC, so the handlers are turned off before grpc is imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

# Every variable otelite declares (otelite._env), so a new one is cleared without listing it
# here, plus those the OpenTelemetry SDK reads that otelite does not. OTELITE_RAISE_INTERNAL_ERRORS
# is left alone: it is how internal errors keep raising in the subprocesses tests start.
_SDK_ONLY_VARS = ["OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"]
_OTEL_VARS = [
    *(var.name for var in _env.ALL if var is not _env.RAISE_INTERNAL_ERRORS),
    *_SDK_ONLY_VARS,
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
    _registries.reset()  # providers and stream-usage registrations a test made
    prompts.reset_default_registry()
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
def openai_instrumented() -> Iterator[None]:
    """openai is instrumented for the test, and restored afterwards.

    A test module instruments all its tests with
    ``pytestmark = pytest.mark.usefixtures("openai_instrumented")``.
    """
    otelite.instrument_openai()
    yield
    otelite.uninstrument_openai()


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
