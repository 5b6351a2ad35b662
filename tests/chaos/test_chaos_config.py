"""Chaos tests of configure(): unusable default stores, hostile endpoints and headers,
reconfiguration of metrics, and existing OpenTelemetry pipelines (never export twice)."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otelite
from otelite import _config, _providers
from otelite.store import LocalStore
from otlp_receiver import grpc_receiver, http_receiver

SECRET = "s3cr3t-k3y"


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """otelite warns once per process; each test starts as a fresh process would."""
    monkeypatch.setattr(_providers, "_override_refused", False)
    _config._warned.clear()
    yield
    _config._warned.clear()


def otelite_lines(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    """The messages otelite logged at ``level`` or above."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("otelite") and r.levelno >= level
    ]


def run_python(
    code: str, env: dict[str, str], cwd: Path, argv: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (global providers can be set only once)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELITE_"))}
    full_env.update(env)
    script = cwd / "script.py"
    script.write_text(LOGGING + textwrap.dedent(code))
    return subprocess.run(
        [*argv, sys.executable, str(script)] if argv else [sys.executable, str(script)],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def otelite_stderr_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """Lines the subprocess logged through the ``otelite`` logger (format: 'otelite LEVEL msg')."""
    return [line for line in result.stderr.splitlines() if line.startswith("otelite ")]


LOGGING = "import logging; logging.basicConfig(level=logging.INFO, format='%(name)s %(levelname)s %(message)s')\n"


# --- read-only containers: the default store cannot be used ---------------------------


def _newer_store(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE otelite_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO otelite_meta VALUES ('schema_version', '99')")
    conn.commit()
    conn.close()


def _corrupt_store(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not a database\n" * 64)


def _blocked_dir(path: Path) -> None:
    # A regular file where the store directory should be: it cannot be created, even by root
    # (chmod does not stop root from writing, a file in the way does).
    path.parent.write_text("a file, not a directory")


UNUSABLE = {
    "unwritable": (_blocked_dir, "cannot create the local store"),
    "corrupt": (_corrupt_store, "not a database"),
    "newer-schema": (_newer_store, "schema version 99"),
}


@pytest.mark.parametrize("case", sorted(UNUSABLE))
def test_unusable_default_store_falls_back_to_no_store_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    """With no store location given, an unusable default store means no store and one warning."""
    make, reason = UNUSABLE[case]
    db = tmp_path / ".otelite" / "otelite.db"
    make(db)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    caplog.set_level(logging.INFO, logger="otelite")

    otelite.configure(tracer_provider=provider)
    with otelite.span("still-traced"):
        pass
    otelite.configure(tracer_provider=provider, capture_content=True)  # a second try: no 2nd line
    assert otelite.force_flush()

    assert otelite.is_configured()
    assert [s.name for s in exporter.get_finished_spans()] == ["still-traced"]
    (line,) = otelite_lines(caplog)
    assert line.startswith(f"otelite: cannot use the default local store {db} (")
    assert reason in line
    assert "running without a local store" in line
    assert "set OTELITE_HOME or local_store= to a writable directory" in line
    assert "\n" not in line
    # The files that were there are untouched, and nothing was added.
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before


@pytest.mark.parametrize("case", sorted(UNUSABLE))
@pytest.mark.parametrize("how", ["local_store", "OTELITE_HOME"])
def test_explicit_bad_store_location_still_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, how: str
) -> None:
    """A store location given explicitly (argument or OTELITE_HOME) that cannot be used raises, naming it."""
    make, reason = UNUSABLE[case]
    home = tmp_path / "explicit"
    make(home / "otelite.db")
    kwargs: dict[str, Any] = {}
    if how == "local_store":
        kwargs["local_store"] = home
    else:
        monkeypatch.setenv("OTELITE_HOME", str(home))
    with pytest.raises(otelite.ConfigurationError) as info:
        otelite.configure(tracer_provider=TracerProvider(), **kwargs)
    message = str(info.value)
    assert message.startswith(f"{how}: {home / 'otelite.db'}")
    assert reason in message
    assert "to a writable directory, or local_store=False to disable the store" in message
    assert not otelite.is_configured()


# --- endpoints and headers ---------------------------------------------------------------


def test_query_string_stays_after_the_signal_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """An http endpoint's query string is kept and /v1/{signal} goes before it."""
    settings = _config.resolve_settings(
        service_name=None,
        endpoint="https://h.example/otlp?api_key=abc",
        protocol=None,
        headers=None,
        local_store=None,
        capture_content=None,
        redact=None,
        redact_builtin=None,
        max_content_length=None,
        sample_ratio=None,
        resource_attributes=None,
    )
    assert (settings.traces_endpoint, settings.metrics_endpoint) == (
        "https://h.example/otlp/v1/traces?api_key=abc",
        "https://h.example/otlp/v1/metrics?api_key=abc",
    )


def test_query_string_reaches_the_receiver_on_the_signal_path() -> None:
    """Spans exported to an endpoint with a query string arrive at /v1/traces?query."""
    provider = TracerProvider()
    with http_receiver() as (url, received):
        otelite.configure(tracer_provider=provider, endpoint=f"{url}/?tenant=t1")
        with otelite.span("q"):
            pass
        assert otelite.force_flush()
    assert "/v1/traces?tenant=t1" in received.paths


@pytest.mark.parametrize(
    ("kwargs", "env", "message"),
    [
        (
            {"endpoint": f"https://h.example:4317?api_key={SECRET}", "protocol": "grpc"},
            {},
            "endpoint: a gRPC endpoint takes no query string or fragment",
        ),
        (
            {"endpoint": f"https://h.example/otlp#{SECRET}"},
            {},
            "endpoint: an OTLP endpoint takes no fragment",
        ),
        (
            {"endpoint": f"https://user:{SECRET}@h.example:99999/?key={SECRET}"},
            {},
            "endpoint: 'https://user:***@h.example:99999/?key=***' has an invalid port",
        ),
        (
            {"endpoint": "http://[::1"},
            {},
            "endpoint: 'http://[::1' is not a valid OTLP endpoint URL",
        ),
        (
            {},
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://[::1"},
            "OTEL_EXPORTER_OTLP_ENDPOINT: 'http://[::1' is not a valid OTLP endpoint URL",
        ),
        (
            {},
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://[::1/v1/traces"},
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://[::1/v1/traces' is not a valid",
        ),
        (
            {"endpoint": "http://collector:4318\n"},
            {},
            "endpoint: the URL contains whitespace or a control character",
        ),
        (
            {},
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318\n/x"},
            "OTEL_EXPORTER_OTLP_ENDPOINT: the URL contains whitespace or a control character",
        ),
        (
            {},
            {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://collector:4318/v1/\rmetrics"},
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: the URL contains whitespace or a control",
        ),
        (
            {"headers": {"authorization": f"Bearer {SECRET}\n"}},
            {},
            "headers: the value of header 'authorization' contains a line break or control character",
        ),
        (
            {"headers": {"x-evil\r\nhost": "v"}},
            {},
            "headers: header name 'x-evil\\r\\nhost' is invalid",
        ),
        (
            {},
            {"OTEL_EXPORTER_OTLP_HEADERS": f"api-key={SECRET}%0Ahost%3Aevil"},
            "OTEL_EXPORTER_OTLP_HEADERS: the value of header 'api-key' contains a line break",
        ),
        (
            {},
            {"OTEL_EXPORTER_OTLP_HEADERS": f"Authorization: Bearer {SECRET}"},
            "OTEL_EXPORTER_OTLP_HEADERS: 'Authorization: …' is not a 'key=value' pair",
        ),
        (
            {"meter_provider": object()},
            {},
            "meter_provider: expected an OpenTelemetry MeterProvider",
        ),
        ({"tracer_provider": object()}, {}, "tracer_provider: otelite needs an opentelemetry.sdk"),
    ],
)
def test_bad_endpoints_headers_and_providers_raise_configuration_error(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], env: dict[str, str], message: str
) -> None:
    """Each bad endpoint, header or provider raises ConfigurationError naming it, never the secret."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    kwargs.setdefault("tracer_provider", TracerProvider())
    with pytest.raises(otelite.ConfigurationError) as info:
        otelite.configure(**kwargs)
    assert message in str(info.value)
    assert SECRET not in str(info.value)
    assert not otelite.is_configured()


@pytest.mark.parametrize(
    "bad",
    [{"meter_provider": object()}, {"tracer_provider": object()}, {"endpoint": "http://[::1"}],
)
def test_bad_provider_on_reconfigure_keeps_the_working_setup(
    tmp_path: Path, bad: dict[str, Any]
) -> None:
    """A configure() refused for a bad provider leaves the previous configuration working."""
    provider = TracerProvider()
    otelite.configure(tracer_provider=provider, local_store=tmp_path / "s")
    with pytest.raises(otelite.ConfigurationError):
        otelite.configure(local_store=tmp_path / "s", **{"tracer_provider": provider, **bad})
    with otelite.span("kept"):
        pass
    assert otelite.force_flush()
    with LocalStore(tmp_path / "s") as store:
        assert [s.name for s in store.all_spans()] == ["kept"]


# --- reconfiguring metrics -----------------------------------------------------------------


def test_reconfigure_endpoint_to_store_only_keeps_meters_working(tmp_path: Path) -> None:
    """Endpoint A -> store-only -> endpoint B: instruments keep working, metrics follow the setting."""
    with http_receiver() as (url_a, received_a), http_receiver() as (url_b, received_b):
        result = run_python(
            f"""
            import otelite
            from opentelemetry import metrics
            otelite.configure(endpoint={url_a!r})
            app = metrics.get_meter("app").create_counter("app.requests")
            app.add(1)
            otelite.configure(local_store="store")
            app.add(1)  # metrics go nowhere now, and nothing complains
            later = metrics.get_meter("app.later").create_counter("app.later")
            later.add(1)
            assert otelite.force_flush()
            otelite.configure(endpoint={url_b!r})
            app.add(1)
            later.add(1)
            assert otelite.force_flush()
            print("done")
            """,
            {},
            tmp_path,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert "shut" not in result.stderr.lower(), result.stderr
    assert [
        line for line in result.stderr.splitlines() if "WARNING" in line or "ERROR" in line
    ] == []
    own = ("otel.sdk.", "otelite.sdk.")  # otelite's delivery counters go along with the app's
    assert {n for n in received_a.metric_names() if not n.startswith(own)} == {"app.requests"}
    assert {"app.requests", "app.later"} <= set(received_b.metric_names())


# --- existing pipelines: never export twice ---------------------------------------------

APP_SPANS = """
from opentelemetry import trace
import otelite
tracer = trace.get_tracer("app")
for i in range(4):
    with tracer.start_as_current_span(f"app-{i}"):
        pass
    with otelite.span(f"otelite-{i}"):
        pass
assert otelite.force_flush()
assert trace.get_tracer_provider().force_flush()
"""

EIGHT = sorted([f"app-{i}" for i in range(4)] + [f"otelite-{i}" for i in range(4)])


def _app_provider_code(exporter: str) -> str:
    return f"""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor({exporter}))
    trace.set_tracer_provider(provider)
    """


@pytest.mark.parametrize(
    ("protocol", "app_exporter", "configure", "env"),
    [
        ("http", "OTLPSpanExporter(endpoint=URL + '/v1/traces')", "endpoint=URL", {}),
        ("http", "OTLPSpanExporter(endpoint=URL + '/v1/traces')", "endpoint=URL + '/'", {}),
        ("http", "OTLPSpanExporter()", "", {"OTEL_EXPORTER_OTLP_ENDPOINT": "URL"}),
        ("grpc", "Grpc(endpoint=URL, insecure=True)", "endpoint=URL, protocol='grpc'", {}),
        (
            "grpc",
            "Grpc()",
            "",
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "URL", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
        ),
    ],
)
def test_app_provider_exporting_to_the_same_endpoint_gets_each_span_once(
    tmp_path: Path, protocol: str, app_exporter: str, configure: str, env: dict[str, str]
) -> None:
    """configure() on a provider that already exports to the endpoint adds no second exporter."""
    receiver = http_receiver if protocol == "http" else grpc_receiver
    with receiver() as (url, received):
        code = (
            f"URL = {url!r}\nimport otelite\n"
            + textwrap.dedent(_app_provider_code(app_exporter))
            + f"otelite.configure({configure})\n"
            + APP_SPANS
        )
        result = run_python(code, {k: v.replace("URL", url) for k, v in env.items()}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(s["name"] for s in received.spans()) == EIGHT
    (line,) = otelite_stderr_lines(result)
    assert line.startswith("otelite INFO otelite: the TracerProvider already exports spans to ")
    assert "otelite adds no second exporter" in line


def test_app_provider_exporting_elsewhere_still_gets_otelite_exporter(tmp_path: Path) -> None:
    """An app exporter to another endpoint is no reason to skip otelite's: both receive every span."""
    with http_receiver() as (app_url, app_received), http_receiver() as (url, received):
        code = (
            f"URL = {app_url!r}\nimport otelite\n"
            + textwrap.dedent(_app_provider_code("OTLPSpanExporter(endpoint=URL + '/v1/traces')"))
            + f"otelite.configure(endpoint={url!r})\n"
            + APP_SPANS
        )
        result = run_python(code, {}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(s["name"] for s in app_received.spans()) == EIGHT
    assert sorted(s["name"] for s in received.spans()) == EIGHT
    assert otelite_stderr_lines(result) == []


def test_explicit_provider_with_same_endpoint_gets_each_span_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """tracer_provider= that already exports to the endpoint: otelite's spans are sent once."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    caplog.set_level(logging.INFO, logger="otelite")
    with http_receiver() as (url, received):
        provider = TracerProvider()
        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces"))
        provider.add_span_processor(processor)
        otelite.configure(tracer_provider=provider, endpoint=url)
        for i in range(8):
            with otelite.span(f"s{i}"):
                pass
        assert otelite.force_flush()
        assert provider.force_flush()
        provider.shutdown()
    assert sorted(s["name"] for s in received.spans()) == [f"s{i}" for i in range(8)]
    assert otelite_lines(caplog, logging.INFO) == [
        f"otelite: the TracerProvider already exports spans to {url}/v1/traces; "
        "otelite adds no second exporter there (each span is sent once)"
    ]


def _settings(endpoint: str, protocol: str) -> _config.Settings:
    return _config.resolve_settings(
        service_name=None,
        endpoint=endpoint,
        protocol=protocol,
        headers=None,
        local_store=None,
        capture_content=None,
        redact=None,
        redact_builtin=None,
        max_content_length=None,
        sample_ratio=None,
        resource_attributes=None,
    )


@pytest.mark.parametrize(
    ("app", "otelite_endpoint", "protocol", "same"),
    [
        (("http", "https://h.example/v1/traces"), "https://h.example:443/", "http/protobuf", True),
        (
            ("http", "http://H.example:4318/v1/traces/"),
            "http://h.example:4318",
            "http/protobuf",
            True,
        ),
        (
            ("http", "http://h:4318/otlp/v1/traces?k=1"),
            "http://h:4318/otlp?k=1",
            "http/protobuf",
            True,
        ),
        (("http", "http://h:4318/v1/traces"), "http://h:4319", "http/protobuf", False),
        (("http", "http://h:4318/custom/v1/traces"), "http://h:4318", "http/protobuf", False),
        (("http", "http://h:4318/v1/traces"), "https://h:4318", "http/protobuf", False),
        (("grpc", "http://h:4317"), "https://h:4317", "grpc", True),
        (("grpc", "h:4317"), "http://h:4317", "grpc", True),
        (("grpc", "http://h:4317"), "http://h:4318", "grpc", False),
        (("grpc", "http://h:4318"), "http://h:4318", "http/protobuf", False),
    ],
)
def test_same_endpoint_comparison(
    app: tuple[str, str], otelite_endpoint: str, protocol: str, same: bool
) -> None:
    """Endpoints compare by protocol, scheme, host, port, path and query (gRPC: host and port)."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    kind, url = app
    exporter = (
        OTLPSpanExporter(endpoint=url) if kind == "http" else Grpc(endpoint=url, insecure=True)
    )
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    try:
        settings = _settings(otelite_endpoint, protocol)
        assert _config._already_exports_spans(provider, settings, False) is same
    finally:
        provider.shutdown()


class _OpaqueOtlpExporter(InMemorySpanExporter):
    """An OTLP exporter that does not tell where it sends (as a future SDK might)."""


_OpaqueOtlpExporter.__module__ = "opentelemetry.exporter.otlp.proto.http.future"


@pytest.mark.parametrize(
    ("auto", "from_env", "same"), [(True, True, True), (True, False, False), (False, True, False)]
)
def test_auto_instrumentation_exporter_assumed_same_when_opaque(
    monkeypatch: pytest.MonkeyPatch, auto: bool, from_env: bool, same: bool
) -> None:
    """Under opentelemetry-instrument, an opaque OTLP exporter built from the same env counts as the same place."""
    if auto:
        monkeypatch.setitem(
            sys.modules, "opentelemetry.instrumentation.auto_instrumentation", sys.modules[__name__]
        )
    else:
        monkeypatch.delitem(
            sys.modules, "opentelemetry.instrumentation.auto_instrumentation", raising=False
        )
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_OpaqueOtlpExporter()))
    settings = _settings("http://collector:4318", "http/protobuf")
    assert _config._already_exports_spans(provider, settings, from_env) is same


def test_opentelemetry_instrument_and_configure_send_each_span_once(tmp_path: Path) -> None:
    """Under opentelemetry-instrument with the endpoint in the environment, every span arrives once."""
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    if not instrument.exists():
        pytest.skip("opentelemetry-instrument is not installed next to this Python")
    with http_receiver() as (url, received):
        result = run_python(
            "import otelite\notelite.configure()\n"
            + "from opentelemetry import metrics\n"
            + "metrics.get_meter('app').create_counter('app.requests').add(1)\n"
            + APP_SPANS
            + "",
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": url,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_LOGS_EXPORTER": "none",
                "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "otelite-openai",
            },
            tmp_path,
            argv=(str(instrument),),
        )
    assert result.returncode == 0, result.stderr
    assert sorted(s["name"] for s in received.spans()) == EIGHT
    assert received.metric_names().count("app.requests") == 1
    (line,) = otelite_stderr_lines(result)
    assert line.startswith("otelite INFO otelite: the TracerProvider already exports spans to ")


