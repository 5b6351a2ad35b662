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
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from opentelemetry import metrics, trace
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from otelite import _env, _exits, _guard, _metrics, _providers, _settings
from otelite import _semconv as sc
from otelite import _state as _state_module
from otelite._content import ContentPolicy
from otelite._exceptions import ConfigurationError, StoreError
from otelite._providers import _already_exports_spans as _already_exports_spans
from otelite._settings import (
    EXIT_TIMEOUT_S,
    PROTOCOLS,
    Settings,
    StorePath,
    parse_exit_timeout,
    resolve_settings,
    safe_url,
)
from otelite._state import Active, active, override, warn_once
from otelite._state import _warned as _warned
from otelite._state import meter_from as _meter_from
from otelite._state import tracer_from as _tracer_from

if TYPE_CHECKING:
    # The SDK, exporters, store and prices load when configure() runs, not at ``import otelite``.
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    from otelite import _export

__all__ = [  # what other modules and tests use from here
    "EXIT_TIMEOUT_S",
    "PROTOCOLS",
    "Active",
    "Settings",
    "StorePath",
    "active",
    "configure",
    "force_flush",
    "is_configured",
    "override",
    "parse_exit_timeout",
    "resolve_settings",
    "safe_url",
    "shutdown",
]

logger = logging.getLogger("otelite")
_warn_once = warn_once

FLUSH_TIMEOUT_MS = 5000
"""Bound on shutting down replaced processors (in the background) and on waiting for judges."""
exit_timeout_s: Optional[float] = None
"""The bound ``configure()`` was given, if any; else ``OTELITE_EXIT_TIMEOUT``, else the default."""


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


def is_configured() -> bool:
    """Whether ``configure()`` has run (and ``shutdown()`` has not since).

    Example:
        >>> import otelite
        >>> isinstance(otelite.is_configured(), bool)
        True
    """
    return _state.settings is not None or _state.disabled


# --- wiring ----------------------------------------------------------------------------


def _processors(settings: Settings, export_traces: bool = True) -> list[SpanProcessor]:
    import sqlite3  # here, like the store: `import otelite` loads neither

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
    from otelite._llm import _changes  # API-change baselines persist beside the spans

    stores = [p.record_in for p in processors if isinstance(p, _export.BatchProcessor)]
    _changes.use_store(next((path for path in stores if path is not None), None))
    return processors


def _outbox_for(settings: Settings) -> Any:
    """The outbox for the OTLP/HTTP traces endpoint (``None`` when off or over gRPC)."""
    if not settings.outbox or settings.protocol == "grpc" or not settings.traces_endpoint:
        return None
    from otelite import _export, _outbox
    from otelite.store import _schema as _sqlite

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
    global exit_timeout_s
    parsed_exit_timeout = (
        parse_exit_timeout("exit_timeout", exit_timeout) if exit_timeout is not None else None
    )
    signals = _exits.parse_handle_signals(handle_signals)
    with _lock:
        exit_timeout_s = parsed_exit_timeout
        if _env.OTEL_SDK_DISABLED.read_bool():
            _teardown()
            _state.disabled = True
            _state_module.install(
                Active(
                    trace.NoOpTracer(),
                    metrics.NoOpMeter(sc.INSTRUMENTATION_SCOPE),
                    ContentPolicy(),
                )
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
            and id(target) not in _providers._owned_providers
            and _is_sdk_provider(target)
            and _providers._already_exports_spans(target, settings, endpoint is None)  # type: ignore[arg-type]
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
        provider, owned = _providers._choose_provider(settings, tracer_provider)
        swappable = _find_swappable(provider)
        from otelite import _export

        _export.retire(swappable.replace(processors), FLUSH_TIMEOUT_MS / 1000)
        meter_provider_used, owns_meters = _providers._choose_meter_provider(
            settings, meter_provider
        )
        _state.settings = settings
        _state.disabled = False
        _state.provider, _state.owns_provider = provider, owned
        _state.swappable = swappable
        _state.meter_provider, _state.owns_meter_provider = meter_provider_used, owns_meters
        current = Active(
            _tracer_from(provider),
            _meter_from(meter_provider_used or metrics.get_meter_provider()),
            settings.content,
            settings.prices,
            settings.stream_usage,
            settings.checks,
            _dimensions_limiter(settings),
        )
        _state_module.install(current)
        with _guard.contained("registering the delivery counters"):
            _export.observe(current.meter)
        if not _state.atexit_registered:
            atexit.register(_at_exit)
            _state.atexit_registered = True
        _exits.apply(signals, owned)


def _dimensions_limiter(settings: Settings) -> Any:
    from otelite import _dimensions

    if not settings.metric_dimensions:
        return None
    version = _providers._resource(settings).attributes.get(sc.SERVICE_VERSION)
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
    _state_module.install(None)


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
    _providers._check_provider_still_global()
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
        # LLM-call measurements still queued are recorded before any reader collects.
        _metrics.drain()
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
        _metrics.drain()
        _teardown()
        _exits.uninstall()


def _at_exit() -> None:
    # Spans still buffered when the interpreter exits would otherwise be lost; but exit
    # waits at most the exit timeout, whatever the collector does (decision D9).
    _providers._check_provider_still_global()
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


# Unconfigured processes read configure()'s variables; exit handlers flush through here.
_state_module.set_defaults(_settings.policies_from_env)
_providers.configured_provider = lambda: _state.provider
_exits.set_hooks(
    exit_timeout=_exit_timeout,
    force_flush=force_flush,
    is_configured=is_configured,
    at_exit=_at_exit,
)
