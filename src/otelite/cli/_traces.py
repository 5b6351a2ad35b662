"""The store commands of the ``otelite`` CLI: traces, trace, stats, graph, export, prune.

Text output fits the terminal's width (``COLUMNS``, else 80 when not a terminal) and
uses colour only on a terminal (and never with ``NO_COLOR``); every command takes ``--json``. Exit codes: 0 done, 1 nothing
matched, 2 bad input or an unusable store.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import os
import re
import shutil
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from otelite import _semconv as sc
from otelite._exceptions import OteliteError, StoreError
from otelite._plural import plural
from otelite._pricing import fmt_money
from otelite.datasets import (
    SKIP_FILTERED,
    SKIP_LOW_SCORE,
    SKIP_NO_CONTENT,
    describe_skipped,
    explain_empty,
    finetune_records,
    write_jsonl,
)
from otelite.store import STATS_KEYS, LocalStore, SpanNode, StatsRow, StoredSpan, TraceSummary

WIDTH = 80
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$", re.IGNORECASE)
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZES = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


class UsageError(OteliteError):
    """A command-line argument is invalid (exit code 2)."""


def parse_duration(text: str, argument: str) -> float:
    """``30m``, ``24h``, ``7d`` -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise UsageError(f"{argument}: {text!r} is not a duration; write e.g. 30m, 24h or 7d")
    return float(match.group(1)) * _UNITS_S[match.group(2)]


def parse_size(text: str, argument: str) -> int:
    """``500MB``, ``1GB``, ``2GiB`` -> bytes."""
    match = _SIZE.match(text.strip())
    if not match:
        raise UsageError(f"{argument}: {text!r} is not a size; write e.g. 500MB or 1GB")
    return int(float(match.group(1)) * _SIZES[(match.group(2) or "b").lower()])


def _since_ns(args: argparse.Namespace) -> Optional[int]:
    since = getattr(args, "since", None)
    if not since:
        return None
    return time.time_ns() - int(parse_duration(since, "--since") * 1e9)


def _open(args: argparse.Namespace) -> LocalStore:
    return LocalStore(args.store or os.environ.get("OTELITE_HOME") or None)


# --- formatting -------------------------------------------------------------------------


class Style:
    """ANSI colour when writing to a terminal, plain text otherwise."""

    def __init__(self, stream: Any) -> None:
        self.on = bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get(
            "NO_COLOR"
        )

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.on else text

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def bold(self, text: str) -> str:
        return self._wrap("1", text)


def fmt_duration_ns(ns: float) -> str:
    ms = ns / 1e6
    if ms < 1000:
        return f"{ms:.1f}ms"
    return f"{ms / 1000:.2f}s"


def fmt_cost(cost: Optional[float], unpriced: int = 0) -> str:
    """A cost: ``unknown`` when no call was priced, a trailing ``+`` when only some were
    (the figure is a lower bound), ``-`` when there was nothing to price."""
    if cost is None:
        return "unknown" if unpriced else "-"
    return fmt_money(cost) + ("+" if unpriced else "")


_UNPRICED_NOTE = "cost: 'unknown' = no call priced; '+' = some calls have no price (not counted)"


def cost_summary(cost: Optional[float], unpriced: int) -> str:
    """A total in words: ``$0.00003``, ``$0.00003 + 2 unpriced LLM calls``, ``unknown (...)``."""
    calls = f"{unpriced} LLM call{'s' if unpriced != 1 else ''}"
    if cost is None:
        return f"unknown ({calls} without a price)" if unpriced else "-"
    text = fmt_cost(cost)
    return f"{text} + {calls} unpriced" if unpriced else text


def fmt_tokens(tokens_in: int, tokens_out: int, estimated: bool = False) -> str:
    """``48 in + 16 out tokens``, with ``(est.)`` when the counts are estimates."""
    text = f"{tokens_in} in + {tokens_out} out tokens"
    return text + " (est.)" if estimated else text


def fmt_count(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e4:
        return f"{n / 1e3:.0f}k"
    return str(int(n))


def fmt_time(ns: int) -> str:
    return datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc).strftime(
        "%m-%d %H:%M:%S"
    )


