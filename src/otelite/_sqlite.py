"""The local store's SQLite file: schema, writer and low-level reads.

One table row per span, with the fields reports filter and group on copied into
indexed columns (model, user, tokens, cost, ...) and the full attribute set kept
as JSON. Resources are stored once and referenced. The file is in WAL mode with a
busy timeout, so several processes can write it and the CLI can read it while an
app is running. A file written by a newer otelite (higher schema version) is
refused and never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

from otelite import _env
from otelite import _semconv as sc
from otelite._exceptions import StoreError, StoreSchemaError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

SCHEMA_VERSION = 2
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
_INSERT = f"INSERT OR IGNORE INTO spans ({SPAN_COLUMNS}) VALUES (" + ", ".join("?" * 28) + ")"
SCORE_COLUMNS = (
    "trace_id, span_id, carrier_span_id, event_index, name, value, label, passed, kind, source, "
    "explanation, comment, error, time_ns"
)
_INSERT_SCORE = (
    f"INSERT OR IGNORE INTO scores ({SCORE_COLUMNS}) VALUES (" + ", ".join("?" * 14) + ")"
)
# Deleting traces: their scores go first, then their spans.
_DELETE_OLD_TRACES = (
    "DELETE FROM {table} WHERE trace_id IN "
    "(SELECT trace_id FROM spans GROUP BY trace_id HAVING MAX(start_time_ns) < ?)"
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


def _rollback(conn: sqlite3.Connection) -> None:
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


def _refuse_after_unsafe_fork(path: Path) -> None:
    if _unsafe_fork is not None:
        raise StoreError(f"{path}: {_unsafe_fork}")


def _set_wal(conn: sqlite3.Connection, bound_s: float = 10.0) -> None:
    """Switch to WAL. Several processes opening one store at once may find it locked: the
    busy timeout does not cover this pragma, so it is retried for a bounded time."""
    import time

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
                # A new file gets everything; a version-1 store gains the scores table.
                schema = _SCORES_SCHEMA if version == 1 else _SCHEMA + _SCORES_SCHEMA
                for statement in schema.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT OR REPLACE INTO otelite_meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
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


# One encoder for every row: json.dumps with options builds a new encoder per call.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def _json(value: Any) -> str:
    return _encode(value)


def _attributes_dict(attributes: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    if not attributes:
        return {}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attributes.items()}


def _int_or_none(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float_or_none(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def _str_or_none(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def _attributes_copy(span: ReadableSpan) -> dict[str, Any]:
    """A plain dict of the span's attributes.

    The SDK keeps them in a ``BoundedAttributes`` whose iteration takes a lock and
    calls ``__getitem__`` per key; its inner dict (private, so looked up with getattr
    and checked) is copied at C speed. Any other shape goes the public way.
    """
    inner = getattr(getattr(span, "_attributes", None), "_dict", None)
    if type(inner) is dict:
        return inner.copy()
    attributes = span.attributes
    return dict(attributes) if attributes else {}


def _row_key(row: tuple[Any, ...]) -> tuple[str, str]:
    return row[0], row[1]


RETENTION_CHECK_S = 3600.0  # how often a long-running writer applies the retention


class SpanWriter:
    """Writes batches of finished spans into one store file, one transaction per batch.

    Rows are built before the transaction begins, so that several processes writing
    one store hold SQLite's write lock only for their inserts.

    With ``retention_s``, traces older than that are deleted when the writer opens
    and then once an hour while it writes.
    """

    def __init__(self, path: Path, retention_s: Optional[float] = None) -> None:
        self.path = path
        self.retention_s = retention_s
        self._conn: Optional[sqlite3.Connection] = open_for_writing(path)
        self._closed = False
        # Set in a forked child whose parent was inside a write: why this process cannot write.
        self._unusable: Optional[str] = None
        self._held_for_fork = False
        self._last_retention = 0.0
        self._resource_ids: dict[str, int] = {}
        self._by_object: dict[int, tuple[Any, int]] = {}
        self._lock = threading.Lock()
        if retention_s is not None:
            self.apply_retention()
        _track(self)

    def _connection(self) -> sqlite3.Connection:
        """The open connection (reopened after a fork closed it); call with the lock held."""
        conn = self._conn
        if conn is not None:
            return conn
        if self._closed:
            raise StoreError(f"{self.path}: the store writer is closed")
        if self._unusable is not None:
            raise StoreError(self._unusable)
        conn = self._conn = open_for_writing(self.path)
        return conn

    # --- fork() safety: see _before_fork below --------------------------------------

    def _prepare_fork(self, deadline: float) -> None:
        # Wait (bounded) for a write in progress, then close the connection in the parent,
        # which owns it: the child then inherits no SQLite state for this file.
        self._held_for_fork = self._lock.acquire(timeout=max(0.0, deadline - time.monotonic()))
        if self._held_for_fork and self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _after_fork_in_parent(self) -> None:
        if self._held_for_fork:
            self._held_for_fork = False
            self._lock.release()

    def _after_fork_in_child(self) -> None:
        global _unsafe_fork
        self._lock = threading.Lock()
        self._held_for_fork = False
        if self._conn is not None:
            # The parent was inside a transaction on this connection when it forked.
            abandon(self._conn)
            self._conn = None
            _unsafe_fork = (
                "this process was forked while the local store was being written, so it "
                "cannot use SQLite safely; its spans are not stored (they are still exported "
                "over OTLP if an endpoint is configured)"
            )
            self._unusable = f"{self.path}: {_unsafe_fork}"

    def _resource_id(self, conn: sqlite3.Connection, resource: Any) -> int:
        # Spans of one provider share one Resource object: look it up by identity first.
        known = self._by_object.get(id(resource))
        if known is not None and known[0] is resource:
            return known[1]
        attributes = resource.attributes
        text = _json(dict(sorted(_attributes_dict(attributes).items())))
        fingerprint = hashlib.sha1(text.encode()).hexdigest()
        cached = self._resource_ids.get(fingerprint)
        if cached is None:
            conn.execute(
                "INSERT OR IGNORE INTO resources (fingerprint, service_name, service_version, attributes) "
                "VALUES (?, ?, ?, ?)",
                (
                    fingerprint,
                    _str_or_none(attributes.get(sc.SERVICE_NAME)),
                    _str_or_none(attributes.get(sc.SERVICE_VERSION)),
                    text,
                ),
            )
            row = conn.execute("SELECT id FROM resources WHERE fingerprint = ?", (fingerprint,))
            cached = int(row.fetchone()[0])
            self._resource_ids[fingerprint] = cached
        self._by_object[id(resource)] = (resource, cached)
        return cached

    def _row(self, conn: sqlite3.Connection, span: ReadableSpan) -> tuple[Any, ...]:
        # Runs for every stored span on the writer thread: kept lean (no per-call helpers
        # where a dict lookup and a type check do; JSON encodes tuples as lists).
        ctx = span.context
        assert ctx is not None
        attrs = _attributes_copy(span)
        get = attrs.get
        model = get(sc.GEN_AI_REQUEST_MODEL)
        if not (model and isinstance(model, str)):
            model = get(sc.GEN_AI_RESPONSE_MODEL)
            if not (model and isinstance(model, str)):
                model = None
        events = span.events
        links = span.links
        resource = span.resource
        resource_id = self._resource_id(conn, resource) if resource else None
        prompt_name = get(sc.GEN_AI_PROMPT_NAME)
        prompt = (
            f"{prompt_name}@{get(sc.GEN_AI_PROMPT_VERSION)}"
            if isinstance(prompt_name, str)
            else None
        )
        parent = span.parent
        status = span.status
        scope = span.instrumentation_scope
        start = span.start_time or 0
        return (
            format(ctx.trace_id, "032x"),
            format(ctx.span_id, "016x"),
            format(parent.span_id, "016x") if parent else None,
            span.name,
            span.kind.name,
            start,
            span.end_time or start,
            status.status_code.name,
            status.description,
            resource_id,
            scope.name if scope else None,
            _str_or_none(get(sc.GEN_AI_OPERATION_NAME)),
            _str_or_none(get(sc.GEN_AI_PROVIDER_NAME)),
            model,
            _str_or_none(get(sc.USER_ID)),
            _str_or_none(get(sc.SESSION_ID)),
            _int_or_none(get(sc.GEN_AI_USAGE_INPUT_TOKENS)),
            _int_or_none(get(sc.GEN_AI_USAGE_OUTPUT_TOKENS)),
            _float_or_none(get(sc.GEN_AI_USAGE_COST)),
            _str_or_none(get(sc.ERROR_TYPE)),
            _float_or_none(get(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)),
            1 if get(sc.OTELITE_USAGE_ESTIMATED) is True else None,
            1 if get(sc.OTELITE_COST_UNPRICED) is True else None,
            prompt,
            _str_or_none(get(sc.GEO_COUNTRY)),
            _encode(attrs),
            _encode(
                [
                    {
                        "name": e.name,
                        "time_ns": e.timestamp,
                        "attributes": dict(e.attributes) if e.attributes else {},
                    }
                    for e in events
                ]
            )
            if events
            else None,
            _encode(
                [
                    {
                        "trace_id": format(link.context.trace_id, "032x"),
                        "span_id": format(link.context.span_id, "016x"),
                        "attributes": dict(link.attributes) if link.attributes else {},
                    }
                    for link in links
                ]
            )
            if links
            else None,
        )

    @staticmethod
    def _score_rows(span: ReadableSpan, attrs: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """One row per ``gen_ai.evaluation.result`` event of ``span``."""
        rows: list[tuple[Any, ...]] = []
        ctx = span.context
        assert ctx is not None
        trace_id = format(ctx.trace_id, "032x")
        carrier = format(ctx.span_id, "016x")
        # An evaluation span scores its parent; any other span carries scores of itself.
        target = (
            format(span.parent.span_id, "016x")
            if span.parent is not None and sc.GEN_AI_EVALUATION_NAME in attrs
            else carrier
        )
        for index, event in enumerate(span.events):
            if event.name != sc.GEN_AI_EVALUATION_RESULT:
                continue
            e = event.attributes or {}
            name = _str_or_none(e.get(sc.GEN_AI_EVALUATION_NAME))
            if name is None:
                continue
            passed = e.get(sc.OTELITE_EVALUATION_PASSED)
            rows.append(
                (
                    trace_id,
                    target,
                    carrier,
                    index,
                    name,
                    _float_or_none(e.get(sc.GEN_AI_EVALUATION_SCORE_VALUE)),
                    _str_or_none(e.get(sc.GEN_AI_EVALUATION_SCORE_LABEL)),
                    None if not isinstance(passed, bool) else int(passed),
                    _str_or_none(e.get(sc.OTELITE_EVALUATION_KIND)),
                    _str_or_none(e.get(sc.OTELITE_EVALUATION_SOURCE)),
                    _str_or_none(e.get(sc.GEN_AI_EVALUATION_EXPLANATION)),
                    _str_or_none(e.get(sc.OTELITE_EVALUATION_COMMENT)),
                    _str_or_none(e.get(sc.OTELITE_EVALUATION_ERROR)),
                    event.timestamp,
                )
            )
        return rows

    def apply_retention(self) -> int:
        """Delete traces older than the retention; returns the number of spans deleted."""
        if self.retention_s is None or self._closed or self._unusable is not None:
            return 0
        self._last_retention = time.monotonic()
        cutoff = time.time_ns() - int(self.retention_s * 1e9)
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_DELETE_OLD_TRACES.format(table="scores"), (cutoff,))
            cursor = conn.execute(_DELETE_OLD_TRACES.format(table="spans"), (cutoff,))
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        return int(cursor.rowcount)

    def write(self, spans: Sequence[ReadableSpan]) -> None:
        """Insert ``spans`` in one transaction; a span already stored is left as it is."""
        with self._lock:
            conn = self._connection()
            if (
                self.retention_s is not None
                and time.monotonic() - self._last_retention > RETENTION_CHECK_S
            ):
                self.apply_retention()
            try:
                # Rows are built before the transaction: other processes writing this
                # store wait only for the inserts, not for this Python work. (A resource
                # seen for the first time is inserted on its own, once.)
                rows = []
                scores = []
                for span in spans:
                    rows.append(self._row(conn, span))
                    if span.events:
                        scores.extend(self._score_rows(span, span.attributes or {}))
                # In key order: the primary key's index pages are visited once each.
                rows.sort(key=_row_key)
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(_INSERT, rows)
                if scores:
                    conn.executemany(_INSERT_SCORE, scores)
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                self._resource_ids.clear()
                self._by_object.clear()
                raise

    def close(self) -> None:
        """Close the connection; later writes raise StoreError."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None


