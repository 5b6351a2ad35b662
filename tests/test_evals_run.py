"""Dataset runs: 200 rows at concurrency 8, one trace per row, a correct summary, regressions found."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import openai
import pytest

import otelite
from cassettes import http
from fakeopenai import chat_completion
from otelite import evals
from otelite.evals import Dataset, DatasetError, EvalRun, Score
from otelite.testing import capture_spans

ROWS = [
    {"input": f"q{i}", "expected": f"a{i}", "metadata": {"topic": "even" if i % 2 == 0 else "odd"}}
    for i in range(200)
]


def answer(question: str) -> str:
    """Right except every 4th row; rows 7, 57, 107, 157 raise."""
    i = int(question[1:])
    if i % 50 == 7:
        raise RuntimeError(f"backend down for {question}")
    return f"a{i}" if i % 4 else f"wrong{i}"


def answer_regressed(question: str) -> str:
    """Like answer, but rows 10, 11 and 13 now go wrong and row 8 now raises."""
    i = int(question[1:])
    if i == 8:
        raise RuntimeError("new bug")
    if i in (10, 11, 13):
        return "regressed"
    return answer(question)


def picky(*, output: str, expected: str, topic: str) -> Score:
    """A plain-function evaluator reading row metadata; it raises on row 99."""
    if output == "a99":
        raise ValueError("cannot judge row 99")
    return Score("picky", 1.0 if topic == "even" else 0.5)


def test_200_rows_concurrency_8_one_trace_per_row_and_correct_summary() -> None:
    """Every row is its own trace (root, task, evaluators); the summary counts exactly what happened."""
    threads: set[str] = set()
    peak = [0, 0]
    lock = threading.Lock()

    def task(question: str) -> str:
        with lock:
            peak[0] += 1
            peak[1] = max(peak[1], peak[0])
            threads.add(threading.current_thread().name)
        try:
            return answer(question)
        finally:
            with lock:
                peak[0] -= 1

    with capture_spans() as cap:
        run = evals.evaluate(
            ROWS,
            task,
            [evals.exact_match(), picky],
            max_concurrency=8,
            name="qa-v1",
            progress=False,
        )
    spans = cap.as_dicts(step_clock=False)

    assert len(run.rows) == 200
    assert [r.index for r in run.rows] == list(range(200))
    assert peak[1] <= 8
    assert len(threads) <= 8

    traces: dict[int, list[dict[str, Any]]] = {}
    for s in spans:
        traces.setdefault(s["trace_id"], []).append(s)
    assert len(traces) == 200
    by_row = {}
    for members in traces.values():
        (root,) = [s for s in members if s["parent_id"] is None]
        by_row[root["attributes"]["otelite.eval.row"]] = members
        assert root["name"] == "evaluate qa-v1"
        assert root["attributes"]["otelite.eval.run.name"] == "qa-v1"
        assert root["attributes"]["otelite.eval.run.id"] == run.id
        (task_span,) = [
            s
            for s in members
            if s["name"]
            == "task test_200_rows_concurrency_8_one_trace_per_row_and_correct_summary.<locals>.task"
        ]
        assert task_span["parent_id"] == root["span_id"]
        evaluations = [s for s in members if s["name"].startswith("evaluation ")]
        assert all(e["parent_id"] == task_span["span_id"] for e in evaluations)
        assert all(s["attributes"]["otelite.traffic"] == "evaluation" for s in members)
    assert sorted(by_row) == list(range(200))
    # An errored row has no evaluator spans and an ERROR root; others have both evaluators.
    assert {len(by_row[i]) for i in range(200) if i % 50 == 7} == {2}
    assert {len(by_row[i]) for i in range(200) if i % 50 != 7} == {4}
    assert by_row[7][0]["status"] == "ERROR"

    errored = [r.index for r in run.rows if r.error is not None]
    assert errored == [7, 57, 107, 157]
    assert run.rows[7].error == "RuntimeError: backend down for q7"
    assert run.rows[7].trace_id == format(next(s["trace_id"] for s in by_row[7]), "032x")

    s = run.summary
    assert (s.rows, s.task_errors) == (200, 4)
    exact = s.evaluators["exact_match"]
    # 50 rows are wrong by design (i % 4 == 0), 4 rows errored: 146 passed.
    assert (exact.rows, exact.passed, exact.scored, exact.errors) == (200, 146, 196, 0)
    assert exact.pass_rate == pytest.approx(146 / 200)
    assert exact.mean == pytest.approx(146 / 196)
    pick = s.evaluators["picky"]
    assert (pick.scored, pick.errors, pick.pass_rate) == (195, 1, None)
    # 100 even rows scored 1.0; 95 odd rows 0.5 (rows 7/57/107/157 errored, row 99 raised).
    assert pick.mean == pytest.approx((100 * 1.0 + 95 * 0.5) / 195)
    assert run.rows[99].scores["picky"].error == "ValueError: cannot judge row 99"
    assert s.task_cost is None  # no LLM call was recorded: unknown, not $0
    assert s.judge_cost is None
    assert "exact_match: pass rate 73.0% (146/200)" in run.report()


def test_compare_detects_a_planted_regression(tmp_path: Path) -> None:
    """Rows that went from pass to fail or to an error are listed; deltas per evaluator are right."""
    with capture_spans():
        before = evals.evaluate(ROWS, answer, [evals.exact_match()], name="v1", progress=False)
        after = evals.evaluate(
            ROWS, answer_regressed, [evals.exact_match()], name="v2", progress=False
        )
    saved = EvalRun.from_jsonl(before.to_jsonl(tmp_path / "baseline.jsonl"))
    assert saved.summary == before.summary
    for baseline in (before, saved):
        diff = after.compare(baseline)
        assert diff.regressed
        assert sorted((r.input, r.evaluator, r.before, r.after) for r in diff.regressions) == [
            ("q10", "exact_match", "pass 1", "fail 0"),
            ("q11", "exact_match", "pass 1", "fail 0"),
            ("q13", "exact_match", "pass 1", "fail 0"),
            ("q8", "task", "ok", "task error"),
        ]
        assert diff.improvements == []
        change = diff.changes["exact_match"]
        assert change.pass_rate_delta == pytest.approx(-3 / 200)
        assert change.pass_rate_before == pytest.approx(146 / 200)
    assert not before.compare(saved).regressed
    assert "3 regressed" not in before.compare(saved).report()
    assert "4 regressed, 0 improved" in after.compare(before).report()


def test_async_task_and_async_evaluator() -> None:
    """An async task runs on one loop with bounded concurrency; async evaluators are awaited."""
    active = [0, 0]

    async def task(question: str) -> str:
        active[0] += 1
        active[1] = max(active[1], active[0])
        await asyncio.sleep(0)
        active[0] -= 1
        return answer(question)

    async def length_ok(*, output: str) -> Score:
        await asyncio.sleep(0)
        return Score("length_ok", passed=len(output) < 5, value=float(len(output)))

    with capture_spans() as cap:
        run = evals.evaluate(ROWS[:40], task, [length_ok], max_concurrency=3, progress=False)
    assert active[1] <= 3
    assert run.summary.task_errors == 1
    assert run.summary.evaluators["length_ok"].passed == 29  # 10 "wrongN" rows fail, 1 errored
    assert len({s.context.trace_id for s in cap.spans}) == 40  # type: ignore[union-attr]


def test_evaluate_inside_a_running_loop_points_to_aevaluate() -> None:
    """Calling evaluate() from async code is refused with the fix; aevaluate() works there."""

    async def main() -> EvalRun:
        with pytest.raises(RuntimeError, match=r"await evals\.aevaluate"):
            evals.evaluate(ROWS[:2], answer, [evals.exact_match()])
        return await evals.aevaluate(ROWS[:2], answer, [evals.exact_match()], progress=False)

    with capture_spans():
        run = asyncio.run(main())
    assert run.summary.evaluators["exact_match"].passed == 1


def test_task_llm_cost_is_counted_and_marked_as_evaluation_traffic() -> None:
    """LLM calls inside the task are priced into the row and tagged otelite.traffic=evaluation."""

    def handler(request: Any) -> Any:
        return http.Response(200, json=chat_completion("a1", model="gpt-4o-mini-2024-07-18"))

    client = openai.OpenAI(
        api_key="sk-test",
        base_url="https://api.openai.com/v1",
        http_client=http.Client(transport=http.MockTransport(handler)),
        max_retries=0,
    )

    def task(question: str) -> str:
        result = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )
        return result.choices[0].message.content or ""

    otelite.instrument_openai()
    try:
        with capture_spans() as cap:
            run = evals.evaluate(ROWS[:3], task, [evals.exact_match()], progress=False)
    finally:
        otelite.uninstrument_openai()
    llm = [s for s in cap.spans if s.name == "chat gpt-4o-mini"]
    assert len(llm) == 3
    assert all(s.attributes["otelite.traffic"] == "evaluation" for s in llm)  # type: ignore[index]
    costs = [s.attributes["gen_ai.usage.cost"] for s in llm]  # type: ignore[index]
    assert [r.cost for r in run.rows] == pytest.approx(costs)
    assert [(r.input_tokens, r.output_tokens) for r in run.rows] == [(12, 3)] * 3
    assert run.summary.task_cost == pytest.approx(sum(costs))
    points = cap.metrics()["otelite.client.cost"]
    assert {p["attributes"]["otelite.traffic"] for p in points} == {"evaluation"}


def test_bad_arguments_are_refused() -> None:
    """Missing inputs name the row; duplicate evaluator names and bad counts are refused."""
    with pytest.raises(DatasetError, match="row 2: missing required field 'input'"):
        evals.evaluate([{"input": "a"}, {"expected": "b"}], answer, [evals.exact_match()])
    with pytest.raises(
        ValueError, match=r"evaluators\[1\]: the name 'exact_match' is already used"
    ):
        evals.evaluate(ROWS[:1], answer, [evals.exact_match(), evals.exact_match()])
    with pytest.raises(ValueError, match="max_concurrency: give a whole number of 1 or more"):
        evals.evaluate(ROWS[:1], answer, [evals.exact_match()], max_concurrency=0)
    with pytest.raises(TypeError, match=r"evaluators\[0\]: 'x' is not callable"):
        evals.evaluate(ROWS[:1], answer, ["x"])


def test_repeats_and_non_score_results() -> None:
    """repeats runs each row again; evaluators may return a bool or a number."""

    def nonempty(*, output: str) -> bool:
        return bool(output)

    def size(*, output: str) -> float:
        return float(len(output))

    with capture_spans() as cap:
        run = evals.evaluate(ROWS[:5], answer, [nonempty, size], repeats=3, progress=False)
    assert len(run.rows) == 15
    assert [(r.index, r.repeat) for r in run.rows[:6]] == [
        (0, 0),
        (1, 0),
        (2, 0),
        (3, 0),
        (4, 0),
        (0, 1),
    ]
    assert run.summary.evaluators["nonempty"].pass_rate == 1.0
    # "wrong0", "a1", "a2", "a3", "wrong4"
    assert run.summary.evaluators["size"].mean == pytest.approx((6 + 2 + 2 + 2 + 6) / 5)
    assert len({s.context.trace_id for s in cap.spans}) == 15  # type: ignore[union-attr]


def test_datasets_from_jsonl_csv_and_back(tmp_path: Path) -> None:
    """JSONL and CSV load with metadata; errors name the file and row; to_jsonl round-trips."""
    jsonl = tmp_path / "qa.jsonl"
    jsonl.write_text('{"input": "q1", "expected": "a1", "lang": "en"}\n\n{"input": "q2"}\n')
    data = Dataset.from_jsonl(jsonl)
    assert data.name == "qa"
    assert [(e.input, e.expected, dict(e.metadata)) for e in data] == [
        ("q1", "a1", {"lang": "en"}),
        ("q2", None, {}),
    ]
    again = Dataset.load(data.to_jsonl(tmp_path / "out" / "copy.jsonl"))
    assert [e.as_dict() for e in again] == [e.as_dict() for e in data]

    csv_file = tmp_path / "qa.csv"
    csv_file.write_text("input,expected,topic\nq1,a1,geo\nq2,,math\n")
    rows = Dataset.load(csv_file)
    assert [(e.input, e.expected, dict(e.metadata)) for e in rows] == [
        ("q1", "a1", {"topic": "geo"}),
        ("q2", None, {"topic": "math"}),
    ]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "q1"}\n{"expected": "x"}\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl line 2: missing required field 'input'"):
        Dataset.from_jsonl(bad)
    bad.write_text('{"input": "q1"}\nnot json\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl line 2: not valid JSON"):
        Dataset.from_jsonl(bad)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("input,expected\nq1,a1\n,a2\n")
    with pytest.raises(DatasetError, match=r"bad\.csv row 3: missing required field 'input'"):
        Dataset.from_csv(bad_csv)
    bad_csv.write_text("question,expected\nq1,a1\n")
    with pytest.raises(DatasetError, match="needs an 'input' column"):
        Dataset.from_csv(bad_csv)
    with pytest.raises(DatasetError, match="cannot read the dataset"):
        Dataset.from_jsonl(tmp_path / "missing.jsonl")


def test_run_jsonl_is_written_atomically(tmp_path: Path) -> None:
    """A failure while writing leaves no file behind (and no temporary one)."""
    with capture_spans():
        run = evals.evaluate(ROWS[:2], answer, [evals.exact_match()], progress=False)
    run.rows[0].output = object()  # not JSON: written as its repr, still a complete file
    path = run.to_jsonl(tmp_path / "run.jsonl")
    header, *rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert header["run"] == run.name
    assert len(rows) == 2
    from otelite import _jsonl

    def explode() -> Any:
        yield {"ok": 1}
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        _jsonl.write_jsonl(tmp_path / "half.jsonl", explode())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.jsonl"]


def test_synthesize_drops_duplicates_and_empty_rows() -> None:
    """Model output is parsed, de-duplicated against itself and the seeds, tagged synthetic."""
    replies = [
        'Sure! ["How do I reset my password?", "how do I reset my password", "", "Can I change my e-mail?"]',
        "1. Where is my invoice?\n2) Can I change my e-mail?\n- Why was I charged twice?",
    ]
    sent: list[dict[str, Any]] = []

    def handler(request: Any) -> Any:
        import httpx

        sent.append(json.loads(request.content))
        return httpx.Response(200, json=chat_completion(replies.pop(0), model="synth-model"))

    import httpx

    with capture_spans() as cap:
        data = evals.synthesize(
            ["How do I reset my password?"],
            3,
            model="synth-model",
            base_url="http://127.0.0.1:9/v1",
            transport=httpx.MockTransport(handler),
        )
    assert [e.input for e in data] == [
        "Can I change my e-mail?",
        "Where is my invoice?",
        "Why was I charged twice?",
    ]
    assert all(e.metadata == {"synthetic": True, "model": "synth-model"} for e in data)
    assert len(sent) == 2
    assert "Return exactly 3 new inputs" in sent[0]["messages"][0]["content"]
    assert "Return exactly 2 new inputs" in sent[1]["messages"][0]["content"]
    assert all(s.attributes["otelite.traffic"] == "evaluation" for s in cap.spans)  # type: ignore[index]
    with pytest.raises(ValueError, match="at least one non-empty seed"):
        evals.synthesize([""], 2, model="m", base_url="http://127.0.0.1:9/v1")


def test_dataset_from_the_store_uses_recorded_chat_calls(tmp_path: Path) -> None:
    """Recorded calls with content become rows: last user message in, the answer as expected."""
    from otelite.store import LocalStore
    from storefixture import build_store

    with LocalStore(build_store(tmp_path / "store")) as store:
        data = Dataset.from_store(store)
    (row,) = data  # the failed call and the embeddings call have no captured content
    assert (row.input, row.expected) == ("Weather in Paris?", "Sunny and 21C.")
    assert dict(row.metadata) == {
        "trace_id": "00000000000000000000000000000001",
        "span_id": "0000000000000003",
        "model": "gpt-4o-mini",
        "source": "store",
    }


class _Terminal:
    """A stderr stand-in that says it is a terminal and keeps what was written."""

    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        return None


def test_progress_is_shown_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal one line is rewritten per row with the error count; elsewhere nothing."""
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with capture_spans():
        evals.evaluate(ROWS[5:9], answer, [evals.exact_match()], max_concurrency=1, name="p")
    assert terminal.text == (
        "\rp: 1/4 rows, 0 errors\rp: 2/4 rows, 0 errors\rp: 3/4 rows, 1 errors\rp: 4/4 rows, 1 errors\n"
    )
    terminal.text = ""
    with capture_spans():
        evals.evaluate(ROWS[5:9], answer, [evals.exact_match()], name="p", progress=False)
    assert terminal.text == ""


