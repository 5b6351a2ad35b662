"""Opt-in metric dimensions with a hard cap on distinct values: user, prompt, version, geo.

Labels such as ``user.id`` turn one metric series into one per user; a Prometheus
server fed an unbounded label runs out of memory. So these labels are off unless
``configure(metric_dimensions=[...])`` (or ``OTELITE_METRIC_DIMENSIONS``) names them,
and each one keeps at most ``cap`` distinct values per process: the values seen
first keep their own series, every later one is recorded as ``"other"`` (logged
once per dimension). With the default cap and four dimensions a metric can grow
by a bounded factor, never by the number of users.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Optional, Union

from otelite import _semconv as sc
from otelite._exceptions import ConfigurationError

logger = logging.getLogger("otelite")

DEFAULT_CAP = 50  # distinct values each dimension keeps before the rest become "other"
MAX_CAP = 1000

# Dimension name -> the attributes it adds (read from the context, the request or the resource).
DIMENSIONS: Mapping[str, tuple[str, ...]] = {
    "user": (sc.USER_ID,),
    "prompt": (sc.GEN_AI_PROMPT_NAME, sc.GEN_AI_PROMPT_VERSION),
    "service.version": (sc.SERVICE_VERSION,),
    "geo": (sc.GEO_COUNTRY, sc.GEO_REGION),
}

DimensionsArg = Union[Sequence[str], Mapping[str, int], str, None]


class Limiter:
    """The chosen dimensions and the values each has kept so far (thread-safe, bounded)."""

    __slots__ = ("_caps", "_lock", "_seen", "_warned", "service_version")

    def __init__(self, caps: Mapping[str, int], service_version: Optional[str] = None) -> None:
        self._caps = dict(caps)
        self._seen: dict[str, set[Any]] = {name: set() for name in caps}
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self.service_version = service_version

    @property
    def caps(self) -> Mapping[str, int]:
        """Each chosen dimension and its cap."""
        return dict(self._caps)

    def _bounded(self, name: str, value: Any) -> Any:
        seen = self._seen[name]
        if value in seen:
            return value
        with self._lock:
            if value in seen:
                return value
            if len(seen) < self._caps[name]:
                seen.add(value)
                return value
            if name not in self._warned:
                self._warned.add(name)
                logger.warning(
                    "otelite: metric dimension %r reached its cap of %d distinct values; "
                    "further values are recorded as %r (raise the cap with "
                    "metric_dimensions={%r: N}, or drop the dimension)",
                    name,
                    self._caps[name],
                    sc.DIMENSION_OTHER,
                    name,
                )
            return sc.DIMENSION_OTHER

    def attributes(self, context: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
        """The metric attributes of the chosen dimensions for one call (capped values)."""
        out: dict[str, Any] = {}
        for name in self._caps:
            if name == "service.version":
                if self.service_version is not None:
                    out[sc.SERVICE_VERSION] = self.service_version
                continue
            keys = DIMENSIONS[name]
            values = [request.get(k, context.get(k)) for k in keys]
            if all(v is None for v in values):
                continue
            # A dimension's keys are capped together (a prompt is its name and version).
            combined = tuple(str(v) if v is not None else "" for v in values)
            kept = self._bounded(name, combined)
            for key, value in zip(keys, combined):
                if kept == sc.DIMENSION_OTHER:
                    out[key] = sc.DIMENSION_OTHER
                elif value:
                    out[key] = value
        return out


def parse(value: DimensionsArg, argument: str = "metric_dimensions") -> tuple[tuple[str, int], ...]:
    """Validate ``metric_dimensions`` (names, ``{name: cap}``, or ``"user:20,geo"``).

    Returns the chosen dimensions with their caps, in the order given.

    Raises:
        ConfigurationError: an unknown name or a cap that is not 1..1000; the message names it.
    """
    if value is None:
        return ()
    items: list[tuple[str, Any]] = []
    if isinstance(value, str):
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, cap = part.partition(":")
            items.append((name.strip(), cap.strip() if sep else DEFAULT_CAP))
    elif isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, Sequence):
        items = [(v, DEFAULT_CAP) for v in value]
    else:
        raise ConfigurationError(
            f"{argument}: expected a list such as ['user', 'prompt'] or a mapping such as "
            f"{{'user': 20}}, got {type(value).__name__}"
        )
    out: dict[str, int] = {}
    for name, cap in items:
        if not isinstance(name, str) or name not in DIMENSIONS:
            raise ConfigurationError(
                f"{argument}: unknown dimension {name!r}; choose from {', '.join(DIMENSIONS)}"
            )
        try:
            number = int(cap)
        except (TypeError, ValueError):
            number = 0
        if isinstance(cap, bool) or str(number) != str(cap).strip() or not 1 <= number <= MAX_CAP:
            raise ConfigurationError(
                f"{argument}: the cap of {name!r} must be a whole number from 1 to {MAX_CAP}, "
                f"got {cap!r}"
            )
        out[name] = number
    return tuple(out.items())


def resolve(
    value: DimensionsArg, env_value: Optional[str], env_name: str
) -> tuple[tuple[str, int], ...]:
    """The argument if given, else the environment variable's value (validated)."""
    if value is not None:
        return parse(value)
    return parse(env_value, env_name) if env_value else ()


def limiter(
    chosen: Sequence[tuple[str, int]], service_version: Optional[str] = None
) -> Optional[Limiter]:
    """A fresh limiter for the chosen dimensions, or ``None`` when none is chosen."""
    return Limiter(dict(chosen), service_version) if chosen else None
