"""What a running app could not deliver, kept in the local store for ``otelite status``.

otelite's batching processor adds its drops (by destination, signal and reason) and
its last export error (already redacted) to two small tables of the store's
database, from its worker thread. The tables are created on first use and are not
part of the span schema: a store without them simply has nothing to report.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

DROPS_TABLE = "delivery"
ERRORS_TABLE = "delivery_error"
BUSY_TIMEOUT_S = 0.5  # a write that cannot get the database within this is skipped

_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {DROPS_TABLE} ("
    "destination TEXT NOT NULL, signal TEXT NOT NULL, reason TEXT NOT NULL, "
    "count INTEGER NOT NULL, updated_at REAL NOT NULL, "
    "PRIMARY KEY (destination, signal, reason))",
    f"CREATE TABLE IF NOT EXISTS {ERRORS_TABLE} ("
    "destination TEXT PRIMARY KEY, error TEXT NOT NULL, at REAL NOT NULL)",
)


def record(
    db: Path,
    destination: str,
    signal: str,
    drops: Mapping[str, int],
    error: Optional[str],
    now: float,
) -> bool:
    """Add ``drops`` (reason -> count) and the last ``error`` for ``destination`` to ``db``.

    Does nothing when ``db`` does not exist (the store creates it). ``True`` if written.
    """
    drops = {reason: n for reason, n in drops.items() if n}
    if (not drops and error is None) or not db.exists():
        return False
    conn = sqlite3.connect(str(db), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    try:
        with conn:
            for statement in _CREATE:
                conn.execute(statement)
            conn.executemany(
                f"INSERT INTO {DROPS_TABLE} (destination, signal, reason, count, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (destination, signal, reason) "
                "DO UPDATE SET count = count + excluded.count, updated_at = excluded.updated_at",
                [(destination, signal, reason, n, now) for reason, n in drops.items()],
            )
            if error is not None:
                conn.execute(
                    f"INSERT OR REPLACE INTO {ERRORS_TABLE} (destination, error, at) VALUES (?, ?, ?)",
                    (destination, error, now),
                )
    finally:
        conn.close()
    return True


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None


def read(conn: sqlite3.Connection) -> dict[str, Any]:
    """Drops by destination, signal and reason, and the last error per destination."""
    drops: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    if _has_table(conn, DROPS_TABLE):
        for destination, signal, reason, count, updated_at in conn.execute(
            f"SELECT destination, signal, reason, count, updated_at FROM {DROPS_TABLE} "
            "ORDER BY destination, signal, reason"
        ):
            drops.append(
                {
                    "destination": destination,
                    "signal": signal,
                    "reason": reason,
                    "count": int(count),
                    "updated_at": float(updated_at),
                }
            )
    if _has_table(conn, ERRORS_TABLE):
        for destination, error, at in conn.execute(
            f"SELECT destination, error, at FROM {ERRORS_TABLE} ORDER BY at DESC, destination"
        ):
            errors.append({"destination": destination, "error": error, "at": float(at)})
    return {"drops": drops, "errors": errors}


def outbox_pending(conn: sqlite3.Connection) -> Optional[tuple[int, Optional[float]]]:
    """Spans waiting in the store's outbox and the oldest one's time, or ``None`` without one.

    The oldest time is read from a ``created_at`` / ``enqueued_at`` column (seconds since
    the epoch) when the outbox table has one.
    """
    if not _has_table(conn, "outbox"):
        return None
    count = int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
    columns = {row[1] for row in conn.execute("PRAGMA table_info(outbox)")}
    for column in ("created_at", "enqueued_at"):
        if column in columns:
            oldest = conn.execute(f"SELECT MIN({column}) FROM outbox").fetchone()[0]
            return count, (float(oldest) if oldest is not None else None)
    return count, None
