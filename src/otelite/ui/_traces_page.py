"""The trace list (``/traces``): filters, sorting and pages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Optional

from otelite.ui import _queries
from otelite.ui._html import esc, money, ms, page, table, url, utc
from otelite.ui._request import Params, Site

PAGE_SIZES = (1, 500)  # the trace list's smallest and largest page
DEFAULT_PAGE = 50


def traces(app: Site, params: Params) -> str:
    """/traces: the filtered, sorted list of traces, one page of it."""
    filters = _queries.TraceFilters(
        since_ns=params.time("since"),
        until_ns=params.time("until"),
        user=params.text("user"),
        session=params.text("session"),
        model=params.text("model"),
        prompt=params.text("prompt"),
        status=params.choice("status", ("OK", "ERROR")),
        traffic=params.choice("traffic", ("app", "evaluation")),
        min_cost=params.number("min_cost"),
        min_ms=params.number("min_ms"),
    )
    sort = params.choice("sort", tuple(_queries.SORTS), "start") or "start"
    order = params.choice("order", ("desc", "asc"), "desc")
    limit = params.integer("limit", DEFAULT_PAGE, *PAGE_SIZES)
    number = params.integer("page", 1, 1, 10**6)
    with app._store() as (_, conn):
        rows, more = _queries.trace_page(
            conn,
            filters,
            sort=sort,
            descending=order == "desc",
            limit=limit,
            offset=(number - 1) * limit,
        )
    current = params.raw()
    form = _filter_form(current)
    if not rows:
        if number > 1:
            hint = f"no traces on page {number}: the list ends before it"
        elif any(k for k in current if k not in ("sort", "order", "limit", "page")):
            hint = "no traces match these filters; widen them"
        else:
            hint = (
                "no traces yet: run your app with otelite.configure() (it records into this store)"
            )
        return page("Traces", form + f"<p class=dim>{esc(hint)}</p>", nav="/traces")

    def header(label: str, key: Optional[str], numeric: bool = False) -> str:
        if key is None:
            return label
        flip = "asc" if sort == key and order == "desc" else "desc"
        mark = (" ▼" if order == "desc" else " ▲") if sort == key else ""
        link = url("/traces", {**current, "sort": key, "order": flip, "page": None})
        return f'<a href="{link}">{label}{mark}</a>'

    table_rows = []
    for t in rows:
        mark = "*" if t.estimated_calls else ""
        error = t.status_code == "ERROR"
        table_rows.append(
            [
                f'<a class=trace-link href="{url("/trace/" + t.trace_id)}">{esc(t.trace_id[:12])}</a>',
                f"<span class=nw>{esc(utc(t.start_time_ns))}</span>",
                esc(t.root_name),
                esc(ms(t.duration_ns)),
                str(t.llm_calls),
                f"{t.input_tokens}{mark}" if t.llm_calls else "-",
                f"{t.output_tokens}{mark}" if t.llm_calls else "-",
                esc(money(t.cost_usd, t.unpriced_calls)),
                "<span class=err>ERROR</span>" if error else "OK",
                esc(t.service_name or "-"),
                esc(t.user_id or "-"),
            ]
        )
    headers = [
        "ID",
        header("Start (UTC)", "start"),
        "Root",
        header("Duration", "duration"),
        "LLM",
        header("In", "tokens"),
        "Out",
        header("Cost", "cost"),
        "Status",
        "Service",
        "User",
    ]
    pager = []
    if number > 1:
        pager.append(
            f'<a rel=prev href="{url("/traces", {**current, "page": number - 1})}">← newer</a>'
        )
    if more:
        pager.append(
            f'<a rel=next href="{url("/traces", {**current, "page": number + 1})}">older →</a>'
        )
    notes = []
    if any(t.estimated_calls for t in rows):
        notes.append("* tokens estimated: counted by otelite, the provider reported none")
    if any(t.unpriced_calls for t in rows):
        notes.append(
            "cost: 'unknown' = no call priced; '+' = some calls have no price (not counted)"
        )
    body = (
        form
        + table(headers, table_rows, numeric=(3, 4, 5, 6, 7))
        + f"<p class=pager>page {number} · {len(rows)} trace{'s' if len(rows) != 1 else ''} "
        + " ".join(pager)
        + "</p>"
        + "".join(f"<p class=note>{esc(n)}</p>" for n in notes)
    )
    return page("Traces", body, nav="/traces")


def _filter_form(current: Mapping[str, str]) -> str:
    def field(name: str, label: str, hint: str = "") -> str:
        return (
            f'<label>{esc(label)}<input name={name} value="{esc(current.get(name, ""))}" '
            f'placeholder="{esc(hint)}"></label>'
        )

    def select(name: str, label: str, choices: Sequence[str]) -> str:
        options = "".join(
            f'<option value="{esc(c)}"{" selected" if current.get(name) == c else ""}>{esc(c or "any")}</option>'
            for c in ("", *choices)
        )
        return f"<label>{esc(label)}<select name={name}>{options}</select></label>"

    hidden = "".join(
        f'<input type=hidden name={k} value="{esc(current[k])}">'
        for k in ("sort", "order", "limit")
        if k in current
    )
    return (
        "<form class=filters method=get action=/traces>"
        + field("since", "since", "24h, 7d, 2026-01-31")
        + field("until", "until", "2026-02-01")
        + field("user", "user")
        + field("session", "session")
        + field("model", "model")
        + field("prompt", "prompt", "name or name@3")
        + select("status", "status", ("OK", "ERROR"))
        + select("traffic", "traffic", ("app", "evaluation"))
        + field("min_cost", "min cost (USD)", "0.01")
        + field("min_ms", "min duration (ms)", "500")
        + hidden
        + "<button>filter</button></form>"
    )
