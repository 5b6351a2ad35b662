"""``otelite stats``: calls, errors, tokens, cost and latency by key (or scores, ``--scores``).

Takes ``--store``, ``--json`` and ``--csv``. Exit codes: 0 done, 1 nothing matched, 2 bad
input or an unusable store.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Sequence
from typing import Any, Optional

from otelite.cli._errors import UsageError
from otelite.cli._format import (
    UNPRICED_NOTE,
    Column,
    Style,
    cut,
    fmt_cost,
    fmt_count,
    fmt_duration_ns,
    hidden_note,
    print_json,
    render_table,
    terminal_width,
)
from otelite.cli._options import add_store_options, open_store, since_start_ns
from otelite.cli._prompt_ref import where_prompt
from otelite.store import STATS_KEYS, StatsRow


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


def add_parser(commands: Any) -> None:
    """Register ``stats``."""
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
