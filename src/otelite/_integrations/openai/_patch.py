"""Patch targets: which openai methods are wrapped, with which surface, and how to undo it.

Patching happens in post-import hooks (resource modules openai has not loaded
yet are patched when they load), wraps each method with the core's sync or
async wrapper and the surface that reads it, and steps back where another
OpenAI instrumentation already wraps a method, warning once.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
from typing import Any, Callable

import wrapt

from otelite import _guard, _llm
from otelite import _semconv as sc
from otelite._exceptions import ConfigurationError
from otelite._integrations.openai import _chat, _content, _lean, _raw, _responses, _stream_usage
from otelite._integrations.openai._fields import _is_stream

CHAT = _llm.Surface(
    _chat._chat_request,
    _chat._chat_outcome,
    lambda kwargs: _content._with_prompt_variables(kwargs, _content._chat_input(kwargs)),
    _chat.ChatAccumulator,
    is_stream=_is_stream,
    prepare=_stream_usage.prepare,
    takeover=_raw.takeover,
)
COMPLETIONS = _llm.Surface(
    lambda instance, kwargs: _chat._chat_request(instance, kwargs, sc.OP_TEXT_COMPLETION),
    _chat._chat_outcome,
    lambda kwargs: _content._with_prompt_variables(kwargs, _content._completion_input(kwargs)),
    _chat.ChatAccumulator,
    is_stream=_is_stream,
    prepare=_stream_usage.prepare,
    takeover=_raw.takeover,
)
EMBEDDINGS = _llm.Surface(
    _chat._embeddings_request,
    _chat._embeddings_outcome,
    is_stream=_is_stream,
    takeover=_raw.takeover,
)
RESPONSES = _llm.Surface(
    _responses._responses_request,
    _responses._responses_outcome,
    lambda kwargs: _content._with_prompt_variables(kwargs, _content._responses_input(kwargs)),
    _responses.ResponsesAccumulator,
    is_stream=_is_stream,
    takeover=_raw.takeover,
)


def _count_retries(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Wraps the client's ``_build_request``, called once per HTTP attempt with ``retries_taken``."""
    _llm.note_retry(kwargs.get("retries_taken"))
    return wrapped(*args, **kwargs)


# (modules that may define the class, class, method, surface, async). Newer openai
# versions split resources into packages and load them lazily, so patching happens
# in a post-import hook: when the defining module is imported (or at once if it
# already is), never by importing resources the application does not use.
_CHAT_MODULES = (
    "openai.resources.chat.completions.completions",
    "openai.resources.chat.completions",
)
_BETA_MODULES = ("openai.resources.beta.chat.completions",)
_COMPLETIONS_MODULES = ("openai.resources.completions",)
_EMBEDDINGS_MODULES = ("openai.resources.embeddings",)
_RESPONSES_MODULES = ("openai.resources.responses.responses", "openai.resources.responses")
_TARGETS: tuple[tuple[tuple[str, ...], str, str, _llm.Surface, bool], ...] = (
    (_CHAT_MODULES, "Completions", "create", CHAT, False),
    (_CHAT_MODULES, "AsyncCompletions", "create", CHAT, True),
    (_CHAT_MODULES, "Completions", "parse", CHAT, False),
    (_CHAT_MODULES, "AsyncCompletions", "parse", CHAT, True),
    (_BETA_MODULES, "Completions", "parse", CHAT, False),
    (_BETA_MODULES, "AsyncCompletions", "parse", CHAT, True),
    (_COMPLETIONS_MODULES, "Completions", "create", COMPLETIONS, False),
    (_COMPLETIONS_MODULES, "AsyncCompletions", "create", COMPLETIONS, True),
    (_EMBEDDINGS_MODULES, "Embeddings", "create", EMBEDDINGS, False),
    (_EMBEDDINGS_MODULES, "AsyncEmbeddings", "create", EMBEDDINGS, True),
    (_RESPONSES_MODULES, "Responses", "create", RESPONSES, False),
    (_RESPONSES_MODULES, "AsyncResponses", "create", RESPONSES, True),
    (_RESPONSES_MODULES, "Responses", "parse", RESPONSES, False),
    (_RESPONSES_MODULES, "AsyncResponses", "parse", RESPONSES, True),
)

# The HTTP attempts of a call: every openai version builds each attempt's request with
# BaseClient._build_request(options, retries_taken=n).
_BASE_CLIENT_MODULES = ("openai._base_client",)
_RETRY_TARGETS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (_BASE_CLIENT_MODULES, "BaseClient", "_build_request"),
)

# The methods whose common call takes the lean path: (begin, end) by surface and method.
_LEAN: dict[tuple[_llm.Surface, str], tuple[Any, _lean.Ender]] = {
    (CHAT, "create"): (_lean.begin_chat, _lean.end_chat),
    (EMBEDDINGS, "create"): (_lean.begin_embeddings, _lean.end_embeddings),
}

