"""Keeping the local store bounded: deleting old traces, or the oldest until it fits a size."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from otelite.store._schema import open_for_writing, rollback

# Deleting traces: their scores go first, then their spans.
_DELETE_OLD_TRACES = (
    "DELETE FROM {table} WHERE trace_id IN "
    "(SELECT trace_id FROM spans GROUP BY trace_id HAVING MAX(start_time_ns) < ?)"
)


def delete_older_than(conn: sqlite3.Connection, cutoff_ns: int) -> int:
    """Delete, in one transaction, the traces whose newest span started before ``cutoff_ns``
    (with their scores); returns the number of spans deleted."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_DELETE_OLD_TRACES.format(table="scores"), (cutoff_ns,))
        cursor = conn.execute(_DELETE_OLD_TRACES.format(table="spans"), (cutoff_ns,))
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return int(cursor.rowcount)


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
            conn.execute("BEGIN IMMEDIATE")
            oldest = (
                "SELECT trace_id FROM spans GROUP BY trace_id ORDER BY MIN(start_time_ns) "
                "LIMIT (SELECT COUNT(DISTINCT trace_id) * ? / ? + 1 FROM spans)"
            )
            conn.execute(f"DELETE FROM scores WHERE trace_id IN ({oldest})", (excess, total))
            cursor = conn.execute(
                f"DELETE FROM spans WHERE trace_id IN ({oldest})", (excess, total)
            )
            conn.execute("COMMIT")
            deleted = int(cursor.rowcount)
        conn.execute("VACUUM")
        return deleted
    finally:
        conn.close()
