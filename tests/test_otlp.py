"""OTLP export proven on the wire: HTTP and gRPC receivers on 127.0.0.1 decode what arrives."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

import otelite
from otlp_receiver import grpc_receiver, http_receiver

SPAN_KIND_INTERNAL = 1
SPAN_KIND_CLIENT = 3
STATUS_UNSET, STATUS_ERROR = 0, 2


@otelite.trace(kind="workflow", name="rag")
def pipeline(question: str) -> str:
    docs = search(question)
    with otelite.span(
        "answer", **{"gen_ai.usage.input_tokens": 42, "gen_ai.usage.output_tokens": 7}
    ):
        return docs[0]


@otelite.trace(kind="retriever", name="index")
def search(question: str) -> list[str]:
    return [question.upper()]


def exercise() -> None:
    """Produce one three-span trace and one failing span."""
    with otelite.attributes(user_id="u-7", tags=["wire"]):
        pipeline("q")
    with pytest.raises(RuntimeError), otelite.span("broken"):
        raise RuntimeError("x")


def check_received(spans: list[dict[str, object]]) -> None:
    """The spans that arrived are exactly the ones produced, with tree, attributes and resource."""
    by_name = {s["name"]: s for s in spans}
    assert sorted(by_name) == ["answer", "broken", "invoke_workflow rag", "retrieval index"]
    root, retrieval, answer = (
        by_name["invoke_workflow rag"],
        by_name["retrieval index"],
        by_name["answer"],
    )
    assert root["parent_span_id"] is None
    assert retrieval["parent_span_id"] == root["span_id"]
    assert answer["parent_span_id"] == root["span_id"]
    assert {retrieval["trace_id"], answer["trace_id"]} == {root["trace_id"]}
    assert root["kind"] == SPAN_KIND_INTERNAL
    assert retrieval["kind"] == SPAN_KIND_CLIENT
    assert root["attributes"] == {
        "code.function.name": "test_otlp.pipeline",
        "otelite.span.kind": "workflow",
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": "rag",
        "user.id": "u-7",
        "otelite.tags": ["wire"],
    }
    assert answer["attributes"] == {
        "gen_ai.usage.input_tokens": 42,
        "gen_ai.usage.output_tokens": 7,
        "user.id": "u-7",
        "otelite.tags": ["wire"],
    }
    assert by_name["broken"]["status_code"] == STATUS_ERROR
    assert by_name["broken"]["attributes"] == {"error.type": "RuntimeError"}
    assert all(s["resource"]["service.name"] == "wire-test" for s in spans)
    assert all(s["scope"] == "otelite" for s in spans)


def provider() -> TracerProvider:
    """An isolated SDK provider with a known service name."""
    return TracerProvider(resource=Resource.create({"service.name": "wire-test"}))


def meters() -> MeterProvider:
    """An isolated meter provider with no reader (metrics over the wire are tested in a fresh process)."""
    return MeterProvider()


def test_otlp_http_round_trip() -> None:
    """Spans exported over OTLP/HTTP arrive at /v1/traces, decoded whole, with the headers."""
    with http_receiver() as (url, received):
        otelite.configure(
            tracer_provider=provider(),
            meter_provider=meters(),
            endpoint=url,
            headers={"x-api-key": "secret-token"},
        )
        exercise()
        assert otelite.force_flush()
        check_received(received.spans())
        assert set(received.paths) == {"/v1/traces"}  # no metrics: an isolated meter provider
        assert all(h["x-api-key"] == "secret-token" for h in received.headers)
        assert all("secret-token" not in str(s) for s in received.spans())


def test_scores_cross_the_wire_as_evaluation_events() -> None:
    """A human score on an ended span arrives over OTLP/HTTP as a child span with its event."""
    with http_receiver() as (url, received):
        otelite.configure(tracer_provider=provider(), meter_provider=meters(), endpoint=url)
        with otelite.span("answer") as span:
            ctx = span.get_span_context()
        otelite.score(
            "thumbs_up",
            1,
            trace_id=format(ctx.trace_id, "032x"),
            span_id=format(ctx.span_id, "016x"),
            comment="helpful",
        )
        assert otelite.force_flush()
        by_name = {s["name"]: s for s in received.spans()}
    evaluation = by_name["evaluation thumbs_up"]
    assert evaluation["trace_id"] == format(ctx.trace_id, "032x")
    assert evaluation["parent_span_id"] == format(ctx.span_id, "016x")
    assert evaluation["kind"] == SPAN_KIND_INTERNAL
    assert evaluation["events"] == [
        {
            "name": "gen_ai.evaluation.result",
            "attributes": {
                "gen_ai.evaluation.name": "thumbs_up",
                "otelite.evaluation.kind": "human",
                "gen_ai.evaluation.score.value": 1.0,
                "otelite.evaluation.source": "human",
                "otelite.evaluation.comment": "helpful",
            },
        }
    ]


def test_otlp_grpc_round_trip() -> None:
    """Spans exported over OTLP/gRPC arrive decoded whole, with the headers as metadata."""
    with grpc_receiver() as (url, received):
        otelite.configure(
            tracer_provider=provider(),
            meter_provider=meters(),
            endpoint=url,
            protocol="grpc",
            headers="x-team=ml",
        )
        exercise()
        assert otelite.force_flush()
        check_received(received.spans())
        assert all(h["x-team"] == "ml" for h in received.headers)


def test_endpoint_and_local_store_together(tmp_path: Path) -> None:
    """With an endpoint and local_store, every span goes both over the wire and into the store."""
    from otelite.store import LocalStore

    with http_receiver() as (url, received):
        otelite.configure(
            tracer_provider=provider(), meter_provider=meters(), endpoint=url, local_store=tmp_path
        )
        exercise()
        otelite.force_flush()
        wire = sorted(s["name"] for s in received.spans())
    with LocalStore(tmp_path) as store:
        assert sorted(s.name for s in store.all_spans()) == wire


def test_collector_down_never_breaks_the_app(
    contained_errors: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unreachable endpoint loses telemetry but the instrumented code runs normally."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    with http_receiver() as (url, _):
        pass  # the port is closed again: nothing listens there
    otelite.configure(tracer_provider=provider(), meter_provider=meters(), endpoint=url)
    assert pipeline("q") == "Q"
    otelite.force_flush(timeout_millis=2000)


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_metrics_and_env_endpoint_in_fresh_process(protocol: str, tmp_path: Path) -> None:
    """OTEL_EXPORTER_OTLP_* variables alone send traces and metrics (over both protocols)."""
    receiver = http_receiver if protocol == "http/protobuf" else grpc_receiver
    code = textwrap.dedent(
        """
        import otelite
        from otelite import _config
        otelite.configure()
        _config.active().meter.create_counter("otelite.test.calls").add(3, {"k": "v"})
        with otelite.span("env-configured"):
            pass
        assert otelite.force_flush()
        """
    )
    with receiver() as (url, received):
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            "OTEL_SERVICE_NAME": "env-svc",
        }
        import os

        env = {**{k: v for k, v in os.environ.items() if not k.startswith("OTEL")}, **env}
        result = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        spans = received.spans()
        assert [(s["name"], s["resource"]["service.name"]) for s in spans] == [
            ("env-configured", "env-svc")
        ]
        assert "otelite.test.calls" in received.metric_names()
    # An endpoint was configured and no local store asked for: nothing written locally.
    assert not (tmp_path / ".otelite").exists()
