"""Context attributes: values stamped on every span started inside a block.

``otelite.attributes(user_id=..., tags=[...])`` stores a merged, immutable
mapping in the OpenTelemetry context. A span processor copies it onto each span
when the span starts, so spans made by otelite, by its OpenAI instrumentation and
by any other instrumentation on the same provider all carry it. The context is
a ``contextvars`` value: asyncio tasks inherit it; thread pools need
:func:`bind_context` or :class:`ContextThreadPoolExecutor`.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

from opentelemetry import context as otel_context
from opentelemetry.context import Context

from otelite import _env, _guard, _state
from otelite import _semconv as sc
from otelite._content import TRUNCATION_MARKER, to_json, truncate
from otelite._exceptions import ConfigurationError

if TYPE_CHECKING:
    from typing_extensions import ParamSpec

    P = ParamSpec("P")

R = TypeVar("R")
AttributeValue = Union[
    str, bool, int, float, Sequence[str], Sequence[bool], Sequence[int], Sequence[float]
]

KEY = otel_context.create_key("otelite.attributes")
EMPTY: Mapping[str, Any] = MappingProxyType({})


logger = logging.getLogger("otelite")

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SCALARS = (str, bool, int, float)
_MAX_REASONS = 256  # distinct drop reasons remembered (keys come from user data)


class _Dropped:
    """Marks a value that is not recorded."""

    __slots__ = ()


DROPPED: Any = _Dropped()

_lock = threading.Lock()
_dropped_reasons: set[str] = set()
_bad_limit_warned = False


def reset_dropped_reasons() -> None:
    """Forget which drops and bad limits were logged (for tests)."""
    global _bad_limit_warned
    with _lock:
        _dropped_reasons.clear()
        _bad_limit_warned = False


def _drop(argument: str, why: str) -> Any:
    """Log (once per reason, at DEBUG) that a value is not recorded; return :data:`DROPPED`."""
    reason = f"{argument} {why}"
    with _lock:
        first = reason not in _dropped_reasons and len(_dropped_reasons) < _MAX_REASONS
        if first:
            _dropped_reasons.add(reason)
    if first:
        logger.debug(
            "otelite: %s, so it is not recorded (as OpenTelemetry does with invalid "
            "attribute values; logged once)",
            reason,
        )
    return DROPPED


def value_limit() -> tuple[int, bool]:
    """The length limit of one string attribute value, and whether the marker fits inside it.

    ``OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`` / ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`` when
    set: the SDK cuts at that length too, so the truncation marker must fit inside it.
    Otherwise the content policy's ``max_length`` (``max_content_length``), with the marker
    after it as for captured content. A bad variable is refused by ``configure()``; one
    seen only here is ignored with one warning.
    """
    global _bad_limit_warned
    try:
        limit = _env.attribute_value_length_limit()
    except ConfigurationError as exc:
        with _lock:
            first, _bad_limit_warned = not _bad_limit_warned, True
        if first:
            logger.warning("otelite: %s; ignoring it and using max_content_length", exc)
        limit = None
    if limit is not None:
        return limit, True
    return _state.active().content.max_length, False


def cap_text(text: str, limit: Optional[tuple[int, bool]] = None) -> str:
    """``text`` cut to the attribute value limit with a visible ``…[truncated N chars]``."""
    length, inside = limit if limit is not None else value_limit()
    if len(text) <= length:
        return text
    if not inside:
        return truncate(text, length)
    room = length - len(TRUNCATION_MARKER.format(len(text)))
    if room < 0:
        return text[:length]
    return text[:room] + TRUNCATION_MARKER.format(len(text) - room)


def _int_value(argument: str, value: int, limit: tuple[int, bool]) -> Any:
    if _INT64_MIN <= value <= _INT64_MAX:
        return value
    try:  # OTLP carries 64-bit integers only: keep the digits as text
        return cap_text(str(value), limit)
    except ValueError:  # more digits than Python converts to text
        return _drop(argument, "is an integer too large to record")


def attribute_value(argument: str, value: object, limit: tuple[int, bool]) -> Any:
    """``value`` as a valid, size-capped attribute value, or :data:`DROPPED`.

    Strings (also inside lists) are capped; ``None`` is dropped; integers beyond 64 bits
    become text; anything else (mixed lists, dicts, objects) is recorded as JSON text.
    """
    if value is None:
        return _drop(argument, "is None")
    if isinstance(value, str):
        return cap_text(value, limit)
    if isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        return _int_value(argument, value, limit)
    if isinstance(value, (list, tuple)) and value:
        first = type(value[0])
        if first in _SCALARS and all(type(v) is first for v in value):
            if first is str:
                return [cap_text(v, limit) for v in value]
            if first is not int or all(_INT64_MIN <= v <= _INT64_MAX for v in value):
                return list(value)
    return cap_text(to_json(value), limit)


def clean_attributes(values: Mapping[Any, Any], label: str, prefix: str = "") -> dict[str, Any]:
    """The valid, capped attributes of ``values``; invalid keys and values are dropped.

    ``label`` names one entry in log lines, with ``{!r}`` for its key, such as
    ``"otelite.span(): attribute {!r}"``.
    """
    limit = value_limit()
    out: dict[str, Any] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            _drop(label.format(key), "has a key that is not a non-empty str")
            continue
        cleaned = attribute_value(label.format(key), value, limit)
        if cleaned is not DROPPED:
            out[prefix + key] = cleaned
    return out


def _id_value(argument: str, value: object, limit: tuple[int, bool]) -> Any:
    if isinstance(value, str):
        return cap_text(value, limit) if value else _drop(argument, "is empty")
    if isinstance(value, (int, uuid.UUID)) and not isinstance(value, bool):
        return _id_value(argument, str(value), limit)
    return _drop(argument, f"is a {type(value).__name__}, not a str")


def _tags(tags: object, limit: tuple[int, bool]) -> tuple[str, ...]:
    if isinstance(tags, str):
        tags = [tags]
    if isinstance(tags, (bytes, bytearray)) or not isinstance(tags, Iterable):
        _drop("otelite.attributes(): tags", f"is a {type(tags).__name__}, not a list of str")
        return ()
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not tag:
            _drop("otelite.attributes(): a tag", "is not a non-empty str")
            continue
        capped = cap_text(tag, limit)
        if capped not in out:
            out.append(capped)
    return tuple(out)


def _build(
    extra: object,
    user_id: object,
    session_id: object,
    conversation_id: object,
    tags: object,
    metadata: object,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    where = "otelite.attributes()"
    attrs: dict[str, Any] = {}
    limit = value_limit()
    if extra is not None:
        if isinstance(extra, Mapping):
            attrs.update(clean_attributes(extra, where + ": attribute {!r}"))
        else:
            _drop(
                f"{where}: the positional argument", f"is a {type(extra).__name__}, not a mapping"
            )
    for argument, value, key in (
        ("user_id", user_id, sc.USER_ID),
        ("session_id", session_id, sc.SESSION_ID),
        ("conversation_id", conversation_id, sc.GEN_AI_CONVERSATION_ID),
    ):
        if value is not None:
            cleaned = _id_value(f"{where}: {argument}", value, limit)
            if cleaned is not DROPPED:
                attrs[key] = cleaned
    if metadata is not None:
        if isinstance(metadata, Mapping):
            attrs.update(
                clean_attributes(metadata, where + ": metadata[{!r}]", sc.OTELITE_METADATA_PREFIX)
            )
        else:
            _drop(f"{where}: metadata", f"is a {type(metadata).__name__}, not a mapping")
    tag_tuple = _tags(tags, limit) if tags is not None else ()
    return attrs, tag_tuple


class attributes:
    """Stamp attributes on every span started inside a block, a function, or a task.

    Nested blocks merge: inner values win, tags accumulate. The values also reach
    spans started in asyncio tasks created inside the block, and in thread pools
    through :func:`otelite.bind_context` / :class:`otelite.ContextThreadPoolExecutor`.
    Standard names are used where they exist: ``user.id``, ``session.id``,
    ``gen_ai.conversation.id``; ``tags`` become ``otelite.tags`` and each metadata key
    ``otelite.metadata.<key>``. A mapping given positionally sets any other attribute,
    such as ``geo.country.iso_code`` or ``client.address``.

    Values never raise: ``None``, empty ids and tags and invalid keys are dropped
    (logged once at DEBUG), int and UUID ids become text, other values OpenTelemetry
    cannot hold become JSON text, and strings are size-capped (see ``docs/attributes.md``).

    Example:
        >>> import otelite
        >>> with otelite.attributes(user_id="u-42", tags=["beta"], metadata={"plan": "pro"}):
        ...     pass
        >>> @otelite.attributes({"geo.country.iso_code": "DE"})
        ... def handle() -> None: ...
    """

    __slots__ = ("_attrs", "_tags", "_tokens")

    def __init__(
        self,
        attributes: Optional[Mapping[str, Any]] = None,
        /,
        *,
        user_id: Optional[str] = None,
        session_id: Optional[str] = None,
        conversation_id: Optional[str] = None,
        tags: Optional[Iterable[str]] = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self._attrs: dict[str, Any] = {}
        self._tags: tuple[str, ...] = ()
        with _guard.contained("reading otelite.attributes() values"):
            self._attrs, self._tags = _build(
                attributes, user_id, session_id, conversation_id, tags, metadata
            )
        self._tokens: list[object] = []

    def _merged(self) -> Mapping[str, Any]:
        outer = current_attributes()
        merged = dict(outer)
        merged.update(self._attrs)
        if self._tags:
            tags = list(outer.get(sc.OTELITE_TAGS, ()))
            tags.extend(t for t in self._tags if t not in tags)
            merged[sc.OTELITE_TAGS] = tuple(tags)
        return MappingProxyType(merged)

    def __enter__(self) -> None:
        token = otel_context.attach(otel_context.set_value(KEY, self._merged()))
        self._tokens.append(token)

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        otel_context.detach(self._tokens.pop())  # type: ignore[arg-type]

    def _fresh(self) -> attributes:
        clone = object.__new__(attributes)
        clone._attrs, clone._tags, clone._tokens = self._attrs, self._tags, []
        return clone

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        """Use as a decorator: the attributes apply while ``func`` runs (sync or async)."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                with self._fresh():
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with self._fresh():
                return func(*args, **kwargs)

        return wrapper


