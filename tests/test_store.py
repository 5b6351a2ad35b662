"""The local SQLite store: schema, indexes, concurrency, readers and refusal of bad files."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

import otelite
from otelite.store import LocalStore, TraceSummary, _schema, _writer
from storefixture import (
    CALLBACK_TRACE,
    LOCAL_TRACE,
    MS,
    REMOTE_TRACE,
    T0,
    TWO_ROOTS_TRACE,
    build_remote_parent_store,
)


def digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_schema_indexes_and_wal(tmp_path: Path) -> None:
    """A new store has the versioned schema, the indexes reports need, and WAL journaling."""
    conn = _schema.open_for_writing(tmp_path / "otelite.db")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    indexes = {
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='index' AND name NOT LIKE 'sqlite_%'"
        )
    }
    assert tables == {
        "otelite_meta",
        "resources",
        "spans",
        "scores",
        "rollup_keys",
        "rollup_calls",
        "rollup_ttfc",
        "rollup_calls_daily",
        "rollup_ttfc_daily",
        "rollup_calls_log",
        "rollup_ttfc_log",
    }
    assert indexes == {
        "spans_start_time",
        "spans_model",
        "spans_user",
        "spans_session",
        "spans_roots",
        "scores_target",
        "scores_name",
    }
    assert conn.execute("SELECT value FROM otelite_meta WHERE key='schema_version'").fetchone() == (
        "3",
    )
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def test_spans_round_trip_with_all_fields(tmp_path: Path) -> None:
    """Every span field written by the exporter is read back; indexed columns are filled."""
    otelite.configure(tracer_provider=TracerProvider(), local_store=tmp_path)
    with otelite.attributes(user_id="u-1", session_id="s-1"), otelite.span("root") as root:
        with otelite.span(
            "chat gpt-4o",
            **{
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 5,
                "gen_ai.usage.cost": 0.0001,
                "gen_ai.response.finish_reasons": ["stop"],
            },
        ) as child:
            child.add_event("retry", {"attempt": 1})
        root.set_attribute("n", 1)
    with pytest.raises(ValueError, match="boom"), otelite.span("failing"):
        raise ValueError("boom")
    otelite.force_flush()

    with LocalStore(tmp_path) as store:
        traces = store.traces()
        assert len(traces) == 2
        failing, main = traces
        assert (failing.root_name, failing.status_code, failing.span_count) == (
            "failing",
            "ERROR",
            1,
        )
        assert (main.root_name, main.span_count, main.llm_calls) == ("root", 2, 1)
        assert (main.input_tokens, main.output_tokens, main.cost_usd) == (12, 5, 0.0001)
        assert (main.user_id, main.status_code) == ("u-1", "OK")
        assert main.duration_ns > 0
        tree = store.trace_tree(main.trace_id[:8])
        assert [n.span.name for n in tree] == ["root"]
        assert [n.span.name for n in tree[0].children] == ["chat gpt-4o"]
        chat = tree[0].children[0].span
        assert chat.parent_span_id == tree[0].span.span_id
        assert chat.attributes == {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 5,
            "gen_ai.usage.cost": 0.0001,
            "gen_ai.response.finish_reasons": ["stop"],
            "user.id": "u-1",
            "session.id": "s-1",
        }
        assert chat.events == [
            {"name": "retry", "time_ns": chat.events[0]["time_ns"], "attributes": {"attempt": 1}}
        ]
        assert chat.kind == "INTERNAL"
        assert chat.scope_name == "otelite"
        assert chat.resource["telemetry.sdk.language"] == "python"
        failing_span = store.spans(failing.trace_id)[0]
        assert failing_span.status_code == "ERROR"
        assert failing_span.status_message == "ValueError: boom"
        assert failing_span.events[0]["name"] == "exception"

    conn = sqlite3.connect(tmp_path / "otelite.db")
    row = conn.execute(
        "SELECT operation, provider, model, user_id, session_id, input_tokens, output_tokens, cost_usd "
        "FROM spans WHERE name = 'chat gpt-4o'"
    ).fetchone()
    assert row == ("chat", "openai", "gpt-4o", "u-1", "s-1", 12, 5, 0.0001)
    assert conn.execute("SELECT COUNT(*) FROM resources").fetchone() == (1,)
    conn.close()


def test_traces_whose_root_has_a_remote_parent(tmp_path: Path) -> None:
    """A trace's root is its span without a parent or, when that span is another service's (a
    remote parent), its first span whose parent is not in the store; never a child of it, even
    one that starts at the same nanosecond. Traffic is judged by that root."""
    path = build_remote_parent_store(tmp_path)

    def summary(
        trace_id: str, root: str, start_ms: int, end_ms: int, **fields: Any
    ) -> TraceSummary:
        values: dict[str, Any] = {"span_count": 2, "llm_calls": 1, "input_tokens": 0}
        values.update(output_tokens=10, cost_usd=None, status_code="OK", user_id=None)
        values.update(service_name="downstream", **fields)
        return TraceSummary(trace_id, root, T0 + start_ms * MS, T0 + end_ms * MS, **values)

    expected = [
        summary(
            CALLBACK_TRACE, "invoke_workflow callback", 3000, 3050, llm_calls=0, output_tokens=0
        ),
        summary(
            TWO_ROOTS_TRACE,
            "consume orders",
            2000,
            2090,
            span_count=3,
            input_tokens=20,
            cost_usd=0.000005,
            status_code="ERROR",
        ),
        summary(
            REMOTE_TRACE,
            "POST /answer",
            1000,
            1040,
            input_tokens=40,
            cost_usd=0.00001,
            user_id="u-remote",
        ),
        summary(LOCAL_TRACE, "invoke_workflow local", 0, 20, input_tokens=100, cost_usd=0.00002),
    ]
    with LocalStore(path) as store:
        assert store.traces() == expected
        assert store.traces(traffic="app") == expected
        assert store.traces(traffic="evaluation") == []
        assert store.traces(status="ERROR") == [expected[1]]
        assert [n.span.name for n in store.trace_tree(TWO_ROOTS_TRACE)] == [
            "consume orders",
            "consume orders retry",
        ]


def test_several_processes_write_one_store(tmp_path: Path) -> None:
    """Four processes writing the same file concurrently lose no span."""
    code = textwrap.dedent(
        f"""
        import sys, otelite
        otelite.configure(local_store={str(tmp_path)!r})
        for i in range(300):
            with otelite.span("p" + sys.argv[1], i=i):
                pass
        otelite.force_flush()
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(n)], stderr=subprocess.PIPE, text=True)
        for n in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    with LocalStore(tmp_path) as store:
        spans = store.all_spans()
    assert len(spans) == 1200
    for n in range(4):
        assert sorted(s.attributes["i"] for s in spans if s.name == f"p{n}") == list(range(300))


