"""The pages of the web view, as a function of a request path and its query parameters.

:class:`App` knows nothing of HTTP: ``handle(path, query)`` returns a status and an HTML
document, so that tests and the benchmark call it directly. Each request opens the store
afresh (read-only), so that a store pruned, replaced or written by another process while
the server runs is simply read as it now is.
"""

from __future__ import annotations

import datetime
import difflib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union
from urllib.parse import parse_qs, unquote

from otelite import _semconv as sc
from otelite._exceptions import StoreError, StoreSchemaError
from otelite.cli._content import _CONTENT_KEYS, _messages
from otelite.prompts._registry import _describe as describe_version
from otelite.store import STATS_KEYS, LocalStore, SpanNode, StatsRow, StoredSpan
from otelite.store import _schema as _sqlite
from otelite.ui import _queries
from otelite.ui._html import bar_chart, esc, money, ms, page, table, url, utc

PAGE_SIZES = (1, 500)  # the trace list's smallest and largest page
DEFAULT_PAGE = 50
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d|w)$")
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LLM_OPERATIONS = (sc.OP_CHAT, sc.OP_TEXT_COMPLETION, sc.OP_EMBEDDINGS, "generate_content")


_POOL = 4  # read connections kept between requests


@dataclass(frozen=True)
class _Opened:
    store: LocalStore
    conn: sqlite3.Connection
    identity: Optional[tuple[int, int, int]]

    def close(self) -> None:
        self.conn.close()
        self.store.close()


@dataclass(frozen=True)
class Response:
    """A page: HTTP status, HTML body, and a ``Location`` for redirects."""

    status: int
    body: str
    location: Optional[str] = None