def current_attributes(context: Optional[Context] = None) -> Mapping[str, Any]:
    """The merged context attributes in force (read-only), as span attributes.

    Example:
        >>> import otelite
        >>> with otelite.attributes(user_id="u-1"):
        ...     dict(otelite.current_attributes())
        {'user.id': 'u-1'}
    """
    value = otel_context.get_value(KEY, context)
    if value is None:  # the common case, without the isinstance check of an ABC
        return EMPTY
    return value if isinstance(value, Mapping) else EMPTY


def bind_context(func: Callable[P, R]) -> Callable[P, R]:
    """Return ``func`` bound to the current context, for running it in another thread.

    The current span (so parent links) and ``otelite.attributes`` travel with it.
    Each call runs in its own copy, so the result may be called from many threads.

    Example:
        >>> import otelite
        >>> from concurrent.futures import ThreadPoolExecutor
        >>> def work(x: int) -> int:
        ...     return x * 2
        >>> with otelite.attributes(user_id="u-1"), ThreadPoolExecutor() as pool:
        ...     list(pool.map(otelite.bind_context(work), [1, 2]))
        [2, 4]
    """
    captured = contextvars.copy_context()

    @functools.wraps(func)
    def bound(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(func, *args, **kwargs)

    return bound


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose tasks run in the context of the code that submitted them.

    Spans started in the workers get the submitting span as parent, and carry its
    ``otelite.attributes``; ``map`` is covered too.

    Example:
        >>> import otelite
        >>> with otelite.ContextThreadPoolExecutor(max_workers=2) as pool:
        ...     pool.submit(sum, [1, 2]).result()
        3
    """

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)


# --- usage tally: what the LLM calls inside a block spent -----------------------------


class Tally:
    """Tokens and cost of the LLM calls made inside a :func:`tally` block (thread-safe)."""

    __slots__ = ("_lock", "calls", "cost", "input_tokens", "output_tokens", "unpriced")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost = 0.0
        self.unpriced = 0

    def add(
        self, input_tokens: Optional[int], output_tokens: Optional[int], cost: Optional[float]
    ) -> None:
        """Count one call."""
        with self._lock:
            self.calls += 1
            self.input_tokens += input_tokens or 0
            self.output_tokens += output_tokens or 0
            if cost is None:
                self.unpriced += 1
            else:
                self.cost += cost


_TALLY = otel_context.create_key("otelite.tally")


@contextmanager
def tally() -> Iterator[Tally]:
    """Count the LLM calls made inside the block (asyncio tasks and bound threads included)."""
    counted = Tally()
    token = otel_context.attach(otel_context.set_value(_TALLY, counted))
    try:
        yield counted
    finally:
        otel_context.detach(token)


def count_call(
    input_tokens: Optional[int], output_tokens: Optional[int], cost: Optional[float]
) -> None:
    """Add one LLM call to the tally of the current block, if any (cheap when there is none)."""
    current = otel_context.get_value(_TALLY)
    if isinstance(current, Tally):
        current.add(input_tokens, output_tokens, cost)
