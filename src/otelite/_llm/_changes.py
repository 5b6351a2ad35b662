"""API-change detection in the call path: learn a baseline per provider + operation + model.

Every ended LLM call is compared with what otelite saw before for the same
provider, operation and requested model. A value never seen before for an
established baseline is a change, reported once: a span event
``otelite.api.change`` (``kind``, ``old``, ``new``) on the call's span and an
increment of the ``otelite.api.changes`` counter by ``kind``. The kinds:

* ``response_model``: the snapshot behind the requested name (an alias re-pointed);
* ``system_fingerprint``: the backend configuration the provider reports;
* ``field_added`` / ``field_removed``: the response's key structure (field names
  of the parsed object, read without serialising the body);
* ``finish_reason``, ``error_type``: a finish reason or an error never seen before;
* ``deprecation``: ``Deprecation``/``Sunset``/``Warning`` headers where the client
  exposes them (raw responses, HTTP errors) or a deprecation notice in the body.
  These are reported the first time they are seen, even on a new baseline.

The first observation of a provider + operation + model is its baseline, not a
change. The hot path is a few dictionary and set lookups; only a value this
process has never seen takes the lock and, with a local store, one short SQLite
transaction on the store's file (tables ``api_baseline`` and ``api_changes``,
created here). The baseline's primary key makes ``INSERT OR IGNORE`` the arbiter
between processes: the one whose row went in reports the change, so several
processes report it once, and a restarted process loads the baseline and does
not report it again. Responses that cannot be fingerprinted are skipped and
counted (:func:`stats`), never raised on.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from otelite import _guard, _metrics
from otelite import _semconv as sc

if TYPE_CHECKING:
    import sqlite3

    from otelite._llm._call import Invocation, Outcome

RESPONSE_MODEL = "response_model"
SYSTEM_FINGERPRINT = "system_fingerprint"
FIELD_ADDED = "field_added"
FIELD_REMOVED = "field_removed"
FINISH_REASON = "finish_reason"
ERROR_TYPE = "error_type"
DEPRECATION = "deprecation"
KINDS = (
    RESPONSE_MODEL,
    SYSTEM_FINGERPRINT,
    FIELD_ADDED,
    FIELD_REMOVED,
    FINISH_REASON,
    ERROR_TYPE,
    DEPRECATION,
)
_FIELD = "field"  # baseline rows of the response's field paths ("choices[].message.refusal")
_REQUIRED = "field_required"  # the fields of the baseline response: their absence is a removal

# The headers that announce a deprecation (RFC 9745 Deprecation, RFC 8594 Sunset, RFC 9111 Warning).
SIGNAL_HEADERS = ("deprecation", "sunset", "warning")
# The field structure (and the body's notices) is read on the first STRUCTURE_ALWAYS responses of
# each baseline, then on one in STRUCTURE_EVERY: reading it is most of the detector's cost, and a
# field change that lasts is still seen within STRUCTURE_EVERY calls (docs/monitoring.md).
STRUCTURE_ALWAYS = 100
STRUCTURE_EVERY = 10
BUSY_TIMEOUT_S = 1.0  # a change waits at most this long for another process's write

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS api_baseline (
        provider  TEXT NOT NULL,
        operation TEXT NOT NULL,
        model     TEXT NOT NULL,
        kind      TEXT NOT NULL,
        value     TEXT NOT NULL,
        seen_ns   INTEGER NOT NULL,
        PRIMARY KEY (provider, operation, model, kind, value)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS api_changes (
        id        INTEGER PRIMARY KEY,
        at_ns     INTEGER NOT NULL,
        provider  TEXT NOT NULL,
        operation TEXT NOT NULL,
        model     TEXT NOT NULL,
        kind      TEXT NOT NULL,
        old       TEXT NOT NULL,
        new       TEXT NOT NULL,
        trace_id  TEXT,
        span_id   TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS api_changes_at ON api_changes (at_ns)",
)

Key = tuple[str, str, str]  # (provider, operation, requested model or "")
Structure = Mapping[str, Iterable[str]]  # field-path prefix ("" = top level) -> field names

enabled = True
clock: Callable[[], int] = time.time_ns  # tests pin it

# Deprecation headers of the response being read, set by an adapter around the end of a call
# (``with_raw_response``: the only place the client hands out a successful call's headers).
response_headers: contextvars.ContextVar[Optional[Any]] = contextvars.ContextVar(
    "otelite_response_headers", default=None
)


class _Baseline:
    """What one provider + operation + model has shown so far."""

    __slots__ = ("calls", "established", "fields", "last", "levels", "required", "seen")

    def __init__(self) -> None:
        self.calls = (
            0  # responses seen by this process (approximate under threads: a sampling count)
        )
        self.established = False
        self.seen: dict[str, set[str]] = {kind: set() for kind in (*KINDS, _FIELD, _REQUIRED)}
        self.last: dict[str, str] = {}  # kind -> latest value (the "old" of the next change)
        self.fields: dict[str, set[str]] = {}  # prefix -> field names ever seen under it
        # prefix -> field names of the baseline response not yet reported removed. A field
        # first sent later is optional: its absence afterwards is not a removal.
        self.required: dict[str, set[str]] = {}
        self.levels: dict[str, frozenset[str]] = {}  # prefix -> field names of the last response


_lock = threading.RLock()
_baselines: dict[Key, _Baseline] = {}
_store_path: Optional[Path] = None
_conn: Optional[sqlite3.Connection] = None
_conn_pid = 0
_skipped = 0


def stats() -> dict[str, int]:
    """Counts since the process started: responses skipped as unfingerprintable, baselines held."""
    return {"skipped": _skipped, "baselines": len(_baselines)}


def use_store(path: Optional[Path]) -> None:
    """Persist baselines in the local store at ``path`` (``None``: memory only)."""
    global _store_path, _conn
    with _lock:
        if path == _store_path:
            return
        _close()
        _store_path = path
        _baselines.clear()  # reloaded per key from the new store


def reset() -> None:
    """Forget every baseline and the store (tests, ``configure()`` without a store)."""
    global _store_path, _skipped
    with _lock:
        _close()
        _store_path = None
        _baselines.clear()
        _skipped = 0


def _close() -> None:
    global _conn
    if _conn is not None and _conn_pid == os.getpid():
        _conn.close()
    _conn = None


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the change tables on a store connection (idempotent)."""
    for statement in _SCHEMA:
        conn.execute(statement)


