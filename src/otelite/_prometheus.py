"""Prometheus pull: otelite's metrics served on ``/metrics`` for scraping (``otelite[prometheus]``).

``configure(prometheus=True)`` (or ``OTEL_METRICS_EXPORTER=prometheus``, with
``OTEL_EXPORTER_PROMETHEUS_HOST`` / ``_PORT``) starts one HTTP server per process
and gives otelite a meter provider whose reader is
``opentelemetry-exporter-prometheus``'s; OTLP push keeps working next to it
(``OTEL_METRICS_EXPORTER=otlp,prometheus``) and stays the default. The port is
bound inside ``configure()``, so a port already in use is a ``ConfigurationError``
there, never a failure later in a request.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Optional, Union

from otelite._exceptions import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.resources import Resource

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 9464  # the port OpenTelemetry reserves for the Prometheus exporter
EXPORTERS = ("otlp", "prometheus", "none")
INSTALL_HINT = 'pip install "otelite[prometheus]"'

PrometheusArg = Union[bool, int, str, None]

_lock = threading.Lock()
# The one server of this process: (host, port asked, port bound, server, thread).
_server: Optional[tuple[str, int, int, Any, Any]] = None


def parse_exporters(value: str, argument: str) -> frozenset[str]:
    """``OTEL_METRICS_EXPORTER``: a comma-separated subset of otlp, prometheus, none."""
    names = frozenset(p.strip().lower() for p in value.split(",") if p.strip())
    unknown = sorted(names - set(EXPORTERS))
    if unknown or not names:
        raise ConfigurationError(
            f"{argument}: {value!r} is not supported; use 'otlp', 'prometheus', "
            "'otlp,prometheus' or 'none'"
        )
    return names - {"none"}


def _port(argument: str, value: object) -> int:
    try:
        port = int(str(value).strip())
    except ValueError:
        port = -1
    if isinstance(value, bool) or not 0 <= port <= 65535:
        raise ConfigurationError(
            f"{argument}: {value!r} is not a port number; give 0..65535 (0: any free port)"
        )
    return port


def resolve(
    prometheus: PrometheusArg,
    exporters: frozenset[str],
    env_host: Optional[str],
    env_port: Optional[str],
) -> Optional[tuple[str, int]]:
    """Where ``/metrics`` is served, or ``None`` (the argument wins over the variables).

    ``prometheus``: ``True`` (host and port from the variables, else localhost:9464),
    a port, ``"host:port"``, or ``False`` (off even when the variable asks for it).
    """
    host = env_host or DEFAULT_HOST
    port = _port("OTEL_EXPORTER_PROMETHEUS_PORT", env_port) if env_port else DEFAULT_PORT
    if prometheus is None:
        return (host, port) if "prometheus" in exporters else None
    if prometheus is False:
        return None
    if prometheus is True:
        return host, port
    if isinstance(prometheus, int):
        return host, _port("prometheus", prometheus)
    if isinstance(prometheus, str):
        given_host, sep, given_port = prometheus.rpartition(":")
        if not sep or not given_host:
            raise ConfigurationError(
                f"prometheus: {prometheus!r} is not 'host:port'; give e.g. '0.0.0.0:9464' or a port"
            )
        return given_host.strip("[]"), _port("prometheus", given_port)
    raise ConfigurationError(
        f"prometheus: expected True, a port or 'host:port', got {type(prometheus).__name__}"
    )


def serve(where: tuple[str, int]) -> int:
    """Serve ``/metrics`` at ``where`` (once per process); the port actually bound.

    Raises:
        ConfigurationError: the extra is not installed, or the port cannot be bound.
    """
    global _server
    host, port = where
    with _lock:
        if _server is not None and _server[:2] == (host, port):
            return int(_server[2])
        try:
            from prometheus_client import start_http_server
        except ImportError:
            raise ConfigurationError(
                f"prometheus: serving /metrics needs the Prometheus exporter; {INSTALL_HINT}"
            ) from None
        try:
            started = start_http_server(port, addr=host)
        except OSError as exc:
            raise ConfigurationError(
                f"prometheus: cannot serve /metrics on {host}:{port} ({exc.strerror or exc}); "
                "choose another port with configure(prometheus=PORT) or "
                "OTEL_EXPORTER_PROMETHEUS_PORT"
            ) from None
        server, thread = started if isinstance(started, tuple) else (None, None)
        bound = int(server.server_port) if server is not None else port
        previous, _server = _server, (host, port, bound, server, thread)
    if previous is not None and previous[3] is not None:
        previous[3].shutdown()
        previous[3].server_close()
    return bound


def bound_port() -> Optional[int]:
    """The port ``/metrics`` is served on in this process, or ``None``."""
    current = _server
    return int(current[2]) if current is not None else None


def stop() -> None:
    """Stop serving ``/metrics`` (tests; the server otherwise lives as long as the process)."""
    global _server
    with _lock:
        current, _server = _server, None
    if current is not None and current[3] is not None:
        current[3].shutdown()
        current[3].server_close()


def meter_provider(resource: Resource, push: Optional[MetricExporter]) -> SdkMeterProvider:
    """A provider read by Prometheus scrapes (and pushed over OTLP too when ``push`` is given)."""
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader

    from otelite import _export

    readers: list[MetricReader] = [_export.prometheus_reader()]
    if push is not None:
        readers.append(PeriodicExportingMetricReader(push))
    return SdkMeterProvider(metric_readers=readers, resource=resource)
