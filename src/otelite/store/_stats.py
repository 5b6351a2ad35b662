"""``otelite stats`` and ``/stats``: aggregates of LLM calls, from the rollups or the spans.

One function, :func:`stats`, serves ``LocalStore.stats`` (the CLI) and the web view's
stats page, so both show the same numbers for the same query.

Grouped and filtered by keys the hourly rollups hold (model, provider, operation,
service, service.version, prompt, traffic, day, hour), a window of more than
``EXACT_UP_TO`` calls is read from the rollup rows of its whole hours, plus the spans of
its first, partial hour: calls, errors, tokens, cost and the unpriced and estimated
counts are exact; latency and time-to-first-chunk percentiles come from logarithmic
buckets, within 2 % (``_rollup.ACCURACY``) of the exact nearest-rank value. Keys with
many values (user, session, geo), a smaller window, or a store without rollups (an older
schema, read-only) are computed from the spans, exactly.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from otelite.store import _rollup
from otelite.store._records import LLM_OPERATIONS, STATS_KEYS, StatsRow, _Group

EXACT_UP_TO = 2000  # windows with at most this many calls are computed from the spans

# The keys the rollup holds, as SQL over rollup_keys `s` and resources `r`.
_ROLLUP_KEYS = {
    key: ("s.traffic" if key == "traffic" else STATS_KEYS[key])
    for key in ("model", "provider", "operation", "service", "service.version", "prompt", "traffic")
}
_TIME_KEYS = {"day": "%Y-%m-%d", "hour": "%Y-%m-%d %H:00"}


def where_sql(key: str, column: Optional[str] = None) -> str:
    """The SQL of a ``where`` filter; a prompt without ``@VERSION`` matches its every version."""
    if key == "prompt":
        return (
            "(s.prompt = ? OR (instr(?, '@') = 0 AND "
            "substr(s.prompt, 1, length(?) + 1) = ? || '@'))"
        )
    return f"{column or STATS_KEYS[key]} = ?"


def where_params(key: str, value: str) -> list[Any]:
    """The parameters of :func:`where_sql`."""
    return [value] * 4 if key == "prompt" else [value]


def check_keys(keys: Sequence[str], where: Mapping[str, str]) -> None:
    """Raise ValueError naming an unknown ``--by`` or ``--where`` key."""
    unknown = [k for k in keys if k not in STATS_KEYS]
    if not keys or unknown:
        raise ValueError(
            f"unknown --by key {unknown[0] if unknown else '(none)'!r}; "
            f"valid keys: {', '.join(STATS_KEYS)}"
        )
    for key in where:
        if key not in STATS_KEYS:
            raise ValueError(f"unknown --where key {key!r}; valid keys: {', '.join(STATS_KEYS)}")


def stats(
    conn: sqlite3.Connection,
    keys: Sequence[str],
    *,
    since_ns: Optional[int] = None,
    where: Optional[Mapping[str, str]] = None,
    series: Optional[str] = None,
) -> tuple[list[StatsRow], list[StatsRow]]:
    """Rows grouped by ``keys`` (most calls first) and, with ``series`` (``"day"`` or
    ``"hour"``), rows per time bucket (in time order), in one read of the store."""
    filters = dict(where or {})
    check_keys(keys, filters)
    if all(k in _ROLLUP_KEYS or k in _TIME_KEYS for k in [*keys, *filters]) and (
        _rollup.has_rollup(conn)
    ):
        found = _from_rollup(conn, keys, since_ns, filters, series)
        if found is not None:
            return found
    return _from_spans(conn, keys, since_ns, filters, series)


def _sorted(groups: Mapping[tuple[Any, ...], Any]) -> list[StatsRow]:
    out: list[StatsRow] = [group.row(key) for key, group in groups.items()]
    out.sort(key=lambda r: (-r.calls, [str(k) for k in r.key]))
    return out


def _in_time_order(groups: Mapping[tuple[Any, ...], Any]) -> list[StatsRow]:
    out: list[StatsRow] = [group.row(key) for key, group in groups.items()]
    out.sort(key=lambda r: str(r.key[0]))
    return out


def _spans_query(
    keys: Sequence[str],
    since_ns: Optional[int],
    until_ns: Optional[int],
    where: Mapping[str, str],
    series: Optional[str],
) -> tuple[str, list[Any]]:
    exprs = [STATS_KEYS[k] for k in keys]
    if series is not None:
        exprs.append(STATS_KEYS[series])
    filters = [f"s.operation IN ({','.join('?' for _ in LLM_OPERATIONS)})"]
    params: list[Any] = list(LLM_OPERATIONS)
    if since_ns is not None:
        filters.append("s.start_time_ns >= ?")
        params.append(since_ns)
    if until_ns is not None:
        filters.append("s.start_time_ns < ?")
        params.append(until_ns)
    for key, value in where.items():
        filters.append(where_sql(key))
        params.extend(where_params(key, value))
    uses_resource = any(e.startswith("r.") for e in exprs) or any(
        STATS_KEYS[k].startswith("r.") for k in where
    )
    join = "LEFT JOIN resources r ON r.id = s.resource_id " if uses_resource else ""
    sql = f"""SELECT {", ".join(exprs)},
                     s.end_time_ns - s.start_time_ns, s.ttfc_s, s.status_code = 'ERROR',
                     s.input_tokens, s.output_tokens, s.cost_usd, s.usage_estimated, s.unpriced
              FROM spans s {join}WHERE {" AND ".join(filters)}"""
    return sql, params


def _from_spans(
    conn: sqlite3.Connection,
    keys: Sequence[str],
    since_ns: Optional[int],
    where: Mapping[str, str],
    series: Optional[str],
) -> tuple[list[StatsRow], list[StatsRow]]:
    """Exact aggregates: one pass over the matching calls, percentiles from every value."""
    sql, params = _spans_query(keys, since_ns, None, where, series)
    width = len(keys)
    groups: dict[tuple[Any, ...], _Group] = {}
    buckets: dict[tuple[Any, ...], _Group] = {}
    if series is None:
        for row in conn.execute(sql, params):
            key = tuple(row[:width])
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Group()
            group.add(row[width:])
        return _sorted(groups), []
    for row in conn.execute(sql, params):
        values = row[width + 1 :]
        for table, key in ((groups, tuple(row[:width])), (buckets, (row[width],))):
            group = table.get(key)
            if group is None:
                group = table[key] = _Group()
            group.add(values)
    return _sorted(groups), _in_time_order(buckets)


class _Sketch:
    """Running totals of one stats group whose latencies are kept as bucket counts."""

    __slots__ = (
        "calls",
        "cost",
        "errors",
        "estimated",
        "firsts",
        "input_tokens",
        "latency",
        "output_tokens",
        "priced",
        "unpriced",
    )

    def __init__(self) -> None:
        self.calls = self.errors = self.input_tokens = self.output_tokens = 0
        self.priced = self.estimated = self.unpriced = 0
        self.cost = 0.0
        self.latency: dict[int, int] = {}
        self.firsts: dict[int, int] = {}

    def add_sums(self, bucket: int, sums: Sequence[Any]) -> None:
        calls, errors, tokens_in, tokens_out, cost, priced, estimated, unpriced = sums
        self.calls += calls
        self.errors += errors
        self.input_tokens += tokens_in
        self.output_tokens += tokens_out
        self.cost += cost
        self.priced += priced
        self.estimated += estimated
        self.unpriced += unpriced
        self.latency[bucket] = self.latency.get(bucket, 0) + calls

    def add_first(self, bucket: int, calls: int) -> None:
        self.firsts[bucket] = self.firsts.get(bucket, 0) + calls

    def row(self, key: tuple[Any, ...]) -> StatsRow:
        return StatsRow(
            key=key,
            calls=self.calls,
            errors=self.errors,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_usd=self.cost if self.priced else None,
            p50_ms=_percentile(self.latency, 50) / 1e6,
            p95_ms=_percentile(self.latency, 95) / 1e6,
            p99_ms=_percentile(self.latency, 99) / 1e6,
            p50_ttfc_ms=_percentile(self.firsts, 50) * 1000 if self.firsts else None,
            estimated_share=self.estimated / self.calls if self.calls else 0.0,
            unpriced=self.unpriced,
        )


def _percentile(counts: Mapping[int, int], percent: float) -> float:
    """The nearest-rank percentile (as ``otelite._units.percentile``) of bucketed values."""
    total = sum(counts.values())
    if not total:
        return 0.0
    rank = max(1, math.ceil(percent / 100 * total))
    seen = 0
    for index in sorted(counts):
        seen += counts[index]
        if seen >= rank:
            return _rollup.bucket_value(index)
    return _rollup.bucket_value(max(counts))  # pragma: no cover - rank <= total


def _hour_label(hour: int, form: str, cache: dict[tuple[int, str], str]) -> str:
    label = cache.get((hour, form))
    if label is None:
        label = cache[(hour, form)] = time.strftime(form, time.gmtime(hour * 3600))
    return label


def _from_rollup(
    conn: sqlite3.Connection,
    keys: Sequence[str],
    since_ns: Optional[int],
    where: Mapping[str, str],
    series: Optional[str],
) -> Optional[tuple[list[StatsRow], list[StatsRow]]]:
    """The aggregates from the rollup rows (and the spans of a partial first hour or day); None
    when the window holds ``EXACT_UP_TO`` calls or fewer (the spans are read then)."""
    # The rollup keys that match the filters, with their values of the requested keys.
    fixed = [k for k in keys if k not in _TIME_KEYS]
    filters: list[str] = ["1 = 1"]
    params: list[Any] = []
    for key, value in where.items():
        if key in _TIME_KEYS:
            continue  # compared per hour below
        filters.append(where_sql(key, _ROLLUP_KEYS[key]))
        params.extend(where_params(key, value))
    selected = "".join(f", {_ROLLUP_KEYS[k]}" for k in fixed)
    key_values = {
        row[0]: row[1:]
        for row in conn.execute(
            f"SELECT s.id{selected} FROM rollup_keys s LEFT JOIN resources r ON r.id = s.resource_id "
            f"WHERE {' AND '.join(filters)}",
            params,
        )
    }
    time_filters = {k: v for k, v in where.items() if k in _TIME_KEYS}
    needs_hour = "hour" in keys or series == "hour" or "hour" in time_filters
    needs_day = "day" in keys or series == "day" or "day" in time_filters
    # Whole hours come from hourly rows (from `first_hour`), whole old days from daily rows
    # (from `first_day`), the calls before `head_end_ns` from the spans. A partial first day
    # that was merged into daily rows is read from the spans.
    first_hour = -(2**40) if since_ns is None else -(-since_ns // _rollup.HOUR_NS)
    head_end_ns = first_hour * _rollup.HOUR_NS
    first_day = -(-first_hour // 24)

    def has_daily(day: int, exact_day: bool) -> bool:
        op = "=" if exact_day else ">="
        sql = f"SELECT 1 FROM rollup_calls_daily WHERE day {op} ? LIMIT 1"
        return conn.execute(sql, (day,)).fetchone() is not None

    if needs_hour and has_daily(first_hour // 24, exact_day=False):
        return None  # hours of merged days are gone: the spans have them
    if first_hour % 24 and has_daily(first_hour // 24, exact_day=True):
        first_hour = first_day * 24
        head_end_ns = first_hour * _rollup.HOUR_NS
    # Hours are read one by one only when a key or the series needs them; days group in SQL.
    hour_t = "hour" if needs_hour else "hour / 24 * 24" if needs_day else "0"
    day_t = "day * 24" if needs_day else "0"
    only_keys = ""
    key_params: list[Any] = []
    if where and len(key_values) < 500:
        only_keys = f" AND key_id IN ({','.join('?' for _ in key_values)})"
        key_params = list(key_values)
    range_params = [first_hour, *key_params, first_hour, *key_params, first_day, *key_params]
    labels: dict[tuple[int, str], str] = {}
    groups: dict[tuple[Any, ...], _Sketch] = {}
    buckets: dict[tuple[Any, ...], _Sketch] = {}

    def targets(key_id: int, hour: int) -> Optional[list[_Sketch]]:
        values = key_values.get(key_id)
        if values is None:
            return None
        for key, value in time_filters.items():
            if _hour_label(hour, _TIME_KEYS[key], labels) != value:
                return None
        it = iter(values)
        group_key = tuple(
            _hour_label(hour, _TIME_KEYS[k], labels) if k in _TIME_KEYS else next(it) for k in keys
        )
        found = [groups.get(group_key) or groups.setdefault(group_key, _Sketch())]
        if series is not None:
            bucket_key = (_hour_label(hour, _TIME_KEYS[series], labels),)
            found.append(buckets.get(bucket_key) or buckets.setdefault(bucket_key, _Sketch()))
        return found

    cache: dict[tuple[int, int], Optional[list[_Sketch]]] = {}
    columns = "calls, errors, input_tokens, output_tokens, cost_usd, priced, estimated, unpriced"
    for row in conn.execute(
        f"""SELECT key_id, t, latency, SUM(calls), SUM(errors), SUM(input_tokens),
                   SUM(output_tokens), SUM(cost_usd), SUM(priced), SUM(estimated), SUM(unpriced)
            FROM (SELECT key_id, {hour_t} AS t, latency, {columns} FROM rollup_calls
                  WHERE hour >= ?{only_keys}
                  UNION ALL
                  SELECT key_id, {hour_t} AS t, latency, {columns} FROM rollup_calls_log
                  WHERE hour >= ?{only_keys}
                  UNION ALL
                  SELECT key_id, {day_t} AS t, latency, {columns} FROM rollup_calls_daily
                  WHERE day >= ?{only_keys})
            GROUP BY key_id, t, latency""",
        range_params,
    ):
        slot = (row[0], row[1])
        if slot not in cache:
            cache[slot] = targets(row[0], row[1])
        found = cache[slot]
        if found is not None:
            values = row[3:]
            for sketch in found:
                sketch.add_sums(row[2], values)
    for row in conn.execute(
        f"""SELECT key_id, t, bucket, SUM(calls)
            FROM (SELECT key_id, {hour_t} AS t, bucket, calls FROM rollup_ttfc
                  WHERE hour >= ?{only_keys}
                  UNION ALL
                  SELECT key_id, {hour_t} AS t, bucket, calls FROM rollup_ttfc_log
                  WHERE hour >= ?{only_keys}
                  UNION ALL
                  SELECT key_id, {day_t} AS t, bucket, calls FROM rollup_ttfc_daily
                  WHERE day >= ?{only_keys})
            GROUP BY key_id, t, bucket""",
        range_params,
    ):
        slot = (row[0], row[1])
        if slot not in cache:
            cache[slot] = targets(row[0], row[1])
        found = cache[slot]
        if found is not None:
            for sketch in found:
                sketch.add_first(row[2], row[3])
    # The first, partial hour (or day) of the window: its calls, from the spans.
    if since_ns is not None and since_ns < head_end_ns:
        sql, sql_params = _spans_query(keys, since_ns, head_end_ns, where, series)
        width = len(keys)
        for row in conn.execute(sql, sql_params):
            duration, ttfc, failed, tokens_in, tokens_out, cost, estimated, unpriced = row[
                width + (0 if series is None else 1) :
            ]
            sums = (
                1,
                int(failed),
                tokens_in or 0,
                tokens_out or 0,
                cost or 0.0,
                0 if cost is None else 1,
                1 if estimated else 0,
                1 if unpriced else 0,
            )
            latency = _rollup.bucket(duration)
            found = [groups.setdefault(tuple(row[:width]), _Sketch())]
            if series is not None:
                found.append(buckets.setdefault((row[width],), _Sketch()))
            for sketch in found:
                sketch.add_sums(latency, sums)
                if ttfc is not None:
                    sketch.add_first(_rollup.bucket(ttfc), 1)
    if sum(g.calls for g in groups.values()) <= EXACT_UP_TO:
        return None
    return _sorted(groups), _in_time_order(buckets) if series is not None else []
