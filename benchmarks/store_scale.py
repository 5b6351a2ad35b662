"""Local store at scale: ingest 1,000,000 synthetic spans, then time the CLI's queries.

Run with `nox -s bench-store` (`--spans N` to change the size, `--store DIR` to keep the
store for `nox -s bench-ui -- --store DIR`). Writes its results in docs/performance.md. Span objects are built before the clock starts:
the ingest rate is that of the exporter (rows + SQLite), as in an app.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from otelite._export import LocalStoreExporter
from otelite.store import LocalStore

ROOT = Path(__file__).resolve().parent.parent
MODELS = [
    "gpt-4o-mini-2024-07-18",
    "gpt-4o-2024-08-06",
    "gpt-4.1-mini",
    "o3-mini",
    "text-embedding-3-small",
]
RESOURCE = Resource(
    {"service.name": "bench", "service.version": "2.3.1", "telemetry.sdk.language": "python"}
)
SCOPE = InstrumentationScope("otelite", "0.1.0")
DAY_NS = 86_400 * 10**9


def make_trace(i: int, rng: random.Random, start: int) -> list[ReadableSpan]:
    """A 4-span trace: workflow root, retrieval, tool, chat (the LLM call)."""
    trace_id = rng.getrandbits(128)
    ids = [rng.getrandbits(64) for _ in range(4)]
    ctx = [SpanContext(trace_id, s, False, TraceFlags(1)) for s in ids]
    user = f"user-{rng.randrange(1000)}"
    model = MODELS[i % len(MODELS)]
    common = {"user.id": user, "session.id": f"s-{i // 3}"}
    duration = rng.randrange(200, 3000) * 10**6
    spans = [
        ReadableSpan(
            name="invoke_workflow rag",
            context=ctx[0],
            parent=None,
            resource=RESOURCE,
            attributes={
                **common,
                "gen_ai.operation.name": "invoke_workflow",
                "gen_ai.workflow.name": "rag",
            },
            kind=SpanKind.INTERNAL,
            status=Status(StatusCode.UNSET),
            start_time=start,
            end_time=start + duration,
            instrumentation_scope=SCOPE,
        ),
        ReadableSpan(
            name="retrieval docs",
            context=ctx[1],
            parent=ctx[0],
            resource=RESOURCE,
            attributes={**common, "gen_ai.operation.name": "retrieval"},
            kind=SpanKind.CLIENT,
            status=Status(StatusCode.UNSET),
            start_time=start + 10**6,
            end_time=start + 40 * 10**6,
            instrumentation_scope=SCOPE,
        ),
        ReadableSpan(
            name="execute_tool lookup",
            context=ctx[2],
            parent=ctx[0],
            resource=RESOURCE,
            attributes={
                **common,
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "lookup",
            },
            kind=SpanKind.INTERNAL,
            status=Status(StatusCode.UNSET),
            start_time=start + 41 * 10**6,
            end_time=start + 60 * 10**6,
            instrumentation_scope=SCOPE,
        ),
    ]
    failed = rng.random() < 0.02
    llm: dict[str, Any] = {
        **common,
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model.rsplit("-20", 1)[0],
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.request.temperature": 0.0,
    }
    if failed:
        llm["error.type"] = "openai.RateLimitError"
    else:
        tokens_in, tokens_out = rng.randrange(50, 4000), rng.randrange(5, 800)
        llm.update(
            {
                "gen_ai.response.id": f"chatcmpl-{i}",
                "gen_ai.response.model": model,
                "gen_ai.response.finish_reasons": ["stop"],
                "gen_ai.usage.input_tokens": tokens_in,
                "gen_ai.usage.output_tokens": tokens_out,
                "gen_ai.usage.cost": (tokens_in * 0.15 + tokens_out * 0.6) / 1e6,
                "otelite.cost.source": "genai-prices",
                "otelite.cost.catalog_version": "0.2.3",
                "otelite.cost.catalog_date": "2026-11-26",
                "otelite.cost.estimated": False,
                "otelite.cost.override": False,
            }
        )
    spans.append(
        ReadableSpan(
            name=f"chat {llm['gen_ai.request.model']}",
            context=ctx[3],
            parent=ctx[0],
            resource=RESOURCE,
            attributes=llm,
            kind=SpanKind.CLIENT,
            status=Status(StatusCode.ERROR if failed else StatusCode.UNSET),
            start_time=start + 61 * 10**6,
            end_time=start + duration - 10**6,
            instrumentation_scope=SCOPE,
        )
    )
    return spans


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument(
        "--store", help="write the store in this (empty) directory and keep it (for bench-ui)"
    )
    args = parser.parse_args()
    rng = random.Random(7)
    traces = args.spans // 4
    now = time.time_ns()
    work = Path(args.store) if args.store else Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    if (work / "otelite.db").exists():
        parser.error(f"{work / 'otelite.db'} exists: the ingest is measured on a new store")
    exporter = LocalStoreExporter(work / "otelite.db")
    ingest_s = 0.0
    written = 0
    batch_traces = 128  # 512 spans per export, the BatchSpanProcessor default
    for first in range(0, traces, batch_traces):
        batch: list[ReadableSpan] = []
        for i in range(first, min(first + batch_traces, traces)):
            batch.extend(make_trace(i, rng, now - rng.randrange(30 * DAY_NS)))
        started = time.perf_counter()
        exporter.export(batch)
        ingest_s += time.perf_counter() - started
        written += len(batch)
        if first % (batch_traces * 200) == 0:
            print(f"\r{written}/{args.spans} spans", end="", file=sys.stderr)
    exporter.shutdown()
    print(file=sys.stderr)
    size = (work / "otelite.db").stat().st_size
    timings: dict[str, float] = {}
    with LocalStore(work) as store:
        user = "user-42"

        def timed(label: str, fn: Any) -> Any:
            started = time.perf_counter()
            result = fn()
            timings[label] = time.perf_counter() - started
            return result

        timed("stats --by model", lambda: store.stats(["model"]))
        timed("stats --by user,day", lambda: store.stats(["user", "day"]))
        found = timed(f"traces --user {user}", lambda: store.traces(user=user))
        timed("trace ID", lambda: store.trace_tree(found[0].trace_id))
    rate = written / ingest_s
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "",
        "## Local store at scale",
        "",
        f"`nox -s bench-store`: {written:,} synthetic spans ({traces:,} traces of 4 spans, one LLM call each, "
        "no captured content, start times spread over 30 days) written through the store exporter in "
        "batches of 512 (the writer keeps the hourly stats rollups in the same transactions), then queried. "
        f"Run on {time.strftime('%Y-%m-%d', time.gmtime())}, load average {load:.1f} on {os.cpu_count()} CPUs.",
        "",
        "| measure | result | target |",
        "|---|---:|---:|",
        f"| ingest rate | {rate:,.0f} spans/s | ≥ 20,000 spans/s |",
        f"| store size | {size / written:,.0f} bytes/span ({size / 1e6:,.0f} MB) | ≤ 1 KB/span |",
    ]
    for label, seconds in timings.items():
        lines.append(f"| `otelite {label}` | {seconds:.2f} s | ≤ 2 s |")
    report = "\n".join(lines) + "\n"
    print(report)
    if not args.no_report:
        path = ROOT / "docs" / "performance.md"
        text = path.read_text() if path.exists() else "# Performance\n"
        marker = "\n## Local store at scale\n"
        rest = ""  # sections after this one (the web view's) are kept
        if marker in text:
            start = text.index(marker)
            following = text.find("\n## ", start + len(marker))
            rest = text[following:] if following != -1 else ""
            text = text[:start]
        path.write_text(text.rstrip("\n") + "\n" + report + rest)
    if not args.store:
        os.remove(work / "otelite.db")


if __name__ == "__main__":
    main()
