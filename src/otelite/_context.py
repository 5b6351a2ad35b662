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
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

from opentelemetry import context as otel_context
from opentelemetry.context import Context

from otelite import _semconv as sc
from otelite._content import to_json

if TYPE_CHECKING:
    from typing_extensions import ParamSpec

    P = ParamSpec("P")

R = TypeVar("R")
AttributeValue = Union[
    str, bool, int, float, Sequence[str], Sequence[bool], Sequence[int], Sequence[float]
]

KEY = otel_context.create_key("otelite.attributes")
EMPTY: Mapping[str, Any] = MappingProxyType({})


def _check_str(argument: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(
            f"otelite.attributes(): {argument} must be a str, got {type(value).__name__} "
            f"({value!r}); convert it with str() first"
        )
    if not value:
        raise ValueError(f"otelite.attributes(): {argument} must not be empty")
    return value


def _attribute_value(argument: str, value: object) -> Any:
    """A valid OpenTelemetry attribute value; anything else is stored as JSON text."""
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and value:
        first = type(value[0])
        if first in (str, bool, int, float) and all(type(v) is first for v in value):
            return list(value)
    if value is None:
        raise ValueError(f"otelite.attributes(): {argument} is None; leave it out instead")
    return to_json(value)


def _build(
    extra: Optional[Mapping[str, Any]],
    user_id: Optional[str],
    session_id: Optional[str],
    conversation_id: Optional[str],
    tags: Optional[Iterable[str]],
    metadata: Optional[Mapping[str, Any]],
) -> tuple[dict[str, Any], tuple[str, ...]]:
    attrs: dict[str, Any] = {}
    if extra is not None:
        if not isinstance(extra, Mapping):
            raise TypeError(
                "otelite.attributes(): the positional argument must be a mapping of "
                f"attribute names to values, got {type(extra).__name__}"
            )
        for key, value in extra.items():
            _check_str("an attribute name", key)
            attrs[key] = _attribute_value(f"attribute {key!r}", value)
    if user_id is not None:
        attrs[sc.USER_ID] = _check_str("user_id", user_id)
    if session_id is not None:
        attrs[sc.SESSION_ID] = _check_str("session_id", session_id)
    if conversation_id is not None:
        attrs[sc.GEN_AI_CONVERSATION_ID] = _check_str("conversation_id", conversation_id)
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise TypeError(
                "otelite.attributes(): metadata must be a mapping such as "
                f"{{'plan': 'pro'}}, got {type(metadata).__name__}"
            )
        for key, value in metadata.items():
            _check_str("a metadata key", key)
            attrs[sc.OTELITE_METADATA_PREFIX + key] = _attribute_value(f"metadata[{key!r}]", value)
    tag_tuple: tuple[str, ...] = ()
    if tags is not None:
        if isinstance(tags, (str, bytes)) or not isinstance(tags, Iterable):
            raise TypeError(
                "otelite.attributes(): tags must be a list of strings such as ['beta'], "
                f"got {type(tags).__name__}"
            )
        tag_tuple = tuple(_check_str("each tag", t) for t in tags)
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
