"""Hourly rollups of LLM calls: what ``otelite stats`` and ``/stats`` read for wide windows.

The writer aggregates each batch it stores in Python and appends the sums, in the
same transaction as the spans, to a log of rows keyed by the hour of the call's start
and the call's low-cardinality keys (operation, provider, model, prompt, resource: so service and
service version, traffic). A row holds calls, errors, token and cost sums and the
counts of unpriced and estimated calls for one latency bucket; time to first chunk has
its own bucket table. Buckets are logarithmic: bucket ``i`` holds the values in
``(GAMMA**(i-1), GAMMA**i]`` and stands for ``2 * GAMMA**i / (GAMMA + 1)``, which is
within ``ACCURACY`` (2 %) of every value in it; a percentile read from buckets is so
within 2 % of the exact one (nearest rank, like ``otelite._units.percentile``).

Every ``COMPACT_EVERY`` calls a writer merges the log into the hourly rows with SQL
upserts, in a transaction of its own (appending dirties a page or two per batch where
upserting into hourly rows spread over a month dirtied one page per row); readers add
what the log holds. Several processes writing one store stay correct: each holds
SQLite's write lock for its transactions. The hourly rows of days
more than ``COMPACT_AFTER_DAYS`` old are merged into daily rows now and then
(:func:`compact`): a month is read from a few daily rows, not from every hour's. A
late call for such a day adds an hourly row again, merged at the next compaction.
Pruning rebuilds the days it touched from the spans left (:func:`rebuild`), as does the
migration that adds the tables to an older store (all days, once).
"""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any, Optional

