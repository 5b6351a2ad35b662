"""Settings: every ``configure()`` argument resolved against its environment variable.

One row per setting (:data:`ROWS`): the argument, the ``_env`` declaration it falls
back to, the default, and the parser that validates both. ``configure()``, the
unconfigured path (``opentelemetry-instrument``, ``instrument_openai()`` alone) and
``otelite.testing.capture_spans`` all resolve through the same rows, so a value means
the same thing wherever it is given. Wiring the resolved :class:`Settings` into
OpenTelemetry providers is ``_config``'s job; nothing here touches global state.

Size: over 500 lines because each row's parser sits beside the table it serves
(validation messages are part of the contract); nothing else lives here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional, Union
from urllib.parse import unquote, urlsplit

from otelite import _env
from otelite._content import (
    CONTROL_OR_SPACE,
    DEFAULT_MAX_CONTENT_LENGTH,
    ContentPolicy,
    LazyPattern,
)
from otelite._content import safe_url as safe_url
from otelite._exceptions import ConfigurationError
from otelite._state import Policies, warn_once
from otelite._units import parse_duration

if TYPE_CHECKING:
    from otelite._pricing import UserPrices

PROTOCOLS = ("http/protobuf", "grpc")
EXIT_TIMEOUT_S = 2.0
"""Default bound on ``shutdown()`` and on delivery at interpreter exit (seconds)."""
_CONTENT_ON = frozenset({"true", "1", "yes", "on", "span_only", "span_and_event"})
_CONTENT_OFF = frozenset({"false", "0", "no", "off", "no_content", "event_only"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

StorePath = Union[str, "os.PathLike[str]"]


class Settings(NamedTuple):
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
    content: ContentPolicy = ContentPolicy()
    prices: Optional[UserPrices] = None
    stream_usage: bool = True
    retention_s: Optional[float] = None
    checks: tuple[Any, ...] = ()
    outbox: bool = True
    metric_dimensions: tuple[tuple[str, int], ...] = ()  # see _dimensions.resolve
    prometheus: Optional[tuple[str, int]] = None  # (host, port) of /metrics; see _prometheus


# --- parsers: each takes the name to blame (argument or variable) and the raw value --------


_CONTROL = LazyPattern(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is allowed in header values
_HEADER_NAME = LazyPattern(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _validate_endpoint(argument: str, value: str, protocol: str) -> str:
    example = "http://localhost:4317" if protocol == "grpc" else "http://localhost:4318"
    if CONTROL_OR_SPACE.search(value):
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


def _from_env(who: str) -> bool:
    """Whether ``who`` names an environment variable (text) rather than an argument."""
    return who.isupper()


def _bool(who: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and _from_env(who):
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ConfigurationError(f"{who}: {raw!r} is not a boolean; set it to 'true' or 'false'")
    raise ConfigurationError(f"{who}: expected True or False")


def _capture(who: str, raw: Any) -> bool:
    if not (isinstance(raw, str) and _from_env(who)):
        if not isinstance(raw, bool):
            raise ConfigurationError(
                f"capture_content: expected True or False, got {type(raw).__name__}"
            )
        return raw
    if raw.lower() in _CONTENT_ON:
        return True
    if raw.lower() in _CONTENT_OFF:
        return False
    raise ConfigurationError(
        f"{who}: {raw!r} is not understood; use 'true' or 'false' "
        "(or the modes span_only, span_and_event, no_content, event_only)"
    )


def _retention(who: str, raw: Any) -> Optional[float]:
    return parse_duration(raw, who, setting=True)


def _max_length(who: str, raw: Any) -> int:
    try:
        length = int(raw)
    except (TypeError, ValueError):
        length = -1
    if isinstance(raw, bool) or length <= 0:
        raise ConfigurationError(f"{who}: {raw!r} must be a positive whole number of characters")
    return length


def _service_name(who: str, raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigurationError(f"{who}: give a non-empty string such as 'rag-api'")
    return raw


def _redact(who: str, raw: Any) -> Callable[[str], str]:
    if not callable(raw):
        raise ConfigurationError(
            f"{who}: expected a function taking and returning a str, got {type(raw).__name__}"
        )
    return raw  # type: ignore[no-any-return]


def _resource_attributes(who: str, raw: Any) -> tuple[tuple[str, Any], ...]:
    if not isinstance(raw, Mapping):
        raise ConfigurationError(
            f"{who}: expected a mapping such as {{'deployment.environment': 'prod'}}"
        )
    return tuple(sorted(raw.items()))


def _prices(who: str, raw: Any) -> Optional[UserPrices]:
    from otelite._pricing import load_user_prices

    if _from_env(who):
        return load_user_prices(None, raw)
    return load_user_prices(raw, None)


def _checks(who: str, raw: Any) -> tuple[Any, ...]:
    from otelite import _checks

    if _from_env(who):
        return _checks.parse_env(raw, who)
    return _checks.validate(raw)


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


# --- the table -----------------------------------------------------------------------------


class Row(NamedTuple):
    """One setting: its ``configure()`` argument, variable, default and parser."""

    argument: str
    env: Optional[_env.EnvVar]
    default: Any
    parse: Callable[[str, Any], Any]

    def resolve(self, value: Any, use_env: bool = True) -> Any:
        """The argument if given, else the variable if set, else the default; validated."""
        if value is not None:
            return self.parse(self.argument, value)
        if use_env and self.env is not None:
            raw = self.env.read()
            if raw is not None:
                return self.parse(self.env.name, raw)
        return self.default


ROWS: dict[str, Row] = {
    row.argument: row
    for row in (
        Row("service_name", None, None, _service_name),
        Row("protocol", _env.OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf", _parse_protocol),
        Row("headers", _env.OTEL_EXPORTER_OTLP_HEADERS, (), _parse_headers),
        Row("sample_ratio", _env.OTELITE_SAMPLE_RATIO, None, _parse_ratio),
        Row("resource_attributes", None, (), _resource_attributes),
        Row(
            "capture_content",
            _env.OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT,
            False,
            _capture,
        ),
        Row("redact", None, None, _redact),
        Row("redact_builtin", _env.OTELITE_REDACT_BUILTIN, True, _bool),
        Row(
            "max_content_length",
            _env.OTELITE_MAX_CONTENT_LENGTH,
            DEFAULT_MAX_CONTENT_LENGTH,
            _max_length,
        ),
        Row("prices", _env.OTELITE_PRICES_FILE, None, _prices),
        Row("stream_usage", _env.OTELITE_STREAM_USAGE, True, _bool),
        Row("retention", _env.OTELITE_RETENTION, None, _retention),
        Row("checks", _env.OTELITE_CHECKS, (), _checks),
        Row("outbox", _env.OTELITE_OUTBOX, True, _bool),
    )
}
"""Every setting resolved the same way (endpoints and the store are composite: see below)."""

POLICY_ARGUMENTS = (
    "capture_content",
    "redact",
    "redact_builtin",
    "max_content_length",
    "prices",
    "stream_usage",
    "checks",
)
"""The settings an instrumented call reads (see ``_state.Policies``)."""


def policies(use_env: bool = True, **values: Any) -> Policies:
    """The per-call policies from ``values`` (``POLICY_ARGUMENTS``), else variables, else defaults."""
    unknown = set(values) - set(POLICY_ARGUMENTS)
    if unknown:
        raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    got = {name: ROWS[name].resolve(values.get(name), use_env) for name in POLICY_ARGUMENTS}
    return Policies(
        content=ContentPolicy(
            capture=got["capture_content"],
            redact=got["redact"],
            redact_builtin=got["redact_builtin"],
            max_length=got["max_content_length"],
        ),
        prices=got["prices"],
        stream_usage=got["stream_usage"],
        checks=got["checks"],
    )


def policies_from_env() -> Policies:
    """What an unconfigured process uses: the variables, a bad one replaced by its default.

    Nothing raises here: without ``configure()`` there is no call that could report a
    mistake, so each bad variable is logged once and its default used instead.
    """
    values: dict[str, Any] = {}
    for name in POLICY_ARGUMENTS:
        row = ROWS[name]
        try:
            values[name] = row.resolve(None)
        except Exception as exc:
            warn_once(f"unconfigured-{name}", "otelite: %s; using the default", exc)
            values[name] = row.default
    return Policies(
        content=ContentPolicy(
            capture=values["capture_content"],
            redact=None,
            redact_builtin=values["redact_builtin"],
            max_length=values["max_content_length"],
        ),
        prices=values["prices"],
        stream_usage=values["stream_usage"],
        checks=values["checks"],
    )


def _endpoints(endpoint: Any, protocol: str) -> tuple[Optional[str], Optional[str]]:
    """The traces and metrics URLs from ``endpoint=`` or the ``OTEL_EXPORTER_OTLP_*`` variables."""
    traces_endpoint = metrics_endpoint = None
    if endpoint is not None:
        if not isinstance(endpoint, str):
            raise ConfigurationError(
                f"endpoint: expected a URL string, got {type(endpoint).__name__}"
            )
        base = _validate_endpoint("endpoint", endpoint, protocol)
        traces_endpoint = _signal_url(base, protocol, "traces")
        metrics_endpoint = _signal_url(base, protocol, "metrics")
    else:
        base_env = _env.OTEL_EXPORTER_OTLP_ENDPOINT.read()
        if base_env:
            base = _validate_endpoint(_env.OTEL_EXPORTER_OTLP_ENDPOINT.name, base_env, protocol)
            traces_endpoint = _signal_url(base, protocol, "traces")
            metrics_endpoint = _signal_url(base, protocol, "metrics")
        traces_env = _env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.read()
        if traces_env:
            traces_endpoint = _validate_endpoint(
                _env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.name, traces_env, protocol
            )
        metrics_env = _env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT.read()
        if metrics_env:
            metrics_endpoint = _validate_endpoint(
                _env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT.name, metrics_env, protocol
            )
    return traces_endpoint, metrics_endpoint


def _resolve_store(
    local_store: Union[bool, StorePath, None], has_endpoint: bool
) -> tuple[Optional[Path], Optional[str]]:
    """The store file, and what gave its location explicitly (``None``: the default)."""
    from otelite.store import _schema as _sqlite

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
    from otelite import _dimensions, _prometheus

    proto = ROWS["protocol"].resolve(protocol)
    traces_endpoint, metrics_endpoint = _endpoints(endpoint, proto)
    # OTEL_METRICS_EXPORTER: "otlp" (default), "prometheus", both, or "none".
    exporters = _prometheus.parse_exporters(
        _env.OTEL_METRICS_EXPORTER.read() or "otlp", _env.OTEL_METRICS_EXPORTER.name
    )
    if "otlp" not in exporters:
        metrics_endpoint = None
    prometheus_at = _prometheus.resolve(
        prometheus,
        exporters,
        _env.OTEL_EXPORTER_PROMETHEUS_HOST.read(),
        _env.OTEL_EXPORTER_PROMETHEUS_PORT.read(),
    )
    dimensions = _dimensions.resolve(
        metric_dimensions,
        _env.OTELITE_METRIC_DIMENSIONS.read(),
        _env.OTELITE_METRIC_DIMENSIONS.name,
    )
    got = {
        name: row.resolve(value)
        for name, row, value in (
            ("headers", ROWS["headers"], headers),
            ("sample_ratio", ROWS["sample_ratio"], sample_ratio),
            ("service_name", ROWS["service_name"], service_name),
            ("resource_attributes", ROWS["resource_attributes"], resource_attributes),
        )
    }
    _env.attribute_value_length_limit()  # a bad OTEL_*ATTRIBUTE_VALUE_LENGTH_LIMIT is refused here
    policy = policies(
        capture_content=capture_content,
        redact=redact,
        redact_builtin=redact_builtin,
        max_content_length=max_content_length,
        prices=prices,
        stream_usage=stream_usage,
        checks=checks,
    )
    retention_s = ROWS["retention"].resolve(retention)
    use_outbox = ROWS["outbox"].resolve(outbox)
    store_path, store_location_from = _resolve_store(local_store, traces_endpoint is not None)
    return Settings(
        service_name=got["service_name"],
        traces_endpoint=traces_endpoint,
        metrics_endpoint=metrics_endpoint,
        protocol=proto,
        headers=got["headers"],
        store_path=store_path,
        store_location_from=store_location_from,
        sample_ratio=got["sample_ratio"],
        resource_attributes=got["resource_attributes"],
        content=policy.content,
        prices=policy.prices,
        stream_usage=policy.stream_usage,
        retention_s=retention_s,
        checks=policy.checks,
        outbox=use_outbox,
        metric_dimensions=dimensions,
        prometheus=prometheus_at,
    )