# --- fork() safety ---------------------------------------------------------------------
#
# SQLite connections must not cross a fork(): the child must neither use nor close one
# opened by its parent (closing rolls back and cleans up files under the parent's feet).
# And a lock held by another thread at fork() stays held in the child forever. So, around
# every fork (os.register_at_fork), each live writer:
#   before:          waits (bounded) for a write in progress, takes its lock and closes
#                    its connection in the parent; the child inherits no SQLite state;
#   after (parent):  releases its lock; the next write reopens the file;
#   after (child):   gets a new lock and reopens the file on its next write. If the wait
#                    timed out, the parent's transaction was open at fork: the inherited
#                    connection is abandoned (never closed) and the child opens no store
#                    file at all: its SQLite may hold internal locks of a thread that no
#                    longer exists, and a child that cannot store its spans beats one
#                    that hangs.

FORK_WAIT_S = 2.0  # how long fork() waits for store writes in progress (all writers together)

_writers: weakref.WeakSet[SpanWriter] = weakref.WeakSet()
_writers_lock = threading.Lock()
_fork_hooks_installed = False
_abandoned: list[sqlite3.Connection] = []
# Set in a child forked while a write was in progress: no SQLite file is opened there
# (the thread that was inside SQLite may have held its internal locks).
_unsafe_fork: Optional[str] = None


