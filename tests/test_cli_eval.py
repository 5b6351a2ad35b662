"""`otelite eval`: a dataset run from the command line that gates CI on pass rates and regressions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otelite.cli import main
from otelite.store import LocalStore

TASK = """
def answer(q):
    return {"2+2": "4", "3+3": "6", "capital of France": "Paris"}.get(q, "?")

def worse(q):
    return "?" if q == "3+3" else answer(q)

def broken(q):
    raise RuntimeError("model unavailable")

from otelite import evals
EVALUATORS = [evals.contains(["?"], name="unsure"), evals.length(max=10)]
"""
DATA = [
    {"input": "2+2", "expected": "4"},
    {"input": "3+3", "expected": "6"},
    {"input": "capital of France", "expected": "paris"},
    {"input": "5+5", "expected": "10"},
]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a task module and a JSONL dataset."""
    (tmp_path / "qa_app.py").write_text(TASK)
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in DATA))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_gate_passes_fails_and_records(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 0 at or above the rate, 1 below it; the rows are recorded in the local store."""
    assert (
        main(
            [
                "eval",
                "qa_app:answer",
                "qa.jsonl",
                "-e",
                "exact_match",
                "--min-pass-rate",
                "0.75",
                "--out",
                "base.jsonl",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "exact_match: pass rate 75.0% (3/4) mean 0.750" in out
    assert "run written to base.jsonl" in out
    header = json.loads((project / "base.jsonl").read_text().splitlines()[0])
    assert header["summary"]["evaluators"]["exact_match"]["passed"] == 3

    assert (
        main(
            [
                "eval",
                "qa_app.py:answer",
                "qa.jsonl",
                "-e",
                "exact_match",
                "--min-pass-rate",
                "exact_match=0.8",
            ]
        )
        == 1
    )
    assert "FAIL exact_match: pass rate 75.0% is below 80.0%" in capsys.readouterr().out
    with LocalStore(project / ".otelite") as store:
        roots = [t for t in store.traces(limit=100) if t.root_name == "evaluate answer-qa"]
    assert len(roots) == 8


def test_module_evaluators_and_regression_gate(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Evaluators come from a module list; --fail-on-regression compares with a saved baseline."""
    assert (
        main(
            [
                "eval",
                "qa_app:answer",
                "qa.jsonl",
                "-e",
                "exact_match",
                "-e",
                "qa_app:EVALUATORS",
                "--out",
                "base.jsonl",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "unsure: pass rate 25.0% (1/4)" in out
    assert "length: pass rate 100.0% (4/4)" in out
    code = main(
        [
            "eval",
            "qa_app:worse",
            "qa.jsonl",
            "-e",
            "exact_match",
            "--baseline",
            "base.jsonl",
            "--fail-on-regression",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "[exact_match]" in out
    assert "'3+3': pass 1 -> fail 0" in out
    assert "FAIL 1 row regressed against base.jsonl" in out
    # Without the flag the comparison is shown but does not fail the run.
    assert (
        main(["eval", "qa_app:worse", "qa.jsonl", "-e", "exact_match", "--baseline", "base.jsonl"])
        == 0
    )


def test_every_row_failing_is_reported_not_crashed(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A task that always raises: each row's error is counted and a named gate fails."""
    code = main(
        [
            "eval",
            "qa_app:broken",
            "qa.jsonl",
            "-e",
            "exact_match",
            "--min-pass-rate",
            "exact_match=0.5",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "4 rows, 4 task errors" in out
    assert "FAIL exact_match: no pass/fail verdicts to hold to 50.0%" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["qa_app", "qa.jsonl", "-e", "exact_match"], "task 'qa_app': write MODULE:NAME"),
        (
            ["qa_app:nope", "qa.jsonl", "-e", "exact_match"],
            "task 'qa_app:nope': qa_app has no 'nope'",
        ),
        (["missing_mod:f", "qa.jsonl", "-e", "exact_match"], "cannot import missing_mod"),
        (["qa_app:answer", "qa.jsonl", "-e", "bleu"], "--evaluator 'bleu': use a built-in"),
        (["qa_app:answer", "qa.jsonl"], "give at least one --evaluator"),
        (
            ["qa_app:answer", "nope.jsonl", "-e", "exact_match"],
            "nope.jsonl: cannot read the dataset",
        ),
        (
            ["qa_app:answer", "qa.jsonl", "-e", "exact_match", "--min-pass-rate", "1.5"],
            "between 0 and 1",
        ),
        (
            ["qa_app:answer", "qa.jsonl", "-e", "exact_match", "--min-pass-rate", "typo=0.5"],
            "names no evaluator 'typo'",
        ),
    ],
)
def test_usage_errors_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """Bad modules, evaluators, datasets and thresholds: exit 2 with a message naming the argument."""
    assert main(["eval", *argv]) == 2
    assert message in capsys.readouterr().err


def test_traces_can_leave_out_evaluation_runs(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`otelite traces --traffic` separates dataset-run rows from the application's traces."""
    import otelite

    otelite.configure()
    with otelite.span("handle request"):
        pass
    assert main(["eval", "qa_app:answer", "qa.jsonl", "-e", "exact_match"]) == 0
    capsys.readouterr()
    assert main(["traces", "--traffic", "app", "--json"]) == 0
    assert [t["root"] for t in json.loads(capsys.readouterr().out)] == ["handle request"]
    assert main(["traces", "--traffic", "evaluation", "--json"]) == 0
    assert {t["root"] for t in json.loads(capsys.readouterr().out)} == {"evaluate answer-qa"}