def test_judge_inside_a_run_is_traced_and_its_cost_kept_apart() -> None:
    """A judge's chat span sits under its evaluation span; the summary reports judge cost apart."""
    import httpx

    def handler(request: Any) -> Any:
        prompt = json.loads(request.content)["messages"][1]["content"]
        reference = prompt.split("REFERENCE:\n")[1].split("\n")[0]
        response = prompt.split("RESPONSE:\n")[1].split("\n")[0]
        verdict = "CORRECT" if response == reference else "INCORRECT"
        return httpx.Response(
            200,
            json=chat_completion(
                f"VERDICT: {verdict}",
                model="judge-model",
                usage={"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110},
            ),
        )

    judge = evals.llm_judge(
        "correctness",
        model="judge-model",
        base_url="http://127.0.0.1:9/v1",
        transport=httpx.MockTransport(handler),
    )
    with capture_spans(prices={"judge-model": {"input": 1.0, "output": 2.0}}) as cap:
        run = evals.evaluate(ROWS[:4], answer, [judge], progress=False)
    # Content capture is off: no prompts, answers or reasoning on any span.
    for span in cap.spans:
        keys = set(span.attributes or {})
        assert not keys & {
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "gen_ai.system_instructions",
        }
        assert "gen_ai.evaluation.explanation" not in keys
        assert "otelite.input" not in keys
    per_call = 100 * 1.0 / 1e6 + 10 * 2.0 / 1e6
    summary = run.summary.evaluators["correctness"]
    assert (summary.passed, summary.pass_rate, summary.mean_agreement) == (3, 0.75, 1.0)
    assert summary.cost == pytest.approx(4 * per_call)
    assert run.summary.judge_cost == pytest.approx(4 * per_call)
    assert run.summary.task_cost is None  # the task made no LLM call: unknown, not $0
    spans = cap.as_dicts()
    for evaluation in (s for s in spans if s["name"] == "evaluation correctness"):
        (chat,) = [s for s in spans if s["parent_id"] == evaluation["span_id"]]
        assert chat["name"] == "chat judge-model"
        assert chat["attributes"]["otelite.traffic"] == "evaluation"
        assert evaluation["attributes"]["otelite.evaluation.cost"] == pytest.approx(per_call)
        assert evaluation["attributes"]["otelite.evaluation.usage.input_tokens"] == 100

    with capture_spans(capture_content=True) as cap:
        evals.evaluate(ROWS[1:2], answer, [judge], progress=False)
    chat = cap.span("chat judge-model").attributes or {}
    assert json.loads(chat["gen_ai.system_instructions"])[0]["content"].startswith(
        "You are a careful"
    )  # type: ignore[arg-type]
    (message,) = json.loads(chat["gen_ai.input.messages"])  # type: ignore[arg-type]
    assert message["role"] == "user"
    assert "RESPONSE:\na1" in message["parts"][0]["content"]
    assert json.loads(chat["gen_ai.output.messages"]) == [  # type: ignore[arg-type]
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "VERDICT: CORRECT"}],
            "finish_reason": "stop",
        }
    ]


