"""Metrics a dashboard slices: opt-in capped dimensions, token details, scores, API changes, /metrics."""

from __future__ import annotations

import logging
import socket
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import fakeopenai
import otelite
from otelite import _config, _dimensions, _metrics, _prometheus
from otelite.testing import capture_spans

USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 3,
    "total_tokens": 15,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 2},
}
BASE = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "server.address": "api.openai.com",
    "server.port": 443,
}


@pytest.fixture(autouse=True)
def _instrumented() -> Iterator[None]:
    """openai is instrumented for every test here; /metrics is stopped afterwards."""
    otelite.instrument_openai()
    yield
    otelite.uninstrument_openai()
    otelite.shutdown()
    _prometheus.stop()


def _chat(user: str = "u-1", country: str = "DE", usage: Any = None) -> None:
    client = fakeopenai.client(
        lambda request: fakeopenai.json_response(fakeopenai.chat_completion(usage=usage))
    )
    with otelite.attributes({"geo.country.iso_code": country}, user_id=user):
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}]
        )


def _configured(**kwargs: Any) -> InMemoryMetricReader:
    reader = InMemoryMetricReader()
    otelite.configure(
        local_store=False,
        tracer_provider=TracerProvider(),
        meter_provider=MeterProvider(metric_readers=[reader]),
        **kwargs,
    )
    return reader


def _points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, Any], Any]]:
    data = reader.get_metrics_data()
    found = []
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    for p in metric.data.data_points:
                        value = p.value if hasattr(p, "value") else (p.count, p.sum)
                        found.append((dict(p.attributes or {}), value))
    return sorted(found, key=repr)


def test_no_dimension_labels_by_default() -> None:
    """Without metric_dimensions, user, geo and version never become metric labels."""
    reader = _configured(resource_attributes={"service.version": "2.0"})
    _chat()
    assert [(a, v[0]) for a, v in _points(reader, "gen_ai.client.operation.duration")] == [
        (BASE, 1)
    ]
    assert [a for a, _ in _points(reader, "otelite.client.cost")] == [BASE]


def test_chosen_dimensions_label_every_call_metric() -> None:
    """metric_dimensions adds user, geo and service.version to the call metrics."""
    reader = _configured(
        metric_dimensions=["user", "geo", "service.version", "prompt"],
        resource_attributes={"service.version": "2.0"},
    )
    _chat("u-7", "FR")
    labelled = {
        **BASE,
        "user.id": "u-7",
        "geo.country.iso_code": "FR",
        "service.version": "2.0",
    }
    assert [a for a, _ in _points(reader, "gen_ai.client.operation.duration")] == [labelled]
    assert [a for a, _ in _points(reader, "otelite.client.cost")] == [labelled]
    assert [a for a, _ in _points(reader, "gen_ai.client.token.usage")] == [
        {**labelled, "gen_ai.token.type": "input"},
        {**labelled, "gen_ai.token.type": "output"},
    ]


def test_values_past_the_cap_collapse_into_other_and_log_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With a cap of 2 users, the third and fourth users are counted as 'other', logged once."""
    reader = _configured(metric_dimensions={"user": 2})
    with caplog.at_level(logging.WARNING, logger="otelite"):
        for user in ("a", "b", "c", "d", "a"):
            _chat(user)
    counts = {a["user.id"]: v[0] for a, v in _points(reader, "gen_ai.client.operation.duration")}
    assert counts == {"a": 2, "b": 1, "other": 2}
    warnings = [r.getMessage() for r in caplog.records if "cap" in r.getMessage()]
    assert warnings == [
        "otelite: metric dimension 'user' reached its cap of 2 distinct values; further "
        "values are recorded as 'other' (raise the cap with metric_dimensions={'user': N}, "
        "or drop the dimension)"
    ]


def test_dimension_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTELITE_METRIC_DIMENSIONS chooses dimensions and caps; the argument wins over it."""
    monkeypatch.setenv("OTELITE_METRIC_DIMENSIONS", "user:3, geo")
    assert _dimensions.resolve(None, "user:3, geo", "OTELITE_METRIC_DIMENSIONS") == (
        ("user", 3),
        ("geo", _dimensions.DEFAULT_CAP),
    )
    reader = _configured()
    _chat("u-1", "US")
    assert [a for a, _ in _points(reader, "gen_ai.client.operation.duration")] == [
        {**BASE, "user.id": "u-1", "geo.country.iso_code": "US"}
    ]
    otelite.shutdown()
    reader = _configured(metric_dimensions=[])
    _chat("u-1", "US")
    assert [a for a, _ in _points(reader, "gen_ai.client.operation.duration")] == [BASE]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            ["user", "email"],
            "metric_dimensions: unknown dimension 'email'; choose from user, prompt, service.version, geo",
        ),
        (
            {"user": 0},
            "metric_dimensions: the cap of 'user' must be a whole number from 1 to 1000, got 0",
        ),
        ({"user": 5000}, "the cap of 'user' must be a whole number from 1 to 1000, got 5000"),
        ("user:many", "the cap of 'user' must be a whole number from 1 to 1000, got 'many'"),
        (42, "metric_dimensions: expected a list such as ['user', 'prompt']"),
    ],
)
def test_bad_dimensions_are_refused(value: Any, message: str) -> None:
    """An unknown dimension or a bad cap is a ConfigurationError naming it, at configure()."""
    with pytest.raises(otelite.ConfigurationError, match=None) as info:
        otelite.configure(local_store=False, metric_dimensions=value)
    assert message in str(info.value)


