"""The store's hourly rollups of LLM calls: kept by the writer, pruning and migration, and
read by `otelite stats` and /stats with the same sums as the exact scan of the spans."""

from __future__ import annotations

import contextlib
import io
import json
import random
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

import otelite.ui._html
from otelite import cli
from otelite.store import LocalStore, StatsRow, _prune, _rollup, _schema, _stats, _writer
from otelite.ui import App
from test_ui import parse

T0 = 1_767_225_600_000_000_000  # 2026-01-01 00:00:00 UTC
HOUR = 3600 * 10**9
SCOPE = InstrumentationScope("otelite", "0.1.0")
RESOURCES = [
    Resource({"service.name": "api", "service.version": "1.0"}),
    Resource({"service.name": "api", "service.version": "1.1"}),
    Resource({"service.name": "worker"}),
]
MODELS = ["gpt-4o", "gpt-4o-mini", "o3-mini", None]
PROMPTS = [("qa", 1), ("qa", 2), ("summary", 1), None]
ROLLUP_KEYS = ["model", "provider", "operation", "service", "service.version", "prompt", "traffic"]


def calls(n: int, seed: int, first_ns: int = T0, hours: int = 30) -> list[ReadableSpan]:
    """``n`` traces of a root span and one LLM call each, spread over ``hours`` hours."""
    rng = random.Random(seed)
    spans = []
    for i in range(n):
        start = first_ns + rng.randrange(hours * HOUR)
        trace_id = rng.getrandbits(128) | 1
        root = SpanContext(trace_id, rng.getrandbits(64) | 1, False, TraceFlags(1))
        ctx = SpanContext(trace_id, rng.getrandbits(64) | 1, False, TraceFlags(1))
        resource = RESOURCES[i % len(RESOURCES)]
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": rng.choice(["chat", "chat", "embeddings", "text_completion"]),
            "gen_ai.provider.name": rng.choice(["openai", "azure.ai.openai"]),
            "user.id": f"u-{rng.randrange(50)}",
        }
        model = rng.choice(MODELS)
        if model is not None:
            attrs["gen_ai.request.model"] = model
        prompt = rng.choice(PROMPTS)
        if prompt is not None:
            attrs["gen_ai.prompt.name"], attrs["gen_ai.prompt.version"] = prompt
        traffic = rng.choice([None, None, "evaluation", "canary"])
        if traffic is not None:
            attrs["otelite.traffic"] = traffic
        failed = rng.random() < 0.1
        if rng.random() < 0.9:
            attrs["gen_ai.usage.input_tokens"] = rng.randrange(1, 5000)
            attrs["gen_ai.usage.output_tokens"] = rng.randrange(1, 900)
        if rng.random() < 0.8:
            attrs["gen_ai.usage.cost"] = rng.randrange(1, 10**6) / 1e9
        elif rng.random() < 0.5:
            attrs["otelite.cost.unpriced"] = True
        if rng.random() < 0.2:
            attrs["otelite.usage.estimated"] = True
        if rng.random() < 0.4:
            attrs["gen_ai.response.time_to_first_chunk"] = rng.lognormvariate(-1.5, 0.8)
        duration = int(rng.lognormvariate(20.5, 1.0))  # about 0.8 s, from ms to tens of s
        spans.append(
            ReadableSpan(
                name="request",
                context=root,
                parent=None,
                resource=resource,
                attributes={"user.id": attrs["user.id"]},
                kind=SpanKind.SERVER,
                status=Status(StatusCode.UNSET),
                start_time=start,
                end_time=start + duration + 10**6,
                instrumentation_scope=SCOPE,
            )
        )
        spans.append(
            ReadableSpan(
                name="chat",
                context=ctx,
                parent=root,
                resource=resource,
                attributes=attrs,
                kind=SpanKind.CLIENT,
                status=Status(StatusCode.ERROR if failed else StatusCode.UNSET),
                start_time=start,
                end_time=start + duration,
                instrumentation_scope=SCOPE,
            )
        )
    return spans


