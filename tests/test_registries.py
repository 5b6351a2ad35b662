"""Process-wide registrations beside the settings: each has a public undo."""

from __future__ import annotations

from pathlib import Path

import pytest

import otelite
from otelite import _registries, prompts


def test_registered_host_is_named_then_forgotten() -> None:
    """register_provider names a host and its subdomains; unregister_provider undoes it."""
    assert _registries.provider_for("llm.corp.example", 443) == "openai_compatible"
    otelite.register_provider("llm.corp.example", "vllm")
    try:
        assert _registries.provider_for("llm.corp.example", 443) == "vllm"
        assert _registries.provider_for("eu.llm.corp.example", 443) == "vllm"
    finally:
        otelite.unregister_provider("llm.corp.example")
    assert _registries.provider_for("llm.corp.example", 443) == "openai_compatible"
    assert _registries.provider_for("eu.llm.corp.example", 443) == "openai_compatible"


def test_unregistering_a_builtin_host_restores_its_builtin_name() -> None:
    """Re-pointing a known host and undoing it gives the built-in name back, not nothing."""
    otelite.register_provider("api.groq.com", "my-gateway")
    assert _registries.provider_for("api.groq.com", 443) == "my-gateway"
    otelite.unregister_provider("api.groq.com")
    assert _registries.provider_for("api.groq.com", 443) == "groq"


def test_stream_usage_enabled_then_disabled() -> None:
    """enable_stream_usage adds a provider; disable_stream_usage removes it again."""
    assert "vllm" not in _registries.stream_usage_providers
    otelite.enable_stream_usage("vllm")
    assert "vllm" in _registries.stream_usage_providers
    otelite.disable_stream_usage("vllm")
    assert "vllm" not in _registries.stream_usage_providers
    assert {"openai", "azure.ai.openai"} <= _registries.stream_usage_providers


def test_reset_restores_the_builtin_tables() -> None:
    """reset() forgets every registration at once (used between tests)."""
    otelite.register_provider("a.example", "x")
    otelite.enable_stream_usage("x")
    otelite.disable_stream_usage("openai")
    _registries.reset()
    assert _registries.provider_for("a.example", None) == "openai_compatible"
    assert _registries.stream_usage_providers == {"openai", "azure.ai.openai"}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: otelite.register_provider("https://x/", "vllm"), "register_provider: host"),
        (lambda: otelite.register_provider("x.example", ""), "register_provider: provider"),
        (lambda: otelite.unregister_provider(""), "unregister_provider: host"),
        (lambda: otelite.enable_stream_usage(""), "enable_stream_usage: provider"),
        (lambda: otelite.disable_stream_usage(3), "disable_stream_usage: provider"),  # type: ignore[arg-type]
    ],
)
def test_bad_registrations_raise_configuration_errors(call: object, message: str) -> None:
    """Bad input is a ConfigurationError (still a ValueError) naming the function and argument."""
    with pytest.raises(otelite.ConfigurationError, match=message) as info:
        call()  # type: ignore[operator]
    assert isinstance(info.value, ValueError)


def test_default_prompt_registry_can_be_forgotten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """reset_default_registry drops the cached registry: the next use reads the directory anew."""
    monkeypatch.setenv("OTELITE_PROMPTS_DIR", str(tmp_path))
    first = prompts.default_registry()
    assert prompts.default_registry() is first
    prompts.reset_default_registry()
    second = prompts.default_registry()
    assert second is not first
    assert second.path == first.path