class HTTPError(Exception):
    """A request the view answers with an error page (400 bad parameter, 404 unknown id, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Params:
    """The query parameters of one request, validated on reading (a bad one is a 400)."""

    def __init__(self, query: str, now_ns: int) -> None:
        try:
            self._values = {
                k: v[-1].strip()
                for k, v in parse_qs(query, keep_blank_values=True, strict_parsing=False).items()
            }
        except ValueError as exc:  # pragma: no cover - parse_qs is lenient
            raise HTTPError(400, f"cannot read the query string ({exc})") from None
        self.now_ns = now_ns

    def text(self, name: str) -> Optional[str]:
        """The parameter, ``None`` when absent or empty."""
        return self._values.get(name) or None

    def raw(self) -> dict[str, str]:
        """Every non-empty parameter."""
        return {k: v for k, v in self._values.items() if v}

    def choice(
        self, name: str, choices: Sequence[str], default: Optional[str] = None
    ) -> Optional[str]:
        value = self.text(name)
        if value is None:
            return default
        if value not in choices:
            raise HTTPError(400, f"{name}={value!r}: must be one of {', '.join(choices)}")
        return value

    def number(self, name: str, *, minimum: float = 0.0) -> Optional[float]:
        value = self.text(name)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            raise HTTPError(
                400, f"{name}={value!r}: not a number; write e.g. {name}=0.01"
            ) from None
        if not number >= minimum or number != number or number == float("inf"):
            raise HTTPError(400, f"{name}={value!r}: must be a number ≥ {minimum:g}")
        return number

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.text(name)
        if value is None:
            return default
        if not re.fullmatch(r"-?\d+", value) or not low <= int(value) <= high:
            raise HTTPError(400, f"{name}={value!r}: must be a whole number from {low} to {high}")
        return int(value)

    def time(self, name: str, default: Optional[str] = None) -> Optional[int]:
        """A time: a duration back from now (``24h``, ``7d``), a date or date-time (UTC), or ``all``."""
        value = self._values.get(name, default)
        if value is None or value in ("", "all"):
            return None
        match = _DURATION.match(value)
        if match:
            return self.now_ns - int(float(match.group(1)) * _UNITS_S[match.group(2)] * 1e9)
        try:
            when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise HTTPError(
                400,
                f"{name}={value!r}: not a time; write a duration back from now (30m, 24h, 7d), "
                "a UTC date (2026-01-31) or date-time (2026-01-31T12:00), or all",
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        return int(when.timestamp() * 1e9)


class App:
    """The read-only web view over one store, prompt registry and directory of run files.

    Args:
        store: the store directory or ``.db`` file (as ``otelite traces --store``).
        prompts_dir: the prompt registry (default ``$OTELITE_PROMPTS_DIR`` or ``./prompts``).
        runs_dir: where ``otelite eval --out`` files are kept (``*.jsonl``); ``None``: none.
        clock: nanoseconds since the epoch, for durations like ``24h`` (tests pin it).
    """

    def __init__(
        self,
        store: Union[str, os.PathLike[str], None] = None,
        *,
        prompts_dir: Union[str, os.PathLike[str], None] = None,
        runs_dir: Union[str, os.PathLike[str], None] = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store_path = _sqlite.resolve_store_path(store)
        self.prompts_dir = prompts_dir
        self.runs_dir = Path(runs_dir) if runs_dir is not None else None
        self.clock = clock
        self._lock = threading.Lock()
        self._idle: list[_Opened] = []

    # --- dispatch -------------------------------------------------------------------

    def handle(self, path: str, query: str = "") -> Response:
        """The page for ``path`` (without the query string) and ``query``."""
        routes: list[tuple[str, Callable[..., str]]] = [
            (r"/traces", self.traces),
            (r"/trace/([^/]+)", self.trace),
            (r"/stats", self.stats),
            (r"/prompts", self.prompts),
            (r"/prompts/([^/]+)", self.prompt),
            (r"/evals", self.evals),
            (r"/evals/run", self.eval_run),
            (r"/evals/compare", self.eval_compare),
        ]
        path = unquote(path)
        if path in ("", "/"):
            return Response(302, "", location="/traces")
        try:
            params = Params(query, self.clock())
            for pattern, view in routes:
                match = re.fullmatch(pattern, path)
                if match:
                    return Response(200, view(params, *match.groups()))
            raise HTTPError(404, f"no page at {path}; start at /traces")
        except HTTPError as exc:
            titles = {400: "Bad request", 404: "Not found", 503: "Store unavailable"}
            return Response(
                exc.status,
                page(titles.get(exc.status, "Error"), f"<p class=err>{esc(exc.message)}</p>"),
            )

    def _identity(self) -> Optional[tuple[int, int, int]]:
        """What tells the store file apart from one put in its place (or its absence)."""
        try:
            st = os.stat(self.store_path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_ctime_ns)

    def _open(self) -> _Opened:
        try:
            store = LocalStore(self.store_path)
        except StoreSchemaError as exc:
            raise HTTPError(503, str(exc)) from None
        except StoreError as exc:
            raise HTTPError(
                503, f"{exc}. Start the view with --store PATH to read another store."
            ) from None
        try:
            conn = _sqlite.open_for_reading(self.store_path)
        except StoreError as exc:
            store.close()
            raise HTTPError(503, str(exc)) from None
        return _Opened(store, conn, self._identity())

    @contextmanager
    def _store(self) -> Iterator[tuple[LocalStore, sqlite3.Connection]]:
        """The store, read-only, for one request; an unusable one is a clear 503 page.

        Connections are kept between requests (SQLite's page cache makes the next page
        several times faster) as long as the file is the same one: a store deleted,
        replaced or checkpointed since is opened afresh.
        """
        identity = self._identity()
        with self._lock:
            opened = self._idle.pop() if self._idle else None
        if opened is not None and (identity is None or opened.identity != identity):
            opened.close()
            opened = None
        if opened is None:
            opened = self._open()
        try:
            yield opened.store, opened.conn
        except (sqlite3.Error, StoreError) as exc:
            # Locked past the busy timeout, or pruned/replaced under a running query.
            opened.close()
            raise HTTPError(
                503, f"{self.store_path}: cannot read the store now ({exc}); reload the page"
            ) from None
        except BaseException:
            opened.close()
            raise
        with self._lock:
            if len(self._idle) < _POOL:
                self._idle.append(opened)
                return
        opened.close()

    def close(self) -> None:
        """Close the connections kept between requests."""
        with self._lock:
            idle, self._idle = self._idle, []
        for opened in idle:
            opened.close()

    # --- traces ---------------------------------------------------------------------

    def traces(self, params: Params) -> str:
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
        with self._store() as (_, conn):
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
                hint = "no traces yet: run your app with otelite.configure() (it records into this store)"
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

    # --- one trace -------------------------------------------------------------------

    def trace(self, params: Params, trace_id: str) -> str:
        if not re.fullmatch(r"[0-9a-fA-F]{1,32}", trace_id):
            raise HTTPError(404, f"trace {trace_id!r}: not a trace id (hexadecimal)")
        with self._store() as (store, _):
            try:
                roots = store.trace_tree(trace_id)
                full = roots[0].span.trace_id if roots else trace_id
                scores = store.scores(trace_id=full)
            except StoreError as exc:
                raise HTTPError(404, str(exc)) from None
        if not roots:
            raise HTTPError(404, f"trace {trace_id!r}: no such trace")
        rows = _walk(roots)
        spans = [s for _, s in rows]
        start = min(s.start_time_ns for s in spans)
        end = max(s.end_time_ns for s in spans)
        total = max(end - start, 1)
        scored: dict[str, list[Any]] = {}
        for item in scores:
            scored.setdefault(item.span_id, []).append(item)
        costs = [
            float(s.attributes[sc.GEN_AI_USAGE_COST])
            for s in spans
            if sc.GEN_AI_USAGE_COST in s.attributes
        ]
        unpriced = sum(1 for s in spans if s.attributes.get(sc.OTELITE_COST_UNPRICED))
        facts = [
            f"<b>{esc(full)}</b>",
            esc(spans[0].resource.get(sc.SERVICE_NAME, "")),
            esc(utc(start)) + " UTC",
            esc(ms(end - start)),
            f"{len(spans)} span{'s' if len(spans) != 1 else ''}",
        ]
        if costs or unpriced:
            facts.append("cost " + esc(money(sum(costs) if costs else None, unpriced)))
        body = [f"<p>{' · '.join(f for f in facts if f)}</p>", "<table class=wf><tbody>"]
        for depth, span in rows:
            error = span.status_code == "ERROR"
            left = (span.start_time_ns - start) / total * 100
            width = span.duration_ns / total * 100
            body.append(
                f'<tr class="span{" error" if error else ""}" id="span-{esc(span.span_id)}">'
                f'<td class=name style="padding-left:{8 + depth * 16}px">{esc(span.name)}</td>'
                f"<td class=n>{esc(ms(span.duration_ns))}</td>"
                f'<td><div class=track><div class="bar{" error" if error else ""}" '
                f'style="left:{left:.3f}%;width:{width:.3f}%" title="{esc(span.name)}"></div></div></td></tr>'
            )
            details = _span_details(span, scored.get(span.span_id, []))
            if details:
                body.append(
                    f'<tr class=detail><td colspan=3 style="padding-left:{24 + depth * 16}px">{details}</td></tr>'
                )
        body.append("</tbody></table>")
        if any(s.attributes.get(sc.OTELITE_USAGE_ESTIMATED) for s in spans):
            body.append(
                "<p class=note>(est.) tokens counted by otelite: the provider reported none</p>"
            )
        return page("Trace " + full[:12], "".join(body), nav="/traces")

    # --- stats ----------------------------------------------------------------------

    def stats(self, params: Params) -> str:
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
            "hour"
            if since_ns is not None and self.clock() - since_ns <= 3 * 86400 * 10**9
            else "day"
        )
        with self._store() as (_, conn):
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
            bar_chart(
                "LLM calls", labels, [("calls", [r.calls for r in series], "#3b82f6")], _count
            ),
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

    # --- prompts --------------------------------------------------------------------

    def _registry(self) -> Any:
        from otelite.prompts import PromptRegistry

        return PromptRegistry(self.prompts_dir)

    def prompts(self, params: Params) -> str:
        registry = self._registry()
        try:
            names = registry.list()
        except OSError as exc:
            raise HTTPError(
                503, f"{registry.path}: cannot read the prompt registry ({exc})"
            ) from None
        if not names:
            return page(
                "Prompts",
                f"<p class=dim>no prompts in {esc(registry.path)}; add one with: otelite prompts push NAME --file F "
                "(or start the view with --prompts-dir DIR)</p>",
                nav="/prompts",
            )
        rows = []
        for name in names:
            versions = _versions(registry, name)
            labels = {label: v.version for v in versions for label in v.labels}
            rows.append(
                [
                    f'<a href="{url("/prompts/" + name)}">{esc(name)}</a>',
                    f"v{versions[-1].version}" if versions else "-",
                    esc(", ".join(f"{k}=v{v}" for k, v in sorted(labels.items()))),
                    esc(versions[-1].created if versions else ""),
                ]
            )
        return page(
            "Prompts",
            f"<p class=dim>registry {esc(registry.path)}</p>"
            + table(["Name", "Latest", "Labels", "Updated"], rows),
            nav="/prompts",
        )

    def prompt(self, params: Params, name: str) -> str:
        from otelite.prompts import PromptError

        registry = self._registry()
        if name not in registry.list():
            raise HTTPError(404, f"prompt {name!r}: not in the registry {registry.path}")
        versions = _versions(registry, name)
        numbers = [v.version for v in versions]
        a = params.integer("a", numbers[-2] if len(numbers) > 1 else numbers[-1], 1, 10**9)
        b = params.integer("b", numbers[-1], 1, 10**9)
        for which, number in (("a", a), ("b", b)):
            if number not in numbers:
                raise HTTPError(
                    404,
                    f"{which}={number}: prompt {name!r} has versions {', '.join(map(str, numbers))}",
                )
        try:
            diff = _diff(registry, name, a, b)
            history = registry.history(name)
        except PromptError as exc:
            raise HTTPError(503, str(exc)) from None
        since_text = params.text("since") or "24h"
        since_ns = params.time("since", "24h")
        usage: dict[str, StatsRow] = {}
        means: dict[str, list[str]] = {}
        store_note = ""
        try:
            with self._store() as (store, _):
                where = {"prompt": name}
                usage = {
                    str(r.key[0]): r
                    for r in store.stats(["prompt"], since_ns=since_ns, where=where)
                }
                for row in store.score_stats(["prompt"], since_ns=since_ns, where=where):
                    if row.mean is not None:
                        means.setdefault(str(row.key[0]), []).append(f"{row.name} {row.mean:.3f}")
        except HTTPError as exc:
            store_note = f"<p class=note>calls not shown: {esc(exc.message)}</p>"
        rows = []
        for v in reversed(versions):
            stat = usage.get(f"{name}@{v.version}")
            rows.append(
                [
                    f"v{v.version}",
                    esc(", ".join(v.labels)),
                    esc(v.created),
                    esc(v.author),
                    esc(v.message),
                    str(stat.calls) if stat else "0",
                    esc(money(stat.cost_usd, stat.unpriced)) if stat else "-",
                    esc(ms(stat.p50_ms * 1e6)) if stat else "-",
                    esc(ms(stat.p95_ms * 1e6)) if stat else "-",
                    esc("; ".join(means.get(f"{name}@{v.version}", []))) or "-",
                    f'<a href="{url("/traces", {"prompt": f"{name}@{v.version}"})}">traces</a>',
                ]
            )

        def select(field: str, chosen: int) -> str:
            options = "".join(
                f'<option value="{n}"{" selected" if n == chosen else ""}>v{n}</option>'
                for n in numbers
            )
            return f"<label>{field}<select name={field}>{options}</select></label>"

        diff_lines = []
        for line in diff.splitlines():
            kind = (
                "add"
                if line.startswith("+") and not line.startswith("+++")
                else "del"
                if line.startswith("-") and not line.startswith("---")
                else "hunk"
                if line.startswith("@@")
                else ""
            )
            diff_lines.append(f'<span class="{kind}">{esc(line)}</span>' if kind else esc(line))
        history_rows = [
            [
                esc(e.get("time")),
                esc(e.get("author")),
                esc(e.get("action")),
                esc(e.get("label")),
                esc(f"v{e['from']}" if e.get("from") else "(none)"),
                esc(f"v{e.get('to')}"),
            ]
            for e in history
        ]
        body = [
            "<h2>Versions</h2>",
            f'<form class=filters method=get action="{url("/prompts/" + name)}">'
            f'<label>calls since (24h, 7d, date, all)<input name=since value="{esc(since_text)}"></label>'
            "<button>show</button></form>",
            table(
                [
                    "Version",
                    "Labels",
                    "Created",
                    "Author",
                    "Message",
                    "Calls",
                    "Cost",
                    "p50",
                    "p95",
                    "Mean scores",
                    "",
                ],
                rows,
                numeric=(5, 6, 7, 8),
            ),
            store_note,
            f'<h2>Diff</h2><form class=filters method=get action="{url("/prompts/" + name)}">'
            f"{select('a', a)}{select('b', b)}"
            f'<input type=hidden name=since value="{esc(since_text)}"><button>diff</button></form>',
            f"<pre class=diff>{chr(10).join(diff_lines) or esc(f'v{a} and v{b} are the same')}</pre>",
            "<h2>Label history</h2>",
            table(["Time", "Author", "Action", "Label", "From", "To"], history_rows)
            if history_rows
            else "<p class=dim>no label moves yet</p>",
        ]
        return page(f"Prompt {name}", "".join(body), nav="/prompts")

    # --- evaluations ----------------------------------------------------------------

    def _run_files(self) -> dict[str, Path]:
        if self.runs_dir is None or not self.runs_dir.is_dir():
            return {}
        files = sorted(self.runs_dir.glob("*.jsonl"), key=lambda p: (-p.stat().st_mtime, p.name))
        return {p.name: p for p in files[:200]}

    def _load_run(self, params: Params, key: str) -> Any:
        from otelite.evals import EvalRun

        name = params.text(key)
        if name is None:
            raise HTTPError(400, f"{key}: give a run file name (see /evals)")
        path = self._run_files().get(name)
        if path is None:
            raise HTTPError(404, f"{key}={name!r}: no such run file in {self.runs_dir}")
        try:
            return EvalRun.from_jsonl(path)
        except ValueError as exc:
            raise HTTPError(503, str(exc)) from None

    def evals(self, params: Params) -> str:
        body = ["<h2>Run files</h2>"]
        files = self._run_files()
        if files:
            rows = []
            for file_name, path in files.items():
                header = _run_header(path)
                summary = header.get("summary") or {}
                rates = summary.get("evaluators") or {}
                rows.append(
                    [
                        f'<a href="{url("/evals/run", {"file": file_name})}">{esc(file_name)}</a>',
                        esc(header.get("run", "")),
                        esc(summary.get("rows", "")),
                        esc(summary.get("task_errors", "")),
                        esc(
                            "; ".join(
                                f"{k} {_rate(v.get('pass_rate'))}"
                                for k, v in rates.items()
                                if isinstance(v, dict)
                            )
                        ),
                    ]
                )
            names = list(files)
            options = "".join(f'<option value="{esc(n)}">{esc(n)}</option>' for n in names)
            body.append(
                table(["File", "Run", "Rows", "Task errors", "Pass rate per evaluator"], rows)
            )
            body.append(
                "<h2>Compare two runs</h2><form class=filters method=get action=/evals/compare>"
                f"<label>baseline<select name=a>{options}</select></label>"
                f"<label>candidate<select name=b>{options}</select></label><button>compare</button></form>"
            )
        else:
            where = self.runs_dir or "(none given)"
            body.append(
                f"<p class=dim>no run files in {esc(where)}; write them with otelite eval ... --out DIR/run.jsonl "
                "and start the view with --runs DIR</p>"
            )
        body.append("<h2>Runs recorded in the store</h2>")
        try:
            with self._store() as (_, conn):
                runs = _queries.stored_runs(conn)
                figures = {r.run_id: _queries.run_scores(conn, r.trace_ids) for r in runs}
        except HTTPError as exc:
            body.append(f"<p class=note>{esc(exc.message)}</p>")
            return page("Evaluations", "".join(body), nav="/evals")
        if not runs:
            body.append("<p class=dim>no dataset runs recorded in the store</p>")
        else:
            rows = []
            for run in runs:
                rows.append(
                    [
                        f'<a href="{url("/evals/run", {"id": run.run_id})}">{esc(run.name)}</a>',
                        esc(run.run_id),
                        esc(utc(run.start_time_ns)),
                        str(run.rows),
                        esc("; ".join(_score_text(f) for f in figures[run.run_id])),
                    ]
                )
            body.append(
                table(["Run", "ID", "Started (UTC)", "Rows", "Pass rate per evaluator"], rows)
            )
        return page("Evaluations", "".join(body), nav="/evals")

    def eval_run(self, params: Params) -> str:
        run_id = params.text("id")
        if run_id is not None:
            return self._stored_run(run_id)
        run = self._load_run(params, "file")
        summary = run.summary
        head = [
            [
                esc(name),
                esc(_rate(s.pass_rate)),
                esc(f"{s.mean:.3f}" if s.mean is not None else "-"),
                str(s.scored),
                str(s.errors),
            ]
            for name, s in summary.evaluators.items()
        ]
        rows = []
        for row in run.rows[:500]:
            cells = [
                str(row.index),
                esc(_short(row.example.input)),
                esc(_short(row.example.expected)),
                f"<span class=err>{esc(row.error)}</span>"
                if row.error
                else esc(_short(row.output)),
            ]
            for name in run.evaluator_names:
                score = row.scores.get(name)
                cells.append(esc(_score_cell(score)))
            cells.append(
                f'<a href="{url("/trace/" + row.trace_id)}">trace</a>' if row.trace_id else ""
            )
            rows.append(cells)
        body = [
            f"<p>{esc(run.name)} · {summary.rows} rows · {summary.task_errors} task errors</p>",
            table(["Evaluator", "Pass rate", "Mean", "Scored", "Errors"], head),
            "<h2>Rows</h2>",
            table(["#", "Input", "Expected", "Output", *map(esc, run.evaluator_names), ""], rows),
        ]
        if len(run.rows) > 500:
            body.append(f"<p class=note>first 500 of {len(run.rows)} rows</p>")
        return page(f"Run {run.name}", "".join(body), nav="/evals")

    def _stored_run(self, run_id: str) -> str:
        with self._store() as (_, conn):
            runs = [r for r in _queries.stored_runs(conn, limit=10**6) if r.run_id == run_id]
            if not runs:
                raise HTTPError(404, f"id={run_id!r}: no dataset run with this id in the store")
            run = runs[0]
            figures = _queries.run_scores(conn, run.trace_ids)
        head = [
            [
                esc(f[0]),
                str(f[1]),
                esc(_rate(f[2] / (f[2] + f[3]) if (f[2] or 0) + (f[3] or 0) else None)),
                esc(f"{f[4]:.3f}" if f[4] is not None else "-"),
            ]
            for f in figures
        ]
        links = "".join(
            f'<li><a href="{url("/trace/" + t)}">{esc(t)}</a></li>' for t in run.trace_ids[:500]
        )
        body = (
            f"<p>{esc(run.name)} · {run.rows} rows · started {esc(utc(run.start_time_ns))} UTC</p>"
            + table(["Evaluator", "Scores", "Pass rate", "Mean"], head)
            + f"<h2>Row traces</h2><ul>{links}</ul>"
        )
        return page(f"Run {run.name}", body, nav="/evals")

    def eval_compare(self, params: Params) -> str:
        baseline = self._load_run(params, "a")
        candidate = self._load_run(params, "b")
        comparison = candidate.compare(baseline)
        changes = [
            [
                esc(c.name),
                esc(_rate(c.pass_rate_before)),
                esc(_rate(c.pass_rate_after)),
                esc(f"{c.pass_rate_delta:+.1%}" if c.pass_rate_delta is not None else "-"),
                esc(f"{c.mean_before:.3f}" if c.mean_before is not None else "-"),
                esc(f"{c.mean_after:.3f}" if c.mean_after is not None else "-"),
            ]
            for c in comparison.changes.values()
        ]

        def items(found: Sequence[Any]) -> str:
            if not found:
                return "<p class=dim>none</p>"
            return table(
                ["Example", "Input", "Evaluator", "Before", "After"],
                [
                    [
                        esc(r.example_id[:12]),
                        esc(_short(r.input)),
                        esc(r.evaluator),
                        esc(r.before),
                        esc(r.after),
                    ]
                    for r in found[:500]
                ],
            )

        body = (
            f"<p>candidate <b>{esc(params.text('b'))}</b> ({esc(candidate.name)}) vs baseline "
            f"<b>{esc(params.text('a'))}</b> ({esc(baseline.name)})</p>"
            + table(
                ["Evaluator", "Pass rate before", "after", "Δ", "Mean before", "after"], changes
            )
            + f"<h2 class=regressed>Regressed rows ({len(comparison.regressions)})</h2>"
            + items(comparison.regressions)
            + f"<h2>Improved rows ({len(comparison.improvements)})</h2>"
            + items(comparison.improvements)
        )
        return page("Compare runs", body, nav="/evals")


# --- helpers ------------------------------------------------------------------------


def _walk(nodes: Sequence[SpanNode], depth: int = 0) -> list[tuple[int, StoredSpan]]:
    out: list[tuple[int, StoredSpan]] = []
    for node in nodes:
        out.append((depth, node.span))
        out.extend(_walk(node.children, depth + 1))
    return out


def _count(value: float) -> str:
    return (
        f"{value / 1e6:.1f}M"
        if value >= 1e6
        else f"{value / 1e3:.1f}k"
        if value >= 1e4
        else f"{value:.0f}"
    )


def _span_details(span: StoredSpan, scores: Sequence[Any]) -> str:
    """The LLM call's figures, the error, scores and captured content of one span, as HTML."""
    a = span.attributes
    out = []
    if a.get(sc.GEN_AI_OPERATION_NAME) in _LLM_OPERATIONS:
        bits = [esc(a.get(sc.GEN_AI_RESPONSE_MODEL) or a.get(sc.GEN_AI_REQUEST_MODEL) or "")]
        if sc.GEN_AI_USAGE_INPUT_TOKENS in a or sc.GEN_AI_USAGE_OUTPUT_TOKENS in a:
            estimated = " (est.)" if a.get(sc.OTELITE_USAGE_ESTIMATED) else ""
            bits.append(
                esc(
                    f"{int(a.get(sc.GEN_AI_USAGE_INPUT_TOKENS, 0))} in + "
                    f"{int(a.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 0))} out tokens{estimated}"
                )
            )
        if sc.GEN_AI_USAGE_COST in a:
            bits.append(esc(money(float(a[sc.GEN_AI_USAGE_COST]))))
        elif a.get(sc.OTELITE_COST_UNPRICED):
            bits.append("no price")
        if sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in a:
            bits.append(
                esc(f"ttfc {float(a[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]) * 1000:.0f}ms")
            )
        prompt, version = a.get(sc.GEN_AI_PROMPT_NAME), a.get(sc.GEN_AI_PROMPT_VERSION)
        if prompt:
            label = f"{prompt} v{version}" if version is not None else str(prompt)
            params = {"b": version} if version is not None else {}
            bits.append(
                f'prompt <a href="{url("/prompts/" + str(prompt), params)}">{esc(label)}</a>'
            )
        out.append(f"<div class=llm>{' · '.join(b for b in bits if b)}</div>")
    if span.status_code == "ERROR":
        reason = span.status_message or a.get(sc.ERROR_TYPE) or "error"
        out.append(f"<div class=err>{esc(reason)}</div>")
    for item in scores:
        shown = " ".join(str(v) for v in (item.value, item.label) if v is not None) or "none"
        verdict = "" if item.passed is None else (" pass" if item.passed else " fail")
        text = item.explanation or item.error or ""
        out.append(
            f"<div class=score>score {esc(item.name)} = {esc(shown)}{verdict}"
            + (f" <span class=dim>({esc(str(text).splitlines()[0])})</span>" if text else "")
            + "</div>"
        )
    # Only what was captured is on the span; what redaction removed never reached it.
    for key in _CONTENT_KEYS:
        if key not in a:
            continue
        for label, texts in _messages(key, a[key], None):
            kind = "tool" if label.startswith("tool") or label in ("arguments", "result") else ""
            body = "\n".join(texts)
            out.append(
                f'<div class="msg {kind}"><span class=role>{esc(label)}</span>: {esc(body)}</div>'
            )
    return f"<div class=details>{''.join(out)}</div>" if out else ""


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