def test_newer_schema_refused_and_untouched(tmp_path: Path) -> None:
    """A store from a newer otelite is refused by writer and reader, byte for byte unchanged."""
    path = tmp_path / "otelite.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE otelite_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO otelite_meta VALUES ('schema_version', '99')")
    conn.commit()
    conn.close()
    before = digest(path)
    with pytest.raises(otelite.ConfigurationError, match=r"schema version 99.*upgrade otelite"):
        otelite.configure(tracer_provider=TracerProvider(), local_store=tmp_path)
    with pytest.raises(otelite.StoreSchemaError, match="The file was not modified"):
        LocalStore(tmp_path)
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["otelite.db"]


def test_missing_corrupt_and_foreign_files(tmp_path: Path) -> None:
    """Reading a missing, corrupt or non-otelite file raises StoreError with the fix."""
    with pytest.raises(
        otelite.StoreError, match=r"no local store here yet; call otelite\.configure"
    ):
        LocalStore(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(otelite.StoreError, match="not a readable otelite store"):
        LocalStore(corrupt)
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(otelite.StoreError, match="not an otelite store"):
        LocalStore(foreign)


def test_trace_id_prefix_errors(tmp_path: Path) -> None:
    """A bad, unknown or ambiguous trace id prefix is a clear StoreError."""
    otelite.configure(tracer_provider=TracerProvider(), local_store=tmp_path)
    for _ in range(40):
        with otelite.span("t"):
            pass
    otelite.force_flush()
    with LocalStore(tmp_path) as store:
        with pytest.raises(otelite.StoreError, match="give the hexadecimal id"):
            store.spans("xyz")
        with pytest.raises(otelite.StoreError, match="several traces start so"):
            store.spans(_ambiguous(store))
        with pytest.raises(otelite.StoreError, match="no such trace"):
            store.spans(_absent(store))
        with pytest.raises(ValueError, match="limit must be a positive int"):
            store.traces(limit=0)


def _ambiguous(store: LocalStore) -> str:
    """A one-character prefix shared by at least two of the stored traces."""
    ids = [t.trace_id for t in store.traces(limit=40)]
    for ch in "0123456789abcdef":
        if sum(i.startswith(ch) for i in ids) >= 2:
            return ch
    raise AssertionError("40 random trace ids should share a first character")


def _absent(store: LocalStore) -> str:
    """A full trace id that is not in the store."""
    ids = {t.trace_id for t in store.traces(limit=40)}
    return next(c * 32 for c in "0123456789abcdef" if c * 32 not in ids)


def test_write_failure_is_contained(
    tmp_path: Path,
    contained_errors: None,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the store fails to write (disk error), the app keeps running and one warning is logged."""
    otelite.configure(tracer_provider=TracerProvider(), local_store=tmp_path)

    def disk_error(self: _writer.SpanWriter, spans: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(_writer.SpanWriter, "write", disk_error)
    for _ in range(3):
        with otelite.span("lost"):
            pass
        otelite.force_flush()
    messages = [
        r.getMessage() for r in caplog.records if r.name == "otelite" and r.levelname == "WARNING"
    ]
    assert len(messages) == 1
    assert "writing spans to the local store" in messages[0]


def test_retention_applied_automatically(tmp_path: Path) -> None:
    """configure(retention=...) deletes traces older than the retention when otelite starts."""
    from opentelemetry.sdk.trace import TracerProvider as Provider

    provider = Provider()
    otelite.configure(tracer_provider=provider, local_store=tmp_path)
    tracer = provider.get_tracer("t")
    old = tracer.start_span("old", start_time=1_000_000_000)
    old.end(end_time=2_000_000_000)
    with otelite.span("recent"):
        pass
    otelite.force_flush()
    otelite.shutdown()
    otelite.configure(tracer_provider=provider, local_store=tmp_path, retention="30d")
    with LocalStore(tmp_path) as store:
        assert [s.name for s in store.all_spans()] == ["recent"]
    with pytest.raises(otelite.ConfigurationError, match="retention: 'soon' is not a duration"):
        otelite.configure(tracer_provider=provider, local_store=tmp_path, retention="soon")


def test_public_names_and_paths() -> None:
    """otelite.store keeps its public names, each shown under the public module path."""
    import otelite.store

    assert otelite.store.__all__ == [
        "LLM_OPERATIONS",
        "STATS_KEYS",
        "LocalStore",
        "ScoreStatsRow",
        "SpanNode",
        "StatsRow",
        "StoredScore",
        "StoredSpan",
        "TraceSummary",
    ]
    for name in otelite.store.__all__:
        value = getattr(otelite.store, name)
        if isinstance(value, type):
            assert value.__module__ == "otelite.store", name
    assert otelite.store.LLM_OPERATIONS == (
        "chat",
        "text_completion",
        "generate_content",
        "embeddings",
    )
    assert "model" in otelite.store.STATS_KEYS
    with pytest.raises(AttributeError, match="has no attribute 'SpanWriter'"):
        otelite.store.SpanWriter  # noqa: B018 - the writer is not public


def test_the_writer_imports_without_the_reader() -> None:
    """The runtime's import of the store writer loads neither the reader nor any surface."""
    code = (
        "import sys\n"
        "import otelite.store._writer, otelite.store._prune\n"
        "loaded = ['otelite.store._reader', 'otelite.store._records', 'otelite.cli', 'otelite.datasets']\n"
        "print(','.join(m for m in loaded if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
