"""Keeping the local store bounded: deleting old traces, or the oldest until it fits a size."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from otelite.store import _rollup
from otelite.store._schema import open_for_writing, rollback

# Deleting traces: the doomed trace ids are listed once (a temporary table of this
# connection), then their scores go, then their spans, and the rollup hours of their LLM
# calls are rebuilt from the spans left.
_DOOMED_TABLE = "CREATE TEMP TABLE IF NOT EXISTS otelite_doomed (trace_id TEXT PRIMARY KEY)"
_OLD_TRACES = "SELECT trace_id FROM spans GROUP BY trace_id HAVING MAX(start_time_ns) < ?"
_OLDEST_TRACES = (
    "SELECT trace_id FROM spans GROUP BY trace_id ORDER BY MIN(start_time_ns) "
    "LIMIT (SELECT COUNT(DISTINCT trace_id) * ? / ? + 1 FROM spans)"
)


def _delete_traces(conn: sqlite3.Connection, select: str, params: tuple[int, ...]) -> int:
    """Delete, in one transaction, the traces ``select`` lists, with their scores, keeping
    the rollup right; returns the number of spans deleted."""
    conn.execute(_DOOMED_TABLE)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("DELETE FROM otelite_doomed")
        conn.execute(f"INSERT OR IGNORE INTO otelite_doomed {select}", params)
        doomed = "trace_id IN (SELECT trace_id FROM otelite_doomed)"
        hours = None
        if _rollup.has_rollup(conn):
            ops = ",".join("?" for _ in _rollup.LLM_OPERATIONS)
            hours = conn.execute(
                f"SELECT MIN(start_time_ns), MAX(start_time_ns) FROM spans WHERE {doomed} "
                f"AND operation IN ({ops})",
                _rollup.LLM_OPERATIONS,
            ).fetchone()
        conn.execute(f"DELETE FROM scores WHERE {doomed}")
        deleted = int(conn.execute(f"DELETE FROM spans WHERE {doomed}").rowcount)
        conn.execute("DELETE FROM otelite_doomed")
        if hours is not None and hours[0] is not None:
            _rollup.rebuild(conn, hours[0] // _rollup.HOUR_NS, hours[1] // _rollup.HOUR_NS)
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return deleted


def delete_older_than(conn: sqlite3.Connection, cutoff_ns: int) -> int:
    """Delete, in one transaction, the traces whose newest span started before ``cutoff_ns``
    (with their scores); returns the number of spans deleted."""
    return _delete_traces(conn, _OLD_TRACES, (cutoff_ns,))


def prune_older_than(path: Path, cutoff_ns: int) -> int:
    """Delete traces whose newest span started before ``cutoff_ns``; returns spans deleted."""
    conn = open_for_writing(path)
    try:
        deleted = delete_older_than(conn, cutoff_ns)
        if deleted:
            conn.execute("VACUUM")
        return deleted
    finally:
        conn.close()


def prune_to_size(path: Path, max_bytes: int) -> int:
    """Delete the oldest traces until the file fits in ``max_bytes``; returns spans deleted."""
    conn = open_for_writing(path)
    deleted = 0
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = path.stat().st_size
        if size <= max_bytes:
            return 0
        total = int(conn.execute("SELECT COUNT(*) FROM spans").fetchone()[0])
        if total:
            per_span = size / total
            excess = int((size - max_bytes) / per_span) + 1
            deleted = _delete_traces(conn, _OLDEST_TRACES, (excess, total))
        conn.execute("VACUUM")
        return deleted
    finally:
        conn.close()