def _connection() -> Optional[sqlite3.Connection]:
    """This process's connection to the store (a forked child opens its own), or ``None``.

    A store that cannot be opened is reported once; baselines then stay in memory.
    """
    global _conn, _conn_pid, _store_path
    if _store_path is None:
        return None
    if _conn is not None and _conn_pid == os.getpid():
        return _conn
    # Loaded here: the store (and sqlite3) is not imported by `import otelite`.
    from otelite.store import _schema as _sqlite

    try:
        conn = _sqlite.open_for_writing(_store_path)
        try:
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            ensure_schema(conn)
        except BaseException:
            conn.close()
            raise
    except Exception as exc:
        _store_path = None
        _guard.report("opening the local store for API-change baselines", exc)
        return None
    _conn, _conn_pid = conn, os.getpid()
    return conn


def _load(key: Key) -> _Baseline:
    base = _Baseline()
    conn = _connection()
    if conn is not None:
        try:
            rows = conn.execute(
                "SELECT kind, value FROM api_baseline WHERE provider = ? AND operation = ? "
                "AND model = ? ORDER BY seen_ns",
                key,
            ).fetchall()
        except Exception as exc:  # sqlite3.Error: busy past the timeout, or damaged: learn afresh
            _guard.report("loading an API-change baseline", exc)
            rows = []
        for kind, value in rows:
            _remember(base, kind, value)
        base.established = bool(rows)
    return base


def _remember(base: _Baseline, kind: str, value: str) -> None:
    if kind not in base.seen:
        return  # a kind written by a newer otelite
    base.seen[kind].add(value)
    base.last[kind] = value
    if kind in (_FIELD, _REQUIRED, FIELD_REMOVED):
        prefix, _, name = value.rpartition(".")
        if kind == _FIELD:
            base.fields.setdefault(prefix, set()).add(name)
        elif kind == _REQUIRED:
            if value not in base.seen[FIELD_REMOVED]:
                base.required.setdefault(prefix, set()).add(name)
        else:
            base.required.get(prefix, set()).discard(name)


# --- the call path ---------------------------------------------------------------------