LLM_OPERATIONS = ("chat", "text_completion", "generate_content", "embeddings")
HOUR_NS = 3600 * 10**9
ACCURACY = 0.02  # fixed by the schema: stored bucket numbers depend on it
GAMMA = (1 + ACCURACY) / (1 - ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
ZERO_BUCKET = -(10**6)  # durations of 0 (or less): they stand for 0

SCHEMA = """
CREATE TABLE IF NOT EXISTS rollup_keys (
    id          INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    operation   TEXT,
    provider    TEXT,
    model       TEXT,
    prompt      TEXT,
    resource_id INTEGER,
    traffic
);
CREATE TABLE IF NOT EXISTS rollup_calls (
    hour          INTEGER NOT NULL,
    key_id        INTEGER NOT NULL,
    latency       INTEGER NOT NULL,
    calls         INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd      REAL NOT NULL,
    priced        INTEGER NOT NULL,
    estimated     INTEGER NOT NULL,
    unpriced      INTEGER NOT NULL,
    PRIMARY KEY (hour, key_id, latency)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_ttfc (
    hour   INTEGER NOT NULL,
    key_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    calls  INTEGER NOT NULL,
    PRIMARY KEY (hour, key_id, bucket)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_calls_daily (
    day           INTEGER NOT NULL,
    key_id        INTEGER NOT NULL,
    latency       INTEGER NOT NULL,
    calls         INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd      REAL NOT NULL,
    priced        INTEGER NOT NULL,
    estimated     INTEGER NOT NULL,
    unpriced      INTEGER NOT NULL,
    PRIMARY KEY (day, key_id, latency)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_ttfc_daily (
    day    INTEGER NOT NULL,
    key_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    calls  INTEGER NOT NULL,
    PRIMARY KEY (day, key_id, bucket)
) WITHOUT ROWID;
-- What writers add, appended (a batch dirties a page or two, not one page per row),
-- merged into the hourly rows every so often (compact). Readers read it too.
CREATE TABLE IF NOT EXISTS rollup_calls_log (
    hour          INTEGER NOT NULL,
    key_id        INTEGER NOT NULL,
    latency       INTEGER NOT NULL,
    calls         INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd      REAL NOT NULL,
    priced        INTEGER NOT NULL,
    estimated     INTEGER NOT NULL,
    unpriced      INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rollup_ttfc_log (
    hour   INTEGER NOT NULL,
    key_id INTEGER NOT NULL,
    bucket INTEGER NOT NULL,
    calls  INTEGER NOT NULL
);
"""

# Hours older than this many days are merged into daily rows (``compact``): windows of up
# to a week read hourly rows only; wider ones read far fewer rows.
COMPACT_AFTER_DAYS = 8
COMPACT_EVERY = 20_000  # calls a writer stores between two compactions

_FOLD = [
    """INSERT INTO rollup_calls (hour, key_id, latency, calls, errors, input_tokens,
                                 output_tokens, cost_usd, priced, estimated, unpriced)
       SELECT hour, key_id, latency, SUM(calls), SUM(errors), SUM(input_tokens),
              SUM(output_tokens), SUM(cost_usd), SUM(priced), SUM(estimated), SUM(unpriced)
       FROM rollup_calls_log WHERE 1 GROUP BY hour, key_id, latency
       ON CONFLICT (hour, key_id, latency) DO UPDATE SET
           calls = calls + excluded.calls,
           errors = errors + excluded.errors,
           input_tokens = input_tokens + excluded.input_tokens,
           output_tokens = output_tokens + excluded.output_tokens,
           cost_usd = cost_usd + excluded.cost_usd,
           priced = priced + excluded.priced,
           estimated = estimated + excluded.estimated,
           unpriced = unpriced + excluded.unpriced""",
    "DELETE FROM rollup_calls_log",
    """INSERT INTO rollup_ttfc (hour, key_id, bucket, calls)
       SELECT hour, key_id, bucket, SUM(calls) FROM rollup_ttfc_log WHERE 1
       GROUP BY hour, key_id, bucket
       ON CONFLICT (hour, key_id, bucket) DO UPDATE SET calls = calls + excluded.calls""",
    "DELETE FROM rollup_ttfc_log",
]

_COMPACT = [
    """INSERT INTO rollup_calls_daily (day, key_id, latency, calls, errors, input_tokens,
                                       output_tokens, cost_usd, priced, estimated, unpriced)
       SELECT hour / 24, key_id, latency, SUM(calls), SUM(errors), SUM(input_tokens),
              SUM(output_tokens), SUM(cost_usd), SUM(priced), SUM(estimated), SUM(unpriced)
       FROM rollup_calls WHERE hour < ? GROUP BY hour / 24, key_id, latency
       ON CONFLICT (day, key_id, latency) DO UPDATE SET
           calls = calls + excluded.calls,
           errors = errors + excluded.errors,
           input_tokens = input_tokens + excluded.input_tokens,
           output_tokens = output_tokens + excluded.output_tokens,
           cost_usd = cost_usd + excluded.cost_usd,
           priced = priced + excluded.priced,
           estimated = estimated + excluded.estimated,
           unpriced = unpriced + excluded.unpriced""",
    "DELETE FROM rollup_calls WHERE hour < ?",
    """INSERT INTO rollup_ttfc_daily (day, key_id, bucket, calls)
       SELECT hour / 24, key_id, bucket, SUM(calls) FROM rollup_ttfc WHERE hour < ?
       GROUP BY hour / 24, key_id, bucket
       ON CONFLICT (day, key_id, bucket) DO UPDATE SET calls = calls + excluded.calls""",
    "DELETE FROM rollup_ttfc WHERE hour < ?",
]


def fold(conn: sqlite3.Connection) -> None:
    """Merge the appended rows into the hourly rows; call inside a write transaction."""
    for statement in _FOLD:
        conn.execute(statement)


def compact(conn: sqlite3.Connection, now_ns: int) -> None:
    """Merge the appended rows into the hourly rows, and the hourly rows of the days older
    than ``COMPACT_AFTER_DAYS`` (before the day of ``now_ns``) into daily rows; call inside
    a write transaction."""
    fold(conn)
    before_hour = (now_ns // HOUR_NS // 24 - COMPACT_AFTER_DAYS) * 24
    for statement in _COMPACT:
        conn.execute(statement, (before_hour,))


_APPEND_CALLS = "INSERT INTO rollup_calls_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_APPEND_TTFC = "INSERT INTO rollup_ttfc_log VALUES (?, ?, ?, ?)"

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode

Dims = tuple[Any, ...]  # operation, provider, model, prompt, resource_id, traffic


def bucket(value: float) -> int:
    """The logarithmic bucket of a positive duration (any unit); 0 and less: ``ZERO_BUCKET``."""
    if value <= 0:
        return ZERO_BUCKET
    return math.ceil(math.log(value) / _LOG_GAMMA)


def bucket_value(index: int) -> float:
    """The value bucket ``index`` stands for (within ``ACCURACY`` of each value in it)."""
    if index == ZERO_BUCKET:
        return 0.0
    return 2 * GAMMA**index / (GAMMA + 1)


def traffic_value(value: Any) -> Any:
    """The ``traffic`` stats key of an ``otelite.traffic`` attribute value, as SQLite's
    ``COALESCE(json_extract(attributes, ...), 'app')`` reads it from the stored JSON."""
    if value is None:
        return "app"
    if isinstance(value, (str, int, float)):
        return int(value) if isinstance(value, bool) else value
    return _encode(list(value) if isinstance(value, tuple) else value)


class Batch:
    """The rollup rows of some LLM calls, summed in Python before they are upserted."""

    __slots__ = ("calls", "firsts")

    def __init__(self) -> None:
        # (hour, dims, latency bucket) -> [calls, errors, in, out, cost, priced, estimated, unpriced]
        self.calls: dict[tuple[int, Dims, int], list[Any]] = {}
        self.firsts: dict[tuple[int, Dims, int], int] = {}

    def add(
        self,
        start: int,
        end: int,
        failed: bool,
        dims: Dims,
        tokens_in: Optional[int],
        tokens_out: Optional[int],
        cost: Optional[float],
        estimated: Any,
        unpriced: Any,
        ttfc: Optional[float],
    ) -> None:
        """Count one call."""
        hour = start // HOUR_NS
        duration = end - start
        key = (
            hour,
            dims,
            math.ceil(math.log(duration) / _LOG_GAMMA) if duration > 0 else ZERO_BUCKET,
        )
        cell = self.calls.get(key)
        if cell is None:
            self.calls[key] = [
                1,
                1 if failed else 0,
                tokens_in or 0,
                tokens_out or 0,
                cost or 0.0,
                0 if cost is None else 1,
                1 if estimated else 0,
                1 if unpriced else 0,
            ]
        else:
            cell[0] += 1
            if failed:
                cell[1] += 1
            cell[2] += tokens_in or 0
            cell[3] += tokens_out or 0
            if cost is not None:
                cell[4] += cost
                cell[5] += 1
            if estimated:
                cell[6] += 1
            if unpriced:
                cell[7] += 1
        if ttfc is not None:
            first = (hour, dims, bucket(ttfc))
            self.firsts[first] = self.firsts.get(first, 0) + 1

    def add_row(self, row: tuple[Any, ...], traffic: Any) -> None:
        """Count one call from the columns of its spans row (see ``_schema.SPAN_COLUMNS``)."""
        self.add(
            row[5],
            row[6],
            row[7] == "ERROR",
            (row[11], row[12], row[13], row[23], row[9], traffic_value(traffic)),
            row[16],
            row[17],
            row[18],
            row[21],
            row[22],
            row[20],
        )

    def write(self, conn: sqlite3.Connection, key_ids: dict[Dims, int]) -> None:
        """Append these sums to the store's rollup (inside the caller's write transaction).

        ``key_ids`` caches the ids of ``rollup_keys``; the caller clears it when the
        transaction is rolled back (ids it inserted are gone then).
        """
        if not self.calls:
            return
        ids = key_ids
        for dims in {k[1] for k in self.calls}:
            if dims not in ids:
                ids[dims] = _key_id(conn, dims)
        conn.executemany(
            _APPEND_CALLS,
            [
                (hour, ids[dims], latency, *cell)
                for (hour, dims, latency), cell in self.calls.items()
            ],
        )
        if self.firsts:
            conn.executemany(
                _APPEND_TTFC,
                [(hour, ids[dims], b, n) for (hour, dims, b), n in self.firsts.items()],
            )


def _key_id(conn: sqlite3.Connection, dims: Dims) -> int:
    fingerprint = _encode(list(dims))
    conn.execute(
        "INSERT OR IGNORE INTO rollup_keys (fingerprint, operation, provider, model, prompt, "
        "resource_id, traffic) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (fingerprint, *dims),
    )
    row = conn.execute("SELECT id FROM rollup_keys WHERE fingerprint = ?", (fingerprint,))
    return int(row.fetchone()[0])


def has_rollup(conn: sqlite3.Connection) -> bool:
    """Whether the store has the rollup tables (schema version 3 and later)."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'rollup_calls'"
    ).fetchone()
    return row is not None


_ROLLUP_COLUMNS = (
    "trace_id, span_id, NULL, NULL, NULL, start_time_ns, end_time_ns, status_code, NULL, "
    "resource_id, NULL, operation, provider, model, NULL, NULL, input_tokens, output_tokens, "
    "cost_usd, NULL, ttfc_s, usage_estimated, unpriced, prompt, "
    "json_extract(attributes, '$.\"otelite.traffic\"')"
)


def rebuild(
    conn: sqlite3.Connection, first_hour: Optional[int] = None, last_hour: Optional[int] = None
) -> None:
    """Recompute the rollup rows of the days holding the hours ``first_hour..last_hour`` (all
    days when not given) from the spans stored, as hourly rows; call inside a write
    transaction."""
    if first_hour is not None:
        first_hour = first_hour // 24 * 24
    if last_hour is not None:
        last_hour = last_hour // 24 * 24 + 23
    lo = -(2**62) if first_hour is None else first_hour
    hi = 2**62 if last_hour is None else last_hour
    for table in ("rollup_calls", "rollup_ttfc", "rollup_calls_log", "rollup_ttfc_log"):
        conn.execute(f"DELETE FROM {table} WHERE hour BETWEEN ? AND ?", (lo, hi))
    for table in ("rollup_calls_daily", "rollup_ttfc_daily"):
        conn.execute(f"DELETE FROM {table} WHERE day BETWEEN ? AND ?", (lo // 24, hi // 24))
    ops = ",".join("?" for _ in LLM_OPERATIONS)
    filters = [f"operation IN ({ops})"]
    params: list[Any] = list(LLM_OPERATIONS)
    if first_hour is not None:
        filters.append("start_time_ns >= ?")
        params.append(first_hour * HOUR_NS)
    if last_hour is not None:
        filters.append("start_time_ns < ?")
        params.append((last_hour + 1) * HOUR_NS)
    batch = Batch()
    for row in conn.execute(
        f"SELECT {_ROLLUP_COLUMNS} FROM spans WHERE {' AND '.join(filters)}", params
    ):
        batch.add_row(row, row[24])
    batch.write(conn, {})
    fold(conn)
