"""configure(): arguments, environment variables, validation, providers and idempotency."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otelite
from otelite import _config
from otelite._content import ContentPolicy
from otelite.store import LocalStore


def resolve(**overrides: Any) -> _config.Settings:
    """resolve_settings with every argument defaulting to None."""
    args: dict[str, Any] = dict.fromkeys(
        [
            "service_name",
            "endpoint",
            "protocol",
            "headers",
            "local_store",
            "capture_content",
            "redact",
            "redact_builtin",
            "max_content_length",
            "sample_ratio",
            "resource_attributes",
        ]
    )
    args.update(overrides)
    return _config.resolve_settings(**args)


def run_python(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (global providers can only be set once per process)."""
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELITE_"))}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_defaults_resolve_to_local_store(tmp_path: Path) -> None:
    """No arguments, no variables: http/protobuf, no endpoint, store under ./.otelite, capture off."""
    settings = resolve()
    assert settings == _config.Settings(
        service_name=None,
        traces_endpoint=None,
        metrics_endpoint=None,
        protocol="http/protobuf",
        headers=(),
        store_path=tmp_path / ".otelite" / "otelite.db",
        sample_ratio=None,
        resource_attributes=(),
        content=ContentPolicy(capture=False, redact=None, redact_builtin=True, max_length=8192),
    )


def test_environment_variables_are_fallbacks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every OTEL_*/OTELITE_* variable feeds its argument."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=abc%3D%3D, x-team = ml")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "span_only")
    monkeypatch.setenv("OTELITE_SAMPLE_RATIO", "0.25")
    monkeypatch.setenv("OTELITE_MAX_CONTENT_LENGTH", "100")
    monkeypatch.setenv("OTELITE_REDACT_BUILTIN", "false")
    monkeypatch.setenv("OTELITE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OTELITE_LOCAL_STORE", "true")
    settings = resolve()
    assert settings.traces_endpoint == "http://collector:4318/v1/traces"
    assert settings.metrics_endpoint == "http://collector:4318/v1/metrics"
    assert settings.headers == (("api-key", "abc=="), ("x-team", "ml"))
    assert settings.content == ContentPolicy(capture=True, redact_builtin=False, max_length=100)
    assert settings.sample_ratio == 0.25
    assert settings.store_path == tmp_path / "home" / "otelite.db"


def test_signal_specific_endpoints_and_grpc(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as is; gRPC appends no path; an endpoint disables the store."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4317")
    settings = resolve()
    assert (settings.protocol, settings.traces_endpoint, settings.metrics_endpoint) == (
        "grpc",
        "http://traces:4317",
        "http://collector:4317",
    )
    assert settings.store_path is None


