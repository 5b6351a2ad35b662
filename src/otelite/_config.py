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
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Union
from urllib.parse import unquote, urlsplit

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
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter
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
    store_location_from: Optional[str] = None  # "local_store"/"OTELITE_HOME" when given explicitly
    sample_ratio: Optional[float] = None
    resource_attributes: tuple[tuple[str, Any], ...] = ()
    content: ContentPolicy = field(default_factory=ContentPolicy)
    prices: Optional[UserPrices] = None
    stream_usage: bool = True
    retention_s: Optional[float] = None
    checks: tuple[Any, ...] = ()
    outbox: bool = True
    metric_dimensions: tuple[tuple[str, int], ...] = ()  # see _dimensions.resolve
    prometheus: Optional[tuple[str, int]] = None  # (host, port) of /metrics; see _prometheus


@dataclass(frozen=True)
class Active:
    """What instrumentation reads on every call: swapped whole, never mutated."""

    tracer: Tracer
    meter: Meter
    content: ContentPolicy
    prices: Optional[UserPrices] = None
    stream_usage: bool = True
    checks: tuple[Any, ...] = ()
    dimensions: Any = None  # an otelite._dimensions.Limiter when metric_dimensions are on


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
_warned: set[str] = set()  # keys of the warnings already given (each is logged once)
# The MeterProvider otelite installed globally and the exporter slot inside it (kept for the
# life of the process: a global provider cannot be replaced, so it must never be shut down).
_global_meters: Optional[tuple[SdkMeterProvider, _export.SwappableMetricExporter]] = None
# The TracerProvider otelite installed globally, and whether the application then tried to
# install its own (OpenTelemetry refuses that with a log line otelite watches for).
_global_tracer_provider: Optional[SdkTracerProvider] = None
_override_refused = False


_warned_lock = threading.Lock()