def cut(text: str, width: int) -> str:
    """``text`` fitted to ``width`` characters (an ellipsis marks a cut)."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def terminal_width() -> int:
    """The terminal's width in columns (``COLUMNS`` wins; 80 when not a terminal)."""
    return max(shutil.get_terminal_size((WIDTH, 24)).columns, 20)


@dataclass
class Column:
    """One column of a text table.

    ``flex`` columns share the room the others leave (the widest is cut first, down
    to ``min_width``); ``drop`` columns (lowest first) are left out when even that
    does not fit the width.
    """

    header: str
    align: str = "<"
    flex: bool = False
    min_width: int = 6
    max_width: Optional[int] = None
    drop: Optional[int] = None


def layout(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int
) -> tuple[list[int], list[int]]:
    """The indices of the columns shown and their widths, fitting ``width`` if possible."""
    natural = []
    for i, column in enumerate(columns):
        size = max([len(column.header), *(len(row[i]) for row in rows)])
        natural.append(min(size, column.max_width) if column.max_width else size)
    shown = list(range(len(columns)))

    droppable = sorted((c.drop, i) for i, c in enumerate(columns) if c.drop is not None)
    natural_total = sum(natural[i] for i in shown) + len(shown) - 1
    for _, index in droppable:
        if natural_total <= width:
            break
        shown.remove(index)
        natural_total = sum(natural[i] for i in shown) + len(shown) - 1
    widths = {i: natural[i] for i in shown}
    flex = [i for i in shown if columns[i].flex]
    excess = sum(widths.values()) + len(shown) - 1 - width
    while excess > 0:
        shrinkable = [i for i in flex if widths[i] > min(natural[i], columns[i].min_width)]
        if not shrinkable:
            break  # still too wide: render_table cuts each line
        widths[max(shrinkable, key=lambda i: widths[i])] -= 1
        excess -= 1
    return shown, [widths[i] for i in shown]


def render_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int,
    style: Style,
    paint: Optional[Callable[[int, int, str], str]] = None,
) -> tuple[list[str], list[str]]:
    """The header and row lines of a table, each at most ``width`` characters, and the
    headers of the columns left out. ``paint(row, column, text)`` colours a cell."""
    shown, widths = layout(columns, rows, width)

    def line(cells: Sequence[str], row: Optional[int]) -> str:
        plain, painted = [], []
        for i, w in zip(shown, widths):
            text = f"{cut(cells[i], w):{columns[i].align}{w}}"
            plain.append(text)
            painted.append(paint(row, i, text) if paint and row is not None else text)
        text = " ".join(plain).rstrip()
        if len(text) > width:
            return cut(text, width)  # too narrow even for the fixed columns: no colour
        return " ".join(painted).rstrip() if paint and row is not None else text

    header = style.bold(line([c.header for c in columns], None))
    lines = [header, *(line(cells, n) for n, cells in enumerate(rows))]
    hidden = [columns[i].header for i in range(len(columns)) if i not in shown]
    return lines, hidden


def _hidden_note(hidden: Sequence[str]) -> str:
    return f"\n{', '.join(hidden)} left out at this width (widen the terminal, or use --json)"