def observe(
    invocation: Invocation,
    outcome: Outcome,
    error_type: Optional[str],
    error: Optional[BaseException] = None,
) -> None:
    """Compare an ended call with its baseline; report what is new on the call's span."""
    request = invocation.request
    key = (request.provider, request.operation, request.model or "")
    base = _baselines.get(key)
    if base is None:
        with _lock:
            base = _baselines.get(key)
            if base is None:
                base = _load(key)
                _baselines[key] = base
    found: list[tuple[str, str]] = []
    model = outcome.response_model
    if model and model not in base.seen[RESPONSE_MODEL]:
        found.append((RESPONSE_MODEL, model))
    fingerprint = outcome.fingerprint or outcome.attributes.get(
        sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT
    )
    if fingerprint and fingerprint not in base.seen[SYSTEM_FINGERPRINT]:
        found.append((SYSTEM_FINGERPRINT, str(fingerprint)))
    finish = outcome.attributes.get(sc.GEN_AI_RESPONSE_FINISH_REASONS)
    if finish:
        seen = base.seen[FINISH_REASON]
        for reason in finish:
            if reason not in seen:
                found.append((FINISH_REASON, str(reason)))
    if error_type and error_type not in base.seen[ERROR_TYPE]:
        found.append((ERROR_TYPE, error_type))
    calls = base.calls = base.calls + 1
    sampled = calls <= STRUCTURE_ALWAYS or calls % STRUCTURE_EVERY == 0
    if sampled and outcome.structure is not None:
        _structure(base, outcome, found)
    signals = _signals(outcome, error, sampled)
    if signals:
        seen = base.seen[DEPRECATION]
        found.extend((DEPRECATION, s) for s in signals if s not in seen)
    if found:
        with _lock:
            _report(invocation, key, base, found)


def steady(
    key: Key, model: Optional[str], fingerprint: Optional[str], reasons: Sequence[str]
) -> bool:
    """A call with nothing for :func:`observe` to report or read, counted: the lean path's check.

    ``True`` (and the call counted) when the baseline exists, the model, fingerprint and
    finish reasons are all known, the response's structure is not due to be read and
    no deprecation headers are in sight. ``False`` changes nothing: the call is then
    observed in full.
    """
    base = _baselines.get(key)
    if base is None:
        return False
    seen = base.seen
    if model and model not in seen[RESPONSE_MODEL]:
        return False
    if fingerprint and fingerprint not in seen[SYSTEM_FINGERPRINT]:
        return False
    if reasons and not seen[FINISH_REASON].issuperset(reasons):
        return False
    calls = base.calls + 1
    if calls <= STRUCTURE_ALWAYS or calls % STRUCTURE_EVERY == 0:
        return False
    if response_headers.get() is not None:
        return False
    base.calls = calls
    return True


def _structure(base: _Baseline, outcome: Outcome, found: list[tuple[str, str]]) -> None:
    global _skipped
    assert outcome.structure is not None
    try:
        levels = outcome.structure()
    except Exception as exc:  # an odd object: skipped and counted, like an unreadable one
        _guard.report("fingerprinting a response's fields", exc)
        levels = None
    if levels is None:
        _skipped += 1
        return
    last = base.levels
    for prefix, names in levels.items():
        if last.get(prefix) == names:
            continue  # the same fields as the previous response: the common case
        names = frozenset(names)
        known = base.fields.get(prefix, ())
        found.extend(
            (FIELD_ADDED, f"{prefix}.{n}" if prefix else n) for n in names if n not in known
        )
        found.extend(
            (FIELD_REMOVED, f"{prefix}.{n}" if prefix else n)
            for n in tuple(base.required.get(prefix, ()))  # a copy: other threads may remove
            if n not in names
        )
        last[prefix] = names


def _signals(outcome: Outcome, error: Optional[BaseException], body: bool) -> list[str]:
    out: list[str] = []
    headers = response_headers.get()
    if headers is None and error is not None:
        # An HTTP error from an httpx-based client carries its response (and headers).
        headers = getattr(getattr(error, "response", None), "headers", None)
    if headers is not None:
        try:
            for name in SIGNAL_HEADERS:
                value = headers.get(name)
                if value:
                    out.append(f"{name}: {value}")
        except Exception as exc:
            _guard.report("reading deprecation headers", exc)
    if body and outcome.signals is not None:
        out.extend(outcome.signals())
    return out