def _warn_once(key: str, message: str, *args: Any, level: int = logging.WARNING) -> None:
    """Log ``message`` the first time ``key`` is seen in this process."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.log(level, message, *args)


def _tracer_from(provider: TracerProvider) -> Tracer:
    return provider.get_tracer(sc.INSTRUMENTATION_SCOPE, __version__, schema_url=sc.SCHEMA_URL)


def _meter_from(provider: MeterProvider) -> Meter:
    return provider.get_meter(sc.INSTRUMENTATION_SCOPE, __version__, schema_url=sc.SCHEMA_URL)


# Not configured: the Active built for the global providers, reused while they stay the
# same (a new proxy meter per call would pile up instruments; the SDK's providers cache
# their tracers and meters, but the API's proxies do not).
_unconfigured: Optional[tuple[TracerProvider, MeterProvider, Active]] = None


def active() -> Active:
    """The tracer, meter and content policy instrumentation must use right now."""
    global _unconfigured
    current = _active
    if current is None:
        # Not configured: follow whatever provider is global (a no-op until one is set).
        tracer_provider = trace.get_tracer_provider()
        meter_provider = metrics.get_meter_provider()
        cached = _unconfigured
        if cached is not None and cached[0] is tracer_provider and cached[1] is meter_provider:
            return cached[2]
        current = Active(
            _tracer_from(tracer_provider), _meter_from(meter_provider), ContentPolicy()
        )
        _unconfigured = (tracer_provider, meter_provider, current)
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


_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is allowed in header values
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def safe_url(value: str) -> str:
    """``value`` fit for a message or a log line: password, query values and fragment masked."""
    text = _CONTROL_OR_SPACE.sub("?", value)
    text = re.sub(r"(//[^/?#@]*?:)[^/?#@]*@", r"\1***@", text)
    text = re.sub(r"([?&][^=&#]*=)[^&#]*", r"\1***", text)
    return re.sub(r"#.*$", "#***", text)


def _validate_endpoint(argument: str, value: str, protocol: str) -> str:
    example = "http://localhost:4317" if protocol == "grpc" else "http://localhost:4318"
    if _CONTROL_OR_SPACE.search(value):
        raise ConfigurationError(
            f"{argument}: the URL contains whitespace or a control character (such as a "
            f"trailing newline from a file); remove it, e.g. {example!r}"
        )
    try:
        parsed = urlsplit(value)
        hostname = parsed.hostname
    except ValueError:  # e.g. 'http://[::1' (an unclosed IPv6 bracket)
        hostname = None
    if not hostname or parsed.scheme not in ("http", "https"):
        raise ConfigurationError(
            f"{argument}: {safe_url(value)!r} is not a valid OTLP endpoint URL; give a URL with "
            f"scheme and host, such as {example!r}"
        )
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigurationError(
            f"{argument}: {safe_url(value)!r} has an invalid port; use a number between 0 and 65535"
        ) from None
    if protocol == "grpc" and (parsed.query or parsed.fragment or "?" in value or "#" in value):
        raise ConfigurationError(
            f"{argument}: a gRPC endpoint takes no query string or fragment; give "
            f"'scheme://host:port' such as {example!r} and pass credentials with headers= "
            "(or OTEL_EXPORTER_OTLP_HEADERS)"
        )
    if parsed.fragment or "#" in value:
        raise ConfigurationError(
            f"{argument}: an OTLP endpoint takes no fragment ('#...'); remove it"
        )
    return value


def _part_for_message(part: str) -> str:
    """A malformed header entry, shortened so that no credential ends up in a message."""
    key, sep, val = part.partition("=")
    if not sep:
        name, colon, _ = part.partition(":")
        if colon:
            return f"{name.strip()}: …"
        return part if len(part) <= 16 else f"{part[:4]}…"
    return part if len(val) <= 3 else f"{key}=…"


def _check_header(argument: str, key: str, val: str) -> None:
    if not _HEADER_NAME.match(key):
        raise ConfigurationError(
            f"{argument}: header name {key!r} is invalid; use letters, digits and '-', "
            "e.g. 'authorization' or 'x-api-key'"
        )
    if _CONTROL.search(val):
        raise ConfigurationError(
            f"{argument}: the value of header {key!r} contains a line break or control "
            "character; remove it (a key read from a file often ends with a newline)"
        )


def _parse_headers(
    argument: str, value: Union[str, Mapping[str, str]]
) -> tuple[tuple[str, str], ...]:
    if isinstance(value, Mapping):
        items = list(value.items())
        for key, val in items:
            raw: object = val  # never shown when it is a string: it may be a credential
            if not isinstance(raw, str):
                shown = (
                    repr(raw)
                    if raw is None or isinstance(raw, (int, float))
                    else f"a {type(raw).__name__}"
                )
                raise ConfigurationError(
                    f"{argument}: header {key!r}: {shown} is invalid; names and values must be "
                    "non-empty strings, e.g. {'authorization': 'Bearer <token>'}"
                )
            if not isinstance(key, str) or not key.strip():
                raise ConfigurationError(
                    f"{argument}: header name {key!r} is invalid; names and values must be "
                    "non-empty strings, e.g. {'authorization': 'Bearer <token>'}"
                )
            _check_header(argument, key.strip(), val)
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
                f"{argument}: {_part_for_message(part.strip())!r} is not a 'key=value' pair; "
                "write headers as 'key1=value1,key2=value2' with URL-encoded values"
            )
        name, text = unquote(key.strip()), unquote(val.strip())
        _check_header(argument, name, text)
        headers.append((name, text))
    return tuple(headers)


def _signal_url(endpoint: str, protocol: str, signal: str) -> str:
    """OTLP/HTTP appends ``/v1/{signal}`` to the base endpoint's path (before any query
    string); gRPC uses the endpoint as is."""
    if protocol == "grpc":
        return endpoint
    base, sep, query = endpoint.partition("?")
    return f"{base.rstrip('/')}/v1/{signal}{sep}{query}"


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


def _resolve_store(
    local_store: Union[bool, StorePath, None], has_endpoint: bool
) -> tuple[Optional[Path], Optional[str]]:
    """The store file, and what gave its location explicitly (``None``: the default)."""
    from otelite import _sqlite

    default_from = _env.OTELITE_HOME.name if _env.OTELITE_HOME.read() else None
    if local_store is None:
        enabled = _env.OTELITE_LOCAL_STORE.read_bool(default=not has_endpoint)
        return (_sqlite.default_store_path(), default_from) if enabled else (None, None)
    if local_store is False:
        return None, None
    if local_store is True:
        return _sqlite.default_store_path(), default_from
    if isinstance(local_store, (str, os.PathLike)):
        if not str(local_store).strip():
            raise ConfigurationError(
                "local_store: the path is empty; give a directory, True for the default, "
                "or False to disable the store"
            )
        return _sqlite.resolve_store_path(local_store), "local_store"
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
    outbox: Optional[bool] = None,
    metric_dimensions: Any = None,
    prometheus: Union[bool, int, str, None] = None,
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

    from otelite import _dimensions, _prometheus

    metrics_exporters = _prometheus.parse_exporters(
        _env.OTEL_METRICS_EXPORTER.read() or "otlp", _env.OTEL_METRICS_EXPORTER.name
    )
    if "otlp" not in metrics_exporters:
        metrics_endpoint = None
    prometheus_at = _prometheus.resolve(
        prometheus,
        metrics_exporters,
        _env.OTEL_EXPORTER_PROMETHEUS_HOST.read(),
        _env.OTEL_EXPORTER_PROMETHEUS_PORT.read(),
    )
    dimensions = _dimensions.resolve(
        metric_dimensions,
        _env.OTELITE_METRIC_DIMENSIONS.read(),
        _env.OTELITE_METRIC_DIMENSIONS.name,
    )

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
    _env.attribute_value_length_limit()  # a bad OTEL_*ATTRIBUTE_VALUE_LENGTH_LIMIT is refused here
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

    store_path, store_location_from = _resolve_store(local_store, traces_endpoint is not None)
    return Settings(
        service_name=service_name,
        traces_endpoint=traces_endpoint,
        metrics_endpoint=metrics_endpoint,
        protocol=proto,
        headers=parsed_headers,
        store_path=store_path,
        store_location_from=store_location_from,
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
        outbox=_parse_outbox(outbox),
        metric_dimensions=dimensions,
        prometheus=prometheus_at,
    )


def _parse_outbox(value: Optional[bool]) -> bool:
    if value is not None and not isinstance(value, bool):
        raise ConfigurationError("outbox: expected True or False")
    return value if value is not None else _env.OTELITE_OUTBOX.read_bool(True)


# --- wiring ----------------------------------------------------------------------------


def _resource(settings: Settings) -> Resource:
    from opentelemetry.sdk.resources import Resource

    attrs: dict[str, Any] = dict(settings.resource_attributes)
    if settings.service_name:
        attrs[sc.SERVICE_NAME] = settings.service_name
    return Resource.create(attrs)


def _processors(settings: Settings, export_traces: bool = True) -> list[SpanProcessor]:
    from otelite import _export

    processors: list[SpanProcessor] = [_export.ContextAttributesProcessor()]
    if settings.traces_endpoint and export_traces:
        exporter = _export.otlp_span_exporter(
            settings.traces_endpoint, settings.protocol, dict(settings.headers)
        )
        processors.append(_export.batch(exporter, outbox=_outbox_for(settings)))
    if settings.store_path is not None:
        try:
            store = _export.LocalStoreExporter(settings.store_path, settings.retention_s)
        except (StoreError, OSError, sqlite3.Error) as exc:
            reason = " ".join(str(exc).split()).rstrip(".")
            if settings.store_location_from is not None:
                raise ConfigurationError(
                    f"{settings.store_location_from}: {reason}. Pass local_store= (or set "
                    "OTELITE_HOME) to a writable directory, or local_store=False to disable the store"
                ) from exc
            # Nobody asked for this location (a read-only container, a stray file): the app
            # must still start, without a store.
            prefix = f"{settings.store_path}: "
            _warn_once(
                "default-store",
                "otelite: cannot use the default local store %s (%s); running without a local "
                "store: set OTELITE_HOME or local_store= to a writable directory to keep traces, "
                "or local_store=False to silence this",
                settings.store_path,
                reason[len(prefix) :] if reason.startswith(prefix) else reason,
            )
        else:
            processors.append(_export.batch(store))
    _export.note_store(processors, settings.protocol)
    return processors


def _outbox_for(settings: Settings) -> Any:
    """The outbox for the OTLP/HTTP traces endpoint (``None`` when off or over gRPC)."""
    if not settings.outbox or settings.protocol == "grpc" or not settings.traces_endpoint:
        return None
    from otelite import _export, _outbox, _sqlite

    store = settings.store_path or _sqlite.default_store_path()
    outbox = _outbox.Outbox(
        store.parent / _outbox.FILENAME,
        settings.traces_endpoint,
        dict(settings.headers),
        _export.export_timeout_s(),
        _outbox.max_bytes(),
    )
    outbox.start()  # drains what an earlier process left (on its own thread)
    return outbox


# --- existing pipelines --------------------------------------------------------------


def _http_target(url: str) -> Optional[tuple[str, ...]]:
    """Scheme, host, port, path and query of an OTLP/HTTP URL, normalised for comparison."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or parts.scheme not in ("http", "https"):
        return None
    port = port or (443 if parts.scheme == "https" else 80)
    return ("http", parts.scheme, host.lower(), str(port), parts.path.rstrip("/"), parts.query)


