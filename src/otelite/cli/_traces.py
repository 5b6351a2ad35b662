"""``otelite traces`` and ``otelite trace``: the recorded traces, and one of them as a tree.

Every command takes ``--store`` and ``--json``. Exit codes: 0 done, 1 nothing matched,
2 bad input or an unusable store.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from otelite import _semconv as sc
from otelite.cli._content import content_lines
from otelite.cli._format import (
    UNPRICED_NOTE,
    Column,
    Style,
    cost_summary,
    cut,
    fmt_cost,
    fmt_count,
    fmt_duration_ns,
    fmt_time,
    fmt_tokens,
    pack,
    print_json,
    render_table,
    terminal_width,
    walk_tree,
)
from otelite.cli._options import add_store_options, open_store, since_start_ns
from otelite.store import StoredSpan, TraceSummary

# --- traces ---------------------------------------------------------------------------------


def _trace_dict(t: TraceSummary) -> dict[str, Any]:
    return {
        "trace_id": t.trace_id,
        "start_time_ns": t.start_time_ns,
        "root": t.root_name,
        "duration_ms": t.duration_ns / 1e6,
        "spans": t.span_count,
        "llm_calls": t.llm_calls,
        "input_tokens": t.input_tokens,
        "output_tokens": t.output_tokens,
        "cost_usd": t.cost_usd,
        "unpriced_calls": t.unpriced_calls,
        "estimated_calls": t.estimated_calls,
        "status": t.status_code,
        "service": t.service_name,
        "user": t.user_id,
    }


def cmd_traces(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        traces = store.traces(
            limit=args.limit,
            since_ns=since_start_ns(args),
            service=args.service,
            model=args.model,
            user=args.user,
            session=args.session,
            status=args.status,
            min_cost=args.min_cost,
            min_duration_ms=args.min_duration_ms,
            name_contains=args.name,
            traffic=args.traffic,
        )
    if args.json:
        print_json([_trace_dict(t) for t in traces])
        return 0 if traces else 1
    if not traces:
        print("no traces match; widen the filters or run your app with otelite.configure()")
        return 1
    with open_store(args) as store:
        short = store.short_trace_ids([t.trace_id for t in traces])
    id_width = max(len(v) for v in short.values())
    style = Style(sys.stdout)
    columns = [
        Column("ID"),
        Column("START (UTC)"),
        Column("ROOT", flex=True, min_width=8),
        Column("DURATION", ">"),
        Column("LLM", ">"),
        Column("IN", ">"),
        Column("OUT", ">"),
        Column("COST", ">"),
        Column("ST"),
        Column("USER", flex=True, min_width=4, max_width=16),
    ]
    rows = []
    for t in traces:
        mark = "*" if t.estimated_calls else ""
        rows.append(
            [
                t.trace_id[:id_width],
                fmt_time(t.start_time_ns),
                t.root_name,
                fmt_duration_ns(t.duration_ns),
                str(t.llm_calls),
                fmt_count(t.input_tokens) + mark if t.llm_calls else "-",
                fmt_count(t.output_tokens) + mark if t.llm_calls else "-",
                fmt_cost(t.cost_usd, t.unpriced_calls),
                "ERR" if t.status_code == "ERROR" else "OK",
                t.user_id or "-",
            ]
        )

    def paint(row: int, column: int, text: str) -> str:
        return style.red(text) if column == 8 and rows[row][8] == "ERR" else text

    width = terminal_width()
    lines, _ = render_table(columns, rows, width, style, paint)
    print("\n".join(lines))
    footer = (
        f"{len(traces)} trace{'s' if len(traces) != 1 else ''}; show one with: otelite trace <ID>"
    )
    if any(t.estimated_calls for t in traces):
        footer += "\n* tokens (est.): counted by otelite, the provider reported none"
    if any(t.unpriced_calls for t in traces):
        footer += f"\n{UNPRICED_NOTE}"
    print(style.dim("\n".join(cut(line, width) for line in footer.splitlines())))
    return 0


# --- one trace -----------------------------------------------------------------------------

_LLM_OPERATIONS = (sc.OP_CHAT, sc.OP_TEXT_COMPLETION, sc.OP_EMBEDDINGS)


def _llm_details(span: StoredSpan) -> str:
    a = span.attributes
    parts = [str(a.get(sc.GEN_AI_RESPONSE_MODEL) or a.get(sc.GEN_AI_REQUEST_MODEL) or "")]
    if sc.GEN_AI_USAGE_INPUT_TOKENS in a or sc.GEN_AI_USAGE_OUTPUT_TOKENS in a:
        parts.append(
            fmt_tokens(
                int(a.get(sc.GEN_AI_USAGE_INPUT_TOKENS, 0)),
                int(a.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 0)),
                bool(a.get(sc.OTELITE_USAGE_ESTIMATED)),
            )
        )
    if sc.GEN_AI_USAGE_COST in a:
        parts.append(fmt_cost(float(a[sc.GEN_AI_USAGE_COST])))
    elif a.get(sc.OTELITE_COST_UNPRICED):
        parts.append("no price")
    if sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in a:
        parts.append(f"ttfc {float(a[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]) * 1000:.0f}ms")
    return " · ".join(p for p in parts if p)


def _score_lines(span: StoredSpan) -> list[str]:
    """``score NAME = VALUE LABEL: explanation`` for each evaluation event on the span."""
    lines = []
    for event in span.events:
        if event.get("name") != sc.GEN_AI_EVALUATION_RESULT:
            continue
        a = event.get("attributes") or {}
        bits = [f"score {a.get(sc.GEN_AI_EVALUATION_NAME)}"]
        value, label = (
            a.get(sc.GEN_AI_EVALUATION_SCORE_VALUE),
            a.get(sc.GEN_AI_EVALUATION_SCORE_LABEL),
        )
        shown = " ".join(str(v) for v in (value, label) if v is not None) or "none"
        bits.append(f"= {shown}")
        text = a.get(sc.GEN_AI_EVALUATION_EXPLANATION) or a.get(sc.OTELITE_EVALUATION_ERROR)
        if text:
            bits.append(f"({str(text).splitlines()[0]})")
        lines.append(" ".join(bits))
    return lines


def cmd_trace(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        roots = store.trace_tree(args.trace_id)
    rows = walk_tree(roots)
    spans = [span for _, span in rows]
    start = min(s.start_time_ns for s in spans)
    end = max(s.end_time_ns for s in spans)
    if args.json:
        print_json(
            [
                {
                    "depth": depth,
                    "span_id": s.span_id,
                    "parent_span_id": s.parent_span_id,
                    "name": s.name,
                    "kind": s.kind,
                    "start_offset_ms": (s.start_time_ns - start) / 1e6,
                    "duration_ms": s.duration_ns / 1e6,
                    "status": s.status_code,
                    "status_message": s.status_message,
                    "attributes": s.attributes,
                }
                for depth, s in rows
            ]
        )
        return 0
    style = Style(sys.stdout)
    width = terminal_width()
    total = max(end - start, 1)
    llm = [s for s in spans if sc.GEN_AI_USAGE_INPUT_TOKENS in s.attributes]
    tokens_in = sum(int(s.attributes.get(sc.GEN_AI_USAGE_INPUT_TOKENS, 0)) for s in spans)
    tokens_out = sum(int(s.attributes.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 0)) for s in spans)
    estimated = sum(1 for s in llm if s.attributes.get(sc.OTELITE_USAGE_ESTIMATED))
    costs = [
        float(s.attributes[sc.GEN_AI_USAGE_COST])
        for s in spans
        if sc.GEN_AI_USAGE_COST in s.attributes
    ]
    unpriced = sum(1 for s in spans if s.attributes.get(sc.OTELITE_COST_UNPRICED))
    service = spans[0].resource.get(sc.SERVICE_NAME, "")
    facts = [
        spans[0].trace_id,
        str(service),
        fmt_duration_ns(end - start),
        f"{len(spans)} span{'s' if len(spans) != 1 else ''}",
    ]
    if llm:
        tokens = fmt_tokens(tokens_in, tokens_out, estimated == len(llm))
        if estimated and estimated < len(llm):
            tokens += f" ({estimated} of {len(llm)} calls est.)"
        facts.append(tokens)
    if costs or unpriced:
        facts.append(fmt_cost(sum(costs) if costs else None, unpriced))
    facts = [f for f in facts if f]
    one_line = "  ".join(facts)
    for line in (
        [one_line] if len(one_line) <= width else pack(facts[:2], width) + pack(facts[2:], width)
    ):
        print(style.bold(line))
    if unpriced:
        print(
            style.dim(cut(f"cost: {cost_summary(sum(costs) if costs else None, unpriced)}", width))
        )
    names = ["  " * depth + span.name for depth, span in rows]
    # name, duration (9), bar (20 between pipes, fewer on a narrow terminal), " ERROR"
    fixed = 13 + (6 if any(span.status_code == "ERROR" for span in spans) else 0)
    name_width = max(min(max(len(n) for n in names), width - fixed - 20), 8)
    bar_width = max(min(20, width - fixed - name_width), 4)
    for (depth, span), name in zip(rows, names):
        offset = int((span.start_time_ns - start) / total * bar_width)
        length = max(1, round(span.duration_ns / total * bar_width)) if span.duration_ns else 0
        length = min(length, bar_width - offset)
        bar = " " * offset + "█" * length + " " * (bar_width - offset - length)
        row = (
            f"{cut(name, name_width):<{name_width}} {fmt_duration_ns(span.duration_ns):>9} |{bar}|"
        )
        error = " ERROR" if span.status_code == "ERROR" else ""
        if len(row) + len(error) > width:  # narrower than the bar: no colour, cut
            print(cut(row + error, width))
        else:
            print(row + style.red(error) if error else row)
        indent = "  " * depth + "  ↳ "
        if span.attributes.get(sc.GEN_AI_OPERATION_NAME) in _LLM_OPERATIONS:
            print(style.dim(cut(indent + _llm_details(span), width)))
        for line in _score_lines(span):
            print(style.dim(cut(indent + line, width)))
        if span.status_code == "ERROR":
            reason = span.status_message or str(span.attributes.get(sc.ERROR_TYPE, ""))
            print(style.red(cut(indent + reason, width)))
        if args.content:
            for line in content_lines(span, indent, width, args.max_chars):
                print(line)
    return 0


def add_parser(commands: Any) -> None:
    """Register ``traces`` and ``trace``."""
    traces = commands.add_parser("traces", help="recent traces, one line each")
    add_store_options(traces)
    traces.add_argument("-n", "--limit", type=int, default=20)
    traces.add_argument("--since", help="only traces newer than this (30m, 24h, 7d)")
    traces.add_argument("--service")
    traces.add_argument("--model")
    traces.add_argument("--user")
    traces.add_argument("--session")
    traces.add_argument("--status", choices=["OK", "ERROR", "ok", "error"])
    traces.add_argument("--min-cost", type=float, help="minimum trace cost in USD")
    traces.add_argument("--min-duration-ms", type=float)
    traces.add_argument("--name", help="text in a span name")
    traces.add_argument(
        "--traffic",
        choices=["app", "evaluation"],
        help="only the application's traces, or only dataset-run rows",
    )
    traces.set_defaults(handler=cmd_traces)

    trace = commands.add_parser("trace", help="one trace as a tree (an id prefix is enough)")
    add_store_options(trace)
    trace.add_argument("trace_id")
    trace.add_argument("--content", action="store_true", help="show captured messages and passages")
    trace.add_argument(
        "--max-chars",
        type=int,
        metavar="N",
        help="with --content: cut each captured text to N characters",
    )
    trace.set_defaults(handler=cmd_trace)