def test_metrics_exporter_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_METRICS_EXPORTER=none keeps traces going to the endpoint but sends no metrics."""
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    settings = resolve(endpoint="http://collector:4318")
    assert (settings.traces_endpoint, settings.metrics_endpoint) == (
        "http://collector:4318/v1/traces",
        None,
    )


def test_arguments_beat_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An explicit argument wins over its variable."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    settings = resolve(
        endpoint="https://arg:443", capture_content=False, local_store=tmp_path, headers={"a": "b"}
    )
    assert settings.traces_endpoint == "https://arg:443/v1/traces"
    assert settings.content.capture is False
    assert settings.store_path == tmp_path / "otelite.db"
    assert settings.headers == (("a", "b"),)


@pytest.mark.parametrize(
    ("kwargs", "env", "message"),
    [
        (
            {"endpoint": "localhost:4318"},
            {},
            "endpoint: 'localhost:4318' is not a valid OTLP endpoint URL",
        ),
        ({"endpoint": "ftp://host"}, {}, "endpoint: 'ftp://host' is not a valid"),
        (
            {"endpoint": "http://host:99999"},
            {},
            "endpoint: 'http://host:99999' has an invalid port",
        ),
        (
            {},
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "nonsense"},
            "OTEL_EXPORTER_OTLP_ENDPOINT: 'nonsense'",
        ),
        ({"protocol": "http/json"}, {}, "protocol: unknown protocol 'http/json'; use one of"),
        (
            {},
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"},
            "OTEL_EXPORTER_OTLP_PROTOCOL: unknown protocol",
        ),
        ({"headers": "novalue"}, {}, "headers: 'novalue' is not a 'key=value' pair"),
        ({}, {"OTEL_EXPORTER_OTLP_HEADERS": "a=1,=2"}, "OTEL_EXPORTER_OTLP_HEADERS: '=2'"),
        ({"headers": {"a": 1}}, {}, "headers: header 'a': 1 is invalid"),
        ({"sample_ratio": -0.1}, {}, "sample_ratio: -0.1 is out of range"),
        ({"sample_ratio": 1.5}, {}, "sample_ratio: 1.5 is out of range"),
        ({}, {"OTELITE_SAMPLE_RATIO": "half"}, "OTELITE_SAMPLE_RATIO: 'half' is not a number"),
        (
            {},
            {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "maybe"},
            "CAPTURE_MESSAGE_CONTENT: 'maybe'",
        ),
        ({"capture_content": "yes"}, {}, "capture_content: expected True or False"),
        ({"max_content_length": 0}, {}, "max_content_length: 0 must be a positive"),
        ({"redact": "mask"}, {}, "redact: expected a function"),
        ({"service_name": ""}, {}, "service_name: give a non-empty string"),
        ({"local_store": 3}, {}, "local_store: expected a path, True or False"),
        (
            {},
            {"OTELITE_LOCAL_STORE": "sometimes"},
            "OTELITE_LOCAL_STORE: 'sometimes' is not a boolean",
        ),
        (
            {},
            {"OTEL_METRICS_EXPORTER": "statsd"},
            "OTEL_METRICS_EXPORTER: 'statsd' is not supported",
        ),
    ],
)
def test_bad_input_names_the_argument(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], env: dict[str, str], message: str
) -> None:
    """Each invalid argument or variable raises ConfigurationError naming it and the fix."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(otelite.ConfigurationError) as info:
        otelite.configure(tracer_provider=TracerProvider(), **kwargs)
    assert message in str(info.value)
    assert not otelite.is_configured()


def test_unwritable_store_path_is_configuration_error(tmp_path: Path) -> None:
    """A store path that cannot be created (its parent is a file) is refused, naming local_store."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(
        otelite.ConfigurationError, match=r"^local_store: .*cannot create the local store"
    ):
        otelite.configure(tracer_provider=TracerProvider(), local_store=blocker / "store")
    assert blocker.read_text() == "not a directory"


def test_non_sdk_provider_refused() -> None:
    """tracer_provider must be an SDK provider (otelite adds processors to it)."""
    from opentelemetry.trace import NoOpTracerProvider

    with pytest.raises(otelite.ConfigurationError, match="tracer_provider: otelite needs"):
        otelite.configure(tracer_provider=NoOpTracerProvider())  # type: ignore[arg-type]


def test_explicit_provider_receives_spans_and_store(tmp_path: Path) -> None:
    """An explicit provider gets otelite's processors: spans reach both its exporter and the store."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otelite.configure(tracer_provider=provider, local_store=tmp_path)
    with otelite.attributes(user_id="u"), otelite.span("hello"):
        pass
    assert otelite.force_flush()
    assert [s.name for s in exporter.get_finished_spans()] == ["hello"]
    assert exporter.get_finished_spans()[0].attributes["user.id"] == "u"
    with LocalStore(tmp_path) as store:
        assert [(s.name, s.attributes) for s in store.all_spans()] == [("hello", {"user.id": "u"})]


def test_reconfigure_swaps_exporters_and_same_settings_is_noop(tmp_path: Path) -> None:
    """A second call with other settings replaces otelite's processors; the same call is a no-op."""
    provider = TracerProvider()
    otelite.configure(tracer_provider=provider, local_store=tmp_path / "a")
    swappable = _config._state.swappable
    assert swappable is not None
    first = swappable.processors
    otelite.configure(tracer_provider=provider, local_store=tmp_path / "a")
    assert swappable.processors is first
    with otelite.span("to-a"):
        pass
    otelite.configure(tracer_provider=provider, local_store=tmp_path / "b")
    assert _config._state.swappable is swappable
    assert swappable.processors is not first
    with otelite.span("to-b"):
        pass
    otelite.force_flush()
    with LocalStore(tmp_path / "a") as a, LocalStore(tmp_path / "b") as b:
        assert [s.name for s in a.all_spans()] == ["to-a"]
        assert [s.name for s in b.all_spans()] == ["to-b"]
    # One otelite processor on the provider, however often configure() ran.
    procs = provider._active_span_processor._span_processors
    assert sum(p is swappable for p in procs) == 1