def _pack(items: Sequence[str], width: int, sep: str = "  ") -> list[str]:
    """``items`` joined by ``sep`` on as few lines of at most ``width`` as they fit."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + len(sep) + len(item) <= width:
            lines[-1] += sep + item
        else:
            lines.append(cut(item, width))
    return lines


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


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
    with _open(args) as store:
        traces = store.traces(
            limit=args.limit,
            since_ns=_since_ns(args),
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
        _print_json([_trace_dict(t) for t in traces])
        return 0 if traces else 1
    if not traces:
        print("no traces match; widen the filters or run your app with otelite.configure()")
        return 1
    with _open(args) as store:
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
        footer += f"\n{_UNPRICED_NOTE}"
    print(style.dim("\n".join(cut(line, width) for line in footer.splitlines())))
    return 0


# --- one trace -----------------------------------------------------------------------------

_CONTENT_KEYS = (
    sc.GEN_AI_SYSTEM_INSTRUCTIONS,
    sc.GEN_AI_INPUT_MESSAGES,
    sc.GEN_AI_OUTPUT_MESSAGES,
    sc.OTELITE_INPUT,
    sc.OTELITE_OUTPUT,
    sc.GEN_AI_TOOL_CALL_ARGUMENTS,
    sc.GEN_AI_TOOL_CALL_RESULT,
)


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


_CONTENT_LABELS = {
    sc.OTELITE_INPUT: "input",
    sc.OTELITE_OUTPUT: "output",
    sc.GEN_AI_TOOL_CALL_ARGUMENTS: "arguments",
    sc.GEN_AI_TOOL_CALL_RESULT: "result",
}
_CONTENT_OPERATIONS = (sc.OP_CHAT, sc.OP_TEXT_COMPLETION, sc.OP_EXECUTE_TOOL)
_CONTENT_OFF = (
    "content not captured (capture was off: configure(capture_content=True) "
    "or OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true)"
)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _cut_chars(text: str, max_chars: Optional[int]) -> str:
    if max_chars is None or len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}… ({len(text) - max_chars} more characters)"


def _part_text(part: Any, max_chars: Optional[int]) -> str:
    """One message part (GenAI semantic conventions) as text, its content cut to ``max_chars``."""
    if not isinstance(part, dict):
        return _cut_chars(_as_text(part), max_chars)

    def content(key: str) -> str:
        value = part.get(key)
        return "" if value is None else _cut_chars(_as_text(value), max_chars)

    kind = part.get("type")
    if kind == "text":
        return content("content")
    if kind == "reasoning":
        return f"(reasoning) {content('content')}"
    if kind == "tool_call":
        return f"calls tool {part.get('name')}({content('arguments')}) [id {part.get('id')}]"
    if kind == "tool_call_response":
        return f"result of [id {part.get('id')}]: {content('response')}"
    if kind in ("blob", "uri", "file"):
        what = " ".join(str(part[k]) for k in ("modality", "mime_type") if part.get(k))
        where = {
            "blob": f"{len(str(part.get('content', '')))} base64 characters",
            "uri": str(part.get("uri")),
            "file": f"file id {part.get('file_id')}",
        }[kind]
        return f"[{what or kind}] {where}"
    return _cut_chars(json.dumps(part, ensure_ascii=False), max_chars)


def _messages(key: str, value: Any, max_chars: Optional[int]) -> list[tuple[str, list[str]]]:
    """``(label, texts)`` per message of a captured attribute; raw text when not JSON."""
    label = _CONTENT_LABELS.get(key)
    if label is not None:
        return [(label, [_cut_chars(_as_text(value), max_chars)])]
    try:
        data = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        data = None
    if key == sc.GEN_AI_SYSTEM_INSTRUCTIONS and isinstance(data, list):
        return [("system", [_part_text(p, max_chars) for p in data])]
    if isinstance(data, list) and all(isinstance(m, dict) for m in data):
        out = []
        for message in data:
            role = str(message.get("role", "?"))
            if message.get("finish_reason"):
                role += f" ({message['finish_reason']})"
            parts = message.get("parts")
            texts = [_part_text(p, max_chars) for p in parts] if isinstance(parts, list) else []
            out.append((role, texts or [""]))
        return out
    return [(key, [_cut_chars(_as_text(value), max_chars)])]


def _wrap(label: str, text: str, indent: str, width: int) -> list[str]:
    """``label: text`` wrapped to ``width``; continuation lines line up after the label."""
    first = f"{indent}{label}: "
    rest = " " * len(first)
    lines: list[str] = []
    for n, paragraph in enumerate(text.split("\n") or [""]):
        lead = first if n == 0 else rest
        wrapped = textwrap.wrap(
            paragraph,
            width=max(width, len(lead) + 8),
            initial_indent=lead,
            subsequent_indent=rest,
            break_long_words=True,
            break_on_hyphens=False,
            drop_whitespace=True,
        )
        lines.extend(wrapped or [lead.rstrip()])
    return lines


def _content_lines(
    span: StoredSpan, indent: str, width: int, max_chars: Optional[int]
) -> list[str]:
    """The captured content of a span as role-labelled, wrapped text."""
    lines: list[str] = []
    for key in _CONTENT_KEYS:
        if key not in span.attributes:
            continue
        for label, texts in _messages(key, span.attributes[key], max_chars):
            for n, text in enumerate(texts):
                shown = _wrap(label, text, indent, width)
                if n:  # further parts of one message: under the first, without the label
                    pad = " " * (len(label) + 2)
                    blank = " " * (len(indent) + len(pad))
                    shown = [blank + line[len(blank) :] for line in shown]
                lines.extend(shown)
    if not lines and span.attributes.get(sc.GEN_AI_OPERATION_NAME) in _CONTENT_OPERATIONS:
        lines.extend(
            textwrap.wrap(
                _CONTENT_OFF,
                width=max(width, len(indent) + 8),
                initial_indent=indent,
                subsequent_indent=" " * len(indent),
            )
        )
    return lines


def cmd_trace(args: argparse.Namespace) -> int:
    with _open(args) as store:
        roots = store.trace_tree(args.trace_id)
    rows = _walk(roots)
    spans = [span for _, span in rows]
    start = min(s.start_time_ns for s in spans)
    end = max(s.end_time_ns for s in spans)
    if args.json:
        _print_json(
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
        [one_line] if len(one_line) <= width else _pack(facts[:2], width) + _pack(facts[2:], width)
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
            for line in _content_lines(span, indent, width, args.max_chars):
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
        _print_json(data)
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
    with _open(args) as store:
        rows = store.score_stats(keys, since_ns=_since_ns(args), where=_parse_where(args.where))
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
    if args.scores:
        return cmd_score_stats(args)
    keys = [k.strip() for k in (args.by or "model").split(",") if k.strip()]
    unknown = [k for k in keys if k not in STATS_KEYS]
    if unknown or not keys:
        raise UsageError(
            f"--by: unknown key {unknown[0] if unknown else '(none)'!r}; valid keys: {', '.join(STATS_KEYS)}"
        )
    with _open(args) as store:
        rows = store.stats(keys, since_ns=_since_ns(args), where=_parse_where(args.where))
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
            f"; {unpriced} without a price (add them with configure(prices=...))\n{_UNPRICED_NOTE}"
        )
    if hidden:
        footer += _hidden_note(hidden)
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
    with _open(args) as store:
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
        _print_json({"mermaid": text})
    else:
        print(text, end="")
    return 0


# --- export -------------------------------------------------------------------------------


def _parse_min_score(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name.strip():
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise UsageError(
            f"--min-score {text!r}: write NAME=VALUE, e.g. --min-score correctness=1"
        ) from None


def _llm_calls(store: LocalStore, since_ns: Optional[int], where: dict[str, str]) -> int:
    return sum(row.calls for row in store.stats(["operation"], since_ns=since_ns, where=where))


def cmd_export_finetune(args: argparse.Namespace) -> int:
    from otelite.cli import resolve_prompt_ref

    out = Path(args.out)
    thresholds = [_parse_min_score(text) for text in args.min_score or ()]
    since_ns = _since_ns(args)
    prompt = resolve_prompt_ref(args.prompt, "--prompt", args.prompts_dir) if args.prompt else None
    # (option as shown, option name, key of FinetuneResult.removed), in the order they apply
    filters = [
        (f"--prompt {prompt.describe()}" if prompt else "", "--prompt", "prompt"),
        (f"--label {args.label}", "--label", "label"),
        (f"--tag {','.join(args.tag or ())}", "--tag", "tags"),
        ("--min-score " + ",".join(args.min_score or ()), "--min-score", "keep"),
    ]
    removed: dict[str, int] = {}
    shown: list[str] = []
    with _open(args) as store:
        keep = None
        if thresholds:
            lookups = [(name, limit, store.min_scores(name)) for name, limit in thresholds]

            def keep(span: Any) -> bool:
                # The call's own score counts; else the lowest score anywhere in its trace.
                for _, limit, (by_span, by_trace) in lookups:
                    found = by_span.get((span.trace_id, span.span_id))
                    if found is None:
                        found = by_trace.get(span.trace_id)
                    if found is None or found < limit:
                        return False
                return True

        result = finetune_records(
            store.llm_spans(model=args.model, since_ns=since_ns),
            prompt=prompt.spec if prompt else None,
            label=args.label,
            tags=args.tag or (),
            keep=keep,
        )
        total = result.seen
        if not result.records and (since_ns is not None or args.model):
            # The store filters these two; count what each left out for the report.
            total = _llm_calls(store, None, {})
            after_since = _llm_calls(store, since_ns, {}) if since_ns is not None else total
            for option, option_name, before, after in (
                (f"--since {args.since}", "--since", total, after_since),
                (f"--model {args.model}", "--model", after_since, result.seen),
            ):
                if before - after:
                    removed[option_name] = before - after
                    shown.append(f"{option} removed {before - after}")
    for option, option_name, key in filters:
        if result.removed[key]:
            removed[option_name] = result.removed[key]
            shown.append(f"{option} removed {result.removed[key]}")
    skips = [
        describe_skipped(why, n)
        for why, n in sorted(result.skipped.items())
        if why not in (SKIP_FILTERED, SKIP_LOW_SCORE)
    ]
    summary = {
        "written": len(result.records),
        "out": str(out),
        "skipped": dict(result.skipped),
        "removed_by": removed,
    }
    if not result.records:
        if total == 0 or (not shown and set(result.skipped) == {SKIP_NO_CONTENT}):
            reason = explain_empty(result)  # an empty store, or nothing was captured
        else:
            reason = f"0 of {plural(total, 'LLM call')} kept: {', '.join(shown + skips)}"
        if args.json:
            _print_json({**summary, "written": 0, "reason": reason})
        else:
            print(f"nothing written: {reason}", file=sys.stderr)
        return 1
    write_jsonl(out, result.records)
    if args.json:
        _print_json(summary)
    else:
        notes = "; ".join(shown + ([f"skipped: {', '.join(skips)}"] if skips else []))
        print(
            f"wrote {plural(len(result.records), 'example')} to {out}"
            + (f" ({notes})" if notes else "")
        )
    return 0


def _to_readable(span: StoredSpan) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    def context(trace_id: str, span_id: str) -> SpanContext:
        return SpanContext(
            int(trace_id, 16), int(span_id, 16), is_remote=False, trace_flags=TraceFlags(1)
        )

    def attrs(values: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in values.items() if v is not None}

    return ReadableSpan(
        name=span.name,
        context=context(span.trace_id, span.span_id),
        parent=context(span.trace_id, span.parent_span_id) if span.parent_span_id else None,
        resource=Resource(attrs(span.resource)),
        attributes=attrs(span.attributes),
        events=[
            Event(e["name"], attrs(e.get("attributes") or {}), e.get("time_ns"))
            for e in span.events
        ],
        kind=SpanKind[span.kind],
        status=Status(StatusCode[span.status_code], span.status_message),
        start_time=span.start_time_ns,
        end_time=span.end_time_ns,
        instrumentation_scope=InstrumentationScope(span.scope_name or "otelite"),
    )


def _otlp_headers(args: argparse.Namespace) -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_HEADERS`` with ``--headers`` added (winning on a shared name), each
    validated like ``configure(headers=)``: a line break or control character is refused, and
    the message names the option or variable, never the value."""
    from otelite import _env
    from otelite._config import _parse_headers

    raw = _env.OTEL_EXPORTER_OTLP_HEADERS.read()
    headers = dict(_parse_headers(_env.OTEL_EXPORTER_OTLP_HEADERS.name, raw)) if raw else {}
    if args.headers is not None:
        headers.update(_parse_headers("--headers", args.headers))
    return headers


