"""Human scores: attached to ended spans, exported, stored, aggregated by `stats --scores`, used by exports."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import otelite
from otelite.cli import main
from otelite.evals import Score
from otelite.store import LocalStore, StoredScore, _prune, _schema, _writer
from otelite.testing import capture_spans
from storefixture import build_store

TRACE1 = "00000000000000000000000000000001"
CHAT_SPAN = "0000000000000003"  # the chat call of the RAG trace in storefixture


def test_human_score_on_an_ended_span_reaches_the_exporter() -> None:
    """A score given after the span ended becomes a child evaluation span carrying the event."""
    with capture_spans() as cap:
        with otelite.span("answer") as span:
            ctx = span.get_span_context()
        trace_hex, span_hex = format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
        result = otelite.score(
            "thumbs_up", 1, trace_id=trace_hex, span_id=span_hex, comment="spot on"
        )
    assert result == Score("thumbs_up", 1.0, kind="human", source="human", comment="spot on")
    answer, evaluation = cap.as_dicts()
    assert answer["end_time"] < evaluation["start_time"]
    event_attributes = {
        "gen_ai.evaluation.name": "thumbs_up",
        "otelite.evaluation.kind": "human",
        "gen_ai.evaluation.score.value": 1.0,
        "otelite.evaluation.source": "human",
        "otelite.evaluation.comment": "spot on",
    }
    assert evaluation == {
        "name": "evaluation thumbs_up",
        "kind": "INTERNAL",
        "trace_id": ctx.trace_id,
        "span_id": evaluation["span_id"],
        "parent_id": ctx.span_id,
        "start_time": 3,
        "end_time": 5,
        "status": "UNSET",
        "status_description": None,
        "attributes": {
            **event_attributes,
            "otelite.span.kind": "evaluation",
            "otelite.traffic": "evaluation",
        },
        "events": [
            {"name": "gen_ai.evaluation.result", "timestamp": 4, "attributes": event_attributes}
        ],
    }


def test_score_the_current_span_and_bad_arguments() -> None:
    """Without ids the current span is scored; bad ids and a missing span are clear errors."""
    with capture_spans() as cap, otelite.span("answer") as span:
        otelite.score("helpful", label="yes", passed=True, source="support-team")
    evaluation = cap.span("evaluation helpful")
    assert evaluation.parent.span_id == span.get_span_context().span_id  # type: ignore[union-attr]
    assert evaluation.attributes["otelite.evaluation.kind"] == "heuristic"  # type: ignore[index]
    assert evaluation.attributes["otelite.evaluation.source"] == "support-team"  # type: ignore[index]
    with pytest.raises(ValueError, match="no span is current; pass trace_id= and span_id="):
        otelite.score("x", 1)
    with pytest.raises(ValueError, match="give both trace_id and span_id"):
        otelite.score("x", 1, trace_id="ab")
    with pytest.raises(ValueError, match="trace_id 'xyz' is not hexadecimal"):
        otelite.score("x", 1, trace_id="xyz", span_id="01")
    with pytest.raises(ValueError, match="span_id '0' is not a valid 16-digit id"):
        otelite.score("x", 1, trace_id="01", span_id="0")
    with pytest.raises(TypeError, match="put text in label= instead"):
        otelite.score("x", "good", trace_id="01", span_id="01")  # type: ignore[arg-type]


def test_scores_reach_the_store_stats_and_finetune_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Scores given later (another process) land in the store, aggregate in stats, filter exports."""
    store = build_store(tmp_path / "store")
    otelite.configure(local_store=store)
    otelite.score("thumbs_up", 1, trace_id=TRACE1, span_id=CHAT_SPAN, comment="great")
    otelite.score(
        "correctness",
        0.0,
        label="INCORRECT",
        passed=False,
        trace_id=TRACE1,
        span_id=CHAT_SPAN,
        source="reviewer",
    )
    otelite.score(
        "correctness",
        1.0,
        label="CORRECT",
        passed=True,
        trace_id=TRACE1,
        span_id="0000000000000001",
        source="reviewer",
    )
    assert otelite.force_flush()
    with LocalStore(store) as local:
        scores = local.scores(name="thumbs_up")
        assert scores == [
            StoredScore(
                trace_id=TRACE1,
                span_id=CHAT_SPAN,
                name="thumbs_up",
                value=1.0,
                label=None,
                passed=None,
                kind="human",
                source="human",
                explanation=None,
                comment="great",
                error=None,
                time_ns=scores[0].time_ns,
            )
        ]
        rows = local.score_stats(["model"])
    assert [(r.name, r.key, r.count, r.mean, r.passed, r.failed, r.pass_rate) for r in rows] == [
        ("correctness", (None,), 1, 1.0, 1, 0, 1.0),
        ("correctness", ("gpt-4o-mini",), 1, 0.0, 0, 1, 0.0),
        ("thumbs_up", ("gpt-4o-mini",), 1, 1.0, 0, 0, None),
    ]

    assert main(["stats", "--scores", "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert out == (
        "SCORE       COUNT  MEAN PASS% FAILED\n"
        "correctness     2 0.500  50.0      1\n"
        "thumbs_up       1 1.000     -      0\n"
    )
    assert main(["stats", "--scores", "--by", "model", "--json", "--store", str(store)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[1] == {
        "name": "correctness",
        "model": "gpt-4o-mini",
        "count": 1,
        "scored": 1,
        "mean": 0.0,
        "passed": 0,
        "failed": 1,
        "pass_rate": 0.0,
    }

    out_file = tmp_path / "ft.jsonl"
    assert (
        main(
            [
                "export",
                "finetune",
                str(out_file),
                "--store",
                str(store),
                "--min-score",
                "thumbs_up=1",
            ]
        )
        == 0
    )
    assert len(out_file.read_text().splitlines()) == 1
    capsys.readouterr()
    # The chat call's own correctness score (0) counts, not the trace root's 1.
    code = main(
        [
            "export",
            "finetune",
            str(tmp_path / "none.jsonl"),
            "--store",
            str(store),
            "--min-score",
            "correctness=0.5",
            "--json",
        ]
    )
    assert code == 1
    assert json.loads(capsys.readouterr().out)["skipped"] == {
        "below the minimum score or unscored": 1,
        "failed calls": 1,
        "not chat calls": 1,
    }
    assert not (tmp_path / "none.jsonl").exists()
    assert (
        main(
            ["export", "finetune", str(out_file), "--store", str(store), "--min-score", "thumbs_up"]
        )
        == 2
    )
    assert "write NAME=VALUE" in capsys.readouterr().err


def test_version_1_store_gains_the_scores_table(tmp_path: Path) -> None:
    """A store written by the previous schema is migrated in place; its spans are kept."""
    path = tmp_path / "otelite.db"
    conn = sqlite3.connect(path)
    for statement in _schema._SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT INTO otelite_meta VALUES ('schema_version', '1')")
    conn.execute(
        "INSERT INTO spans (trace_id, span_id, name, kind, start_time_ns, end_time_ns, status_code, attributes) "
        "VALUES ('t1', 's1', 'old', 'INTERNAL', 1, 2, 'UNSET', '{}')"
    )
    conn.commit()
    conn.close()
    with LocalStore(path) as old:
        assert old.scores() == []  # read-only: no table yet, no error
        assert old.score_stats() == []
    _writer.SpanWriter(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute(
        "SELECT value FROM otelite_meta WHERE key = 'schema_version'"
    ).fetchone() == ("3",)
    assert conn.execute("SELECT name FROM spans").fetchall() == [("old",)]
    assert conn.execute("SELECT COUNT(*) FROM scores").fetchone() == (0,)
    conn.close()


def test_pruning_deletes_the_scores_of_deleted_traces(tmp_path: Path) -> None:
    """Scores go with their traces when old traces are pruned."""
    store = build_store(tmp_path / "store")
    otelite.configure(local_store=store)
    otelite.score("thumbs_up", 1, trace_id=TRACE1, span_id=CHAT_SPAN)
    otelite.force_flush()
    otelite.shutdown()
    deleted = _prune.prune_older_than(store / "otelite.db", 2**62)
    assert deleted == 6
    with LocalStore(store) as local:
        assert local.scores() == []


def test_an_evaluator_result_is_recorded_as_it_is() -> None:
    """otelite.score(Score) records an evaluator's result on the current span, kind kept."""
    from otelite import evals

    with capture_spans() as cap, otelite.span("answer"):
        result = evals.regex(r"\d+")(input="q", output="no digits")
        recorded = otelite.score(result, comment="checked in code")
    assert recorded == result.with_updates(comment="checked in code")
    evaluation = cap.span("evaluation regex")
    assert dict(evaluation.attributes or {}) == {
        "gen_ai.evaluation.name": "regex",
        "otelite.evaluation.kind": "heuristic",
        "gen_ai.evaluation.score.value": 0.0,
        "gen_ai.evaluation.score.label": "fail",
        "otelite.evaluation.passed": False,
        "otelite.evaluation.comment": "checked in code",
        "otelite.span.kind": "evaluation",
        "otelite.traffic": "evaluation",
    }
    with pytest.raises(ValueError, match="a Score carries its own value"), otelite.span("x"):
        otelite.score(result, 1.0)


def test_explanations_that_may_quote_content_follow_content_capture() -> None:
    """Heuristic and judge explanations are recorded only with capture on; human ones always."""
    from otelite import evals

    failing = evals.matches_schema({"type": "object", "required": ["card"]})(
        input="q", output='{"name": "ana@example.com"}'
    )
    assert failing.explanation == "$: missing required field 'card'"
    for capture in (False, True):
        with capture_spans(capture_content=capture) as cap, otelite.span("answer"):
            otelite.score(failing)
            otelite.score(
                "review", 0, explanation="mail ana@example.com quoted", trace_id="01", span_id="01"
            )
        machine = cap.span("evaluation matches_schema").attributes or {}
        human = cap.span("evaluation review").attributes or {}
        if capture:
            assert machine["gen_ai.evaluation.explanation"] == "$: missing required field 'card'"
        else:
            assert "gen_ai.evaluation.explanation" not in machine
        # Kept in both modes, and cleaned by the built-in redaction like any recorded text.
        assert human["gen_ai.evaluation.explanation"] == "mail [REDACTED:email] quoted"


def test_trace_view_shows_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`otelite trace` lists each score under the span that carries it."""
    store = build_store(tmp_path / "store")
    otelite.configure(local_store=store)
    otelite.score(
        "correctness",
        0.0,
        label="INCORRECT",
        passed=False,
        explanation="names Lyon\nmore",
        trace_id=TRACE1,
        span_id=CHAT_SPAN,
    )
    otelite.force_flush()
    assert main(["trace", TRACE1, "--store", str(store)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    index = next(
        i for i, line in enumerate(lines) if line.lstrip().startswith("evaluation correctness")
    )
    assert lines[index].startswith("    evaluation correctness")  # a child of the chat span
    assert lines[index - 2].startswith("  chat gpt-4o-mini")
    assert lines[index + 1] == "      ↳ score correctness = 0.0 INCORRECT (names Lyon)"