def _report(
    invocation: Invocation, key: Key, base: _Baseline, found: list[tuple[str, str]]
) -> None:
    """Under the lock: record what is new; report it when the baseline was already established."""
    now = clock()
    rows: list[tuple[str, str, str, str]] = []  # (kind, old, new, baseline value)
    for kind, value in found:
        if kind == FIELD_ADDED:
            kind_seen, stored = _FIELD, value
            old = ""
        elif kind == FIELD_REMOVED:
            kind_seen, stored = FIELD_REMOVED, value
            old, value = value, ""
        else:
            kind_seen, stored = kind, value
            old = base.last.get(kind, "")
        if stored in base.seen[kind_seen]:
            continue  # another thread reported it meanwhile
        rows.append((kind, old, value, stored))
    if not rows:
        return
    report = base.established
    if not report:  # the baseline response's fields are the ones whose absence is a removal
        rows += [(_REQUIRED, "", "", r[3]) for r in rows if r[0] == FIELD_ADDED]
    conn = _connection()
    reported = [r for r in rows if report or r[0] == DEPRECATION]
    if conn is not None:
        reported = _persist(conn, invocation, key, rows, reported, now)
    for kind, _old, _new, stored in rows:
        _remember(base, _FIELD if kind == FIELD_ADDED else kind, stored)
    base.established = True
    for kind, old, new, _stored in reported:
        _emit(invocation, key, kind, old, new, now)


def _persist(
    conn: sqlite3.Connection,
    invocation: Invocation,
    key: Key,
    rows: Sequence[tuple[str, str, str, str]],
    reported: Sequence[tuple[str, str, str, str]],
    now: int,
) -> list[tuple[str, str, str, str]]:
    """Write the new values; returns the changes this process is the first to record."""
    context = invocation.span.get_span_context()
    trace_id = f"{context.trace_id:032x}" if context.is_valid else None
    span_id = f"{context.span_id:016x}" if context.is_valid else None
    mine: list[tuple[str, str, str, str]] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for row in rows:
                kind, old, new, stored = row
                kind_seen = _FIELD if kind == FIELD_ADDED else kind
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO api_baseline VALUES (?, ?, ?, ?, ?, ?)",
                    (*key, kind_seen, stored, now),
                )
                if cursor.rowcount == 1 and row in reported:
                    conn.execute(
                        "INSERT INTO api_changes (at_ns, provider, operation, model, kind, old, "
                        "new, trace_id, span_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (now, *key, kind, old, new, trace_id, span_id),
                    )
                    mine.append(row)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except Exception as exc:
        # The store is busy or broken: report from memory rather than not at all.
        _guard.report("recording an API change in the local store", exc)
        return list(reported)
    return mine


def _emit(invocation: Invocation, key: Key, kind: str, old: str, new: str, now: int) -> None:
    invocation.span.add_event(
        sc.EVENT_API_CHANGE,
        {sc.API_CHANGE_KIND: kind, sc.API_CHANGE_OLD: old, sc.API_CHANGE_NEW: new},
        timestamp=now,
    )
    # The counter the Grafana dashboards and the OteliteApiChangeSeen alert read.
    attrs = {sc.GEN_AI_OPERATION_NAME: key[1]}
    if key[2]:
        attrs[sc.GEN_AI_REQUEST_MODEL] = key[2]
    _metrics.record_api_change(invocation.active.meter, key[0], kind, attrs)


# --- reading the changes back (``otelite changes``) -------------------------------------


class Change:
    """One recorded change, as ``otelite changes`` lists it."""

    __slots__ = ("at_ns", "kind", "model", "new", "old", "operation", "provider", "trace_id")

    def __init__(
        self,
        at_ns: int,
        provider: str,
        operation: str,
        model: str,
        kind: str,
        old: str,
        new: str,
        trace_id: Optional[str],
    ) -> None:
        self.at_ns = at_ns
        self.provider = provider
        self.operation = operation
        self.model = model
        self.kind = kind
        self.old = old
        self.new = new
        self.trace_id = trace_id

    def as_dict(self) -> dict[str, Any]:
        """The change as JSON-ready values."""
        return {name: getattr(self, name) for name in sorted(self.__slots__)}


def read_changes(conn: sqlite3.Connection, since_ns: Optional[int] = None) -> list[Change]:
    """The changes recorded in a store, oldest first (none when the store has no table yet)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'api_changes'"
    ).fetchone()
    if not exists:
        return []
    rows = conn.execute(
        "SELECT at_ns, provider, operation, model, kind, old, new, trace_id FROM api_changes "
        "WHERE at_ns >= ? ORDER BY at_ns, id",
        (since_ns if since_ns is not None else 0,),
    ).fetchall()
    return [Change(*row) for row in rows]