def test_cached_and_reasoning_tokens_are_counted_apart() -> None:
    """otelite.client.token.details counts cached input and reasoning output tokens."""
    with capture_spans() as cap:
        _chat(usage=USAGE)
        _chat(usage={"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6})
    details = sorted(
        (
            p["attributes"]["otelite.token.detail"],
            p["value"],
            p["attributes"]["gen_ai.request.model"],
        )
        for p in cap.metrics()["otelite.client.token.details"]
    )
    assert details == [("cache_read", 4, "gpt-4o-mini"), ("reasoning", 2, "gpt-4o-mini")]


def test_scores_are_recorded_by_evaluator() -> None:
    """Every score with a value lands in otelite.evaluation.score; one without a value does not."""
    with capture_spans() as cap:
        with otelite.span("answer"):
            otelite.score("helpfulness", 0.75, passed=True)
            otelite.score("helpfulness", 0.25, passed=False)
            otelite.score("tone", label="formal")
    points = sorted(
        (sorted(p["attributes"].items()), p["count"], p["sum"])
        for p in cap.metrics()["otelite.evaluation.score"]
    )
    assert points == [
        (
            [
                ("gen_ai.evaluation.name", "helpfulness"),
                ("otelite.evaluation.kind", "human"),
                ("otelite.evaluation.passed", False),
            ],
            1,
            0.25,
        ),
        (
            [
                ("gen_ai.evaluation.name", "helpfulness"),
                ("otelite.evaluation.kind", "human"),
                ("otelite.evaluation.passed", True),
            ],
            1,
            0.75,
        ),
    ]


def test_api_change_hook_counts_by_kind() -> None:
    """record_api_change (the hook change detection will call) counts by provider and kind."""
    with capture_spans() as cap:
        meter = _config.active().meter
        _metrics.record_api_change(meter, "openai", "fingerprint")
        _metrics.record_api_change(meter, "openai", "fingerprint")
    assert [(p["attributes"], p["value"]) for p in cap.metrics()["otelite.api.changes"]] == [
        ({"gen_ai.provider.name": "openai", "otelite.api.change.kind": "fingerprint"}, 2)
    ]


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_prometheus_serves_the_call_metrics() -> None:
    """configure(prometheus=...) serves otelite's metrics on /metrics for scraping."""
    otelite.configure(local_store=False, prometheus="127.0.0.1:0", service_name="scraped")
    port = _prometheus.bound_port()
    assert port
    _chat(usage=USAGE)
    text = _scrape(port)
    count = next(
        line
        for line in text.splitlines()
        if line.startswith("gen_ai_client_operation_duration_seconds_count{")
    )
    assert 'gen_ai_provider_name="openai"' in count
    assert 'gen_ai_request_model="gpt-4o-mini"' in count
    assert count.endswith(" 1.0")
    assert 'otelite_token_detail="cache_read"' in text
    assert 'service_name="scraped"' in text  # target_info


def test_prometheus_from_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_METRICS_EXPORTER=prometheus with OTEL_EXPORTER_PROMETHEUS_HOST/PORT serves /metrics."""
    port = _free_port()
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "prometheus")
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1")
    monkeypatch.setenv("OTEL_EXPORTER_PROMETHEUS_PORT", str(port))
    otelite.configure(local_store=False)
    assert _prometheus.bound_port() == port
    _chat()
    assert "gen_ai_client_operation_duration_seconds_count{" in _scrape(port)


def test_port_in_use_is_a_clear_error_at_configure() -> None:
    """A /metrics port already taken is a ConfigurationError at configure(), naming the port."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(otelite.ConfigurationError) as info:
            otelite.configure(local_store=False, prometheus=f"127.0.0.1:{port}")
    assert f"prometheus: cannot serve /metrics on 127.0.0.1:{port}" in str(info.value)
    assert "choose another port" in str(info.value)
    assert not otelite.is_configured()


@pytest.mark.parametrize(
    ("kwargs", "env", "message"),
    [
        ({"prometheus": "9464"}, {}, "prometheus: '9464' is not 'host:port'"),
        ({"prometheus": 70000}, {}, "prometheus: 70000 is not a port number"),
        ({"prometheus": 1.5}, {}, "prometheus: expected True, a port or 'host:port', got float"),
        (
            {},
            {"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_EXPORTER_PROMETHEUS_PORT": "http"},
            "OTEL_EXPORTER_PROMETHEUS_PORT: 'http' is not a port number",
        ),
    ],
)
def test_bad_prometheus_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], env: dict[str, str], message: str
) -> None:
    """A bad /metrics address is a ConfigurationError naming the argument or variable."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(otelite.ConfigurationError) as info:
        otelite.configure(local_store=False, **kwargs)
    assert message in str(info.value)


def test_metrics_keep_flowing_when_the_trace_exporter_is_down() -> None:
    """With the OTLP collector unreachable, /metrics still counts every call."""
    dead = _free_port()  # nothing listens there
    otelite.configure(
        endpoint=f"http://127.0.0.1:{dead}",
        local_store=False,
        prometheus="127.0.0.1:0",
        outbox=False,
        exit_timeout=0.5,
    )
    port = _prometheus.bound_port()
    assert port
    for _ in range(3):
        _chat()
    count = next(
        line
        for line in _scrape(port).splitlines()
        if line.startswith("gen_ai_client_operation_duration_seconds_count{")
    )
    assert count.endswith(" 3.0")


def test_prometheus_without_the_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without otelite[prometheus] installed, configure(prometheus=...) says which extra to install."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(otelite.ConfigurationError) as info:
        otelite.configure(local_store=False, prometheus="127.0.0.1:0")
    assert str(info.value) == (
        "prometheus: serving /metrics needs the Prometheus exporter; "
        'pip install "otelite[prometheus]"'
    )
    assert _prometheus.bound_port() is None
