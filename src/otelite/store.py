"""Reading the local store: the traces and spans that ``configure()`` recorded.

With no OTLP endpoint configured, otelite writes every span into a SQLite file
(``.otelite/otelite.db`` by default). :class:`LocalStore` opens that file
read-only and returns typed objects.

Example:
    >>> import otelite, tempfile
    >>> from otelite.store import LocalStore
    >>> home = tempfile.mkdtemp()
    >>> otelite.configure(local_store=home)
    >>> with otelite.span("hello"):
    ...     pass
    >>> otelite.force_flush()
    True
    >>> with LocalStore(home) as store:
    ...     [t.root_name for t in store.traces()]
    ['hello']
    >>> otelite.shutdown()
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Optional, Union

from otelite import _sqlite
from otelite._exceptions import StoreError

__all__ = ["LocalStore", "SpanNode", "StoredSpan", "TraceSummary"]


@dataclass(frozen=True)
class StoredSpan:
    """One recorded span, as read back from the store."""

    trace_id: str
    span_id: str
    parent_span_id: Optional[str]
    name: str
    kind: str
    start_time_ns: int
    end_time_ns: int
    status_code: str
    status_message: Optional[str]
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    links: list[dict[str, Any]]
    resource: dict[str, Any]
    scope_name: Optional[str]

    @property
    def duration_ns(self) -> int:
        """End minus start, in nanoseconds."""
        return self.end_time_ns - self.start_time_ns


@dataclass(frozen=True)
class TraceSummary:
    """One trace in a listing: its root span and totals over all its spans."""

    trace_id: str
    root_name: str
    start_time_ns: int
    end_time_ns: int
    span_count: int
    llm_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Optional[float]
    status_code: str
    service_name: Optional[str]
    user_id: Optional[str]

    @property
    def duration_ns(self) -> int:
        """Time from the first span's start to the last span's end."""
        return self.end_time_ns - self.start_time_ns


@dataclass
class SpanNode:
    """A span with its children, for walking a trace as a tree."""

    span: StoredSpan
    children: list[SpanNode] = field(default_factory=list)


_LLM_OPERATIONS = ("chat", "text_completion", "generate_content", "embeddings")


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
        self.path = _sqlite.resolve_store_path(path)
        self._conn: sqlite3.Connection = _sqlite.open_for_reading(self.path)
        self._resources: dict[int, dict[str, Any]] = {}

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
        self._conn.close()

    def _resource(self, resource_id: Optional[int]) -> dict[str, Any]:
        if resource_id is None:
            return {}
        if resource_id not in self._resources:
            rows = _sqlite.fetch_rows(
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
        rows = _sqlite.fetch_rows(
            self._conn,
            "SELECT DISTINCT trace_id FROM spans WHERE trace_id >= ? AND trace_id < ? LIMIT 2",
            (prefix, prefix + "g"),
        )
        if not rows:
            raise StoreError(f"trace id {prefix!r}: no such trace in {self.path}")
        if len(rows) > 1:
            raise StoreError(f"trace id {prefix!r}: several traces start so; give more characters")
        return str(rows[0]["trace_id"])

    def spans(self, trace_id: str) -> list[StoredSpan]:
        """All spans of one trace (full id or unique prefix), in start order."""
        full = self.resolve_trace_id(trace_id)
        rows = _sqlite.fetch_rows(
            self._conn,
            f"SELECT {_sqlite.SPAN_COLUMNS} FROM spans WHERE trace_id = ? "
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

    def traces(self, limit: int = 20) -> list[TraceSummary]:
        """The most recent traces, newest first, with totals over their spans."""
        if not isinstance(limit, int) or limit <= 0:
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        placeholders = ",".join("?" for _ in _LLM_OPERATIONS)
        rows = _sqlite.fetch_rows(
            self._conn,
            f"""
            WITH recent AS (
                SELECT trace_id FROM spans GROUP BY trace_id
                ORDER BY MIN(start_time_ns) DESC LIMIT ?
            )
            SELECT s.trace_id AS trace_id,
                   MIN(s.start_time_ns) AS start_time_ns,
                   MAX(s.end_time_ns) AS end_time_ns,
                   COUNT(*) AS span_count,
                   SUM(s.operation IN ({placeholders})) AS llm_calls,
                   TOTAL(s.input_tokens) AS input_tokens,
                   TOTAL(s.output_tokens) AS output_tokens,
                   SUM(s.cost_usd) AS cost_usd,
                   MAX(s.status_code = 'ERROR') AS has_error,
                   MAX(s.user_id) AS user_id
            FROM spans s JOIN recent USING (trace_id)
            GROUP BY s.trace_id
            ORDER BY start_time_ns DESC
            """,
            (limit, *_LLM_OPERATIONS),
        )
        summaries = []
        for row in rows:
            root = _sqlite.fetch_rows(
                self._conn,
                "SELECT name, resource_id FROM spans WHERE trace_id = ? "
                "ORDER BY (parent_span_id IS NOT NULL), start_time_ns LIMIT 1",
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
                )
            )
        return summaries

    def all_spans(self) -> Sequence[StoredSpan]:
        """Every stored span, oldest first (for small stores and tests)."""
        rows = _sqlite.fetch_rows(
            self._conn, f"SELECT {_sqlite.SPAN_COLUMNS} FROM spans ORDER BY start_time_ns"
        )
        return [self._span(r) for r in rows]