def _track(writer: SpanWriter) -> None:
    global _fork_hooks_installed
    with _writers_lock:
        _writers.add(writer)
        if not _fork_hooks_installed and hasattr(os, "register_at_fork"):
            os.register_at_fork(
                before=_before_fork,
                after_in_parent=_after_fork_in_parent,
                after_in_child=_after_fork_in_child,
            )
            _fork_hooks_installed = True


def _before_fork() -> None:
    _writers_lock.acquire()
    deadline = time.monotonic() + FORK_WAIT_S
    for writer in list(_writers):
        writer._prepare_fork(deadline)


def _after_fork_in_parent() -> None:
    try:
        for writer in list(_writers):
            writer._after_fork_in_parent()
    finally:
        _writers_lock.release()


def _after_fork_in_child() -> None:
    global _writers_lock
    _writers_lock = threading.Lock()
    for writer in list(_writers):
        writer._after_fork_in_child()


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


def prune_older_than(path: Path, cutoff_ns: int) -> int:
    """Delete traces whose newest span started before ``cutoff_ns``; returns spans deleted."""
    conn = open_for_writing(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(_DELETE_OLD_TRACES.format(table="scores"), (cutoff_ns,))
        cursor = conn.execute(_DELETE_OLD_TRACES.format(table="spans"), (cutoff_ns,))
        conn.execute("COMMIT")
        deleted = cursor.rowcount
        if deleted:
            conn.execute("VACUUM")
        return int(deleted)
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