def test_failed_reconfigure_keeps_previous_setup(tmp_path: Path) -> None:
    """A configure() that raises leaves the working configuration untouched."""
    provider = TracerProvider()
    otelite.configure(tracer_provider=provider, local_store=tmp_path)
    with pytest.raises(otelite.ConfigurationError):
        otelite.configure(tracer_provider=provider, endpoint="bad")
    with otelite.span("still-recorded"):
        pass
    otelite.force_flush()
    with LocalStore(tmp_path) as store:
        assert [s.name for s in store.all_spans()] == ["still-recorded"]


def test_shutdown_then_spans_are_not_recorded(tmp_path: Path) -> None:
    """After shutdown() otelite's exporters are gone and is_configured() is False."""
    provider = TracerProvider()
    otelite.configure(tracer_provider=provider, local_store=tmp_path)
    assert otelite.is_configured()
    with otelite.span("before"):
        pass
    otelite.shutdown()
    assert not otelite.is_configured()
    with otelite.span("after"):
        pass
    with LocalStore(tmp_path) as store:
        assert [s.name for s in store.all_spans()] == ["before"]


def test_fresh_process_default_configure(tmp_path: Path) -> None:
    """In a fresh process, configure() installs a global provider with the service name and flushes at exit."""
    result = run_python(
        """
        import otelite
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        otelite.configure()
        assert isinstance(trace.get_tracer_provider(), TracerProvider)
        with otelite.span("exit-flushed"):
            pass
        # no force_flush: the atexit hook must deliver the span
        """,
        {
            "OTEL_SERVICE_NAME": "svc-from-env",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    with LocalStore(tmp_path / ".otelite") as store:
        (span,) = store.all_spans()
    assert span.name == "exit-flushed"
    assert span.resource["service.name"] == "svc-from-env"
    assert span.resource["deployment.environment"] == "test"


def test_existing_global_provider_is_extended_not_replaced(tmp_path: Path) -> None:
    """An SDK provider the app installed first keeps its processors and gains otelite's."""
    result = run_python(
        """
        import otelite
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        mine = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": "app-owned"}))
        provider.add_span_processor(SimpleSpanProcessor(mine))
        trace.set_tracer_provider(provider)
        otelite.configure(service_name="ignored")
        assert trace.get_tracer_provider() is provider
        with otelite.span("both"):
            pass
        otelite.force_flush()
        assert [s.name for s in mine.get_finished_spans()] == ["both"]
        """,
        {},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    with LocalStore(tmp_path / ".otelite") as store:
        (span,) = store.all_spans()
    assert span.resource["service.name"] == "app-owned"


def test_sdk_disabled_makes_everything_noop(tmp_path: Path) -> None:
    """OTEL_SDK_DISABLED=true: configure() installs nothing, writes no store, code still runs."""
    result = run_python(
        """
        import otelite
        from opentelemetry import trace
        otelite.configure()
        assert otelite.is_configured()
        assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider"
        @otelite.trace
        def f(x):
            return x + 1
        assert f(1) == 2
        with otelite.span("s") as s:
            assert not s.is_recording()
        """,
        {"OTEL_SDK_DISABLED": "true"},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / ".otelite").exists()


def test_sampling_ratio_zero_records_nothing(tmp_path: Path) -> None:
    """sample_ratio=0 on an otelite-created provider drops every trace."""
    result = run_python(
        """
        import otelite
        otelite.configure(sample_ratio=0.0)
        for _ in range(20):
            with otelite.span("dropped"):
                pass
        with otelite.span("x") as s:
            assert not s.is_recording()
        """,
        {},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    with LocalStore(tmp_path / ".otelite") as store:
        assert store.all_spans() == []
