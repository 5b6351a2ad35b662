"""The local store's SQLite file: where it is, its schema and migrations, and opening it.

One table row per span, with the fields reports filter and group on copied into
indexed columns (model, user, tokens, cost, ...) and the full attribute set kept
as JSON. Resources are stored once and referenced. The file is in WAL mode with a
busy timeout, so several processes can write it and the CLI can read it while an
app is running. A file written by a newer otelite (higher schema version) is
refused and never touched.

This module, ``_writer`` and ``_prune`` sit in the utilities layer (the runtime's
exporters write through them); ``_records`` and ``_reader`` are the feature on top.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional, Union

from otelite import _env
from otelite._exceptions import StoreError, StoreSchemaError
from otelite.store import _rollup

SCHEMA_VERSION = 3
DB_FILENAME = "otelite.db"
DEFAULT_DIRNAME = ".otelite"
BUSY_TIMEOUT_S = 30.0
CACHE_KIB = 65536  # SQLite page cache per connection

_SCHEMA = """
CREATE TABLE IF NOT EXISTS otelite_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS resources (
    id           INTEGER PRIMARY KEY,
    fingerprint  TEXT NOT NULL UNIQUE,
    service_name TEXT,
    service_version TEXT,
    attributes   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS spans (
    trace_id       TEXT NOT NULL,
    span_id        TEXT NOT NULL,
    parent_span_id TEXT,
    name           TEXT NOT NULL,
    kind           TEXT NOT NULL,
    start_time_ns  INTEGER NOT NULL,
    end_time_ns    INTEGER NOT NULL,
    status_code    TEXT NOT NULL,
    status_message TEXT,
    resource_id    INTEGER REFERENCES resources(id),
    scope_name     TEXT,
    operation      TEXT,
    provider       TEXT,
    model          TEXT,
    user_id        TEXT,
    session_id     TEXT,
    input_tokens   INTEGER,
    output_tokens  INTEGER,
    cost_usd       REAL,
    error_type     TEXT,
    ttfc_s         REAL,
    usage_estimated INTEGER,
    unpriced       INTEGER,
    prompt         TEXT,
    geo            TEXT,
    attributes     TEXT NOT NULL,
    events         TEXT,
    links          TEXT,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS spans_start_time ON spans (start_time_ns);
CREATE INDEX IF NOT EXISTS spans_model ON spans (model, start_time_ns) WHERE model IS NOT NULL;
CREATE INDEX IF NOT EXISTS spans_user ON spans (user_id, start_time_ns) WHERE user_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS spans_session ON spans (session_id) WHERE session_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS spans_roots ON spans (start_time_ns) WHERE parent_span_id IS NULL;
"""

# Version 2: one row per gen_ai.evaluation.result event, keyed to the evaluated span.
# Version 3: the hourly rollups of LLM calls (``_rollup.SCHEMA``).
_SCORES_SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    trace_id        TEXT NOT NULL,
    span_id         TEXT NOT NULL,
    carrier_span_id TEXT NOT NULL,
    event_index     INTEGER NOT NULL,
    name            TEXT NOT NULL,
    value           REAL,
    label           TEXT,
    passed          INTEGER,
    kind            TEXT,
    source          TEXT,
    explanation     TEXT,
    comment         TEXT,
    error           TEXT,
    time_ns         INTEGER NOT NULL,
    PRIMARY KEY (trace_id, carrier_span_id, event_index)
);
CREATE INDEX IF NOT EXISTS scores_target ON scores (trace_id, span_id);
CREATE INDEX IF NOT EXISTS scores_name ON scores (name, time_ns);
"""

SPAN_COLUMNS = (
    "trace_id, span_id, parent_span_id, name, kind, start_time_ns, end_time_ns, status_code, "
    "status_message, resource_id, scope_name, operation, provider, model, user_id, session_id, "
    "input_tokens, output_tokens, cost_usd, error_type, ttfc_s, usage_estimated, unpriced, prompt, "
    "geo, attributes, events, links"
)
INSERT_SPAN = f"INSERT OR IGNORE INTO spans ({SPAN_COLUMNS}) VALUES (" + ", ".join("?" * 28) + ")"
SCORE_COLUMNS = (
    "trace_id, span_id, carrier_span_id, event_index, name, value, label, passed, kind, source, "
    "explanation, comment, error, time_ns"
)
INSERT_SCORE = (
    f"INSERT OR IGNORE INTO scores ({SCORE_COLUMNS}) VALUES (" + ", ".join("?" * 14) + ")"
)


def local_root(span: str) -> str:
    """SQL true when the row ``span`` (a table alias) is a root of its trace in this store.

    A root has no parent, or a parent that is not in the store: a remote parent, a span of
    the calling service. Only a span with a parent costs a lookup (by primary key).
    """
    return (
        f"({span}.parent_span_id IS NULL OR NOT EXISTS (SELECT 1 FROM spans lr_parent "
        f"WHERE lr_parent.trace_id = {span}.trace_id AND lr_parent.span_id = {span}.parent_span_id))"
    )


def trace_root(span: str) -> str:
    """SQL true when the row ``span`` is the root that stands for its trace in a list.

    That is the trace's span without a parent, its root; when the root was recorded by
    another service (the trace came in with a remote parent), the first of the trace's
    local roots, in start order then span id (the first root of ``LocalStore.trace_tree``).
    A span with a parent costs a lookup by primary key; only a trace without a span without
    a parent has its spans read. A trace with several spans without a parent (the SDK writes
    none) has a row for each. (``+`` keeps SQLite on the trace's rows, by primary key, rather
    than on the start time index, which holds every span started before.)
    """
    earlier = (
        f"(+tr_other.start_time_ns < {span}.start_time_ns OR "
        f"(+tr_other.start_time_ns = {span}.start_time_ns AND tr_other.span_id < {span}.span_id))"
    )
    return (
        f"({local_root(span)} AND ({span}.parent_span_id IS NULL OR NOT EXISTS ("
        f"SELECT 1 FROM spans tr_other WHERE tr_other.trace_id = {span}.trace_id AND "
        f"(tr_other.parent_span_id IS NULL OR ({earlier} AND {local_root('tr_other')})))))"
    )


def default_store_path() -> Path:
    """``$OTELITE_HOME/otelite.db``, else ``.otelite/otelite.db`` in the working directory."""
    home = _env.OTELITE_HOME.read()
    base = Path(home) if home else Path.cwd() / DEFAULT_DIRNAME
    return base / DB_FILENAME


def resolve_store_path(location: Union[str, os.PathLike[str], None]) -> Path:
    """A directory gets ``otelite.db`` inside it; a path ending in ``.db``/``.sqlite`` is the file."""
    if location is None:
        return default_store_path()
    path = Path(location).expanduser()
    if path.suffix in (".db", ".sqlite", ".sqlite3"):
        return path
    return path / DB_FILENAME


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already done so.

    After some errors (a full disk, an I/O error) SQLite rolls the transaction back
    itself; a second ROLLBACK would raise and hide the real error, so it is skipped,
    and a failure of the rollback itself never replaces the error being handled.
    """
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _stored_version(conn: sqlite3.Connection) -> Optional[int]:
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'otelite_meta'"
    ).fetchone()
    if row is None:
        return None
    found = conn.execute("SELECT value FROM otelite_meta WHERE key = 'schema_version'").fetchone()
    return int(found[0]) if found else None


def _refuse_newer(path: Path, version: Optional[int]) -> None:
    if version is not None and version > SCHEMA_VERSION:
        raise StoreSchemaError(
            f"{path}: the store has schema version {version}, but this otelite understands "
            f"up to {SCHEMA_VERSION}; upgrade otelite (pip install -U otelite) or use another "
            "store path. The file was not modified."
        )


# Set in a child forked while a write was in progress (see ``_writer``): no SQLite file is
# opened there (the thread that was inside SQLite may have held its internal locks).
_unsafe_fork: Optional[str] = None
_abandoned: list[sqlite3.Connection] = []


def mark_unsafe_fork(reason: str) -> None:
    """From now on this process opens no store file; ``reason`` says why."""
    global _unsafe_fork
    _unsafe_fork = reason


def _refuse_after_unsafe_fork(path: Path) -> None:
    if _unsafe_fork is not None:
        raise StoreError(f"{path}: {_unsafe_fork}")


def _set_wal(conn: sqlite3.Connection, bound_s: float = 10.0) -> None:
    """Switch to WAL. Several processes opening one store at once may find it locked: the
    busy timeout does not cover this pragma, so it is retried for a bounded time."""

    deadline = time.monotonic() + bound_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def open_for_writing(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the store at ``path`` and make sure its schema is current."""
    _refuse_after_unsafe_fork(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"{path}: cannot create the local store ({exc})") from exc
    try:
        _refuse_newer(path, _stored_version(conn))
        _set_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        # Index pages stay in memory: inserts at random trace ids stop re-reading the disk.
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        # Checkpoint the WAL less often (about 40 MB): fewer copies of the same pages.
        conn.execute("PRAGMA wal_autocheckpoint=10000")
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = _stored_version(conn)
            _refuse_newer(path, version)
            if version is None or version < SCHEMA_VERSION:
                # A new file gets everything; a version-1 store gains the scores table, and
                # a version-1 or 2 store the rollup tables, filled once from its spans.
                schema = _SCHEMA + _SCORES_SCHEMA + _rollup.SCHEMA
                for statement in schema.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                if version is not None:
                    _rollup.rebuild(conn)
                    _rollup.compact(conn, time.time_ns())
                conn.execute(
                    "INSERT OR REPLACE INTO otelite_meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
    except StoreError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"{path}: cannot use the local store ({exc})") from exc
    return conn


def open_for_reading(path: Path) -> sqlite3.Connection:
    """Open an existing store read-only; a missing, corrupt or newer file is a StoreError."""
    _refuse_after_unsafe_fork(path)
    if not path.exists():
        raise StoreError(
            f"{path}: no local store here yet; call otelite.configure() in your app (it "
            "records there by default) or point OTELITE_HOME at an existing store"
        )
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro",
            uri=True,
            timeout=BUSY_TIMEOUT_S,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: not a readable otelite store ({exc})") from exc
    try:
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        version = _stored_version(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"{path}: not a readable otelite store ({exc})") from exc
    if version is None:
        conn.close()
        raise StoreError(f"{path}: this SQLite file is not an otelite store (no schema version)")
    try:
        _refuse_newer(path, version)
    except StoreSchemaError:
        conn.close()
        raise
    return conn


def abandon(conn: sqlite3.Connection) -> None:
    """Keep a connection inherited from a parent process alive forever: never used, never closed."""
    _abandoned.append(conn)
    try:
        # The list is cleared at interpreter exit, which would close the connection: an
        # extra reference keeps it open until the process is gone (CPython only).
        import ctypes

        ctypes.pythonapi.Py_IncRef(ctypes.py_object(conn))
    except Exception:  # pragma: no cover - not CPython
        pass


def has_scores(conn: sqlite3.Connection) -> bool:
    """Whether the store has the scores table (version 2 and later; read-only v1 stores lack it)."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'scores'"
    ).fetchone()
    return row is not None


def fetch_rows(conn: sqlite3.Connection, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
    """Run a read query and return rows addressable by column name."""
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute(sql, tuple(params)).fetchall())
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read the local store ({exc})") from exc
