"""The web view's own reads of the store: one page of the trace list, stored evaluation runs.

``LocalStore.traces`` aggregates every trace before it sorts; on a million spans that is
seconds. Here the list walks spans in start order (an index), keeps each trace's root
(``_schema.trace_root``: its span without a parent, else its first span whose parent is not
in the store, a remote parent), filters and sorts them, and aggregates only the rows of
the page shown.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from otelite.store import LLM_OPERATIONS, StatsRow, TraceSummary, _schema, _stats

_TRAFFIC = "COALESCE(json_extract(r.attributes, '$.\"otelite.traffic\"'), 'app')"

# Sort keys of the trace list: the SQL over a root span `r` (per-trace totals are
# correlated subqueries, evaluated only when that sort or filter is asked for).
_TOTAL = "(SELECT {f} FROM spans x WHERE x.trace_id = r.trace_id)"
SORTS = {
    "start": "r.start_time_ns",
    "duration": _TOTAL.format(f="MAX(x.end_time_ns) - MIN(x.start_time_ns)"),
    "cost": _TOTAL.format(f="TOTAL(x.cost_usd)"),
    "tokens": _TOTAL.format(f="TOTAL(x.input_tokens) + TOTAL(x.output_tokens)"),
    "spans": _TOTAL.format(f="COUNT(*)"),
}


@dataclass(frozen=True)
class TraceFilters:
    """The trace list's filters (already validated)."""

    since_ns: Optional[int] = None
    until_ns: Optional[int] = None
    user: Optional[str] = None
    session: Optional[str] = None
    model: Optional[str] = None
    prompt: Optional[str] = None
    status: Optional[str] = None
    traffic: Optional[str] = None
    min_cost: Optional[float] = None
    min_ms: Optional[float] = None


def _any_span(column: str) -> str:
    return f"EXISTS (SELECT 1 FROM spans x WHERE x.trace_id = r.trace_id AND {column})"