def test_one_row_whole_trace() -> None:
    """A row's trace, whole: root, task (with content when capture is on), evaluation with its event."""
    with capture_spans(capture_content=True) as cap:
        run = evals.evaluate(
            [{"input": "q5", "expected": "a5"}],
            answer,
            [evals.exact_match()],
            name="whole",
            progress=False,
        )
    root, task, evaluation = cap.as_dicts()
    traffic = {"otelite.traffic": "evaluation"}
    assert root == {
        "name": "evaluate whole",
        "kind": "INTERNAL",
        "trace_id": 1,
        "span_id": 1,
        "parent_id": None,
        "start_time": 1,
        "end_time": 7,
        "status": "UNSET",
        "status_description": None,
        "attributes": {
            "otelite.span.kind": "evaluation_run",
            "otelite.eval.run.name": "whole",
            "otelite.eval.run.id": run.id,
            "otelite.eval.row": 0,
            "otelite.eval.repeat": 0,
            **traffic,
        },
        "events": [],
    }
    assert task == {
        "name": "task answer",
        "kind": "INTERNAL",
        "trace_id": 1,
        "span_id": 2,
        "parent_id": 1,
        "start_time": 2,
        "end_time": 3,
        "status": "UNSET",
        "status_description": None,
        "attributes": {
            "otelite.span.kind": "task",
            **traffic,
            "otelite.input": '"q5"',
            "otelite.output": '"a5"',
        },
        "events": [],
    }
    result = {
        "gen_ai.evaluation.name": "exact_match",
        "otelite.evaluation.kind": "heuristic",
        "gen_ai.evaluation.score.value": 1.0,
        "gen_ai.evaluation.score.label": "pass",
        "otelite.evaluation.passed": True,
    }
    assert evaluation == {
        "name": "evaluation exact_match",
        "kind": "INTERNAL",
        "trace_id": 1,
        "span_id": 3,
        "parent_id": 2,
        "start_time": 4,
        "end_time": 6,
        "status": "UNSET",
        "status_description": None,
        "attributes": {**result, "otelite.span.kind": "evaluation", **traffic},
        "events": [{"name": "gen_ai.evaluation.result", "timestamp": 5, "attributes": result}],
    }