def _grpc_target(endpoint: str) -> Optional[tuple[str, ...]]:
    """Host and port of a gRPC endpoint (the exporters keep only ``host:port``)."""
    text = endpoint.strip()
    try:
        parts = urlsplit(text if "://" in text else f"//{text}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    return ("grpc", host.lower(), str(port or 443))


def _exporter_target(exporter: object) -> Optional[tuple[str, ...]]:
    """Where an OTLP span or metric exporter sends, or ``None`` when it cannot be told."""
    endpoint = getattr(exporter, "_endpoint", None)
    module = type(exporter).__module__
    if not isinstance(endpoint, str) or "otlp" not in module:
        return None
    return _grpc_target(endpoint) if ".grpc" in module else _http_target(endpoint)


def _settings_target(url: str, protocol: str) -> Optional[tuple[str, ...]]:
    return _grpc_target(url) if protocol == "grpc" else _http_target(url)


def _span_exporters(provider: SdkTracerProvider) -> list[object]:
    """The exporters behind the provider's span processors (other than otelite's own)."""
    from otelite import _export

    active = getattr(provider, "_active_span_processor", None)
    pending = list(getattr(active, "_span_processors", None) or ())
    found: list[object] = []
    while pending and len(found) < 64:
        processor = pending.pop()
        if isinstance(processor, _export.SwappableProcessor):
            continue
        nested = getattr(processor, "_span_processors", None)
        if isinstance(nested, (tuple, list)):
            pending.extend(nested)
            continue
        try:  # a property in recent SDKs
            exporter = getattr(processor, "span_exporter", None)
        except Exception:
            exporter = None
        if exporter is not None:
            found.append(exporter)
    return found


def _already_exports_spans(
    provider: SdkTracerProvider, settings: Settings, endpoint_from_env: bool
) -> bool:
    """Whether ``provider`` already sends spans where otelite would (D9: never twice)."""
    if not settings.traces_endpoint:
        return False
    wanted = _settings_target(settings.traces_endpoint, settings.protocol)
    exporters = _span_exporters(provider)
    targets = [_exporter_target(e) for e in exporters]
    if wanted is not None and wanted in targets:
        return True
    # Under opentelemetry-instrument the SDK configurator built its OTLP exporters from the
    # same OTEL_EXPORTER_OTLP_* variables otelite read: the same place, even when an
    # exporter does not say where it sends.
    auto = "opentelemetry.instrumentation.auto_instrumentation" in sys.modules
    unknown_otlp = any(
        t is None and "otlp" in type(e).__module__ for e, t in zip(exporters, targets)
    )
    return auto and endpoint_from_env and unknown_otlp


def _choose_provider(
    settings: Settings, explicit: Optional[TracerProvider]
) -> tuple[SdkTracerProvider, bool]:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    global _global_tracer_provider
    if explicit is not None:
        assert isinstance(explicit, SdkTracerProvider)  # checked by _check_providers
        owned = id(explicit) in _owned_providers
        if not owned:
            _warn_ignored_settings(settings, explicit)
        return explicit, owned
    current = trace.get_tracer_provider()
    if isinstance(current, SdkTracerProvider):
        owned = id(current) in _owned_providers
        if not owned:
            _warn_ignored_settings(settings, current)
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
        _global_tracer_provider = provider
        _watch_for_refused_override("opentelemetry.trace")
    else:
        _warn_once(
            "non-sdk-provider",
            "otelite: the global TracerProvider (%s) is not the OpenTelemetry SDK's; otelite "
            "keeps its own provider for its spans (pass tracer_provider= to choose one)",
            type(current).__name__,
        )
    return provider, True


def _warn_ignored_settings(settings: Settings, provider: SdkTracerProvider) -> None:
    """Settings that only shape a provider otelite creates: say once that they do not apply."""
    resource = getattr(provider, "resource", None)
    attributes = getattr(resource, "attributes", None) or {}
    if settings.service_name and attributes.get(sc.SERVICE_NAME) != settings.service_name:
        _warn_once(
            f"service_name={settings.service_name}",
            "otelite: service_name=%r is ignored because the TracerProvider already has "
            "service.name=%r; set the service name on that provider's Resource (or with "
            "OTEL_SERVICE_NAME)",
            settings.service_name,
            attributes.get(sc.SERVICE_NAME),
        )
    if settings.sample_ratio is not None:
        _warn_once(
            "sample_ratio",
            "otelite: sample_ratio is ignored because the TracerProvider was created elsewhere; "
            "configure sampling on that provider instead",
        )
    if any(attributes.get(k) != v for k, v in settings.resource_attributes):
        _warn_once(
            "resource_attributes",
            "otelite: resource_attributes are ignored because the TracerProvider was created "
            "elsewhere; set them on that provider's Resource (or with OTEL_RESOURCE_ATTRIBUTES)",
        )


class _RefusedOverrideWatcher(logging.Filter):
    """Notices OpenTelemetry refusing the app's own provider because otelite's came first.

    It only looks: every record passes through unchanged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        global _override_refused
        message = str(record.msg)
        if message.startswith("Overriding of current TracerProvider"):
            _override_refused = True
            _check_provider_still_global()
        elif message.startswith("Overriding of current MeterProvider"):
            _warn_refused_meter_provider()
        return True


_watcher = _RefusedOverrideWatcher()


def _watch_for_refused_override(logger_name: str) -> None:
    # The loggers OpenTelemetry's API uses for "Overriding of current ...Provider is not allowed".
    logging.getLogger(logger_name).addFilter(_watcher)  # adding it twice keeps one


@_guard.guarded("checking the global MeterProvider")
def _warn_refused_meter_provider() -> None:
    if _global_meters is not None:
        _warn_once(
            "meter-provider-order",
            "otelite: the application installed its own MeterProvider after "
            "otelite.configure() had installed one, so the application's metric readers get "
            "no metrics; call otelite.configure() after setting up your MeterProvider "
            "(otelite then records into it)",
        )


_ORDER_FIX = (
    "call otelite.configure() after setting up your TracerProvider (otelite then adds to it)"
)


@_guard.guarded("checking the global TracerProvider")
def _check_provider_still_global() -> None:
    """Warn once when the TracerProvider otelite installed globally is not in effect.

    Runs at flush and at exit, and when OpenTelemetry refuses the app's own provider
    because otelite installed one first (the app's exporters then get no spans).
    """
    installed = _global_tracer_provider
    if installed is None:
        return
    if _override_refused:
        _warn_once(
            "provider-order",
            "otelite: the application installed its own TracerProvider after "
            "otelite.configure() had installed one, so the application's exporters get no "
            "spans; %s",
            _ORDER_FIX,
        )
    elif _state.provider is installed and trace.get_tracer_provider() is not installed:
        _warn_once(
            "provider-order",
            "otelite: the global TracerProvider is no longer the one otelite.configure() "
            "installed, so spans from trace.get_tracer() bypass otelite's exporters; %s",
            _ORDER_FIX,
        )


class _GlobalMeters(MeterProvider):
    """One configuration's view of the MeterProvider otelite installed globally.

    Shutting it down (reconfigure, ``otelite.shutdown()``) detaches this configuration's
    exporter; the global provider itself keeps working, so instruments never break.
    """

    def __init__(
        self,
        provider: SdkMeterProvider,
        slot: _export.SwappableMetricExporter,
        exporter: MetricExporter,
    ) -> None:
        self._provider = provider
        self._slot = slot
        self._exporter = exporter

    def get_meter(
        self,
        name: str,
        version: Optional[str] = None,
        schema_url: Optional[str] = None,
        attributes: Optional[Any] = None,
    ) -> Meter:
        return self._provider.get_meter(name, version, schema_url, attributes)

    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        return self._provider.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        # What was recorded under this configuration goes out through its exporter first.
        self._provider.force_flush(timeout_millis)
        self._slot.detach(self._exporter)  # unless the next configuration already replaced it
        self._exporter.shutdown(timeout_millis=timeout_millis)


def _choose_meter_provider(
    settings: Settings, explicit: Optional[MeterProvider]
) -> tuple[Optional[MeterProvider], bool]:
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider

    from otelite import _export

    global _global_meters
    if explicit is not None:
        return explicit, False
    if settings.prometheus is not None:  # otelite's own provider, read by scrapes (docs/grafana.md)
        from otelite import _prometheus

        push = settings.metrics_endpoint and _export.otlp_metric_exporter(
            settings.metrics_endpoint, settings.protocol, dict(settings.headers)
        )
        scraped = _prometheus.meter_provider(_resource(settings), push or None)
        _owned_providers.add(id(scraped))
        return scraped, True
    current = metrics.get_meter_provider()
    if _global_meters is not None and current is _global_meters[0]:
        provider, slot = _global_meters
        if not settings.metrics_endpoint:
            slot.replace(None)  # metrics are still collected, and go nowhere
            return provider, False
        exporter = _export.otlp_metric_exporter(
            settings.metrics_endpoint, settings.protocol, dict(settings.headers)
        )
        slot.replace(exporter)
        return _GlobalMeters(provider, slot, exporter), True
    if isinstance(current, SdkMeterProvider) and id(current) not in _owned_providers:
        return current, False
    if not settings.metrics_endpoint:
        return None, False
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    exporter = _export.otlp_metric_exporter(
        settings.metrics_endpoint, settings.protocol, dict(settings.headers)
    )
    if type(current).__name__ != "_ProxyMeterProvider":
        # Someone installed a non-SDK provider: otelite keeps a private one for its metrics.
        private = SdkMeterProvider(
            metric_readers=[PeriodicExportingMetricReader(exporter)], resource=_resource(settings)
        )
        _owned_providers.add(id(private))
        return private, True
    slot = _export.SwappableMetricExporter(exporter)
    provider = SdkMeterProvider(
        metric_readers=[PeriodicExportingMetricReader(slot)], resource=_resource(settings)
    )
    _owned_providers.add(id(provider))
    metrics.set_meter_provider(provider)
    _global_meters = (provider, slot)
    _watch_for_refused_override("opentelemetry.metrics._internal")
    return _GlobalMeters(provider, slot, exporter), True


def _check_providers(
    tracer_provider: Optional[TracerProvider], meter_provider: Optional[MeterProvider]
) -> None:
    """Refuse providers of the wrong type before anything changes."""
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    if tracer_provider is not None and not isinstance(tracer_provider, SdkTracerProvider):
        raise ConfigurationError(
            "tracer_provider: otelite needs an opentelemetry.sdk.trace.TracerProvider "
            f"(it adds span processors to it), got {type(tracer_provider).__name__}"
        )
    candidate: object = meter_provider
    if candidate is not None and not (
        isinstance(candidate, MeterProvider) or callable(getattr(candidate, "get_meter", None))
    ):
        raise ConfigurationError(
            "meter_provider: expected an OpenTelemetry MeterProvider (such as "
            "opentelemetry.sdk.metrics.MeterProvider), got "
            f"{type(meter_provider).__name__}"
        )


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
    exit_timeout: Union[str, float, None] = None,
    handle_signals: Optional[bool] = None,
    outbox: Optional[bool] = None,
    metric_dimensions: Any = None,
    prometheus: Union[bool, int, str, None] = None,
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
        exit_timeout: seconds that interpreter exit and ``shutdown()`` wait at most for
            delivery (default 2, ``OTELITE_EXIT_TIMEOUT``); what is left is counted as dropped.
        handle_signals: on SIGTERM/SIGINT deliver what is buffered (within ``exit_timeout``),
            then do what the signal would have done (``OTELITE_HANDLE_SIGNALS``). Default:
            on when otelite created the providers and the app installed no handler of its
            own; ``True`` also chains to the app's handler; ``False`` installs nothing.
        outbox: keep OTLP/HTTP spans whose export failed on disk and resend them, also from
            the next process (default ``True``, ``OTELITE_OUTBOX``; capped by
            ``OTELITE_OUTBOX_MAX_MB``).
        metric_dimensions: opt-in metric labels, each capped in distinct values (the rest
            become ``"other"``): ``["user", "prompt", "service.version", "geo"]`` or
            ``{"user": 20}`` (``OTELITE_METRIC_DIMENSIONS``; see ``docs/grafana.md``).
        prometheus: serve metrics on ``/metrics`` for scraping (``otelite[prometheus]``):
            ``True``, a port or ``"host:port"`` (``OTEL_METRICS_EXPORTER=prometheus``).

    Raises:
        ConfigurationError: an argument or variable is invalid; the message names it.

    Example:
        >>> import otelite, tempfile
        >>> otelite.configure(service_name="rag-api", local_store=tempfile.mkdtemp())
        >>> otelite.shutdown()
    """
    global _active, exit_timeout_s
    parsed_exit_timeout = (
        parse_exit_timeout("exit_timeout", exit_timeout) if exit_timeout is not None else None
    )
    from otelite import _exits

    signals = _exits.parse_handle_signals(handle_signals)
    with _lock:
        exit_timeout_s = parsed_exit_timeout
        if _env.OTEL_SDK_DISABLED.read_bool():
            _teardown()
            _state.disabled = True
            _active = Active(
                trace.NoOpTracer(), metrics.NoOpMeter(sc.INSTRUMENTATION_SCOPE), ContentPolicy()
            )
            return
        _check_providers(tracer_provider, meter_provider)
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
            outbox=outbox,
            metric_dimensions=metric_dimensions,
            prometheus=prometheus,
        )
        explicit_same = (tracer_provider is None or tracer_provider is _state.provider) and (
            meter_provider is None or meter_provider is _state.meter_provider
        )
        if settings == _state.settings and explicit_same:
            _exits.apply(signals, _state.owns_provider)
            return
        export_traces = True
        target = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        if (
            settings.traces_endpoint
            and id(target) not in _owned_providers
            and _is_sdk_provider(target)
            and _already_exports_spans(target, settings, endpoint is None)  # type: ignore[arg-type]
        ):
            export_traces = False
            _warn_once(
                f"exports-to={settings.traces_endpoint}",
                "otelite: the TracerProvider already exports spans to %s; otelite adds no "
                "second exporter there (each span is sent once)",
                safe_url(settings.traces_endpoint),
                level=logging.INFO,
            )
        processors = _processors(settings, export_traces)  # may raise: nothing has changed yet
        if settings.prometheus is not None:  # a port in use is an error here, before any change
            from otelite import _prometheus

            _prometheus.serve(settings.prometheus)
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
            _dimensions_limiter(settings),
        )
        with _guard.contained("registering the delivery counters"):
            _export.observe(_active.meter)
        if not _state.atexit_registered:
            atexit.register(_at_exit)
            _state.atexit_registered = True
        _exits.apply(signals, owned)


def _dimensions_limiter(settings: Settings) -> Any:
    from otelite import _dimensions

    if not settings.metric_dimensions:
        return None
    version = _resource(settings).attributes.get(sc.SERVICE_VERSION)
    return _dimensions.limiter(
        settings.metric_dimensions, str(version) if version is not None else None
    )


def _is_sdk_provider(provider: object) -> bool:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    return isinstance(provider, SdkTracerProvider)


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
    _check_provider_still_global()
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
        from otelite import _exits

        _exits.uninstall()


def _at_exit() -> None:
    # Spans still buffered when the interpreter exits would otherwise be lost; but exit
    # waits at most the exit timeout, whatever the collector does (decision D9).
    _check_provider_still_global()
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