def write(path: Path, spans: Sequence[ReadableSpan], batch: int = 300) -> None:
    writer = _writer.SpanWriter(path)
    try:
        for first in range(0, len(spans), batch):
            writer.write(spans[first : first + batch])
    finally:
        writer.close()


def exact(
    path: Path,
    keys: Sequence[str],
    since_ns: Optional[int] = None,
    series: Optional[str] = None,
) -> tuple[list[StatsRow], list[StatsRow]]:
    conn = _schema.open_for_reading(path)
    try:
        return _stats._from_spans(conn, keys, since_ns, {}, series)
    finally:
        conn.close()


def from_rollup(
    path: Path,
    keys: Sequence[str],
    since_ns: Optional[int] = None,
    series: Optional[str] = None,
    where: Optional[dict[str, str]] = None,
) -> tuple[list[StatsRow], list[StatsRow]]:
    conn = _schema.open_for_reading(path)
    try:
        found = _stats._from_rollup(conn, keys, since_ns, where or {}, series)
    finally:
        conn.close()
    assert found is not None, "the window is small enough to be read from the spans"
    return found


def assert_same_sums(got: Sequence[StatsRow], want: Sequence[StatsRow]) -> None:
    """Same groups, same calls, errors, tokens, cost (to the last float digits), shares and
    unpriced counts; percentiles within the rollup's accuracy of the exact ones."""
    assert [r.key for r in got] == [r.key for r in want]
    for a, b in zip(got, want):
        assert (a.calls, a.errors, a.input_tokens, a.output_tokens, a.unpriced) == (
            b.calls,
            b.errors,
            b.input_tokens,
            b.output_tokens,
            b.unpriced,
        ), a.key
        assert a.estimated_share == b.estimated_share
        if b.cost_usd is None:
            assert a.cost_usd is None
        else:
            assert a.cost_usd == pytest.approx(b.cost_usd, rel=1e-9, abs=1e-15)
        for approx, value in (
            (a.p50_ms, b.p50_ms),
            (a.p95_ms, b.p95_ms),
            (a.p99_ms, b.p99_ms),
            (a.p50_ttfc_ms, b.p50_ttfc_ms),
        ):
            if value is None:
                assert approx is None
            else:
                assert approx is not None
                assert abs(approx - value) <= _rollup.ACCURACY * value * (1 + 1e-9), (
                    a.key,
                    approx,
                    value,
                )