def trace_page(
    conn: sqlite3.Connection,
    filters: TraceFilters,
    *,
    sort: str = "start",
    descending: bool = True,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[TraceSummary], bool]:
    """One page of traces (root span order) and whether another page follows.

    A trace's row is its root span (``_schema.trace_root``), whose name, service and start
    sort the list; totals are over all the trace's spans, whichever root they are under.
    """
    where = [_schema.trace_root("r")]
    params: list[Any] = []
    if filters.since_ns is not None:
        where.append("r.start_time_ns >= ?")
        params.append(filters.since_ns)
    if filters.until_ns is not None:
        where.append("r.start_time_ns < ?")
        params.append(filters.until_ns)
    for column, value in (("user_id", filters.user), ("session_id", filters.session)):
        if value is not None:
            # Many values, each in few traces: the matching traces are read from the index once.
            where.append(f"r.trace_id IN (SELECT trace_id FROM spans WHERE {column} = ?)")
            params.append(value)
    if filters.model is not None:
        # Few models, each in many traces: checking the newest roots finds a page soonest.
        # (`+` keeps SQLite on the trace's rows instead of the model index: all of that model.)
        where.append(_any_span("+x.model = ?"))
        params.append(filters.model)
    if filters.prompt is not None:
        if "@" in filters.prompt:
            where.append(_any_span("x.prompt = ?"))
            params.append(filters.prompt)
        else:
            where.append(
                _any_span("(x.prompt = ? OR substr(x.prompt, 1, length(?) + 1) = ? || '@')")
            )
            params.extend([filters.prompt] * 3)
    if filters.status == "ERROR":
        where.append(_any_span("x.status_code = 'ERROR'"))
    elif filters.status == "OK":
        where.append(f"NOT {_any_span('x.status_code = ' + repr('ERROR'))}")
    if filters.traffic is not None:
        where.append(f"{_TRAFFIC} = ?")
        params.append(filters.traffic)
    if filters.min_cost is not None:
        where.append(f"{SORTS['cost']} >= ?")
        params.append(filters.min_cost)
    if filters.min_ms is not None:
        where.append(f"{SORTS['duration']} >= ?")
        params.append(int(filters.min_ms * 1e6))
    order = f"{SORTS[sort]} {'DESC' if descending else 'ASC'}, r.trace_id"
    rows = conn.execute(
        f"SELECT r.trace_id, r.name, r.resource_id FROM spans r WHERE {' AND '.join(where)} "
        f"ORDER BY {order} LIMIT ? OFFSET ?",
        (*params, limit + 1, offset),
    ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    if not rows:
        return [], False
    ids = [row[0] for row in rows]
    marks = ",".join("?" for _ in ids)
    ops = ",".join("?" for _ in LLM_OPERATIONS)
    # The same totals as LocalStore.traces (and so `otelite traces`).
    totals = {
        row[0]: row
        for row in conn.execute(
            f"""SELECT trace_id, MIN(start_time_ns), MAX(end_time_ns), COUNT(*),
                       SUM(operation IN ({ops})), TOTAL(input_tokens), TOTAL(output_tokens),
                       SUM(cost_usd), TOTAL(unpriced), TOTAL(usage_estimated),
                       MAX(status_code = 'ERROR'), MAX(user_id)
                FROM spans WHERE trace_id IN ({marks}) GROUP BY trace_id""",
            (*LLM_OPERATIONS, *ids),
        )
    }
    services = _service_names(conn, {row[2] for row in rows if row[2] is not None})
    out = []
    for trace_id, name, resource_id in rows:
        t = totals[trace_id]
        out.append(
            TraceSummary(
                trace_id=trace_id,
                root_name=name,
                start_time_ns=t[1],
                end_time_ns=t[2],
                span_count=t[3],
                llm_calls=int(t[4] or 0),
                input_tokens=int(t[5]),
                output_tokens=int(t[6]),
                cost_usd=t[7],
                status_code="ERROR" if t[10] else "OK",
                service_name=services.get(resource_id),
                user_id=t[11],
                unpriced_calls=int(t[8] or 0),
                estimated_calls=int(t[9] or 0),
            )
        )
    return out, more


def _service_names(conn: sqlite3.Connection, ids: set[int]) -> dict[int, Optional[str]]:
    if not ids:
        return {}
    marks = ",".join("?" for _ in ids)
    return {
        row[0]: row[1]
        for row in conn.execute(
            f"SELECT id, service_name FROM resources WHERE id IN ({marks})", tuple(ids)
        )
    }


@dataclass(frozen=True)
class StoredRun:
    """A dataset run found in the store: its row traces and when it ran."""

    run_id: str
    name: str
    rows: int
    start_time_ns: int
    trace_ids: tuple[str, ...]


_RUN_KIND = "json_extract(r.attributes, '$.\"otelite.span.kind\"')"


def stored_runs(conn: sqlite3.Connection, limit: int = 50) -> list[StoredRun]:
    """The most recent dataset runs recorded in the store (root spans of kind ``evaluation_run``).

    A row's root is its trace's root as the trace list has it (``_schema.trace_root``), so a
    run started under a remote parent is listed too. A run's rows carry its evaluators'
    scores: the scored traces (an index, usually far fewer than the spans) are the
    candidates, rather than every root span of the store (CROSS JOIN keeps SQLite to that
    order).
    """
    if not _has_scores(conn):
        return []
    rows = conn.execute(
        f"""SELECT json_extract(r.attributes, '$."otelite.eval.run.id"') AS run_id,
                   json_extract(r.attributes, '$."otelite.eval.run.name"') AS name,
                   r.trace_id, r.start_time_ns
            FROM (SELECT DISTINCT trace_id FROM scores) e
            CROSS JOIN spans r ON r.trace_id = e.trace_id
            WHERE {_RUN_KIND} = 'evaluation_run' AND {_schema.trace_root("r")}
            ORDER BY r.start_time_ns"""
    ).fetchall()
    runs: dict[str, list[Any]] = {}
    for run_id, name, trace_id, start in rows:
        key = str(run_id)
        if key not in runs:
            runs[key] = [str(name), start, []]
        runs[key][2].append(trace_id)
    out = [
        StoredRun(run_id, name, len(ids), start, tuple(ids))
        for run_id, (name, start, ids) in runs.items()
    ]
    out.sort(key=lambda r: -r.start_time_ns)
    return out[:limit]


def run_scores(conn: sqlite3.Connection, trace_ids: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Per score name over the given traces: count, passed, failed, mean value."""
    if not trace_ids or not _has_scores(conn):
        return []
    marks = ",".join("?" for _ in trace_ids)
    return conn.execute(
        f"""SELECT name, COUNT(*), SUM(passed = 1), SUM(passed = 0), AVG(value)
            FROM scores WHERE trace_id IN ({marks}) GROUP BY name ORDER BY name""",
        trace_ids,
    ).fetchall()


def _has_scores(conn: sqlite3.Connection) -> bool:
    return bool(
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'scores'"
        ).fetchone()
    )


def stats_with_series(
    conn: sqlite3.Connection, keys: Sequence[str], bucket: str, since_ns: Optional[int]
) -> tuple[list[StatsRow], list[StatsRow]]:
    """``LocalStore.stats(keys)`` and ``LocalStore.stats([bucket])`` in one read of the store.

    The same function as the store's (so the numbers of ``otelite stats``): the hourly
    rollups for wide windows, the spans otherwise.
    """
    return _stats.stats(conn, keys, since_ns=since_ns, series=bucket)