# --- order of setup: warn when otelite's settings or provider are not in effect -----------


def test_service_name_on_an_existing_provider_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    """service_name= that cannot apply to an existing provider's resource gives one warning."""
    provider = TracerProvider(resource=Resource.create({"service.name": "app-owned"}))
    otelite.configure(tracer_provider=provider, service_name="mine", local_store=False)
    otelite.configure(tracer_provider=provider, service_name="mine", local_store=False)
    otelite.configure(
        tracer_provider=provider, service_name="mine", local_store=False, capture_content=True
    )
    assert otelite_lines(caplog) == [
        "otelite: service_name='mine' is ignored because the TracerProvider already has "
        "service.name='app-owned'; set the service name on that provider's Resource "
        "(or with OTEL_SERVICE_NAME)"
    ]


def test_sampler_and_resource_settings_on_an_existing_provider_warn_once_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """sample_ratio= and resource_attributes= on a provider created elsewhere: one warning each."""
    provider = TracerProvider()
    for capture in (False, True):
        otelite.configure(
            tracer_provider=provider,
            sample_ratio=0.5,
            resource_attributes={"deployment.environment": "prod"},
            local_store=False,
            capture_content=capture,
        )
    assert otelite_lines(caplog) == [
        "otelite: sample_ratio is ignored because the TracerProvider was created elsewhere; "
        "configure sampling on that provider instead",
        "otelite: resource_attributes are ignored because the TracerProvider was created "
        "elsewhere; set them on that provider's Resource (or with OTEL_RESOURCE_ATTRIBUTES)",
    ]


