"""Reading the local store: :class:`LocalStore` and its queries (read-only).

A little over 500 lines, on purpose: it is one class whose queries share one connection
(reopened after a fork) and one row decoder; the types they return and the ``stats``
aggregation live in ``_records``.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Optional, Union

from otelite._exceptions import StoreError
from otelite.store import _schema, _stats
from otelite.store._records import (
    LLM_OPERATIONS,
    STATS_KEYS,
    ScoreStatsRow,
    SpanNode,
    StatsRow,
    StoredScore,
    StoredSpan,
    TraceSummary,
)

_ROOT_TRAFFIC = "COALESCE(json_extract(root.attributes, '$.\"otelite.traffic\"'), 'app')"


def _loads(text: Optional[str], default: Any) -> Any:
    return json.loads(text) if text else default


class LocalStore:
    """A read-only view of a local store.

    Args:
        path: the store directory (or the ``.db`` file); default ``$OTELITE_HOME``
            or ``.otelite`` in the working directory.

    Raises:
        StoreError: no store there, not an otelite store, or unreadable.
        StoreSchemaError: written by a newer otelite (the file is not modified).
    """

    def __init__(self, path: Union[str, os.PathLike[str], None] = None) -> None:
        self.path = _schema.resolve_store_path(path)
        self._opened: sqlite3.Connection = _schema.open_for_reading(self.path)
        self._pid = os.getpid()
        self._resources: dict[int, dict[str, Any]] = {}

    @property
    def _conn(self) -> sqlite3.Connection:
        """This process's connection: a child forked after opening reopens the file.

        A SQLite connection must not cross a fork(); the parent's is left alone, never
        used nor closed in the child.
        """
        if self._pid != os.getpid():
            _schema.abandon(self._opened)
            self._opened = _schema.open_for_reading(self.path)
            self._pid = os.getpid()
        return self._opened

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        if self._pid == os.getpid():
            self._opened.close()

    def _resource(self, resource_id: Optional[int]) -> dict[str, Any]:
        if resource_id is None:
            return {}
        if resource_id not in self._resources:
            rows = _schema.fetch_rows(
                self._conn, "SELECT attributes FROM resources WHERE id = ?", (resource_id,)
            )
            self._resources[resource_id] = _loads(rows[0]["attributes"], {}) if rows else {}
        return self._resources[resource_id]

    def _span(self, row: sqlite3.Row) -> StoredSpan:
        return StoredSpan(
            trace_id=row["trace_id"],
            span_id=row["span_id"],
            parent_span_id=row["parent_span_id"],
            name=row["name"],
            kind=row["kind"],
            start_time_ns=row["start_time_ns"],
            end_time_ns=row["end_time_ns"],
            status_code=row["status_code"],
            status_message=row["status_message"],
            attributes=_loads(row["attributes"], {}),
            events=_loads(row["events"], []),
            links=_loads(row["links"], []),
            resource=self._resource(row["resource_id"]),
            scope_name=row["scope_name"],
        )

    def resolve_trace_id(self, prefix: str) -> str:
        """The full trace id that starts with ``prefix`` (which must be unique)."""
        prefix = prefix.strip().lower()
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            raise StoreError(f"trace id {prefix!r}: give the hexadecimal id or a prefix of it")
        rows = _schema.fetch_rows(
            self._conn,
            "SELECT DISTINCT trace_id FROM spans WHERE trace_id >= ? AND trace_id < ? LIMIT 2",
            (prefix, prefix + "g"),
        )
        if not rows:
            raise StoreError(f"trace id {prefix!r}: no such trace in {self.path}")
        if len(rows) > 1:
            raise StoreError(f"trace id {prefix!r}: several traces start so; give more characters")
        return str(rows[0]["trace_id"])

    def short_trace_ids(self, trace_ids: Sequence[str], min_length: int = 8) -> dict[str, str]:
        """Each full trace id's shortest prefix (at least ``min_length`` characters) that no
        other trace in the store shares, so that :meth:`resolve_trace_id` accepts it."""
        short = {}
        for trace_id in trace_ids:
            length = min_length
            for op, order in (("<", "DESC"), (">", "ASC")):
                rows = _schema.fetch_rows(
                    self._conn,
                    f"SELECT trace_id FROM spans WHERE trace_id {op} ? "
                    f"ORDER BY trace_id {order} LIMIT 1",
                    (trace_id,),
                )
                if rows:
                    other = str(rows[0]["trace_id"])
                    common = 0
                    while common < min(len(other), len(trace_id)) and (
                        other[common] == trace_id[common]
                    ):
                        common += 1
                    length = max(length, common + 1)
            short[trace_id] = trace_id[:length]
        return short

    def spans(self, trace_id: str) -> list[StoredSpan]:
        """All spans of one trace (full id or unique prefix), in start order."""
        full = self.resolve_trace_id(trace_id)
        rows = _schema.fetch_rows(
            self._conn,
            f"SELECT {_schema.SPAN_COLUMNS} FROM spans WHERE trace_id = ? "
            "ORDER BY start_time_ns, span_id",
            (full,),
        )
        return [self._span(r) for r in rows]

    def trace_tree(self, trace_id: str) -> list[SpanNode]:
        """One trace as a forest: its root spans, each with its children in start order.

        A span whose parent is not in the store (for example, a remote parent)
        is returned as a root.
        """
        nodes = {s.span_id: SpanNode(s) for s in self.spans(trace_id)}
        roots: list[SpanNode] = []
        for node in nodes.values():
            parent = nodes.get(node.span.parent_span_id or "")
            (parent.children if parent is not None else roots).append(node)
        return roots

    def traces(
        self,
        limit: int = 20,
        *,
        since_ns: Optional[int] = None,
        until_ns: Optional[int] = None,
        service: Optional[str] = None,
        model: Optional[str] = None,
        user: Optional[str] = None,
        session: Optional[str] = None,
        status: Optional[str] = None,
        min_cost: Optional[float] = None,
        min_duration_ms: Optional[float] = None,
        name_contains: Optional[str] = None,
        traffic: Optional[str] = None,
    ) -> list[TraceSummary]:
        """The most recent traces, newest first, with totals over their spans.

        Filters keep a trace when any of its spans matches (service, model, user,
        session, text in a span name) or when its totals do (status ``OK``/``ERROR``,
        minimum cost in USD, minimum duration). ``traffic`` keeps the application's
        traces (``"app"``) or dataset-run rows (``"evaluation"``), judged by the root span.
        """
        if not isinstance(limit, int) or limit <= 0:
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        span_filters: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("s.model", model),
            ("s.user_id", user),
            ("s.session_id", session),
            ("r.service_name", service),
        ):
            if value is not None:
                span_filters.append(f"{column} = ?")
                params.append(value)
        if name_contains:
            span_filters.append("instr(s.name, ?) > 0")
            params.append(name_contains)
        if traffic is not None:
            if traffic not in ("app", "evaluation"):
                raise ValueError(f"traffic must be app or evaluation, got {traffic!r}")
            # Judged by the root span: dataset-run rows are `evaluation`, requests are `app`.
            span_filters.append(
                f"s.trace_id IN (SELECT root.trace_id FROM spans root "
                f"WHERE {_schema.trace_root('root')} AND {_ROOT_TRAFFIC} = ?)"
            )
            params.append(traffic)
        if since_ns is not None:
            span_filters.append("s.start_time_ns >= ?")
            params.append(since_ns)
        if until_ns is not None:
            span_filters.append("s.start_time_ns < ?")
            params.append(until_ns)
        where = " AND ".join(span_filters) or "1"
        having: list[str] = []
        having_params: list[Any] = []
        if status is not None:
            if status.upper() not in ("OK", "ERROR"):
                raise ValueError(f"status must be OK or ERROR, got {status!r}")
            having.append("MAX(t.status_code = 'ERROR') = ?")
            having_params.append(1 if status.upper() == "ERROR" else 0)
        if min_cost is not None:
            having.append("TOTAL(t.cost_usd) >= ?")
            having_params.append(min_cost)
        if min_duration_ms is not None:
            having.append("(MAX(t.end_time_ns) - MIN(t.start_time_ns)) >= ?")
            having_params.append(int(min_duration_ms * 1e6))
        having_sql = ("HAVING " + " AND ".join(having)) if having else ""
        placeholders = ",".join("?" for _ in LLM_OPERATIONS)
        rows = _schema.fetch_rows(
            self._conn,
            f"""
            WITH matching AS (
                SELECT DISTINCT s.trace_id FROM spans s LEFT JOIN resources r ON r.id = s.resource_id
                WHERE {where}
            )
            SELECT t.trace_id AS trace_id,
                   MIN(t.start_time_ns) AS start_time_ns,
                   MAX(t.end_time_ns) AS end_time_ns,
                   COUNT(*) AS span_count,
                   SUM(t.operation IN ({placeholders})) AS llm_calls,
                   TOTAL(t.input_tokens) AS input_tokens,
                   TOTAL(t.output_tokens) AS output_tokens,
                   SUM(t.cost_usd) AS cost_usd,
                   TOTAL(t.unpriced) AS unpriced_calls,
                   TOTAL(t.usage_estimated) AS estimated_calls,
                   MAX(t.status_code = 'ERROR') AS has_error,
                   MAX(t.user_id) AS user_id
            FROM spans t JOIN matching USING (trace_id)
            GROUP BY t.trace_id
            {having_sql}
            ORDER BY start_time_ns DESC
            LIMIT ?
            """,
            (*params, *LLM_OPERATIONS, *having_params, limit),
        )
        summaries = []
        for row in rows:
            # The root of the web view's list (`_schema.trace_root`); a trace whose parents
            # form a cycle has none, and is named by its first span.
            root = _schema.fetch_rows(
                self._conn,
                "SELECT name, resource_id FROM spans root WHERE trace_id = ? "
                f"ORDER BY parent_span_id IS NOT NULL, NOT {_schema.local_root('root')}, "
                "start_time_ns, span_id LIMIT 1",
                (row["trace_id"],),
            )[0]
            summaries.append(
                TraceSummary(
                    trace_id=row["trace_id"],
                    root_name=root["name"],
                    start_time_ns=row["start_time_ns"],
                    end_time_ns=row["end_time_ns"],
                    span_count=row["span_count"],
                    llm_calls=int(row["llm_calls"] or 0),
                    input_tokens=int(row["input_tokens"]),
                    output_tokens=int(row["output_tokens"]),
                    cost_usd=row["cost_usd"],
                    status_code="ERROR" if row["has_error"] else "OK",
                    service_name=self._resource(root["resource_id"]).get("service.name"),
                    user_id=row["user_id"],
                    unpriced_calls=int(row["unpriced_calls"] or 0),
                    estimated_calls=int(row["estimated_calls"] or 0),
                )
            )
        return summaries

    def stats(
        self,
        by: Sequence[str],
        *,
        since_ns: Optional[int] = None,
        where: Optional[Mapping[str, str]] = None,
    ) -> list[StatsRow]:
        """Aggregates over LLM calls, grouped by one or more keys (see ``STATS_KEYS``).

        Each row has calls, errors, tokens, cost, latency percentiles (p50/p95/p99),
        the median time to first chunk of streams, the share of calls whose usage was
        estimated, and the number of calls without a price. Rows are sorted by calls.

        Over more than a couple of thousand calls, grouped and filtered by keys other
        than user, session and geo, the sums come from the store's hourly rollups
        (exact) and the percentiles from their latency buckets (within 2 %).
        """
        return _stats.stats(self._conn, list(by), since_ns=since_ns, where=where)[0]

    def _has_scores(self) -> bool:
        return _schema.has_scores(self._conn)

    def scores(
        self,
        *,
        name: Optional[str] = None,
        trace_id: Optional[str] = None,
        since_ns: Optional[int] = None,
    ) -> list[StoredScore]:
        """Recorded scores, oldest first, optionally of one name, one trace, or recent ones."""
        if not self._has_scores():
            return []
        filters: list[str] = ["1 = 1"]
        params: list[Any] = []
        if name is not None:
            filters.append("name = ?")
            params.append(name)
        if trace_id is not None:
            filters.append("trace_id = ?")
            params.append(self.resolve_trace_id(trace_id))
        if since_ns is not None:
            filters.append("time_ns >= ?")
            params.append(since_ns)
        rows = _schema.fetch_rows(
            self._conn,
            f"SELECT {_schema.SCORE_COLUMNS} FROM scores WHERE {' AND '.join(filters)} "
            "ORDER BY time_ns, name",
            params,
        )
        return [
            StoredScore(
                trace_id=r["trace_id"],
                span_id=r["span_id"],
                name=r["name"],
                value=r["value"],
                label=r["label"],
                passed=None if r["passed"] is None else bool(r["passed"]),
                kind=r["kind"],
                source=r["source"],
                explanation=r["explanation"],
                comment=r["comment"],
                error=r["error"],
                time_ns=r["time_ns"],
            )
            for r in rows
        ]

    def score_stats(
        self,
        by: Sequence[str] = (),
        *,
        since_ns: Optional[int] = None,
        where: Optional[Mapping[str, str]] = None,
    ) -> list[ScoreStatsRow]:
        """Scores aggregated per name, and per ``--by`` keys of the span each one scores.

        The keys are those of :meth:`stats` (model, user, prompt, day, ...), read
        from the scored span; a score whose span is not in the store groups under
        ``None``.
        """
        keys = list(by)
        for key in [*keys, *(where or {})]:
            if key not in STATS_KEYS:
                raise ValueError(f"unknown key {key!r}; valid keys: {', '.join(STATS_KEYS)}")
        if not self._has_scores():
            return []
        exprs = [STATS_KEYS[k] for k in keys]
        filters: list[str] = ["1 = 1"]
        params: list[Any] = []
        if since_ns is not None:
            filters.append("e.time_ns >= ?")
            params.append(since_ns)
        for key, value in (where or {}).items():
            filters.append(_stats.where_sql(key))
            params.extend(_stats.where_params(key, value))
        select_keys = "".join(f", {e} AS k{i}" for i, e in enumerate(exprs))
        group_keys = "".join(f", k{i}" for i in range(len(exprs)))
        rows = self._conn.execute(
            f"""SELECT e.name{select_keys}, COUNT(*), COUNT(e.value) + SUM(e.value IS NULL AND e.label IS NOT NULL),
                       AVG(e.value), SUM(e.passed = 1), SUM(e.passed = 0)
                FROM scores e
                LEFT JOIN spans s ON s.trace_id = e.trace_id AND s.span_id = e.span_id
                LEFT JOIN resources r ON r.id = s.resource_id
                WHERE {" AND ".join(filters)}
                GROUP BY e.name{group_keys}
                ORDER BY e.name{group_keys}""",
            params,
        ).fetchall()
        width = len(keys)
        return [
            ScoreStatsRow(
                name=row[0],
                key=tuple(row[1 : 1 + width]),
                count=int(row[1 + width]),
                scored=int(row[2 + width] or 0),
                mean=row[3 + width],
                passed=int(row[4 + width] or 0),
                failed=int(row[5 + width] or 0),
            )
            for row in rows
        ]

    def min_scores(self, name: str) -> tuple[dict[tuple[str, str], float], dict[str, float]]:
        """The lowest ``name`` score of each scored span, and of each trace (any of its spans)."""
        by_span: dict[tuple[str, str], float] = {}
        by_trace: dict[str, float] = {}
        for item in self.scores(name=name):
            if item.value is None:
                continue
            key = (item.trace_id, item.span_id)
            by_span[key] = min(by_span.get(key, item.value), item.value)
            by_trace[item.trace_id] = min(by_trace.get(item.trace_id, item.value), item.value)
        return by_span, by_trace

    def llm_spans(
        self,
        *,
        since_ns: Optional[int] = None,
        until_ns: Optional[int] = None,
        model: Optional[str] = None,
    ) -> Iterator[StoredSpan]:
        """LLM call spans, oldest first (for exports), optionally filtered."""
        filters = [f"operation IN ({','.join('?' for _ in LLM_OPERATIONS)})"]
        params: list[Any] = list(LLM_OPERATIONS)
        for clause, value in (
            ("start_time_ns >= ?", since_ns),
            ("start_time_ns < ?", until_ns),
            ("model = ?", model),
        ):
            if value is not None:
                filters.append(clause)
                params.append(value)
        for row in _schema.fetch_rows(
            self._conn,
            f"SELECT {_schema.SPAN_COLUMNS} FROM spans WHERE {' AND '.join(filters)} ORDER BY start_time_ns",
            params,
        ):
            yield self._span(row)

    def iter_spans(self, batch: int = 1000) -> Iterator[list[StoredSpan]]:
        """Every stored span in batches, oldest first (for replaying the store elsewhere)."""
        last = (-1, "", "")
        while True:
            rows = _schema.fetch_rows(
                self._conn,
                f"SELECT {_schema.SPAN_COLUMNS} FROM spans WHERE (start_time_ns, trace_id, span_id) > (?, ?, ?) "
                "ORDER BY start_time_ns, trace_id, span_id LIMIT ?",
                (*last, batch),
            )
            if not rows:
                return
            spans = [self._span(r) for r in rows]
            last = (spans[-1].start_time_ns, spans[-1].trace_id, spans[-1].span_id)
            yield spans

    def count(self) -> int:
        """How many spans the store holds."""
        return int(_schema.fetch_rows(self._conn, "SELECT COUNT(*) AS n FROM spans")[0]["n"])

    def all_spans(self) -> Sequence[StoredSpan]:
        """Every stored span, oldest first (for small stores and tests)."""
        rows = _schema.fetch_rows(
            self._conn, f"SELECT {_schema.SPAN_COLUMNS} FROM spans ORDER BY start_time_ns"
        )
        return [self._span(r) for r in rows]


LocalStore.__module__ = "otelite.store"  # users see the public path
