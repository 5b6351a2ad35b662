"""Choosing providers: extend the app's pipeline, or create and install otelite's own.

``_config`` decides what to wire; this module finds where. It recognises a
pipeline that already exports to the same endpoint (so each span is sent once),
picks or creates the TracerProvider and MeterProvider, keeps the one
MeterProvider otelite installs globally for the life of the process (a global
provider cannot be replaced), and warns once when the application later
overrides or replaces what otelite installed.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, Callable, Optional
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry.metrics import Meter, MeterProvider
from opentelemetry.trace import TracerProvider

from otelite import _guard
from otelite import _semconv as sc
from otelite._settings import Settings
from otelite._state import warn_once as _warn_once

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    from otelite import _export

logger = logging.getLogger("otelite")

_owned_providers: set[int] = set()
# The MeterProvider otelite installed globally and the exporter slot inside it (kept for the
# life of the process: a global provider cannot be replaced, so it must never be shut down).
_global_meters: Optional[tuple[SdkMeterProvider, _export.SwappableMetricExporter]] = None
# The TracerProvider otelite installed globally, and whether the application then tried to
# install its own (OpenTelemetry refuses that with a log line otelite watches for).
_global_tracer_provider: Optional[SdkTracerProvider] = None
_override_refused = False


def _none() -> Optional[TracerProvider]:
    return None


# The provider the current configuration uses (``_config`` hands in its getter).
configured_provider: Callable[[], Optional[TracerProvider]] = _none


def _resource(settings: Settings) -> Resource:
    from opentelemetry.sdk.resources import Resource

    attrs: dict[str, Any] = dict(settings.resource_attributes)
    if settings.service_name:
        attrs[sc.SERVICE_NAME] = settings.service_name
    return Resource.create(attrs)


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
    elif configured_provider() is installed and trace.get_tracer_provider() is not installed:
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
        from otelite import _export, _prometheus

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
