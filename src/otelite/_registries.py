"""Process-wide registrations that sit beside the settings, each with its undo.

* Which provider serves an OpenAI-compatible base URL: ``gen_ai.provider.name``
  tells backends whose telemetry flavour a span has. The OpenAI client talks to
  many servers; the host of its ``base_url`` says which. Well-known local ports
  identify local servers (Ollama, LM Studio, vLLM). ``register_provider`` adds a
  host, ``unregister_provider`` removes it.
* Which providers accept ``stream_options={"include_usage": true}``, so otelite
  may ask them for usage in streams: ``enable_stream_usage`` /
  ``disable_stream_usage``.

``reset()`` restores the built-in tables (the testing kit uses it between tests).
"""

from __future__ import annotations

import threading
from typing import Any, Optional

from otelite import _semconv as sc
from otelite._exceptions import ConfigurationError

UNKNOWN_PROVIDER = "openai_compatible"

# Whether objects carrying a prompt link (otelite.prompts' compiled prompts) can exist in
# this process: set when the prompt registry's module loads (compiling a prompt, or
# unpickling one a parent process compiled, loads it). Until then, a call's arguments are
# not scanned for a link.
prompt_links = False

# host suffix -> gen_ai.provider.name (well-known names from the conventions where they exist)
_BUILTIN_HOSTS: dict[str, str] = {
    "api.openai.com": sc.PROVIDER_OPENAI,
    "openai.azure.com": sc.PROVIDER_AZURE_OPENAI,
    "cognitiveservices.azure.com": sc.PROVIDER_AZURE_OPENAI,
    "services.ai.azure.com": "azure.ai.inference",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral_ai",
    "api.x.ai": "x_ai",
    "openrouter.ai": "openrouter",
    "api.together.xyz": "together_ai",
    "api.together.ai": "together_ai",
    "api.perplexity.ai": "perplexity",
    "generativelanguage.googleapis.com": "gcp.gemini",
    "api.fireworks.ai": "fireworks_ai",
    "api.cerebras.ai": "cerebras",
    "api.moonshot.ai": "moonshot_ai",
    "dashscope.aliyuncs.com": "alibaba_cloud",
}
_HOSTS: dict[str, str] = dict(_BUILTIN_HOSTS)
# Local servers are recognised by their default port on a loopback host.
_LOCAL_PORTS: dict[int, str] = {11434: "ollama", 1234: "lm_studio", 8000: "vllm"}
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "host.docker.internal"})

_lock = threading.Lock()
_cache: dict[tuple[str, Optional[int]], str] = {}


def register_provider(host: str, provider: str) -> None:
    """Name the provider for a host (and its subdomains) reached through an OpenAI client.

    Example:
        >>> import otelite
        >>> otelite.register_provider("llm.internal.example.com", "vllm")
    """
    name = _host("register_provider", host)
    if not isinstance(provider, str) or not provider.strip():
        raise ConfigurationError(
            f"register_provider: provider must be a non-empty str, got {provider!r}"
        )
    with _lock:
        _HOSTS[name] = provider.strip()
        _cache.clear()


def unregister_provider(host: str) -> None:
    """Undo ``register_provider(host, ...)``: the host gets its built-in name back, if any.

    Example:
        >>> import otelite
        >>> otelite.register_provider("llm.internal.example.com", "vllm")
        >>> otelite.unregister_provider("llm.internal.example.com")
    """
    name = _host("unregister_provider", host)
    with _lock:
        builtin = _BUILTIN_HOSTS.get(name)
        if builtin is None:
            _HOSTS.pop(name, None)
        else:
            _HOSTS[name] = builtin
        _cache.clear()


def _host(who: str, host: Any) -> str:
    if not isinstance(host, str) or not host.strip() or "/" in host:
        raise ConfigurationError(
            f"{who}: host must be a bare host name such as 'api.example.com', got {host!r}"
        )
    return host.strip().lower()


def provider_for(host: Optional[str], port: Optional[int]) -> str:
    """The provider name for a server, by host suffix, then local port, else ``openai_compatible``."""
    key = ((host or "").lower(), port)
    found = _cache.get(key)
    if found is not None:
        return found
    name = key[0]
    provider = None
    while name:
        provider = _HOSTS.get(name)
        if provider is not None:
            break
        _, _, name = name.partition(".")
    if provider is None and key[0] in _LOCAL_HOSTS and port is not None:
        provider = _LOCAL_PORTS.get(port)
    result = provider or UNKNOWN_PROVIDER
    with _lock:
        if len(_cache) > 1024:
            _cache.clear()
        _cache[key] = result
    return result


# Providers known to accept stream_options={"include_usage": true}; users add more.
_BUILTIN_STREAM_USAGE = frozenset({sc.PROVIDER_OPENAI, sc.PROVIDER_AZURE_OPENAI})
stream_usage_providers: set[str] = set(_BUILTIN_STREAM_USAGE)


def enable_stream_usage(provider: str) -> None:
    """Let otelite ask ``provider`` for usage in streamed responses (it must accept
    ``stream_options={"include_usage": true}``, as OpenAI-compatible servers such as
    vLLM, DeepSeek and Groq do).

    Example:
        >>> import otelite
        >>> otelite.enable_stream_usage("vllm")
        >>> otelite.disable_stream_usage("vllm")
    """
    stream_usage_providers.add(_provider("enable_stream_usage", provider))


def disable_stream_usage(provider: str) -> None:
    """Undo ``enable_stream_usage(provider)``: otelite no longer asks it for usage in streams.

    Example:
        >>> import otelite
        >>> otelite.disable_stream_usage("vllm")
    """
    stream_usage_providers.discard(_provider("disable_stream_usage", provider))


def _provider(who: str, provider: Any) -> str:
    if not isinstance(provider, str) or not provider:
        raise ConfigurationError(f"{who}: provider must be a non-empty str, got {provider!r}")
    return provider


def reset() -> None:
    """Forget every registration: the built-in host table and stream-usage providers again."""
    with _lock:
        _HOSTS.clear()
        _HOSTS.update(_BUILTIN_HOSTS)
        _cache.clear()
    stream_usage_providers.clear()
    stream_usage_providers.update(_BUILTIN_STREAM_USAGE)
