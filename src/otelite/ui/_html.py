"""HTML building blocks of the web view: escaping, the page frame, tables, SVG charts.

Everything shown comes from the store, the prompt registry or run files: user data. It
goes through :func:`esc` (text and attribute values) or :func:`url` (query strings),
never into the page as is.
"""

from __future__ import annotations

import datetime
import html
from collections.abc import Mapping, Sequence
from typing import Any, Optional
from urllib.parse import quote, urlencode

from otelite._pricing import fmt_money


def esc(value: Any) -> str:
    """``value`` as text safe inside an element or a quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def url(path: str, params: Optional[Mapping[str, Any]] = None) -> str:
    """``path?k=v`` with the empty and ``None`` values left out, escaped for an attribute."""
    kept = {k: v for k, v in (params or {}).items() if v not in (None, "")}
    return esc(quote(path, safe="/") + ("?" + urlencode(kept) if kept else ""))


def money(cost: Optional[float], unpriced: int = 0) -> str:
    """A cost as the CLI shows it: ``unknown`` (none priced), ``+`` (some unpriced), ``-``."""
    if cost is None:
        return "unknown" if unpriced else "-"
    return fmt_money(cost) + ("+" if unpriced else "")


def ms(value_ns: float) -> str:
    """A duration in nanoseconds as ``12.3ms`` or ``1.25s``."""
    value = value_ns / 1e6
    return f"{value:.1f}ms" if value < 1000 else f"{value / 1000:.2f}s"


def utc(ns: int) -> str:
    """A time as ``2026-01-01 00:00:00`` (UTC)."""
    return datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S"
    )


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#fafbfc}
header{background:#1d2330;color:#fff;padding:8px 16px;display:flex;gap:18px;align-items:center}
header a{color:#cfe0ff;text-decoration:none}header b{color:#fff;margin-right:12px}
main{padding:12px 16px}h1{font-size:20px;margin:4px 0 12px}h2{font-size:16px;margin:18px 0 8px}
table{border-collapse:collapse;background:#fff}td,th{padding:3px 8px;border-bottom:1px solid #e3e6eb;
text-align:left;vertical-align:top}th{background:#f0f2f5}td.n,th.n{text-align:right}
.err{color:#b3261e;font-weight:600}.dim{color:#6b7280}.note{color:#6b7280;font-size:12px}
form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:end;margin-bottom:10px}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#444}
form.filters input,form.filters select{width:120px}
.wf{width:100%}.wf td.name{white-space:nowrap}.track{position:relative;height:14px;min-width:300px;
background:#f0f2f5}.bar{position:absolute;top:2px;height:10px;background:#3b82f6;min-width:1px}
.bar.error{background:#dc2626}tr.error td.name{color:#b3261e}
.details{font-size:12px;color:#374151}.msg{border-left:3px solid #cbd5e1;margin:4px 0 4px 12px;
padding:2px 8px;background:#fff;white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:12px}
.msg .role{font-weight:600;color:#1e40af}.msg.tool .role{color:#047857}
pre.diff{background:#fff;border:1px solid #e3e6eb;padding:8px;overflow:auto}
.add{background:#e6ffec}.del{background:#ffebe9}.hunk{color:#6b7280}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{background:#fff;border:1px solid #e3e6eb;padding:6px}
.chart h3{font-size:13px;margin:0 0 4px}.pager a{margin-right:10px}.nw,td.n{white-space:nowrap}
"""


def page(title: str, body: str, *, nav: str = "") -> str:
    """A whole HTML document: the navigation bar, ``title`` and ``body`` (already escaped)."""
    links = [
        ("/traces", "Traces"),
        ("/stats", "Stats"),
        ("/prompts", "Prompts"),
        ("/evals", "Evaluations"),
    ]
    menu = "".join(
        f'<a href="{href}"{" aria-current=page" if href == nav else ""}>{label}</a>'
        for href, label in links
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f'<link rel=icon href="data:,"><title>{esc(title)} · otelite</title><style>{_CSS}</style></head>'
        f"<body><header><b>otelite</b>{menu}</header><main><h1>{esc(title)}</h1>{body}</main></body></html>"
    )


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()
) -> str:
    """A table from escaped cells; ``numeric`` columns are right-aligned."""
    head = "".join(
        f"<th{' class=n' if i in numeric else ''}>{h}</th>" for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if i in numeric else ''}>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[Optional[float]], str]],
    fmt: Any = str,
    *,
    width: int = 460,
    height: int = 150,
) -> str:
    """An inline SVG chart: bars for the first series, lines for the others (``(name, values, colour)``)."""
    pad_left, pad_bottom = 60, 18
    inner_w, inner_h = width - pad_left - 6, height - pad_bottom - 8
    values = [v for _, vals, _ in series for v in vals if v is not None]
    top = max(values) if values else 0.0
    top = top if top > 0 else 1.0
    n = max(len(labels), 1)
    step = inner_w / n
    parts = [
        f'<svg class=chart-svg role=img aria-label="{esc(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{pad_left}" y1="{8 + inner_h}" x2="{width - 6}" y2="{8 + inner_h}" stroke="#9ca3af"/>',
        f'<text x="{pad_left - 4}" y="14" font-size="10" text-anchor="end">{esc(fmt(top))}</text>',
        f'<text x="{pad_left - 4}" y="{8 + inner_h}" font-size="10" text-anchor="end">0</text>',
    ]
    for index, (_name, vals, colour) in enumerate(series):
        points = []
        for i, value in enumerate(vals):
            if value is None:
                continue
            h = value / top * inner_h
            x = pad_left + i * step
            if index == 0:
                parts.append(
                    f'<rect x="{x + step * 0.1:.1f}" y="{8 + inner_h - h:.1f}" width="{max(step * 0.8, 1):.1f}" '
                    f'height="{h:.1f}" fill="{colour}"><title>{esc(labels[i])}: {esc(fmt(value))}</title></rect>'
                )
            else:
                points.append(f"{x + step / 2:.1f},{8 + inner_h - h:.1f}")
                parts.append(
                    f'<circle cx="{x + step / 2:.1f}" cy="{8 + inner_h - h:.1f}" r="3" fill="{colour}">'
                    f"<title>{esc(labels[i])}: {esc(fmt(value))}</title></circle>"
                )
        if points:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(points)}"/>'
            )
    if labels:
        parts.append(
            f'<text x="{pad_left}" y="{height - 4}" font-size="10">{esc(labels[0])}</text>'
        )
        parts.append(
            f'<text x="{width - 6}" y="{height - 4}" font-size="10" text-anchor="end">{esc(labels[-1])}</text>'
        )
    parts.append("</svg>")
    legend = " ".join(
        f'<span style="color:{colour}">■ {esc(name)}</span>' for name, _, colour in series
    )
    return f"<div class=chart><h3>{esc(title)}</h3>{''.join(parts)}<div class=note>{legend}</div></div>"
