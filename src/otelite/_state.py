"""What instrumentation reads on every call: the active tracer, meter and policies.

The bottom of the runtime layer. ``configure()`` (in ``_config``) builds an
:class:`Active` and installs it with :func:`install`; every instrumented call
reads it with :func:`active`, which is one global read. Without ``configure()``
(``opentelemetry-instrument python app.py``, or ``instrument_openai()`` alone)
the Active follows the global providers, and its policies come from the same
environment variables ``configure()`` reads: the resolver that turns them into
values lives above this module and hands itself in with :func:`set_defaults`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional

from opentelemetry import metrics, trace
from opentelemetry.metrics import Meter, MeterProvider
from opentelemetry.trace import Tracer, TracerProvider

from otelite import _semconv as sc
from otelite._content import ContentPolicy
from otelite._version import __version__

if TYPE_CHECKING:
    from otelite._pricing import UserPrices

logger = logging.getLogger("otelite")


class Active(NamedTuple):
    """What instrumentation reads on every call: swapped whole, never mutated."""

    tracer: Tracer
    meter: Meter
    content: ContentPolicy
    prices: Optional[UserPrices] = None
    stream_usage: bool = True
    checks: tuple[Any, ...] = ()
    dimensions: Any = None  # an otelite._dimensions.Limiter when metric_dimensions are on


class Policies(NamedTuple):
    """The parts of :class:`Active` that come from settings rather than providers."""

    content: ContentPolicy = ContentPolicy()
    prices: Optional[UserPrices] = None
    stream_usage: bool = True
    checks: tuple[Any, ...] = ()


lock = threading.RLock()
_active: Optional[Active] = None
_overrides: list[Active] = []
_warned: set[str] = set()  # keys of the warnings already given (each is logged once)
_warned_lock = threading.Lock()


def warn_once(key: str, message: str, *args: Any, level: int = logging.WARNING) -> None:
    """Log ``message`` the first time ``key`` is seen in this process."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.log(level, message, *args)


def tracer_from(provider: TracerProvider) -> Tracer:
    """otelite's tracer (its scope, version and schema URL) from ``provider``."""
    return provider.get_tracer(sc.INSTRUMENTATION_SCOPE, __version__, schema_url=sc.SCHEMA_URL)


def meter_from(provider: MeterProvider) -> Meter:
    """otelite's meter (its scope, version and schema URL) from ``provider``."""
    return provider.get_meter(sc.INSTRUMENTATION_SCOPE, __version__, schema_url=sc.SCHEMA_URL)


def _no_defaults() -> Policies:
    return Policies()


_defaults: Callable[[], Policies] = _no_defaults
# Not configured: the Active built for the global providers, reused while they stay the
# same (a new proxy meter per call would pile up instruments; the SDK's providers cache
# their tracers and meters, but the API's proxies do not). The environment is read once
# per pair of providers.
_unconfigured: Optional[tuple[TracerProvider, MeterProvider, Active]] = None


def set_defaults(factory: Callable[[], Policies]) -> None:
    """Use ``factory`` for the policies of an unconfigured process (read lazily, once)."""
    global _defaults, _unconfigured
    _defaults = factory
    _unconfigured = None


def active() -> Active:
    """The tracer, meter and policies instrumentation must use right now."""
    global _unconfigured
    current = _active
    if current is not None:
        return current
    # Not configured: follow whatever provider is global (a no-op until one is set).
    tracer_provider = trace.get_tracer_provider()
    meter_provider = metrics.get_meter_provider()
    cached = _unconfigured
    if cached is not None and cached[0] is tracer_provider and cached[1] is meter_provider:
        return cached[2]
    policies = _defaults()
    current = Active(
        tracer_from(tracer_provider),
        meter_from(meter_provider),
        policies.content,
        policies.prices,
        policies.stream_usage,
        policies.checks,
    )
    _unconfigured = (tracer_provider, meter_provider, current)
    return current


def install(replacement: Optional[Active]) -> None:
    """Make ``replacement`` what :func:`active` returns (``None``: not configured)."""
    global _active, _unconfigured
    with lock:
        _active = replacement
        if replacement is None:
            _unconfigured = None  # the environment may have changed since


@contextmanager
def override(replacement: Active) -> Iterator[None]:
    """Make instrumentation use ``replacement`` inside the block (for the testing kit)."""
    global _active
    with lock:
        previous = _active
        _overrides.append(replacement)
        _active = replacement
    try:
        yield
    finally:
        with lock:
            _overrides.remove(replacement)
            _active = previous
