"""Global configuration: the one owner of otelite's state (``configure``/``shutdown``).

``configure()`` resolves its arguments against the standard ``OTEL_*`` and
otelite's ``OTELITE_*`` environment variables, validates them, and wires
processors into a tracer provider:

* an explicit ``tracer_provider=`` is used as is and never made global;
* else an SDK ``TracerProvider`` that is already installed globally is extended;
* else otelite creates one and installs it globally.

otelite adds a single processor per provider and swaps its contents when
``configure()`` runs again with different settings, so reconfiguring never
stacks exporters. Calling it again with the same settings does nothing.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Union
from urllib.parse import unquote, urlparse

from opentelemetry import metrics, trace
from opentelemetry.metrics import Meter, MeterProvider
from opentelemetry.trace import Tracer, TracerProvider

from otelite import _env, _guard
from otelite import _semconv as sc
from otelite._content import DEFAULT_MAX_CONTENT_LENGTH, ContentPolicy
from otelite._exceptions import ConfigurationError, StoreError
from otelite._version import __version__

if TYPE_CHECKING:
    # The SDK, exporters, store and prices load when configure() runs, not at ``import otelite``.
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    from otelite import _export
    from otelite._pricing import UserPrices

PROTOCOLS = ("http/protobuf", "grpc")

logger = logging.getLogger("otelite")

FLUSH_TIMEOUT_MS = 5000
"""Bound on shutting down replaced processors (in the background) and on waiting for judges."""
EXIT_TIMEOUT_S = 2.0
"""Default bound on ``shutdown()`` and on delivery at interpreter exit (seconds)."""
exit_timeout_s: Optional[float] = None
"""The bound ``configure()`` was given, if any; else ``OTELITE_EXIT_TIMEOUT``, else the default."""
_CONTENT_ON = frozenset({"true", "1", "yes", "on", "span_only", "span_and_event"})
_CONTENT_OFF = frozenset({"false", "0", "no", "off", "no_content", "event_only"})

StorePath = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Settings:
    """The resolved configuration (arguments first, then environment, then defaults)."""

    service_name: Optional[str] = None
    traces_endpoint: Optional[str] = None
    metrics_endpoint: Optional[str] = None
    protocol: str = "http/protobuf"
    headers: tuple[tuple[str, str], ...] = ()
    store_path: Optional[Path] = None
    sample_ratio: Optional[float] = None
    resource_attributes: tuple[tuple[str, Any], ...] = ()
    content: ContentPolicy = field(default_factory=ContentPolicy)
    prices: Optional[UserPrices] = None
    stream_usage: bool = True
    retention_s: Optional[float] = None
    checks: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Active:
    """What instrumentation reads on every call: swapped whole, never mutated."""

    tracer: Tracer
    meter: Meter
    content: ContentPolicy
    prices: Optional[UserPrices] = None
    stream_usage: bool = True
    checks: tuple[Any, ...] = ()


@dataclass
class _State:
    settings: Optional[Settings] = None
    disabled: bool = False
    provider: Optional[SdkTracerProvider] = None
    owns_provider: bool = False
    swappable: Optional[_export.SwappableProcessor] = None
    meter_provider: Optional[MeterProvider] = None
    owns_meter_provider: bool = False
    atexit_registered: bool = False


_lock = threading.RLock()
_state = _State()
_active: Optional[Active] = None
_overrides: list[Active] = []
_owned_providers: set[int] = set()


def _tracer_from(provider: TracerProvider) -> Tracer:
    return provider.get_tracer(sc.INSTRUMENTATION_SCOPE, __version__, schema_url=sc.SCHEMA_URL)


def _meter_from(provider: MeterProvider) -> Meter:
    return provider.get_meter(sc.INSTRUMENTATION_SCOPE, __version__, schema_url=sc.SCHEMA_URL)


def active() -> Active:
    """The tracer, meter and content policy instrumentation must use right now."""
    current = _active
    if current is None:
        # Not configured: follow whatever provider is global (a no-op until one is set).
        current = Active(
            _tracer_from(trace.get_tracer_provider()),
            _meter_from(metrics.get_meter_provider()),
            ContentPolicy(),
        )
    return current


def is_configured() -> bool:
    """Whether ``configure()`` has run (and ``shutdown()`` has not since).

    Example:
        >>> import otelite
        >>> isinstance(otelite.is_configured(), bool)
        True
    """
    return _state.settings is not None or _state.disabled


# --- argument resolution -------------------------------------------------------------


def _validate_endpoint(argument: str, value: str, protocol: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        example = "http://localhost:4317" if protocol == "grpc" else "http://localhost:4318"
        raise ConfigurationError(
            f"{argument}: {value!r} is not a valid OTLP endpoint URL; give a URL with scheme "
            f"and host, such as {example!r}"
        )
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigurationError(
            f"{argument}: {value!r} has an invalid port; use a number between 0 and 65535"
        ) from None
    return value


def _parse_headers(
    argument: str, value: Union[str, Mapping[str, str]]
) -> tuple[tuple[str, str], ...]:
    if isinstance(value, Mapping):
        items = list(value.items())
        for key, val in items:
            if not isinstance(key, str) or not key.strip() or not isinstance(val, str):
                raise ConfigurationError(
                    f"{argument}: header {key!r}: {val!r} is invalid; names and values must be "
                    "non-empty strings, e.g. {'authorization': 'Bearer <token>'}"
                )
        return tuple((k.strip(), v) for k, v in items)
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{argument}: expected a mapping or a 'key=value,key2=value2' string, "
            f"got {type(value).__name__}"
        )
    headers = []
    for part in value.split(","):
        if not part.strip():
            continue
        key, sep, val = part.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(
                f"{argument}: {part.strip()!r} is not a 'key=value' pair; write headers as "
                "'key1=value1,key2=value2' with URL-encoded values"
            )
        headers.append((unquote(key.strip()), unquote(val.strip())))
    return tuple(headers)


def _signal_url(endpoint: str, protocol: str, signal: str) -> str:
    """OTLP/HTTP appends ``/v1/{signal}`` to the base endpoint; gRPC uses it as is."""
    if protocol == "grpc":
        return endpoint
    return f"{endpoint.rstrip('/')}/v1/{signal}"


def _parse_protocol(argument: str, value: str) -> str:
    protocol = value.strip().lower()
    if protocol not in PROTOCOLS:
        raise ConfigurationError(
            f"{argument}: unknown protocol {value!r}; use one of {', '.join(PROTOCOLS)}"
        )
    return protocol


def _parse_ratio(argument: str, value: Union[str, float]) -> float:
    try:
        ratio = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"{argument}: {value!r} is not a number; give a fraction from 0.0 to 1.0"
        ) from None
    if isinstance(value, bool) or math.isnan(ratio) or not 0.0 <= ratio <= 1.0:
        raise ConfigurationError(
            f"{argument}: {value!r} is out of range; give a fraction from 0.0 (keep no trace) "
            "to 1.0 (keep every trace)"
        )
    return ratio


def _parse_capture(value: Optional[bool]) -> bool:
    if value is not None:
        if not isinstance(value, bool):
            raise ConfigurationError(
                f"capture_content: expected True or False, got {type(value).__name__}"
            )
        return value
    var = _env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT
    raw = var.read()
    if raw is None:
        return False
    if raw.lower() in _CONTENT_ON:
        return True
    if raw.lower() in _CONTENT_OFF:
        return False
    raise ConfigurationError(
        f"{var.name}: {raw!r} is not understood; use 'true' or 'false' "
        "(or the modes span_only, span_and_event, no_content, event_only)"
    )


_RETENTION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _parse_retention(value: Union[str, float, None]) -> Optional[float]:
    argument = "retention"
    raw: Any = value
    if raw is None:
        raw = _env.OTELITE_RETENTION.read()
        argument = _env.OTELITE_RETENTION.name
        if raw is None:
            return None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw > 0:
        return float(raw)
    match = _RETENTION.match(raw) if isinstance(raw, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise ConfigurationError(
            f"{argument}: {raw!r} is not a duration; give seconds or a text such as '30d', '12h' or '2w'"
        )
    return float(match.group(1)) * _SECONDS[match.group(2)]


def _parse_max_length(value: Optional[int]) -> int:
    argument = "max_content_length"
    raw: Any = value
    if raw is None:
        raw = _env.OTELITE_MAX_CONTENT_LENGTH.read()
        argument = _env.OTELITE_MAX_CONTENT_LENGTH.name
        if raw is None:
            return DEFAULT_MAX_CONTENT_LENGTH
    try:
        length = int(raw)
    except (TypeError, ValueError):
        length = -1
    if isinstance(raw, bool) or length <= 0:
        raise ConfigurationError(
            f"{argument}: {raw!r} must be a positive whole number of characters"
        )
    return length


def _resolve_store(local_store: Union[bool, StorePath, None], has_endpoint: bool) -> Optional[Path]:
    from otelite import _sqlite

    if local_store is None:
        enabled = _env.OTELITE_LOCAL_STORE.read_bool(default=not has_endpoint)
        return _sqlite.default_store_path() if enabled else None
    if local_store is False:
        return None
    if local_store is True:
        return _sqlite.default_store_path()
    if isinstance(local_store, (str, os.PathLike)):
        if not str(local_store).strip():
            raise ConfigurationError(
                "local_store: the path is empty; give a directory, True for the default, "
                "or False to disable the store"
            )
        return _sqlite.resolve_store_path(local_store)
    raise ConfigurationError(
        f"local_store: expected a path, True or False, got {type(local_store).__name__}"
    )


def resolve_settings(
    *,
    service_name: Optional[str],
    endpoint: Optional[str],
    protocol: Optional[str],
    headers: Union[str, Mapping[str, str], None],
    local_store: Union[bool, StorePath, None],
    capture_content: Optional[bool],
    redact: Optional[Callable[[str], str]],
    redact_builtin: Optional[bool],
    max_content_length: Optional[int],
    sample_ratio: Optional[float],
    resource_attributes: Optional[Mapping[str, Any]],
    prices: Union[str, os.PathLike[str], Mapping[str, Any], None] = None,
    stream_usage: Optional[bool] = None,
    retention: Union[str, float, None] = None,
    checks: Optional[Sequence[Any]] = None,
) -> Settings:
    """Merge arguments with environment variables and validate everything."""
    if protocol is not None:
        proto = _parse_protocol("protocol", protocol)
    else:
        raw = _env.OTEL_EXPORTER_OTLP_PROTOCOL.read()
        proto = (
            _parse_protocol(_env.OTEL_EXPORTER_OTLP_PROTOCOL.name, raw) if raw else "http/protobuf"
        )

    traces_endpoint = metrics_endpoint = None
    if endpoint is not None:
        if not isinstance(endpoint, str):
            raise ConfigurationError(
                f"endpoint: expected a URL string, got {type(endpoint).__name__}"
            )
        base = _validate_endpoint("endpoint", endpoint, proto)
        traces_endpoint = _signal_url(base, proto, "traces")
        metrics_endpoint = _signal_url(base, proto, "metrics")
    else:
        base_env = _env.OTEL_EXPORTER_OTLP_ENDPOINT.read()
        if base_env:
            base = _validate_endpoint(_env.OTEL_EXPORTER_OTLP_ENDPOINT.name, base_env, proto)
            traces_endpoint = _signal_url(base, proto, "traces")
            metrics_endpoint = _signal_url(base, proto, "metrics")
        for var in (
            _env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
            _env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
        ):
            value = var.read()
            if value:
                _validate_endpoint(var.name, value, proto)
                if var is _env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:
                    traces_endpoint = value
                else:
                    metrics_endpoint = value

    metrics_exporter = (_env.OTEL_METRICS_EXPORTER.read() or "otlp").lower()
    if metrics_exporter not in ("otlp", "none"):
        raise ConfigurationError(
            f"{_env.OTEL_METRICS_EXPORTER.name}: {metrics_exporter!r} is not supported; use 'otlp' or 'none'"
        )
    if metrics_exporter == "none":
        metrics_endpoint = None

    if headers is not None:
        parsed_headers = _parse_headers("headers", headers)
    else:
        raw_headers = _env.OTEL_EXPORTER_OTLP_HEADERS.read()
        parsed_headers = (
            _parse_headers(_env.OTEL_EXPORTER_OTLP_HEADERS.name, raw_headers) if raw_headers else ()
        )

    if sample_ratio is not None:
        ratio: Optional[float] = _parse_ratio("sample_ratio", sample_ratio)
    else:
        raw_ratio = _env.OTELITE_SAMPLE_RATIO.read()
        ratio = _parse_ratio(_env.OTELITE_SAMPLE_RATIO.name, raw_ratio) if raw_ratio else None

    if service_name is not None and (not isinstance(service_name, str) or not service_name.strip()):
        raise ConfigurationError("service_name: give a non-empty string such as 'rag-api'")
    if redact is not None and not callable(redact):
        raise ConfigurationError(
            f"redact: expected a function taking and returning a str, got {type(redact).__name__}"
        )
    if redact_builtin is not None and not isinstance(redact_builtin, bool):
        raise ConfigurationError("redact_builtin: expected True or False")
    builtin = (
        redact_builtin
        if redact_builtin is not None
        else _env.OTELITE_REDACT_BUILTIN.read_bool(True)
    )
    if resource_attributes is not None and not isinstance(resource_attributes, Mapping):
        raise ConfigurationError(
            "resource_attributes: expected a mapping such as {'deployment.environment': 'prod'}"
        )

    if stream_usage is not None and not isinstance(stream_usage, bool):
        raise ConfigurationError("stream_usage: expected True or False")
    from otelite._pricing import load_user_prices

    user_prices = load_user_prices(prices, _env.OTELITE_PRICES_FILE.read())  # type: ignore[arg-type]

    from otelite import _checks

    if checks is not None:
        parsed_checks = _checks.validate(checks)
    else:
        raw_checks = _env.OTELITE_CHECKS.read()
        parsed_checks = (
            _checks.parse_env(raw_checks, _env.OTELITE_CHECKS.name) if raw_checks else ()
        )

    return Settings(
        service_name=service_name,
        traces_endpoint=traces_endpoint,
        metrics_endpoint=metrics_endpoint,
        protocol=proto,
        headers=parsed_headers,
        store_path=_resolve_store(local_store, traces_endpoint is not None),
        sample_ratio=ratio,
        resource_attributes=tuple(sorted((resource_attributes or {}).items())),
        content=ContentPolicy(
            capture=_parse_capture(capture_content),
            redact=redact,
            redact_builtin=builtin,
            max_length=_parse_max_length(max_content_length),
        ),
        prices=user_prices,
        stream_usage=stream_usage
        if stream_usage is not None
        else _env.OTELITE_STREAM_USAGE.read_bool(True),
        retention_s=_parse_retention(retention),
        checks=parsed_checks,
    )


# --- wiring ----------------------------------------------------------------------------


def _resource(settings: Settings) -> Resource:
    from opentelemetry.sdk.resources import Resource

    attrs: dict[str, Any] = dict(settings.resource_attributes)
    if settings.service_name:
        attrs[sc.SERVICE_NAME] = settings.service_name
    return Resource.create(attrs)


def _processors(settings: Settings) -> list[SpanProcessor]:
    from otelite import _export

    processors: list[SpanProcessor] = [_export.ContextAttributesProcessor()]
    if settings.traces_endpoint:
        exporter = _export.otlp_span_exporter(
            settings.traces_endpoint, settings.protocol, dict(settings.headers)
        )
        processors.append(_export.batch(exporter))
    if settings.store_path is not None:
        try:
            store = _export.LocalStoreExporter(settings.store_path, settings.retention_s)
        except StoreError as exc:
            raise ConfigurationError(
                f"local_store: {exc}. Pass local_store= (or set OTELITE_HOME) to a writable "
                "directory, or local_store=False to disable the store"
            ) from exc
        processors.append(_export.batch(store))
    return processors


def _choose_provider(
    settings: Settings, explicit: Optional[TracerProvider]
) -> tuple[SdkTracerProvider, bool]:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    if explicit is not None:
        if not isinstance(explicit, SdkTracerProvider):
            raise ConfigurationError(
                "tracer_provider: otelite needs an opentelemetry.sdk.trace.TracerProvider "
                f"(it adds span processors to it), got {type(explicit).__name__}"
            )
        return explicit, id(explicit) in _owned_providers
    current = trace.get_tracer_provider()
    if isinstance(current, SdkTracerProvider):
        owned = id(current) in _owned_providers
        if not owned and settings.sample_ratio is not None:
            logger.warning(
                "otelite: sample_ratio is ignored because a TracerProvider was already installed; "
                "configure sampling on that provider instead"
            )
        return current, owned
    sampler = (
        ParentBased(TraceIdRatioBased(settings.sample_ratio))
        if settings.sample_ratio is not None
        else None
    )
    provider = SdkTracerProvider(resource=_resource(settings), sampler=sampler)
    _owned_providers.add(id(provider))
    if isinstance(current, trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    else:
        logger.warning(
            "otelite: the global TracerProvider (%s) is not the OpenTelemetry SDK's; otelite "
            "keeps its own provider for its spans",
            type(current).__name__,
        )
    return provider, True


def _choose_meter_provider(
    settings: Settings, explicit: Optional[MeterProvider]
) -> tuple[Optional[MeterProvider], bool]:
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider

    from otelite import _export

    if explicit is not None:
        return explicit, False
    current = metrics.get_meter_provider()
    if isinstance(current, SdkMeterProvider) and id(current) not in _owned_providers:
        return current, False
    if not settings.metrics_endpoint:
        return None, False
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    reader = PeriodicExportingMetricReader(
        _export.otlp_metric_exporter(
            settings.metrics_endpoint, settings.protocol, dict(settings.headers)
        )
    )
    provider = SdkMeterProvider(metric_readers=[reader], resource=_resource(settings))
    _owned_providers.add(id(provider))
    if type(current).__name__ == "_ProxyMeterProvider":
        metrics.set_meter_provider(provider)
    return provider, True


def configure(
    *,
    service_name: Optional[str] = None,
    endpoint: Optional[str] = None,
    protocol: Optional[str] = None,
    headers: Union[str, Mapping[str, str], None] = None,
    local_store: Union[bool, StorePath, None] = None,
    capture_content: Optional[bool] = None,
    redact: Optional[Callable[[str], str]] = None,
    redact_builtin: Optional[bool] = None,
    max_content_length: Optional[int] = None,
    sample_ratio: Optional[float] = None,
    tracer_provider: Optional[TracerProvider] = None,
    meter_provider: Optional[MeterProvider] = None,
    resource_attributes: Optional[Mapping[str, Any]] = None,
    prices: Union[str, os.PathLike[str], Mapping[str, Any], None] = None,
    stream_usage: Optional[bool] = None,
    retention: Union[str, float, None] = None,
    checks: Optional[Sequence[Any]] = None,
) -> None:
    """Set otelite up: where spans go, what is captured, how much is sampled.

    Every argument falls back to its environment variable (see
    ``docs/configuration.md``). With no endpoint, spans go to the local store
    (``.otelite/otelite.db``); with one, they go over OTLP (plus the store when
    ``local_store`` is given). Calling it again with the same settings does
    nothing; with different settings it flushes and replaces otelite's exporters.

    Args:
        service_name: ``service.name`` of the resource (``OTEL_SERVICE_NAME``).
        endpoint: OTLP base URL (``OTEL_EXPORTER_OTLP_ENDPOINT``).
        protocol: ``"http/protobuf"`` (default) or ``"grpc"`` (``OTEL_EXPORTER_OTLP_PROTOCOL``).
        headers: OTLP headers, a mapping or ``"k=v,k2=v2"`` (``OTEL_EXPORTER_OTLP_HEADERS``).
        local_store: a directory or ``.db`` path, ``True`` for the default, ``False`` for none.
        capture_content: record prompts, completions, inputs and outputs (off by default).
        redact: a function applied to every captured string before it is recorded.
        redact_builtin: also mask e-mail addresses and card numbers (default ``True``).
        max_content_length: characters kept of each captured value (default 8192).
        sample_ratio: fraction of traces kept, 0.0 to 1.0 (parent-based).
        tracer_provider: an SDK provider to use instead of the global one (stays isolated).
        meter_provider: a meter provider to use instead of the global one.
        resource_attributes: extra resource attributes (``OTEL_RESOURCE_ATTRIBUTES``).
        prices: per-model prices (a mapping, or a JSON file) that add to or override the
            bundled catalog (``OTELITE_PRICES_FILE``).
        stream_usage: ask OpenAI / Azure OpenAI for usage in streams (default ``True``,
            ``OTELITE_STREAM_USAGE``); the extra usage chunk is hidden from the caller.
        retention: how long the local store keeps traces, e.g. ``"30d"`` (``OTELITE_RETENTION``);
            older traces are deleted when otelite starts and hourly after.
        checks: online checks run on every instrumented LLM response, such as
            ``[evals.checks.refusal(), evals.checks.truncated()]`` (``OTELITE_CHECKS``);
            failures are marked on the span and counted in ``otelite.client.check.failures``.

    Raises:
        ConfigurationError: an argument or variable is invalid; the message names it.

    Example:
        >>> import otelite, tempfile
        >>> otelite.configure(service_name="rag-api", local_store=tempfile.mkdtemp())
        >>> otelite.shutdown()
    """
    global _active
    with _lock:
        if _env.OTEL_SDK_DISABLED.read_bool():
            _teardown()
            _state.disabled = True
            _active = Active(
                trace.NoOpTracer(), metrics.NoOpMeter(sc.INSTRUMENTATION_SCOPE), ContentPolicy()
            )
            return
        settings = resolve_settings(
            service_name=service_name,
            endpoint=endpoint,
            protocol=protocol,
            headers=headers,
            local_store=local_store,
            capture_content=capture_content,
            redact=redact,
            redact_builtin=redact_builtin,
            max_content_length=max_content_length,
            sample_ratio=sample_ratio,
            resource_attributes=resource_attributes,
            prices=prices,
            stream_usage=stream_usage,
            retention=retention,
            checks=checks,
        )
        explicit_same = (tracer_provider is None or tracer_provider is _state.provider) and (
            meter_provider is None or meter_provider is _state.meter_provider
        )
        if settings == _state.settings and explicit_same:
            return
        processors = _processors(settings)  # may raise: nothing has changed yet
        _teardown(keep_providers=tracer_provider is None, background=True)
        provider, owned = _choose_provider(settings, tracer_provider)
        swappable = _find_swappable(provider)
        from otelite import _export

        _export.retire(swappable.replace(processors), FLUSH_TIMEOUT_MS / 1000)
        meter_provider_used, owns_meters = _choose_meter_provider(settings, meter_provider)
        _state.settings = settings
        _state.disabled = False
        _state.provider, _state.owns_provider = provider, owned
        _state.swappable = swappable
        _state.meter_provider, _state.owns_meter_provider = meter_provider_used, owns_meters
        _active = Active(
            _tracer_from(provider),
            _meter_from(meter_provider_used or metrics.get_meter_provider()),
            settings.content,
            settings.prices,
            settings.stream_usage,
            settings.checks,
        )
        if not _state.atexit_registered:
            atexit.register(_at_exit)
            _state.atexit_registered = True


def _find_swappable(provider: SdkTracerProvider) -> _export.SwappableProcessor:
    from otelite import _export

    existing = getattr(provider, "_otelite_processor", None)
    if isinstance(existing, _export.SwappableProcessor):
        return existing
    swappable = _export.SwappableProcessor()
    provider.add_span_processor(swappable)
    provider._otelite_processor = swappable  # type: ignore[attr-defined]
    return swappable


def _teardown(keep_providers: bool = False, background: bool = False) -> None:
    """Remove otelite's processors, delivering what they hold; shut down what otelite created.

    In the foreground this waits at most the exit timeout (``OTELITE_EXIT_TIMEOUT``).
    With ``background=True`` (``configure()`` replacing its exporters) the caller does
    not wait at all: the old processors drain on a daemon thread, within
    ``FLUSH_TIMEOUT_MS``, and interpreter exit still delivers what they hold.
    """
    global _active
    swappable = _state.swappable
    meter_provider = _state.meter_provider if _state.owns_meter_provider else None
    old = swappable.replace(()) if swappable is not None else ()
    if old or meter_provider is not None:
        from otelite import _export

        if background:
            _export.retire(old, FLUSH_TIMEOUT_MS / 1000)
        else:
            deadline = time.monotonic() + _exit_timeout()
            _export.shutdown_all(old, deadline)
        if meter_provider is not None:
            timeout_s = FLUSH_TIMEOUT_MS / 1000 if background else _exit_timeout()

            def stop_meters() -> None:
                meter_provider.shutdown(timeout_millis=timeout_s * 1000)  # type: ignore[attr-defined]

            if background:
                _export.run_bounded(stop_meters, 0.0, "shutting down the meter provider")
            else:
                _export.run_bounded(stop_meters, timeout_s, "shutting down the meter provider")
    if not keep_providers:
        _state.provider = None
    _state.settings = None
    _state.disabled = False
    _state.swappable = None
    _state.meter_provider = None
    _state.owns_meter_provider = False
    _active = None


def parse_exit_timeout(argument: str, value: Union[str, float]) -> float:
    """A positive number of seconds, or a ConfigurationError naming ``argument``."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not (0 < seconds < math.inf):
        raise ConfigurationError(
            f"{argument}: {value!r} is not a positive number of seconds; give e.g. 2 or 0.5"
        )
    return seconds


