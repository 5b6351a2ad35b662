"""otelite: lightweight OpenTelemetry observability for LLM applications.

Example:
    >>> import otelite, tempfile
    >>> otelite.configure(service_name="demo", local_store=tempfile.mkdtemp())
    >>> @otelite.trace
    ... def answer(question: str) -> str:
    ...     return "42"
    >>> with otelite.attributes(user_id="u-1"):
    ...     answer("life?")
    '42'
    >>> otelite.shutdown()
"""

from __future__ import annotations

from contextlib import suppress as _suppress
from typing import TYPE_CHECKING

from otelite._config import configure, force_flush, is_configured, shutdown
from otelite._content import redact_builtin
from otelite._context import ContextThreadPoolExecutor, attributes, bind_context, current_attributes
from otelite._decorators import span, trace
from otelite._exceptions import (
    ConfigurationError,
    OteliteError,
    StoreError,
    StoreSchemaError,
)
from otelite._integrations.openai import instrument_openai, uninstrument_openai
from otelite._registries import (
    disable_stream_usage,
    enable_stream_usage,
    register_provider,
    unregister_provider,
)
from otelite._version import __version__

if TYPE_CHECKING:  # loaded lazily at run time (see __getattr__), typed here for checkers
    from otelite._scores import score
    from otelite.prompts import get_prompt

__all__ = [
    "ConfigurationError",
    "ContextThreadPoolExecutor",
    "OteliteError",
    "StoreError",
    "StoreSchemaError",
    "__version__",
    "attributes",
    "bind_context",
    "configure",
    "current_attributes",
    "disable_stream_usage",
    "enable_stream_usage",
    "force_flush",
    "get_prompt",
    "instrument_openai",
    "is_configured",
    "redact_builtin",
    "register_provider",
    "score",
    "shutdown",
    "span",
    "trace",
    "uninstrument_openai",
    "unregister_provider",
]

# Users see public paths (otelite.configure, not otelite._config.configure).
for _name in __all__:
    _obj = globals().get(_name)
    if getattr(_obj, "__module__", "").startswith("otelite._"):
        with _suppress(AttributeError, TypeError):
            _obj.__module__ = "otelite"
del _name, _obj


def __getattr__(name: str) -> object:
    # The prompt registry and the scores API load on first use: `import otelite` stays light.
    if name == "get_prompt":
        from otelite.prompts import get_prompt

        return get_prompt
    if name == "score":
        from otelite._scores import score

        score.__module__ = "otelite"
        return score
    raise AttributeError(f"module 'otelite' has no attribute {name!r}")
