"""The usage statistics (``/stats``): per-bucket charts and the table of ``otelite stats``."""

from __future__ import annotations

from collections.abc import Sequence

from otelite.store import STATS_KEYS, StatsRow
from otelite.ui import _queries
from otelite.ui._html import bar_chart, esc, money, ms, page, table
from otelite.ui._request import HTTPError, Params, Site


def stats(app: Site, params: Params) -> str:
    """/stats: per-bucket charts and the table of ``otelite stats --by``."""
    by_text = params.text("by") or "model"
    keys = [k.strip() for k in by_text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in STATS_KEYS]
    if unknown or not keys:
        raise HTTPError(
            400,
            f"by={by_text!r}: unknown key {unknown[0] if unknown else '(none)'!r}; "
            f"valid keys: {', '.join(STATS_KEYS)}",
        )
    since_text = params.text("since") or "24h"
    since_ns = params.time("since", "24h")
    bucket = (
        "hour" if since_ns is not None and app.clock() - since_ns <= 3 * 86400 * 10**9 else "day"
    )
    with app._store() as (_, conn):
        rows, series = _queries.stats_with_series(conn, keys, bucket, since_ns)
    form = (
        "<form class=filters method=get action=/stats>"
        f'<label>group by (comma-separated)<input name=by value="{esc(by_text)}" list=keys></label>'
        f'<label>since (24h, 7d, date, all)<input name=since value="{esc(since_text)}"></label>'
        "<datalist id=keys>"
        + "".join(f'<option value="{esc(k)}">' for k in STATS_KEYS)
        + "</datalist>"
        "<button>show</button></form>"
    )
    if not rows:
        hint = (
            f"no LLM calls since {since_text}; try since=all"
            if since_ns is not None
            else "no LLM calls recorded yet: instrument your client with otelite.instrument_openai()"
        )
        return page("Stats", form + f"<p class=dim>{esc(hint)}</p>", nav="/stats")
    labels = [str(r.key[0]) for r in series]
    charts = [
        bar_chart("LLM calls", labels, [("calls", [r.calls for r in series], "#3b82f6")], _count),
        bar_chart(
            "Cost (USD, priced calls)",
            labels,
            [("cost", [r.cost_usd for r in series], "#059669")],
            lambda v: money(v),
        ),
        bar_chart(
            "Tokens",
            labels,
            [
                (
                    "input + output",
                    [r.input_tokens + r.output_tokens for r in series],
                    "#8b5cf6",
                ),
                ("output", [r.output_tokens for r in series], "#f59e0b"),
            ],
            _count,
        ),
        bar_chart(
            "Latency",
            labels,
            [
                ("p95", [r.p95_ms * 1e6 for r in series], "#cbd5e1"),
                ("p50", [r.p50_ms * 1e6 for r in series], "#dc2626"),
            ],
            ms,
        ),
    ]
    body = [
        form,
        f"<h2>Per {bucket} (UTC)</h2><div class=charts>{''.join(charts)}</div>",
        f"<h2>By {esc(', '.join(keys))}</h2>",
        _stats_table(keys, rows),
        f"<p class=note>the numbers of: otelite stats --by {esc(','.join(keys))}"
        + (f" --since {esc(since_text)}" if since_ns is not None else "")
        + "</p>",
    ]
    return page("Stats", "".join(body), nav="/stats")


def _count(value: float) -> str:
    return (
        f"{value / 1e6:.1f}M"
        if value >= 1e6
        else f"{value / 1e3:.1f}k"
        if value >= 1e4
        else f"{value:.0f}"
    )


def _stats_table(keys: Sequence[str], rows: Sequence[StatsRow]) -> str:
    body = [
        [
            *(esc("-" if k is None else k) for k in row.key),
            str(row.calls),
            f"{row.error_rate * 100:.1f}",
            str(row.input_tokens),
            str(row.output_tokens),
            esc(money(row.cost_usd, row.unpriced)),
            esc(ms(row.p50_ms * 1e6)),
            esc(ms(row.p95_ms * 1e6)),
            esc(ms(row.p99_ms * 1e6)),
            f"{row.p50_ttfc_ms:.0f}ms" if row.p50_ttfc_ms is not None else "-",
            f"{row.estimated_share * 100:.0f}",
        ]
        for row in rows
    ]
    width = len(keys)
    headers = [
        *(esc(k) for k in keys),
        "Calls",
        "Err%",
        "In",
        "Out",
        "Cost",
        "p50",
        "p95",
        "p99",
        "TTFC",
        "Est%",
    ]
    return table(headers, body, numeric=tuple(range(width, width + 10)))