_bad_exit_timeout_warned = False


def _exit_timeout() -> float:
    """Seconds ``shutdown()`` and interpreter exit may spend delivering (default 2)."""
    global _bad_exit_timeout_warned
    if exit_timeout_s is not None:
        return exit_timeout_s
    raw = _env.OTELITE_EXIT_TIMEOUT.read()
    if raw is None:
        return EXIT_TIMEOUT_S
    try:
        return parse_exit_timeout(_env.OTELITE_EXIT_TIMEOUT.name, raw)
    except ConfigurationError as exc:
        if not _bad_exit_timeout_warned:
            _bad_exit_timeout_warned = True
            logger.warning("otelite: %s; using %s seconds", exc, EXIT_TIMEOUT_S)
        return EXIT_TIMEOUT_S


def force_flush(timeout_millis: int = 30000) -> bool:
    """Export every finished span now, waiting at most ``timeout_millis``.

    Returns ``False`` if the time ran out or something could not be delivered
    (the collector is down, refuses, or answers too slowly). The export itself
    goes on in the background; only the wait is bounded.

    Example:
        >>> import otelite
        >>> otelite.force_flush()
        True
    """
    ok = False
    with _guard.contained("force_flush"):
        deadline = time.monotonic() + max(timeout_millis, 0) / 1000
        ok = True
        swappable = _state.swappable
        if swappable is not None or _state.settings is not None:
            from otelite import _export

            # Processors that configure() replaced hold spans too: wait for them as well.
            processors = list(swappable.processors) if swappable is not None else []
            processors.extend(_export.retiring())
            ok = _export.flush_all(processors, deadline)
        meter_provider = _state.meter_provider
        if _state.owns_meter_provider and meter_provider is not None:
            from otelite import _export

            remaining = max(0.0, deadline - time.monotonic())
            flushed: list[bool] = []
            finished = _export.run_bounded(
                lambda: flushed.append(meter_provider.force_flush(int(remaining * 1000))),  # type: ignore[attr-defined]
                remaining,
                "flushing metrics",
            )
            ok = ok and finished and all(flushed)
    return ok