def rollup_rows(path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rollup per day (hourly and daily rows summed), keyed by key values rather than
    ids, costs rounded: the same whether or not old hours were merged into daily rows."""
    conn = sqlite3.connect(path)
    try:
        keys = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT id, operation, provider, model, prompt, resource_id, traffic FROM rollup_keys"
            )
        }
        sums: dict[tuple[Any, ...], list[Any]] = {}
        for table, day in (
            ("rollup_calls", "hour / 24"),
            ("rollup_calls_log", "hour / 24"),
            ("rollup_calls_daily", "day"),
        ):
            for r in conn.execute(
                f"SELECT {day}, key_id, latency, calls, errors, input_tokens, "
                f"output_tokens, cost_usd, priced, estimated, unpriced FROM {table}"
            ):
                cell = sums.setdefault((r[0], keys[r[1]], r[2]), [0] * 8)
                for i, value in enumerate(r[3:]):
                    cell[i] += value
        firsts: dict[tuple[Any, ...], int] = {}
        for table, day in (
            ("rollup_ttfc", "hour / 24"),
            ("rollup_ttfc_log", "hour / 24"),
            ("rollup_ttfc_daily", "day"),
        ):
            for r in conn.execute(f"SELECT {day}, key_id, bucket, calls FROM {table}"):
                key = (r[0], keys[r[1]], r[2])
                firsts[key] = firsts.get(key, 0) + r[3]
    finally:
        conn.close()
    calls_rows = sorted(((*k, *v[:4], round(v[4], 12), *v[5:]) for k, v in sums.items()), key=repr)
    return calls_rows, sorted(((*k, n) for k, n in firsts.items()), key=repr)


def rebuilt(path: Path, tmp_path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rollup tables of a copy of the store whose rollups are rebuilt from its spans."""
    copy = tmp_path / "rebuilt.db"
    source = sqlite3.connect(path)
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.isolation_level = None
    target.execute("BEGIN")
    target.execute("DELETE FROM rollup_keys")
    _rollup.rebuild(target)  # hourly rows only
    target.execute("COMMIT")
    target.close()
    return rollup_rows(copy)


@pytest.fixture(autouse=True)
def rollup_for_any_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rollup is read for windows of any size here (by default, above 2,000 calls)."""
    monkeypatch.setattr(_stats, "EXACT_UP_TO", 0)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 calls over 30 hours, written in batches of 300 spans."""
    path = tmp_path_factory.mktemp("seeded") / "otelite.db"
    write(path, calls(3000, seed=11))
    return path


@pytest.mark.parametrize("since_ns", [None, T0 + 7 * HOUR + 123_456_789])
def test_rollup_sums_equal_the_scan_and_percentiles_are_within_one_percent(
    seeded: Path, since_ns: Optional[int]
) -> None:
    """For every rollup key, and a window starting mid-hour, the rollup's sums equal the scan's."""
    for key in ROLLUP_KEYS:
        got, _ = from_rollup(seeded, [key], since_ns)
        want, _ = exact(seeded, [key], since_ns)
        assert_same_sums(got, want)
    for keys in (["model", "day"], ["hour"], ["service", "prompt", "traffic"]):
        assert_same_sums(from_rollup(seeded, keys, since_ns)[0], exact(seeded, keys, since_ns)[0])
    got, series = from_rollup(seeded, ["model"], since_ns, series="hour")
    want, want_series = exact(seeded, ["model"], since_ns, series="hour")
    assert_same_sums(got, want)
    assert_same_sums(series, want_series)
    assert len(series) == (30 if since_ns is None else 23)


def test_rollup_percentiles_are_approximate_but_not_exact(seeded: Path) -> None:
    """The bound is met with bucketed values: at least one percentile differs from the exact one."""
    got, want = from_rollup(seeded, ["model"])[0], exact(seeded, ["model"])[0]
    assert any(a.p95_ms != b.p95_ms for a, b in zip(got, want))


def test_where_filters_on_rollup_keys_match_the_scan(seeded: Path) -> None:
    """--where on a rollup key (a prompt name matches all its versions) gives the scan's rows."""
    conn = _schema.open_for_reading(seeded)
    try:
        for where in ({"prompt": "qa"}, {"prompt": "qa@2"}, {"service": "api", "traffic": "app"}):
            got = _stats._from_rollup(conn, ["model"], None, where, None)
            want = _stats._from_spans(conn, ["model"], None, where, None)
            assert got is not None
            assert_same_sums(got[0], want[0])
            assert sum(r.calls for r in want[0]) > 0
    finally:
        conn.close()


def test_stats_reads_the_rollup_over_the_threshold_and_the_spans_below(
    seeded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LocalStore.stats gives exact percentiles for small windows and user keys, rollup ones for wide windows."""
    monkeypatch.setattr(_stats, "EXACT_UP_TO", 2000)
    with LocalStore(seeded) as store:
        assert store.stats(["model"]) == from_rollup(seeded, ["model"])[0]  # 3,000 calls
        assert store.stats(["user"]) == exact(seeded, ["user"])[0]  # user: never in the rollup
        small = store.stats(["model"], where={"prompt": "qa@2"})
        conn = _schema.open_for_reading(seeded)
        try:
            assert small == _stats._from_spans(conn, ["model"], None, {"prompt": "qa@2"}, None)[0]
        finally:
            conn.close()
        assert 0 < sum(r.calls for r in small) <= 2000
        monkeypatch.setattr(_stats, "EXACT_UP_TO", 10**6)
        assert store.stats(["model"]) == exact(seeded, ["model"])[0]


def test_cli_and_stats_page_show_the_same_rollup_numbers(seeded: Path, tmp_path: Path) -> None:
    """`otelite stats --json` and the /stats table agree when both read the rollup."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["stats", "--by", "model,traffic", "--store", str(seeded), "--json"]) == 0
    rows = json.loads(out.getvalue())
    expected = from_rollup(seeded, ["model", "traffic"])[0]
    assert [(r["model"], r["traffic"], r["calls"], r["p95_ms"]) for r in rows] == [
        (r.key[0], r.key[1], r.calls, round(r.p95_ms, 3)) for r in expected
    ]
    app = App(
        seeded, prompts_dir=tmp_path / "p", runs_dir=tmp_path / "r", clock=lambda: T0 + 40 * HOUR
    )
    shown = parse(app.handle("/stats", "by=model,traffic&since=all").body).tables[0][1:]
    assert [cells[:3] + cells[7:9] for cells in shown] == [
        [
            "-" if r.key[0] is None else str(r.key[0]),
            str(r.key[1]),
            str(r.calls),
            otelite.ui._html.ms(r.p50_ms * 1e6),
            otelite.ui._html.ms(r.p95_ms * 1e6),
        ]
        for r in expected
    ]


def test_a_span_written_twice_is_counted_once(tmp_path: Path) -> None:
    """Re-exported spans (and a span twice in one batch) leave the rollup as the spans are."""
    path = tmp_path / "otelite.db"
    spans = calls(400, seed=3)
    write(path, spans)
    write(path, spans[:200] + spans[:10])
    assert rollup_rows(path) == rebuilt(path, tmp_path)
    assert_same_sums(from_rollup(path, ["model"])[0], exact(path, ["model"])[0])


def test_pruning_keeps_the_rollup_equal_to_the_spans_left(tmp_path: Path) -> None:
    """After pruning by age and by size, the rollup is what a rebuild from the spans gives."""
    path = tmp_path / "otelite.db"
    write(path, calls(2500, seed=5))
    deleted = _prune.prune_older_than(path, T0 + 10 * HOUR + 30 * 60 * 10**9)
    assert 0 < deleted < 5000
    assert rollup_rows(path) == rebuilt(path, tmp_path)
    assert_same_sums(from_rollup(path, ["model", "hour"])[0], exact(path, ["model", "hour"])[0])
    size = path.stat().st_size
    assert _prune.prune_to_size(path, size // 2) > 0
    assert rollup_rows(path) == rebuilt(path, tmp_path)
    assert_same_sums(from_rollup(path, ["prompt"])[0], exact(path, ["prompt"])[0])


def _as_version_2(path: Path) -> None:
    conn = sqlite3.connect(path)
    for table in ("rollup_keys", "rollup_calls", "rollup_ttfc"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("UPDATE otelite_meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()


def test_an_older_store_is_read_by_scan_and_backfilled_once_when_written(tmp_path: Path) -> None:
    """A version-2 store: readers scan it; the first writer adds the rollup, filled from its spans."""
    path = tmp_path / "otelite.db"
    spans = calls(2500, seed=21)
    write(path, spans[:3000])
    before = rollup_rows(path)
    _as_version_2(path)
    with LocalStore(path) as store:
        assert store.stats(["model"]) == exact(path, ["model"])[0]
    write(path, spans[3000:])
    conn = sqlite3.connect(path)
    assert conn.execute(
        "SELECT value FROM otelite_meta WHERE key = 'schema_version'"
    ).fetchone() == ("3",)
    conn.close()
    after = rollup_rows(path)
    assert after == rebuilt(path, tmp_path)
    assert sum(r[3] for r in after[0]) == 2500 > sum(r[3] for r in before[0])
    assert_same_sums(from_rollup(path, ["service.version"])[0], exact(path, ["service.version"])[0])


def test_two_writer_processes_keep_the_rollup_right(tmp_path: Path) -> None:
    """Two processes writing one store at once, each merging the rollup log every 200 calls
    while the other appends: the rollup sums every call once."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        from otelite.store import _rollup
        from test_rollup import calls, write
        _rollup.COMPACT_EVERY = 200
        write(Path({str(tmp_path / "otelite.db")!r}), calls(1500, seed=int(sys.argv[1])), batch=100)
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(seed)], stderr=subprocess.PIPE, text=True)
        for seed in (31, 32)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    path = tmp_path / "otelite.db"
    with LocalStore(path) as store:
        assert store.count() == 6000
    conn = sqlite3.connect(path)
    logged = conn.execute("SELECT TOTAL(calls) FROM rollup_calls_log").fetchone()[0]
    conn.close()
    assert logged < 400  # merged as they went: at most the last 200 calls of each process
    assert rollup_rows(path) == rebuilt(path, tmp_path)
    got = from_rollup(path, ["model"])[0]
    assert sum(r.calls for r in got) == 3000
    assert_same_sums(got, exact(path, ["model"])[0])


def test_bucket_values_are_within_the_accuracy() -> None:
    """Every value is within 2 % of the value its bucket stands for; 0 stands for 0."""
    rng = random.Random(1)
    for value in [
        1,
        2,
        10,
        999,
        10**6,
        10**9,
        3.5e10,
        *(rng.lognormvariate(0, 8) for _ in range(2000)),
    ]:
        estimate = _rollup.bucket_value(_rollup.bucket(value))
        assert abs(estimate - value) <= _rollup.ACCURACY * value * (1 + 1e-9)
    assert _rollup.bucket_value(_rollup.bucket(0)) == 0.0
    assert _rollup.bucket_value(_rollup.bucket(-5)) == 0.0


def test_traffic_values_match_what_sqlite_reads_from_the_json() -> None:
    """The traffic key of each attribute type is what json_extract returns for it."""
    conn = sqlite3.connect(":memory:")
    for value in [None, "evaluation", 3, 2.5, True, False, ["a", "b"], ("x",)]:
        text = json.dumps(
            {"otelite.traffic": list(value) if isinstance(value, tuple) else value},
            separators=(",", ":"),
        )
        want = conn.execute(
            "SELECT COALESCE(json_extract(?, '$.\"otelite.traffic\"'), 'app')", (text,)
        ).fetchone()[0]
        assert _rollup.traffic_value(value) == want


DAY = 24 * HOUR


def test_old_days_merged_into_daily_rows_give_the_same_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hours older than 8 days merge into daily rows; windows starting in a merged day (read
    from the spans up to its end), in hourly days, and hour keys (the spans) keep their sums."""
    path = tmp_path / "otelite.db"
    monkeypatch.setattr(_rollup, "COMPACT_EVERY", 500)
    monkeypatch.setattr(_writer.time, "time_ns", lambda: T0 + 20 * DAY)
    write(path, calls(3000, seed=41, hours=20 * 24))
    conn = sqlite3.connect(path)
    daily_days = [r[0] for r in conn.execute("SELECT DISTINCT day FROM rollup_calls_daily")]
    conn.close()
    assert daily_days
    assert max(daily_days) < (T0 + 12 * DAY) // DAY  # only days before day 12 are merged
    assert rollup_rows(path) == rebuilt(path, tmp_path)
    for since_ns in (None, T0 + 3 * DAY + 5 * HOUR + 17, T0 + 15 * DAY + 7 * HOUR + 3):
        got, series = from_rollup(path, ["model", "prompt"], since_ns, series="day")
        want, want_series = exact(path, ["model", "prompt"], since_ns, series="day")
        assert_same_sums(got, want)
        assert_same_sums(series, want_series)
    with LocalStore(path) as store:
        assert store.stats(["hour"]) == exact(path, ["hour"])[0]  # merged hours: the spans
        recent = T0 + 15 * DAY + 7 * HOUR + 3
        assert store.stats(["hour"], since_ns=recent) == from_rollup(path, ["hour"], recent)[0]