_lock = threading.RLock()
_active = False
_patched: list[tuple[type, str, Any]] = []
_hooked: set[str] = set()


def _patch_module(module: Any) -> None:
    """Post-import hook: patch the targets this module defines (once each)."""
    with _lock, _guard.contained("patching openai"):
        if not _active:
            return
        name = module.__name__
        for modules, class_name, method, surface, is_async in _TARGETS:
            if name not in modules:
                continue
            cls = module.__dict__.get(class_name)
            if not isinstance(cls, type):
                continue
            original = cls.__dict__.get(method)
            if original is None:
                continue
            if isinstance(original, wrapt.FunctionWrapper):
                _step_back(original, f"{class_name}.{method}")
                continue
            wrapper = (
                _llm.async_wrapper(surface, _other_llm_span)
                if is_async
                else _llm.sync_wrapper(surface, _other_llm_span)
            )
            lean = _LEAN.get((surface, method))
            if lean is not None:  # the common call on the lean path, any other as above
                make = _lean.async_wrapper if is_async else _lean.sync_wrapper
                wrapper = make(surface, *lean, wrapper)
            setattr(cls, method, wrapt.FunctionWrapper(original, wrapper))
            _patched.append((cls, method, original))
        for modules, class_name, method in _RETRY_TARGETS:
            cls = module.__dict__.get(class_name) if name in modules else None
            if not isinstance(cls, type):
                continue
            original = cls.__dict__.get(method)
            if original is None or isinstance(original, wrapt.FunctionWrapper):
                continue
            setattr(cls, method, wrapt.FunctionWrapper(original, _count_retries))
            _patched.append((cls, method, original))


# --- another OpenAI instrumentation (opentelemetry-instrumentation-openai-v2, ...) ---------
# Each call gets exactly one LLM span: where another instrumentation already covers a
# method, otelite steps back for it, whichever of the two instrumented first.

# The name users and tests know these warnings by.
logger = logging.getLogger("otelite._integrations.openai")
_warned_other = False


def _warn_other(who: str) -> None:
    global _warned_other
    if _warned_other:
        return
    _warned_other = True
    logger.warning(
        "otelite: another OpenAI instrumentation (%s) already records these calls, so otelite "
        "records no second span for them. To keep otelite's spans instead, turn the other off "
        "(for the official one: OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=openai, or pip uninstall "
        "opentelemetry-instrumentation-openai-v2); to keep the other's, turn otelite's off "
        "(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otelite-openai, or do not call "
        "instrument_openai()). See docs/zero-code.md.",
        who,
    )


def _step_back(existing: Any, where: str) -> None:
    """Patch time: ``where`` is already wrapped. Another instrumentation's wrapper wins."""
    wrapper = getattr(existing, "_self_wrapper", None)
    owner = str(getattr(wrapper, "__module__", None) or "unknown")
    if not owner.startswith("otelite."):
        _warn_other(f"{owner}, on {where}")


def _other_llm_span() -> bool:
    """Call time: another instrumentation, wrapped around ours, has begun this call's span."""
    scope = _llm.other_llm_span("openai")
    if scope is None:
        return False
    _warn_other(scope)
    return True


def instrument_openai() -> None:
    """Patch the ``openai`` client so every call becomes a GenAI span (idempotent).

    Covers clients created before and after the call; ``uninstrument_openai()``
    restores the original methods. Resource modules openai has not loaded yet
    are patched when they load, so instrumenting costs no extra imports.

    Raises:
        ConfigurationError: ``openai`` is not installed.

    Example:
        >>> import otelite
        >>> otelite.instrument_openai()
        >>> otelite.uninstrument_openai()
    """
    global _active
    if importlib.util.find_spec("openai") is None:
        raise ConfigurationError(
            'instrument_openai: the openai package is not installed; pip install "otelite[openai]"'
        )
    with _lock:
        if _active:
            return
        _active = True
        for modules in [t[0] for t in _TARGETS] + [t[0] for t in _RETRY_TARGETS]:
            for name in modules:
                if name in _hooked:
                    if name in sys.modules:
                        _patch_module(sys.modules[name])
                    continue
                _hooked.add(name)
                wrapt.register_post_import_hook(_patch_module, name)


def uninstrument_openai() -> None:
    """Restore the original ``openai`` methods (idempotent).

    Example:
        >>> import otelite
        >>> otelite.uninstrument_openai()
    """
    global _active, _warned_other
    with _lock:
        _active = False
        _warned_other = False
        while _patched:
            cls, method, original = _patched.pop()
            setattr(cls, method, original)


def is_instrumented() -> bool:
    """Whether ``instrument_openai()`` is in effect."""
    return _active
