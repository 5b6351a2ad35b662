"""A small local store with fixed ids and times, for snapshot tests of the CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import (
    INVALID_SPAN,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from otelite._export import LocalStoreExporter
from otelite.testing import SequentialIdGenerator

T0 = 1_767_225_600_000_000_000  # 2026-01-01 00:00:00 UTC
MS = 1_000_000

CHAT_CONTENT = {
    "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Answer briefly."}]),
    "gen_ai.input.messages": json.dumps(
        [
            {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
            {
                "role": "assistant",
                "parts": [
                    {
                        "type": "tool_call",
                        "id": "call_1",
                        "name": "weather",
                        "arguments": {"city": "Paris"},
                    }
                ],
            },
            {
                "role": "tool",
                "parts": [{"type": "tool_call_response", "id": "call_1", "response": "sunny, 21C"}],
            },
        ]
    ),
    "gen_ai.output.messages": json.dumps(
        [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "Sunny and 21C."}],
                "finish_reason": "stop",
            }
        ]
    ),
}


def llm_attrs(
    model: str, response_model: str, tokens_in: int, tokens_out: int, cost: float, **extra: Any
) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.response.model": response_model,
        "gen_ai.usage.input_tokens": tokens_in,
        "gen_ai.usage.output_tokens": tokens_out,
        "gen_ai.usage.cost": cost,
        **extra,
    }


# Realistic trace ids: the first two share their first 8 characters.
HEX_TRACE_IDS = (
    "4b62052210e2a9c47f3d9e0b1a2c3d4e",
    "4b620522f1a04c7e9d8b7a6f5e4d3c2b",
    "9e1f3c5a7b9d2e4f6a8c0b1d3e5f7a9c",
)


class FixedTraceIds(SequentialIdGenerator):
    """The given trace ids in turn; span ids 1, 2, 3, ..."""

    def __init__(self, trace_ids: Sequence[str]) -> None:
        super().__init__()
        self._ids = [int(t, 16) for t in trace_ids]

    def generate_trace_id(self) -> int:
        return self._ids.pop(0)


def build_store(path: Path, trace_ids: Optional[Sequence[str]] = None) -> Path:
    """Write three traces (a RAG pipeline, a failed call, an embeddings call) into ``path``.

    Trace ids are 1, 2, 3 unless ``trace_ids`` gives them (e.g. ``HEX_TRACE_IDS``).
    """
    provider = TracerProvider(
        resource=Resource({"service.name": "snap", "service.version": "1.2.0"}),
        id_generator=FixedTraceIds(trace_ids) if trace_ids else SequentialIdGenerator(),
        shutdown_on_exit=False,
    )
    exporter = LocalStoreExporter(path / "otelite.db")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("otelite")

    root = tracer.start_span(
        "invoke_workflow rag", start_time=T0, attributes={"user.id": "u1", "session.id": "s1"}
    )
    ctx = __import__("opentelemetry.trace", fromlist=["set_span_in_context"]).set_span_in_context(
        root
    )
    retrieval = tracer.start_span(
        "retrieval docs", context=ctx, kind=SpanKind.CLIENT, start_time=T0 + 1 * MS
    )
    retrieval.end(end_time=T0 + 3 * MS)
    chat = tracer.start_span(
        "chat gpt-4o-mini",
        context=ctx,
        kind=SpanKind.CLIENT,
        start_time=T0 + 4 * MS,
        attributes=llm_attrs(
            "gpt-4o-mini",
            "gpt-4o-mini-2024-07-18",
            100,
            20,
            0.000027,
            **{
                "gen_ai.response.time_to_first_chunk": 0.012,
                "user.id": "u1",
                "session.id": "s1",
                "geo.country.iso_code": "DE",
                "gen_ai.prompt.name": "qa",
                "gen_ai.prompt.version": 2,
                "otelite.prompt.label": "production",
                "otelite.tags": ["beta"],
                **CHAT_CONTENT,
            },
        ),
    )
    chat.end(end_time=T0 + 54 * MS)
    root.end(end_time=T0 + 60 * MS)

    failed = tracer.start_span(
        "chat gpt-4o",
        kind=SpanKind.CLIENT,
        start_time=T0 + 3600 * 1000 * MS,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "user.id": "u2",
            "error.type": "openai.RateLimitError",
        },
    )
    failed.set_status(Status(StatusCode.ERROR, "RateLimitError: slow down"))
    failed.end(end_time=T0 + 3600 * 1000 * MS + 200 * MS)

    embed = tracer.start_span(
        "embeddings text-embedding-3-small",
        kind=SpanKind.CLIENT,
        start_time=T0 + 7200 * 1000 * MS,
        attributes={
            "gen_ai.operation.name": "embeddings",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "text-embedding-3-small",
            "gen_ai.usage.input_tokens": 10,
            "gen_ai.usage.cost": 2e-07,
            "otelite.usage.estimated": True,
            "user.id": "u1",
        },
    )
    embed.end(end_time=T0 + 7200 * 1000 * MS + 30 * MS)
    provider.shutdown()
    return path


# The traces of `build_remote_parent_store`, in start order.
LOCAL_TRACE = "1" * 32
REMOTE_TRACE = "2" * 32
TWO_ROOTS_TRACE = "3" * 32
CALLBACK_TRACE = "4" * 32


def _remote(trace_id: str, span_id: int) -> Any:
    """A context whose parent span was recorded by another service (not in this store)."""
    parent = SpanContext(int(trace_id, 16), span_id, is_remote=True, trace_flags=TraceFlags(1))
    return set_span_in_context(NonRecordingSpan(parent))


class _CountdownSpanIds(FixedTraceIds):
    """Span ids 255, 254, ...: a child's id sorts before its parent's."""

    def generate_span_id(self) -> int:
        return 256 - super().generate_span_id()


def build_remote_parent_store(path: Path) -> Path:
    """Write four traces into ``path``: a local one; one whose root's parent is remote; one with
    two local roots under the same remote parent; a local one that a remote service called back
    into (a second local root, later than the first)."""
    provider = TracerProvider(
        resource=Resource({"service.name": "downstream"}),
        id_generator=_CountdownSpanIds([LOCAL_TRACE, CALLBACK_TRACE]),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(LocalStoreExporter(path / "otelite.db")))
    tracer = provider.get_tracer("otelite")

    def chat(ctx: Any, start_ms: int, end_ms: int, tokens_in: int, cost: float) -> None:
        span = tracer.start_span(
            "chat gpt-4o-mini",
            context=ctx,
            kind=SpanKind.CLIENT,
            start_time=T0 + start_ms * MS,
            attributes=llm_attrs("gpt-4o-mini", "gpt-4o-mini", tokens_in, 10, cost),
        )
        span.end(end_time=T0 + end_ms * MS)

    local = tracer.start_span("invoke_workflow local", start_time=T0)
    chat(set_span_in_context(local), 5, 15, 100, 0.00002)
    local.end(end_time=T0 + 20 * MS)

    # Its parent is a span of the calling service; the child starts at the same nanosecond.
    served = tracer.start_span(
        "POST /answer",
        context=_remote(REMOTE_TRACE, 0xF1),
        kind=SpanKind.SERVER,
        start_time=T0 + 1000 * MS,
        attributes={"user.id": "u-remote"},
    )
    chat(set_span_in_context(served), 1000, 1030, 40, 0.00001)
    served.end(end_time=T0 + 1040 * MS)

    # Two deliveries of one remote message: two local roots, the second one failing.
    first = tracer.start_span(
        "consume orders", context=_remote(TWO_ROOTS_TRACE, 0xF2), start_time=T0 + 2000 * MS
    )
    chat(set_span_in_context(first), 2005, 2015, 20, 0.000005)
    first.end(end_time=T0 + 2020 * MS)
    second = tracer.start_span(
        "consume orders retry", context=_remote(TWO_ROOTS_TRACE, 0xF2), start_time=T0 + 2050 * MS
    )
    second.set_status(Status(StatusCode.ERROR, "rejected"))
    second.end(end_time=T0 + 2090 * MS)

    # A local root, and a span of the same trace whose parent is in the service it called.
    workflow = tracer.start_span("invoke_workflow callback", start_time=T0 + 3000 * MS)
    callback = tracer.start_span(
        "POST /callback",
        context=_remote(CALLBACK_TRACE, 0xF3),
        kind=SpanKind.SERVER,
        start_time=T0 + 3010 * MS,
    )
    callback.end(end_time=T0 + 3020 * MS)
    workflow.end(end_time=T0 + 3050 * MS)
    provider.shutdown()
    return path


LOCAL_RUN_TRACES = ("5" * 32, "6" * 32)
REMOTE_RUN_TRACES = ("7" * 32, "8" * 32)


def build_remote_run_store(path: Path) -> Path:
    """Write two dataset runs of two rows each into ``path``, each row a trace with an
    ``exact_match`` score (one pass, one fail): ``local`` (rows without a parent) and ``remote``
    (an evaluation job a remote service asked for: each row's root has a remote parent, and
    its task span starts at the same nanosecond)."""
    provider = TracerProvider(
        resource=Resource({"service.name": "evaluator"}),
        id_generator=FixedTraceIds(LOCAL_RUN_TRACES),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(LocalStoreExporter(path / "otelite.db")))
    tracer = provider.get_tracer("otelite")

    def row(run: str, index: int, ctx: Any, start_ms: int, passed: bool) -> None:
        root = tracer.start_span(
            f"evaluate {run}",
            context=ctx,
            start_time=T0 + start_ms * MS,
            attributes={
                "otelite.span.kind": "evaluation_run",
                "otelite.eval.run.name": run,
                "otelite.eval.run.id": f"{run}-id",
                "otelite.eval.row": index,
                "otelite.traffic": "evaluation",
            },
        )
        task = tracer.start_span(
            "task answer", context=set_span_in_context(root), start_time=T0 + start_ms * MS
        )
        task.end(end_time=T0 + (start_ms + 5) * MS)
        root.add_event(
            "gen_ai.evaluation.result",
            {
                "gen_ai.evaluation.name": "exact_match",
                "gen_ai.evaluation.score.value": 1.0 if passed else 0.0,
                "otelite.evaluation.passed": passed,
            },
            timestamp=T0 + (start_ms + 6) * MS,
        )
        root.end(end_time=T0 + (start_ms + 10) * MS)

    for index, passed in enumerate((True, False)):
        row("local", index, set_span_in_context(INVALID_SPAN), 100 * index, passed)
    for index, passed in enumerate((True, False)):
        remote = _remote(REMOTE_RUN_TRACES[index], 0xF4 + index)
        row("remote", index, remote, 1000 + 100 * index, passed)
    provider.shutdown()
    return path