def _diff(registry: Any, name: str, a: int, b: int) -> str:
    """Unified diff of two versions, line by line (a last line without a newline stays a line)."""
    first, second = registry.get(name, version=a), registry.get(name, version=b)
    return "\n".join(
        difflib.unified_diff(
            describe_version(first).splitlines(),
            describe_version(second).splitlines(),
            fromfile=f"{name}@{a}",
            tofile=f"{name}@{b}",
            lineterm="",
        )
    )


def _versions(registry: Any, name: str) -> list[Any]:
    from otelite.prompts import PromptError

    try:
        return list(registry.versions(name))
    except PromptError as exc:
        raise HTTPError(503, str(exc)) from None


def _run_header(path: Path) -> dict[str, Any]:
    """The first line of a run file (its summary), without reading the rows."""
    try:
        with path.open(encoding="utf-8") as f:
            data = json.loads(f.readline() or "{}")
    except (OSError, ValueError):
        return {"run": "(unreadable)"}
    return data if isinstance(data, dict) else {"run": "(unreadable)"}


def _rate(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1%}"


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _score_cell(score: Any) -> str:
    if score is None:
        return "-"
    bits = []
    if score.passed is not None:
        bits.append("pass" if score.passed else "fail")
    if score.value is not None:
        bits.append(f"{score.value:g}")
    if score.error:
        bits.append(f"error: {score.error}")
    return " ".join(bits) or "unscored"


def _score_text(figures: Sequence[Any]) -> str:
    name, _, passed, failed, mean = figures
    decided = (passed or 0) + (failed or 0)
    if decided:
        return f"{name} {_rate((passed or 0) / decided)}"
    return f"{name} mean {mean:.3f}" if mean is not None else str(name)