def test_service_name_matching_the_existing_provider_is_silent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No warning when the existing provider already has the requested service name."""
    provider = TracerProvider(resource=Resource.create({"service.name": "same"}))
    otelite.configure(tracer_provider=provider, service_name="same", local_store=False)
    assert otelite_lines(caplog) == []


def test_app_provider_installed_after_configure_warns_once(tmp_path: Path) -> None:
    """An app TracerProvider set after configure() gets no spans: otelite says so once, with the fix."""
    result = run_python(
        """
        import otelite
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        otelite.configure(local_store="store")
        mine = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(mine))
        trace.set_tracer_provider(provider)
        with trace.get_tracer("app").start_as_current_span("app-span"):
            pass
        otelite.force_flush()
        otelite.force_flush()
        print(len(mine.get_finished_spans()))
        """,
        {},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"
    assert otelite_stderr_lines(result) == [
        "otelite WARNING otelite: the application installed its own TracerProvider after "
        "otelite.configure() had installed one, so the application's exporters get no spans; "
        "call otelite.configure() after setting up your TracerProvider (otelite then adds to it)"
    ]


def test_global_provider_replaced_behind_otelites_back_warns_once_at_flush(
    tmp_path: Path,
) -> None:
    """If the global provider stops being otelite's, force_flush and exit say so once."""
    result = run_python(
        """
        import otelite
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        otelite.configure(local_store="store")
        trace._TRACER_PROVIDER = TracerProvider()  # what some test harnesses do
        otelite.force_flush()
        otelite.force_flush()
        """,
        {},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert otelite_stderr_lines(result) == [
        "otelite WARNING otelite: the global TracerProvider is no longer the one "
        "otelite.configure() installed, so spans from trace.get_tracer() bypass otelite's "
        "exporters; call otelite.configure() after setting up your TracerProvider "
        "(otelite then adds to it)"
    ]


def test_app_meter_provider_installed_after_configure_warns_once(tmp_path: Path) -> None:
    """An app MeterProvider set after configure(endpoint=...) gets no metrics: one warning says so."""
    with http_receiver() as (url, _received):
        result = run_python(
            f"""
            import otelite
            from opentelemetry import metrics
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader
            otelite.configure(endpoint={url!r})
            reader = InMemoryMetricReader()
            metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
            metrics.set_meter_provider(MeterProvider())
            metrics.get_meter("app").create_counter("app.requests").add(1)
            otelite.force_flush()
            print(reader.get_metrics_data() is None)
            """,
            {},
            tmp_path,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    assert otelite_stderr_lines(result) == [
        "otelite WARNING otelite: the application installed its own MeterProvider after "
        "otelite.configure() had installed one, so the application's metric readers get no "
        "metrics; call otelite.configure() after setting up your MeterProvider "
        "(otelite then records into it)"
    ]
