"""Writing spans into the local store: ``SpanWriter`` and its fork() safety.

Rows are built off the caller's thread (the store's export thread calls
:meth:`SpanWriter.write`), one transaction per batch; evaluation events become rows
of the scores table as well.
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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from otelite import _semconv as sc
from otelite._exceptions import StoreError
from otelite.store import _rollup, _schema
from otelite.store._prune import delete_older_than
from otelite.store._schema import INSERT_SCORE, INSERT_SPAN, abandon, open_for_writing, rollback

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def _json(value: Any) -> str:
    return _encode(value)


def _attributes_dict(attributes: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    if not attributes:
        return {}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attributes.items()}


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


_LLM_OPERATIONS = frozenset(_rollup.LLM_OPERATIONS)
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
        self._key_ids: dict[_rollup.Dims, int] = {}
        self._calls_since_compaction = 0
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
        self._lock = threading.Lock()
        self._held_for_fork = False
        if self._conn is not None:
            # The parent was inside a transaction on this connection when it forked.
            abandon(self._conn)
            self._conn = None
            reason = (
                "this process was forked while the local store was being written, so it "
                "cannot use SQLite safely; its spans are not stored (they are still exported "
                "over OTLP if an endpoint is configured)"
            )
            _schema.mark_unsafe_fork(reason)
            self._unusable = f"{self.path}: {reason}"

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

    def _row(
        self,
        conn: sqlite3.Connection,
        span: ReadableSpan,
        trace_hex: dict[int, str],
        span_hex: dict[int, str],
    ) -> tuple[Any, ...]:
        # Runs for every stored span on the writer thread: kept lean (no per-call helpers
        # where a dict lookup and a type check do; JSON encodes tuples as lists). The hex
        # ids are formatted once per batch (the spans of a trace share its id, a parent's
        # id is its child's parent id); enum names are read as ``_name_`` (no descriptor).
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
        trace_id = trace_hex.get(ctx.trace_id)
        if trace_id is None:
            trace_id = trace_hex[ctx.trace_id] = format(ctx.trace_id, "032x")
        span_id = span_hex[ctx.span_id] = format(ctx.span_id, "016x")
        parent_id = None
        if parent:
            parent_id = span_hex.get(parent.span_id)
            if parent_id is None:
                parent_id = span_hex[parent.span_id] = format(parent.span_id, "016x")
        operation = get(sc.GEN_AI_OPERATION_NAME)
        provider = get(sc.GEN_AI_PROVIDER_NAME)
        user = get(sc.USER_ID)
        session = get(sc.SESSION_ID)
        tokens_in = get(sc.GEN_AI_USAGE_INPUT_TOKENS)
        tokens_out = get(sc.GEN_AI_USAGE_OUTPUT_TOKENS)
        error_type = get(sc.ERROR_TYPE)
        geo = get(sc.GEO_COUNTRY)
        return (
            trace_id,
            span_id,
            parent_id,
            span.name,
            span.kind._name_,
            start,
            span.end_time or start,
            status.status_code._name_,
            status.description,
            resource_id,
            scope.name if scope else None,
            operation if isinstance(operation, str) else None,
            provider if isinstance(provider, str) else None,
            model,
            user if isinstance(user, str) else None,
            session if isinstance(session, str) else None,
            tokens_in if isinstance(tokens_in, int) and not isinstance(tokens_in, bool) else None,
            tokens_out
            if isinstance(tokens_out, int) and not isinstance(tokens_out, bool)
            else None,
            _float_or_none(get(sc.GEN_AI_USAGE_COST)),
            error_type if isinstance(error_type, str) else None,
            _float_or_none(get(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)),
            1 if get(sc.OTELITE_USAGE_ESTIMATED) is True else None,
            1 if get(sc.OTELITE_COST_UNPRICED) is True else None,
            prompt,
            geo if isinstance(geo, str) else None,
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
        return delete_older_than(self._connection(), cutoff)

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
                # seen for the first time is inserted on its own, once.) The batch's LLM
                # calls are summed here too: the rollup gets a row per hour, key and latency
                # bucket, appended; every COMPACT_EVERY calls the log is merged (see _rollup).
                rows = []
                scores = []
                calls = []
                batch = _rollup.Batch()
                trace_hex: dict[int, str] = {}
                span_hex: dict[int, str] = {}
                for span in spans:
                    row = self._row(conn, span, trace_hex, span_hex)
                    rows.append(row)
                    if row[11] in _LLM_OPERATIONS:
                        traffic = (span.attributes or {}).get(sc.OTELITE_TRAFFIC)
                        calls.append((row, traffic))
                        batch.add_row(row, traffic)
                    if span.events:
                        scores.extend(self._score_rows(span, span.attributes or {}))
                # In key order: the primary key's index pages are visited once each.
                rows.sort(key=_row_key)
                conn.execute("BEGIN IMMEDIATE")
                changes = conn.total_changes
                conn.executemany(INSERT_SPAN, rows)
                if calls and conn.total_changes - changes != len(rows):
                    # Some spans were stored already (or came twice): only new calls count.
                    conn.execute("ROLLBACK")
                    conn.execute("BEGIN IMMEDIATE")
                    batch = self._new_calls(conn, calls)
                    conn.executemany(INSERT_SPAN, rows)
                batch.write(conn, self._key_ids)
                if scores:
                    conn.executemany(INSERT_SCORE, scores)
                conn.execute("COMMIT")
            except BaseException:
                rollback(conn)
                self._resource_ids.clear()
                self._by_object.clear()
                self._key_ids.clear()
                raise
            self._calls_since_compaction += len(calls)
            if self._calls_since_compaction >= _rollup.COMPACT_EVERY:
                self._calls_since_compaction = 0
                self._compact(conn)

    @staticmethod
    def _compact(conn: sqlite3.Connection) -> None:
        """Merge old hourly rollup rows into daily ones, in a transaction of its own."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            _rollup.compact(conn, time.time_ns())
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise

    @staticmethod
    def _new_calls(
        conn: sqlite3.Connection, calls: Sequence[tuple[tuple[Any, ...], Any]]
    ) -> _rollup.Batch:
        """The rollup of the calls not stored yet (call inside the write transaction)."""
        batch = _rollup.Batch()
        seen: set[tuple[str, str]] = set()
        for row, traffic in calls:
            key = (row[0], row[1])
            if key in seen:
                continue
            seen.add(key)
            stored = conn.execute(
                "SELECT 1 FROM spans WHERE trace_id = ? AND span_id = ?", key
            ).fetchone()
            if stored is None:
                batch.add_row(row, traffic)
        return batch

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