def _otlp_traces(store: LocalStore, args: argparse.Namespace) -> Optional[list[str]]:
    """The trace ids ``--trace`` / ``--since`` select (oldest first), or None for the whole store.

    ``--since`` keeps a trace when any of its spans started in the window (as ``otelite traces``
    does) and sends it whole, so that no trace arrives without its root."""
    since = _since_ns(args)
    named = [store.resolve_trace_id(prefix) for prefix in args.trace or ()]
    if since is None:
        return list(dict.fromkeys(named)) if named else None
    recent = [t.trace_id for t in reversed(store.traces(limit=2**62, since_ns=since))]
    if not named:
        return recent
    wanted = set(named)
    return [trace_id for trace_id in recent if trace_id in wanted]


def cmd_export_otlp(args: argparse.Namespace) -> int:
    from opentelemetry.sdk.trace.export import SpanExportResult

    from otelite import _export

    protocol = args.protocol
    url = args.endpoint if protocol == "grpc" else args.endpoint.rstrip("/") + "/v1/traces"
    if not re.match(r"^https?://[^/]+", args.endpoint):
        raise UsageError(
            f"--endpoint: {args.endpoint!r} is not a URL; write e.g. http://localhost:4318"
        )
    headers = _otlp_headers(args)
    with _open(args) as store:
        selected = _otlp_traces(store, args)
        if selected is not None and not selected:
            which = "none of the --trace traces has" if args.trace else "no trace has"
            print(
                f"otelite: nothing to send: {which} a span newer than --since {args.since}",
                file=sys.stderr,
            )
            return 1
        exporter = _export.otlp_span_exporter(url, protocol, headers)
        if selected is None:
            total = store.count()
            batches = store.iter_spans(batch=args.batch)
        else:
            traces = [store.spans(trace_id) for trace_id in selected]
            flat = [span for spans in traces for span in spans]
            total = len(flat)
            batches = iter([flat[i : i + args.batch] for i in range(0, total, args.batch)])
        sent = 0
        for batch in batches:
            if exporter.export([_to_readable(s) for s in batch]) is not SpanExportResult.SUCCESS:
                print(
                    f"otelite: the endpoint refused a batch after {plural(sent, 'span')}; "
                    "nothing more sent",
                    file=sys.stderr,
                )
                exporter.shutdown()
                return 2
            sent += len(batch)
            if sys.stderr.isatty():
                print(f"\rsent {sent}/{plural(total, 'span')}", end="", file=sys.stderr)
    exporter.shutdown()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if args.json:
        result: dict[str, Any] = {"sent": sent, "endpoint": url}
        if selected is not None:
            result = {"sent": sent, "traces": len(selected), "endpoint": url}
        _print_json(result)
    else:
        what = plural(sent, "span")
        if selected is not None:
            what += f" of {plural(len(selected), 'trace')}"
        print(f"sent {what} to {url} (span ids kept: re-sending is idempotent)")
    return 0


