"""Token counting with tiktoken, and a documented estimate when an encoding is not loaded.

Encodings load on a daemon background thread (tiktoken itself is imported
there), once per process: loading reads a cache or downloads with no timeout,
so it never runs on a thread that serves the application. Until an encoding is
loaded, or when it cannot be (offline, no ``TIKTOKEN_CACHE_DIR``, a blackholed
network), counting falls back to an estimate of one token per four characters,
marks the result as estimated with ``encoding=None``, and warns once; it never
raises into the application. Instrumented calls never wait for a load; the
public counting functions wait for it at most ``wait`` seconds.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Optional

logger = logging.getLogger("otelite")

O200K = "o200k_base"
CL100K = "cl100k_base"
CHARS_PER_TOKEN = 4  # the fallback estimate when no encoding can be loaded

# Model-name prefixes and their encodings; the longest matching prefix wins.
_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-4o", O200K),
    ("chatgpt-4o", O200K),
    ("gpt-4.1", O200K),
    ("gpt-4.5", O200K),
    ("gpt-5", O200K),
    ("gpt-oss", O200K),
    ("o1", O200K),
    ("o3", O200K),
    ("o4", O200K),
    ("codex", O200K),
    ("gpt-4", CL100K),
    ("gpt-35", CL100K),
    ("gpt-3.5", CL100K),
    ("text-embedding-3", CL100K),
    ("text-embedding-ada-002", CL100K),
    ("davinci-002", CL100K),
    ("babbage-002", CL100K),
)

LOAD_WAIT = 10.0  # seconds the public counting functions wait for an encoding, by default

_lock = threading.Lock()
_encodings: dict[str, Any] = {}
_failed: set[str] = set()
_loading: dict[str, threading.Event] = {}  # encodings being loaded in the background
_gave_up: set[str] = set()  # waited for once past the bound: later callers do not wait
_generation = 0  # bumped by a reset (tests, a forked child): stale loaders are ignored


class TokenCount(int):
    """An ``int`` token count that also says how it was obtained.

    Attributes:
        estimated: ``True`` when the count is an estimate (no encoding could be
            loaded, the model is not an OpenAI model, or the input held parts that
            cannot be tokenized, such as images).
        encoding: the tiktoken encoding used, or ``None`` for the fallback estimate.
    """

    estimated: bool
    encoding: Optional[str]

    def __new__(cls, value: int, estimated: bool, encoding: Optional[str]) -> TokenCount:
        count = super().__new__(cls, value)
        count.estimated = estimated
        count.encoding = encoding
        return count

    def __repr__(self) -> str:
        return f"TokenCount({int(self)}, estimated={self.estimated}, encoding={self.encoding!r})"


def base_model(model: str) -> str:
    """The base model of a fine-tuned name (``ft:gpt-4o-mini:org::id`` gives ``gpt-4o-mini``)."""
    name = model.strip().lower()
    if name.startswith("ft:"):
        name = name[3:].split(":", 1)[0]
    return name.rsplit("/", 1)[-1]  # "openai/gpt-4o" as OpenRouter writes it


def encoding_for(model: str) -> tuple[str, bool]:
    """The encoding name for a model, and whether it is a guess (not an OpenAI model)."""
    name = base_model(model)
    best: Optional[tuple[str, str]] = None
    for prefix, encoding in _PREFIXES:
        if name.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, encoding)
    if best is None:
        return O200K, True
    return best[1], False


def _load_in_background(encoding: str, done: threading.Event, generation: int) -> None:
    try:
        import tiktoken

        loaded = tiktoken.get_encoding(encoding)
    except Exception as exc:
        with _lock:
            current = generation == _generation
            if current:
                _failed.add(encoding)
                _loading.pop(encoding, None)
        if current:
            logger.warning(
                "otelite: the tiktoken encoding %s could not be loaded (%s); token counts are "
                "estimated at one token per %d characters. Run `otelite tokenizers prefetch` "
                "on a connected machine, or point TIKTOKEN_CACHE_DIR at a cache.",
                encoding,
                exc,
                CHARS_PER_TOKEN,
            )
    else:
        with _lock:
            if generation == _generation:
                _encodings[encoding] = loaded
                _loading.pop(encoding, None)
    finally:
        done.set()


def _start_load(encoding: str) -> Optional[threading.Event]:
    """Start loading ``encoding`` on a daemon thread (once); the event of the load in flight."""
    with _lock:
        if encoding in _encodings or encoding in _failed:
            return None
        done = _loading.get(encoding)
        if done is not None:
            return done
        done = _loading[encoding] = threading.Event()
        generation = _generation
    try:
        threading.Thread(
            target=_load_in_background,
            args=(encoding, done, generation),
            name=f"otelite-tokenizer-{encoding}",
            daemon=True,
        ).start()
    except RuntimeError:  # no new threads (interpreter shutdown): estimate
        with _lock:
            _loading.pop(encoding, None)
        done.set()
        return None
    return done


def preload(model: str) -> None:
    """Start loading the encoding ``model`` needs in the background, if it is not loaded."""
    encoding = encoding_for(model)[0]
    if encoding not in _encodings:
        _start_load(encoding)


def is_loaded(model: str) -> bool:
    """Whether the encoding for ``model`` is loaded (counting with it is exact and fast)."""
    return encoding_for(model)[0] in _encodings


def _load(encoding: str, wait: Optional[float]) -> Any:
    """The loaded encoding, or ``None`` (estimate) when it is not loaded within ``wait`` seconds.

    ``wait=0`` never blocks: the load is started in the background and the
    caller estimates meanwhile. ``None`` means :data:`LOAD_WAIT`.
    """
    found = _encodings.get(encoding)
    if found is not None:
        return found
    done = _start_load(encoding)
    if done is None:
        return _encodings.get(encoding)
    limit = LOAD_WAIT if wait is None else wait
    if limit > 0 and encoding not in _gave_up and not done.wait(limit):
        with _lock:
            first = encoding not in _gave_up
            _gave_up.add(encoding)
        if first:
            logger.warning(
                "otelite: the tiktoken encoding %s did not load within %.1f s; token counts are "
                "estimated at one token per %d characters until it does. Run `otelite "
                "tokenizers prefetch` on a connected machine, or point TIKTOKEN_CACHE_DIR at a "
                "cache.",
                encoding,
                limit,
                CHARS_PER_TOKEN,
            )
    return _encodings.get(encoding)


def wait_loaded(encoding: str, timeout: float) -> bool:
    """Start loading ``encoding`` if needed and wait up to ``timeout`` s; whether it is loaded."""
    done = _start_load(encoding)
    if done is not None:
        done.wait(timeout)
    return encoding in _encodings


def _estimate(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _encode_len(encoder: Any, text: str) -> int:
    if encoder is None:
        return _estimate(text)
    return len(encoder.encode(text, disallowed_special=()))


def count_tokens(text: str, model: str, *, wait: Optional[float] = None) -> TokenCount:
    """Tokens in ``text`` for ``model``'s encoding.

    The encoding loads in the background; this waits for it at most ``wait``
    seconds (default :data:`LOAD_WAIT`, ``0`` never waits) and estimates
    otherwise (``estimated=True``, ``encoding=None``).

    Example:
        >>> from otelite.tokens import count_tokens
        >>> int(count_tokens("", "gpt-4o"))
        0
    """
    if not isinstance(text, str):
        raise TypeError(f"count_tokens: text must be a str, got {type(text).__name__}")
    encoding, guessed = encoding_for(model)
    encoder = _load(encoding, wait)
    return TokenCount(
        _encode_len(encoder, text), guessed or encoder is None, encoding if encoder else None
    )


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _tool_tokens(encoder: Any, tools: Iterable[Any], modern: bool) -> int:
    # OpenAI's published approximation of how function definitions are rendered.
    func_init, prop_init, prop_key, enum_init, enum_item, func_end = (
        (7, 3, 3, -3, 3, 12) if modern else (10, 3, 3, -3, 3, 12)
    )
    total = 0
    for tool in tools:
        function = _field(tool, "function") or tool
        name = _field(function, "name") or ""
        description = (_field(function, "description") or "").rstrip(".")
        total += func_init + _encode_len(encoder, f"{name}:{description}")
        properties = (_field(function, "parameters") or {}).get("properties") or {}
        if properties:
            total += prop_init
            for key, spec in properties.items():
                total += prop_key
                enum = spec.get("enum") or ()
                if enum:
                    total += enum_init
                for item in enum:
                    total += enum_item + _encode_len(encoder, str(item))
                line = (
                    f"{key}:{spec.get('type', '')}:{str(spec.get('description', '')).rstrip('.')}"
                )
                total += _encode_len(encoder, line)
    return total + (func_end if total else 0)


def count_message_tokens(
    messages: Iterable[Any],
    model: str,
    tools: Optional[Iterable[Any]] = None,
    *,
    wait: Optional[float] = None,
) -> TokenCount:
    """Prompt tokens of a chat request, with OpenAI's per-message and reply-priming overheads.

    Each message costs 3 tokens plus its content (and 1 for a ``name``); the reply
    is primed with 3 more. Multi-part content counts its text parts; parts that
    cannot be tokenized here (images, audio) make the result an estimate. Tool
    definitions are counted with OpenAI's published approximation. ``wait`` is
    as for :func:`count_tokens`.

    Example:
        >>> from otelite.tokens import count_message_tokens
        >>> count_message_tokens([{"role": "user", "content": ""}], "gpt-4o") > 0
        True
    """
    encoding, guessed = encoding_for(model)
    encoder = _load(encoding, wait)
    estimated = guessed or encoder is None
    total = 3
    for message in messages:
        total += 3
        for key in ("role", "content", "name", "tool_call_id"):
            value = _field(message, key)
            if isinstance(value, str):
                total += _encode_len(encoder, value)
                if key == "name":
                    total += 1
            elif key == "content" and value is not None:
                for part in value:
                    text = _field(part, "text")
                    if isinstance(text, str):
                        total += _encode_len(encoder, text)
                    else:
                        estimated = True
        for call in _field(message, "tool_calls") or ():
            function = _field(call, "function")
            total += _encode_len(encoder, str(_field(function, "name") or ""))
            total += _encode_len(encoder, str(_field(function, "arguments") or ""))
    if tools:
        tool_list = list(tools)
        total += _tool_tokens(encoder, tool_list, modern=encoding == O200K)
        estimated = True  # the rendering of tools is not published exactly
    return TokenCount(total, estimated, encoding if encoder else None)


def count_any_tokens(value: Any, model: str, *, wait: Optional[float] = None) -> TokenCount:
    """Tokens of free-form input (a string, a list of strings, or JSON-able data)."""
    if isinstance(value, str):
        return count_tokens(value, model, wait=wait)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        counts = [count_tokens(v, model, wait=wait) for v in value]
        return TokenCount(
            sum(counts), any(c.estimated for c in counts), counts[0].encoding if counts else None
        )
    text = json.dumps(value, default=str, ensure_ascii=False)
    count = count_tokens(text, model, wait=wait)
    return TokenCount(int(count), True, count.encoding)


def prefetch(encodings: Iterable[str] = (O200K, CL100K)) -> dict[str, str]:
    """Download (or find in ``TIKTOKEN_CACHE_DIR``) the encodings now, on this thread.

    Returns name -> ``ok`` or the error. Loaded encodings are used by otelite's
    counting from then on (an app can call this at startup to count exactly
    from its first call).
    """
    import tiktoken

    results = {}
    for name in encodings:
        try:
            loaded = tiktoken.get_encoding(name)
        except Exception as exc:
            results[name] = f"failed: {exc}"
            continue
        results[name] = "ok"
        with _lock:
            _encodings[name] = loaded
            _failed.discard(name)
            _gave_up.discard(name)
    return results


def _reset_for_tests() -> None:
    """Forget every encoding, load in flight and failure (loads still running are ignored)."""
    global _generation
    with _lock:
        _generation += 1
        _encodings.clear()
        _failed.clear()
        _gave_up.clear()
        _loading.clear()


def _after_fork_in_child() -> None:
    # The loader threads do not exist in a forked child: loads in flight start again.
    global _generation, _lock
    _lock = threading.Lock()
    _generation += 1
    _loading.clear()
    _gave_up.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
