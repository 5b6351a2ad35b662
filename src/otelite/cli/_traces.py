"""``otelite traces``, ``trace``, ``stats`` and ``graph``: reading the local store.

Every command takes ``--store`` and ``--json``. Exit codes: 0 done, 1 nothing matched,
2 bad input or an unusable store.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Sequence
from typing import Any, Optional

from otelite import _semconv as sc
from otelite.cli._content import content_lines
from otelite.cli._errors import UsageError
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
    hidden_note,
    pack,
    print_json,
    render_table,
    terminal_width,
)
from otelite.cli._options import add_store_options, open_store, since_start_ns
from otelite.cli._prompt_ref import where_prompt
from otelite.store import STATS_KEYS, SpanNode, StatsRow, StoredSpan, TraceSummary

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


def _walk(nodes: Sequence[SpanNode], depth: int = 0) -> list[tuple[int, StoredSpan]]:
    out: list[tuple[int, StoredSpan]] = []
    for node in nodes:
        out.append((depth, node.span))
        out.extend(_walk(node.children, depth + 1))
    return out


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
    rows = _walk(roots)
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


# --- stats ---------------------------------------------------------------------------------


def _stats_dict(keys: Sequence[str], row: StatsRow) -> dict[str, Any]:
    return {
        **dict(zip(keys, row.key)),
        "calls": row.calls,
        "errors": row.errors,
        "error_rate": round(row.error_rate, 6),
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cost_usd": row.cost_usd,
        "p50_ms": round(row.p50_ms, 3),
        "p95_ms": round(row.p95_ms, 3),
        "p99_ms": round(row.p99_ms, 3),
        "p50_ttfc_ms": round(row.p50_ttfc_ms, 3) if row.p50_ttfc_ms is not None else None,
        "estimated_share": round(row.estimated_share, 6),
        "unpriced": row.unpriced,
    }


def _parse_where(items: Optional[Sequence[str]]) -> dict[str, str]:
    where: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--where: {item!r} is not KEY=VALUE; keys: {', '.join(STATS_KEYS)}")
        where[key.strip()] = value.strip()
    return where


def _print_data(
    args: argparse.Namespace, data: list[dict[str, Any]], empty_header: list[str]
) -> int:
    """Rows as JSON (``--json``) or CSV (``--csv``); exit 1 when there are none."""
    if args.json:
        print_json(data)
    else:
        out = io.StringIO()
        writer = csv.DictWriter(
            out, fieldnames=list(data[0]) if data else empty_header, lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(data)
        print(out.getvalue(), end="")
    return 0 if data else 1


def cmd_score_stats(args: argparse.Namespace) -> int:
    keys = [k.strip() for k in (args.by or "").split(",") if k.strip()]
    unknown = [k for k in keys if k not in STATS_KEYS]
    if unknown:
        raise UsageError(f"--by: unknown key {unknown[0]!r}; valid keys: {', '.join(STATS_KEYS)}")
    with open_store(args) as store:
        rows = store.score_stats(
            keys, since_ns=since_start_ns(args), where=_parse_where(args.where)
        )
    data = [
        {
            "name": r.name,
            **dict(zip(keys, r.key)),
            "count": r.count,
            "scored": r.scored,
            "mean": r.mean,
            "passed": r.passed,
            "failed": r.failed,
            "pass_rate": r.pass_rate,
        }
        for r in rows
    ]
    if args.json or args.csv:
        return _print_data(args, data, ["name", *keys, "count"])
    if not rows:
        print("no scores recorded; score spans with otelite.score() or run otelite.evals")
        return 1
    style = Style(sys.stdout)
    columns = [
        Column("SCORE", flex=True),
        *(Column(k.upper(), flex=True) for k in keys),
        Column("COUNT", ">"),
        Column("MEAN", ">"),
        Column("PASS%", ">"),
        Column("FAILED", ">"),
    ]
    table = [
        [
            row.name,
            *("-" if k is None else str(k) for k in row.key),
            str(row.count),
            f"{row.mean:.3f}" if row.mean is not None else "-",
            f"{row.pass_rate * 100:.1f}" if row.pass_rate is not None else "-",
            str(row.failed),
        ]
        for row in rows
    ]
    lines, _ = render_table(columns, table, terminal_width(), style)
    print("\n".join(lines))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    if args.where:
        args.where = [where_prompt(item, args) for item in args.where]
    if args.scores:
        return cmd_score_stats(args)
    keys = [k.strip() for k in (args.by or "model").split(",") if k.strip()]
    unknown = [k for k in keys if k not in STATS_KEYS]
    if unknown or not keys:
        raise UsageError(
            f"--by: unknown key {unknown[0] if unknown else '(none)'!r}; valid keys: {', '.join(STATS_KEYS)}"
        )
    with open_store(args) as store:
        rows = store.stats(keys, since_ns=since_start_ns(args), where=_parse_where(args.where))
    data = [_stats_dict(keys, r) for r in rows]
    if args.json or args.csv:
        return _print_data(args, data, [*keys, "calls"])
    if not rows:
        print(
            "no LLM calls match; widen --since / --where, or instrument your client with otelite.instrument_openai()"
        )
        return 1
    style = Style(sys.stdout)
    columns = [
        *(Column(k.upper(), flex=True) for k in keys),
        Column("CALLS", ">"),
        Column("ERR%", ">"),
        Column("IN", ">"),
        Column("OUT", ">"),
        Column("COST", ">"),
        Column("P50", ">"),
        Column("P95", ">", drop=4),
        Column("P99", ">", drop=1),
        Column("TTFC", ">", drop=2),
        Column("EST%", ">", drop=3),
    ]
    table = [
        [
            *("-" if k is None else str(k) for k in row.key),
            str(row.calls),
            f"{row.error_rate * 100:.1f}",
            fmt_count(row.input_tokens),
            fmt_count(row.output_tokens),
            fmt_cost(row.cost_usd, row.unpriced),
            fmt_duration_ns(row.p50_ms * 1e6),
            fmt_duration_ns(row.p95_ms * 1e6),
            fmt_duration_ns(row.p99_ms * 1e6),
            f"{row.p50_ttfc_ms:.0f}ms" if row.p50_ttfc_ms is not None else "-",
            f"{row.estimated_share * 100:.0f}",
        ]
        for row in rows
    ]
    width = terminal_width()
    lines, hidden = render_table(columns, table, width, style)
    print("\n".join(lines))
    unpriced = sum(r.unpriced for r in rows)
    calls = sum(r.calls for r in rows)
    footer = f"{calls} LLM call{'s' if calls != 1 else ''}"
    if "EST%" not in hidden and any(r.estimated_share for r in rows):
        footer += "; EST% = share of calls with estimated tokens (est.)"
    if unpriced:
        footer += (
            f"; {unpriced} without a price (add them with configure(prices=...))\n{UNPRICED_NOTE}"
        )
    if hidden:
        footer += hidden_note(hidden)
    print(style.dim("\n".join(cut(line, width) for line in footer.splitlines())))
    return 0


# --- graph ---------------------------------------------------------------------------------


def _mermaid_label(span: StoredSpan) -> str:
    text = f"{span.name}<br/>{fmt_duration_ns(span.duration_ns)}"
    a = span.attributes
    if sc.GEN_AI_USAGE_INPUT_TOKENS in a:
        tokens = fmt_tokens(
            int(a.get(sc.GEN_AI_USAGE_INPUT_TOKENS, 0)),
            int(a.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 0)),
            bool(a.get(sc.OTELITE_USAGE_ESTIMATED)),
        )
        text += f"<br/>{tokens}"
    return text.replace('"', "#quot;")


def cmd_graph(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        roots = store.trace_tree(args.trace_id)
    rows = _walk(roots)
    ids = {span.span_id: f"s{i + 1}" for i, (_, span) in enumerate(rows)}
    lines = ["flowchart TD"]
    for _, span in rows:
        node = ids[span.span_id]
        label = _mermaid_label(span)
        operation = span.attributes.get(sc.GEN_AI_OPERATION_NAME)
        if operation in _LLM_OPERATIONS:
            shape = f'{node}(["{label}"])'
        elif operation == sc.OP_EXECUTE_TOOL:
            shape = f'{node}{{{{"{label}"}}}}'
        else:
            shape = f'{node}["{label}"]'
        lines.append(f"    {shape}")
        if span.status_code == "ERROR":
            lines.append(f"    style {node} stroke:#d33,stroke-width:2px")
    for _, span in rows:
        if span.parent_span_id in ids:
            lines.append(f"    {ids[span.parent_span_id]} --> {ids[span.span_id]}")
    text = "\n".join(lines) + "\n"
    if args.json:
        print_json({"mermaid": text})
    else:
        print(text, end="")
    return 0


def add_parser(commands: Any) -> None:
    """Register ``traces``, ``trace``, ``stats`` and ``graph``."""
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

    stats = commands.add_parser("stats", help="calls, errors, tokens, cost and latency by key")
    add_store_options(stats)
    stats.add_argument(
        "--by",
        default=None,
        help=f"comma-separated keys (default model; none with --scores): {', '.join(STATS_KEYS)}",
    )
    stats.add_argument(
        "--scores",
        action="store_true",
        help="aggregate scores (count, mean, pass rate) by name, and by --by keys of the scored spans",
    )
    stats.add_argument("--since", help="only calls newer than this (30m, 24h, 7d)")
    stats.add_argument("--where", action="append", help="KEY=VALUE filter (repeatable)")
    stats.add_argument("--csv", action="store_true", help="CSV output")
    stats.set_defaults(handler=cmd_stats)

    graph = commands.add_parser("graph", help="a trace as a Mermaid flowchart")
    add_store_options(graph)
    graph.add_argument("trace_id")
    graph.set_defaults(handler=cmd_graph)