def shutdown() -> None:
    """Flush and stop otelite's exporters; spans after this go to the global provider.

    Waits at most the exit timeout (2 s, ``OTELITE_EXIT_TIMEOUT``) for delivery;
    what is left is counted as dropped and summed up in one log line.

    Example:
        >>> import otelite
        >>> otelite.shutdown()
    """
    with _guard.contained("waiting for online judge checks"):
        # Scores of sampled judges still running belong to this configuration's exporters.
        from otelite._checks import wait_for_judges

        wait_for_judges(timeout=FLUSH_TIMEOUT_MS / 1000)
    with _lock, _guard.contained("shutdown"):
        _teardown()


def _at_exit() -> None:
    # Spans still buffered when the interpreter exits would otherwise be lost; but exit
    # waits at most the exit timeout, whatever the collector does (decision D9).
    with _guard.contained("flushing at interpreter exit"):
        swappable = _state.swappable
        from otelite import _export

        deadline = time.monotonic() + _exit_timeout()
        # Every later wait in _export (metric exports and shutdowns that the SDK's own
        # exit hooks run after this one) ends by this deadline too.
        _export.set_exit_deadline(deadline)
        processors: list[SpanProcessor] = list(swappable.replace(())) if swappable else []
        processors.extend(_export.retiring())
        _export.shutdown_all(processors, deadline)


@contextmanager
def override(replacement: Active) -> Iterator[None]:
    """Make instrumentation use ``replacement`` inside the block (for the testing kit)."""
    global _active
    with _lock:
        previous = _active
        _overrides.append(replacement)
        _active = replacement
    try:
        yield
    finally:
        with _lock:
            _overrides.remove(replacement)
            _active = previous