def test_check_gates_a_run_for_pytest() -> None:
    """check() raises an AssertionError naming every missed gate; failures() lists them."""
    with capture_spans():
        before = evals.evaluate(
            ROWS, answer, [evals.exact_match(), picky], name="v1", progress=False
        )
        after = evals.evaluate(
            ROWS, answer_regressed, [evals.exact_match(), picky], name="v2", progress=False
        )
    assert before.check(min_pass_rate=0.73) is before
    assert before.failures(0.75) == ["exact_match: pass rate 73.0% is below 75.0%"]
    assert before.failures(per_evaluator={"picky": 0.5}) == [
        "picky: no pass/fail verdicts to hold to 50.0%"
    ]
    with pytest.raises(
        evals.EvalGateError,
        match=r"run v2: exact_match: pass rate 71\.5% is below 73\.0%; 4 rows regressed against v1",
    ):
        after.check(min_pass_rate=0.73, baseline=before)
    assert issubclass(evals.EvalGateError, AssertionError)
    with pytest.raises(ValueError, match="no evaluator named 'nope'"):
        before.failures(per_evaluator={"nope": 0.5})
    with pytest.raises(ValueError, match="min_pass_rate: give a pass rate between 0 and 1"):
        before.failures(1.5)


def test_report_counts_agree_with_their_nouns() -> None:
    """A one-row run with one failing task reads `1 row, 1 task error`, never `1 rows`."""

    def task(_: object) -> str:
        raise RuntimeError("boom")

    run = evals.evaluate(
        [{"input": "a", "expected": "a"}], task, [evals.exact_match()], progress=False
    )
    first = run.report().splitlines()[0]
    assert first.endswith(f"({run.id}): 1 row, 1 task error, {run.summary.duration_s:.1f} s"), first