# --- prune ---------------------------------------------------------------------------------


def cmd_prune(args: argparse.Namespace) -> int:
    from otelite import _sqlite

    if not args.older_than and not args.max_size:
        raise UsageError("prune: give --older-than (e.g. 30d) and/or --max-size (e.g. 1GB)")
    path = _sqlite.resolve_store_path(args.store or os.environ.get("OTELITE_HOME") or None)
    LocalStore(path).close()  # refuses missing, corrupt and newer stores with a clear message
    before = path.stat().st_size
    deleted = 0
    if args.older_than:
        cutoff = time.time_ns() - int(parse_duration(args.older_than, "--older-than") * 1e9)
        deleted += _sqlite.prune_older_than(path, cutoff)
    if args.max_size:
        deleted += _sqlite.prune_to_size(path, parse_size(args.max_size, "--max-size"))
    after = path.stat().st_size
    if args.json:
        _print_json({"deleted_spans": deleted, "bytes_before": before, "bytes_after": after})
    else:
        print(
            f"deleted {plural(deleted, 'span')}; store {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB"
        )
    return 0


def add_commands(commands: Any) -> None:
    """Register the store commands on the CLI's subparsers."""

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--store", help="store directory or .db file (default $OTELITE_HOME or .otelite)"
        )
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    traces = commands.add_parser("traces", help="recent traces, one line each")
    common(traces)
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
    common(trace)
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
    common(stats)
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
    common(graph)
    graph.add_argument("trace_id")
    graph.set_defaults(handler=cmd_graph)

    export = commands.add_parser("export", help="export recorded data")
    targets = export.add_subparsers(dest="export_command", required=True)
    finetune = targets.add_parser("finetune", help="LLM calls as OpenAI chat fine-tuning JSONL")
    common(finetune)
    finetune.add_argument("out")
    finetune.add_argument("--model")
    finetune.add_argument(
        "--prompt",
        metavar="REF",
        help="only calls made with this prompt: NAME (any version), NAME@VERSION, or NAME:LABEL "
        "(the version the label points at in the registry)",
    )
    finetune.add_argument(
        "--prompts-dir",
        metavar="DIR",
        help="prompt registry for NAME:LABEL (default $OTELITE_PROMPTS_DIR or ./prompts)",
    )
    finetune.add_argument(
        "--label", help="only calls made while the prompt was fetched by this label"
    )
    finetune.add_argument(
        "--tag", action="append", help="only calls carrying this tag (repeatable)"
    )
    finetune.add_argument("--since", help="only calls newer than this (30m, 24h, 7d)")
    finetune.add_argument(
        "--min-score",
        action="append",
        metavar="NAME=VALUE",
        help="only calls scored at least VALUE on NAME (the call's own score, else its trace's "
        "lowest); unscored calls are left out (repeatable)",
    )
    finetune.set_defaults(handler=cmd_export_finetune)
    otlp = targets.add_parser("otlp", help="replay stored spans to an OTLP endpoint")
    common(otlp)
    otlp.add_argument("--endpoint", required=True, help="OTLP base URL, e.g. http://localhost:4318")
    otlp.add_argument("--protocol", choices=["http/protobuf", "grpc"], default="http/protobuf")
    otlp.add_argument("--batch", type=int, default=512)
    otlp.add_argument(
        "--since", help="only traces with a span newer than this (30m, 24h, 7d), sent whole"
    )
    otlp.add_argument(
        "--trace",
        action="append",
        metavar="ID",
        help="only this trace (an id prefix is enough; repeatable)",
    )
    otlp.add_argument(
        "--headers",
        help="request headers as key=value pairs, comma-separated, values URL-encoded, e.g. "
        "authorization=Bearer%%20TOKEN (added to $OTEL_EXPORTER_OTLP_HEADERS)",
    )
    otlp.set_defaults(handler=cmd_export_otlp)

    prune = commands.add_parser("prune", help="delete old spans, or shrink the store")
    common(prune)
    prune.add_argument("--older-than", help="delete spans older than this (e.g. 30d)")
    prune.add_argument(
        "--max-size", help="delete the oldest traces until the store fits (e.g. 1GB)"
    )
    prune.set_defaults(handler=cmd_prune)


def _where_prompt(item: str, args: argparse.Namespace) -> str:
    """``--where prompt=REF`` with REF in every form a prompt is named (NAME, NAME@VERSION,
    NAME:LABEL): a label becomes the version it points at; a bare NAME matches every version."""
    key, sep, value = item.partition("=")
    if not sep or key.strip() != "prompt":
        return item
    from otelite.cli import resolve_prompt_ref

    directory = getattr(args, "prompts_dir", None)
    return f"prompt={resolve_prompt_ref(value, '--where', directory, written=item).spec}"


def run(handler: Any, args: argparse.Namespace) -> int:
    """Run a store command, turning otelite's errors into a message and exit code 2."""
    try:
        if getattr(args, "where", None):
            args.where = [_where_prompt(item, args) for item in args.where]
        return int(handler(args))
    except (StoreError, UsageError, ValueError) as exc:
        print(f"otelite: {exc}", file=sys.stderr)
        return 2
