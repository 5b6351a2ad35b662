"""Which provider serves an OpenAI-compatible base URL: a host table users can extend.

``gen_ai.provider.name`` tells backends whose telemetry flavour a span has. The
OpenAI client talks to many servers; the host of its ``base_url`` says which.
Well-known local ports identify local servers (Ollama, LM Studio, vLLM).
"""

from __future__ import annotations

import threading
from typing import Optional

from otelite import _semconv as sc
from otelite._exceptions import ConfigurationError

UNKNOWN_PROVIDER = "openai_compatible"

# host suffix -> gen_ai.provider.name (well-known names from the conventions where they exist)
_HOSTS: dict[str, str] = {
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
    if not isinstance(host, str) or not host.strip() or "/" in host:
        raise ConfigurationError(
            f"register_provider: host must be a bare host name such as 'api.example.com', got {host!r}"
        )
    if not isinstance(provider, str) or not provider.strip():
        raise ConfigurationError(
            f"register_provider: provider must be a non-empty str, got {provider!r}"
        )
    with _lock:
        _HOSTS[host.strip().lower()] = provider.strip()
        _cache.clear()


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
