"""LLM-as-judge against a fake OpenAI-compatible server: clean, messy and garbage verdicts, n=3 agreement."""

from __future__ import annotations

import json
from typing import Any, Optional, Union

import httpx
import openai
import pytest

import otelite
from cassettes import http
from otelite import ConfigurationError, evals
from otelite.evals import Score, parse_verdict
from otelite.testing import capture_spans

PRICES = {"judge-model": {"input": 1.0, "output": 2.0}}  # USD per million tokens


class FakeJudgeServer:
    """Answers /chat/completions with scripted replies (a str, an HTTP status, or an exception)."""

    def __init__(self, replies: list[Union[str, int, Exception]]) -> None:
        self.replies = list(replies)
        self.module: Any = http  # httpx or httpx2, whichever the client under test uses
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

    def handle(self, request: Any) -> Any:
        self.requests.append(json.loads(request.content))
        self.headers.append(dict(request.headers))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, int):
            return self.module.Response(reply, json={"error": {"message": "overloaded"}})
        return self.module.Response(
            200,
            json={
                "id": f"judge-{len(self.requests)}",
                "object": "chat.completion",
                "model": "judge-model",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 120, "completion_tokens": 8, "total_tokens": 128},
            },
        )


def httpx_judge(
    server: FakeJudgeServer, name: str = "correctness", **kwargs: Any
) -> evals.LLMJudge:
    server.module = httpx
    return evals.llm_judge(
        name,
        model="judge-model",
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-judge",
        transport=httpx.MockTransport(server.handle),
        **kwargs,
    )


def openai_judge(server: FakeJudgeServer, **kwargs: Any) -> evals.LLMJudge:
    client = openai.OpenAI(
        api_key="sk-judge",
        base_url="http://127.0.0.1:9/v1",
        http_client=http.Client(transport=http.MockTransport(server.handle)),
        max_retries=0,
    )
    return evals.llm_judge("correctness", client=client, model="judge-model", **kwargs)


QUESTION = {"input": "Capital of France?", "output": "Paris.", "expected": "Paris"}
COST = 120 * 1.0 / 1e6 + 8 * 2.0 / 1e6


@pytest.fixture(params=["httpx", "openai"])
def make_judge(request: pytest.FixtureRequest) -> Any:
    """Each judge test runs with plain httpx and with an openai client."""
    return httpx_judge if request.param == "httpx" else openai_judge


def test_clean_verdict_whole_score_and_request(make_judge: Any) -> None:
    """A clean reply gives the label's score, pass, the reasoning, and what the judge spent."""
    server = FakeJudgeServer(["Both name Paris; nothing contradicts.\nVERDICT: CORRECT"])
    with capture_spans(prices=PRICES, capture_content=True) as cap:
        score = make_judge(server)(**QUESTION)
    # The key goes to the endpoint only: no span carries it, even with content capture on.
    assert cap.spans
    assert all("sk-judge" not in str(s.attributes) + str(s.events) for s in cap.spans)
    assert score.latency_s is not None
    assert score == Score(
        "correctness",
        1.0,
        label="CORRECT",
        passed=True,
        explanation="Both name Paris; nothing contradicts.",
        kind="llm_judge",
        agreement=1.0,
        samples=1,
        input_tokens=120,
        output_tokens=8,
        cost=pytest.approx(COST),
        latency_s=score.latency_s,
    )
    (sent,) = server.requests
    assert sent["model"] == "judge-model"
    assert sent["temperature"] == 0.0
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    prompt = sent["messages"][1]["content"]
    assert "QUESTION:\nCapital of France?\n\nREFERENCE:\nParis\n\nRESPONSE:\nParis." in prompt
    assert server.headers[0]["authorization"] == "Bearer sk-judge"


def test_judge_call_is_one_span_marked_as_evaluation_traffic(
    make_judge: Any, openai_instrumented: None
) -> None:
    """The judge's call is a GenAI chat span with usage and cost, marked evaluation traffic, once."""
    server = FakeJudgeServer(["VERDICT: INCORRECT"])
    with capture_spans(prices=PRICES) as cap:
        make_judge(server)(**QUESTION)
    (span,) = cap.as_dicts()
    assert span["name"] == "chat judge-model"
    assert span["kind"] == "CLIENT"
    assert span["attributes"] == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai_compatible",
        "gen_ai.request.model": "judge-model",
        "gen_ai.request.temperature": 0.0,
        "server.address": "127.0.0.1",
        "server.port": 9,
        "otelite.traffic": "evaluation",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.response.id": "judge-1",
        "gen_ai.response.model": "judge-model",
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 8,
        "gen_ai.usage.cost": pytest.approx(COST),
        # Priced by the LLM-call core like an instrumented call: with its provenance.
        "otelite.cost.source": "user",
        "otelite.cost.estimated": False,
        "otelite.cost.override": True,
    }
    # Its metrics carry otelite.traffic, so dashboards can split judge spend from the app's.
    metrics = cap.metrics()
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai_compatible",
        "gen_ai.request.model": "judge-model",
        "gen_ai.response.model": "judge-model",
        "server.address": "127.0.0.1",
        "server.port": 9,
        "otelite.traffic": "evaluation",
    }
    (duration,) = metrics["gen_ai.client.operation.duration"]
    assert (duration["attributes"], duration["count"]) == (base, 1)
    tokens = {
        p["attributes"]["gen_ai.token.type"]: p["sum"] for p in metrics["gen_ai.client.token.usage"]
    }
    assert tokens == {"input": 120, "output": 8}
    (cost,) = metrics["otelite.client.cost"]
    assert cost["attributes"] == base
    assert cost["value"] == pytest.approx(COST)


@pytest.mark.parametrize(
    ("reply", "label"),
    [
        ("VERDICT: CORRECT", "CORRECT"),
        ("**Verdict:** correct.", "CORRECT"),
        ("verdict - Incorrect!", "INCORRECT"),
        ("  correct  ", "CORRECT"),
        ("The answer is INCORRECT because it names Lyon.", "INCORRECT"),
        ("It says Paris, so it is not incorrect... VERDICT: CORRECT", "CORRECT"),
        ("Reasoning: the reference says Paris.\nFinal answer: `CORRECT`", "CORRECT"),
        ("Could be CORRECT or INCORRECT.\nI lean INCORRECT", "INCORRECT"),
        ("It is not correct.", None),
        ("banana", None),
        ("", None),
        ("CORRECT or INCORRECT, hard to say", None),
    ],
)
def test_parse_verdict_clean_messy_and_garbage(reply: str, label: Optional[str]) -> None:
    """Case, punctuation, markdown and extra words are tolerated; ambiguity gives None."""
    assert parse_verdict(reply, ["CORRECT", "INCORRECT"]) == label


def test_parse_scale_verdicts() -> None:
    """A 1-5 rating is read from the verdict line even when the text mentions other numbers."""
    labels = ["1", "2", "3", "4", "5"]
    assert (
        parse_verdict("On a scale of 1 to 5 this covers 2 of 3 points.\nRating: 4", labels) == "4"
    )
    assert parse_verdict("5", labels) == "5"
    assert parse_verdict("somewhere between 3 and 4", labels) is None


def test_garbage_verdict_gives_none_with_the_raw_text(make_judge: Any) -> None:
    """An unreadable reply is a None score carrying the raw text, not an exception."""
    server = FakeJudgeServer(["I like turtles."])
    with capture_spans():
        score = make_judge(server)(**QUESTION)
    assert score.value is None
    assert score.passed is None
    assert score.explanation == "unparseable verdict: I like turtles."
    assert score.error is None
    assert score.agreement == 0.0


@pytest.mark.parametrize(
    ("replies", "value", "label", "agreement"),
    [
        (["VERDICT: CORRECT"] * 3, 1.0, "CORRECT", 1.0),
        (["VERDICT: CORRECT", "correct", "VERDICT: INCORRECT"], 1.0, "CORRECT", 2 / 3),
        (["VERDICT: INCORRECT", "nonsense", "Incorrect."], 0.0, "INCORRECT", 2 / 3),
        (["VERDICT: CORRECT", "VERDICT: INCORRECT", "nonsense"], None, None, 1 / 3),
        (["nonsense", "??", ""], None, None, 0.0),
    ],
)
def test_n3_self_consistency(
    make_judge: Any,
    replies: list[str],
    value: Optional[float],
    label: Optional[str],
    agreement: float,
) -> None:
    """n=3: the majority verdict with the share of runs that agree; a split gives None."""
    server = FakeJudgeServer(replies)
    with capture_spans(prices=PRICES) as cap, otelite.span("judging") as parent:
        score = make_judge(server, n=3)(**QUESTION)
    assert len(server.requests) == 3
    # The runs go out on threads; each call's span still sits under the caller's span.
    calls = [s for s in cap.spans if s.name == "chat judge-model"]
    assert [c.parent.span_id for c in calls] == [parent.get_span_context().span_id] * 3  # type: ignore[union-attr]
    assert (score.value, score.label) == (value, label)
    assert score.agreement == pytest.approx(agreement)
    assert score.samples == 3
    assert (score.input_tokens, score.output_tokens) == (360, 24)
    assert score.cost == pytest.approx(3 * COST)
    if value is None and agreement:
        assert score.explanation is not None
        assert score.explanation.startswith("the judge runs disagree")


def test_endpoint_down_gives_none_with_reason() -> None:
    """Connection refused or HTTP 500: a None score with the reason; nothing raises."""
    refused = FakeJudgeServer([httpx.ConnectError("connection refused")])
    with capture_spans() as cap:
        score = httpx_judge(refused)(**QUESTION)
    assert score.value is None
    assert score.error == "EndpointError: ConnectError: connection refused"
    assert score.explanation == "judge endpoint unavailable: ConnectError: connection refused"
    (span,) = cap.as_dicts()
    assert span["status"] == "ERROR"
    assert span["attributes"]["error.type"] == "httpx.ConnectError"
    (failed_call,) = cap.metrics()["gen_ai.client.operation.duration"]
    assert failed_call["attributes"]["error.type"] == "httpx.ConnectError"
    assert "otelite.client.cost" not in cap.metrics()

    failing = FakeJudgeServer([500, "VERDICT: CORRECT"])
    score = httpx_judge(failing, n=2)(**QUESTION)
    # One run failed, one answered: the answer counts, the failure lowers the agreement.
    assert (score.value, score.agreement) == (1.0, 0.5)


def test_missing_fields_and_context_lists() -> None:
    """A template field the call did not give yields None with the field named; lists of passages are joined."""
    server = FakeJudgeServer(["VERDICT: GROUNDED"])
    grounded = httpx_judge(server, "groundedness")
    missing = grounded(input="q", output="a")
    assert missing.value is None
    assert missing.explanation == "groundedness needs context= for its template"
    score = grounded(input="q", output="a", context=["Paris is in France.", "Lyon too."])
    assert score.label == "GROUNDED"
    assert (
        "CONTEXT:\nParis is in France.\n\nLyon too.\n"
        in server.requests[0]["messages"][1]["content"]
    )


def test_builtin_templates_and_custom_template() -> None:
    """Built-ins by name (helpfulness passes at 4); a custom template with its own choices and threshold."""
    assert set(evals.TEMPLATES) == {"correctness", "groundedness", "harmlessness", "helpfulness"}
    assert all(t.weaknesses for t in evals.TEMPLATES.values())
    rated = httpx_judge(FakeJudgeServer(["Good but terse.\nRATING: 3"]), "helpfulness")(
        input="q", output="a"
    )
    assert (rated.value, rated.label, rated.passed) == (3.0, "3", False)
    lenient = httpx_judge(FakeJudgeServer(["RATING: 3"]), "helpfulness", threshold=3)
    assert lenient(input="q", output="a").passed is True
    custom = httpx_judge(
        FakeJudgeServer(["Polite enough. VERDICT: polite"]),
        "tone",
        template="Is this reply polite? {{output}}",
        choices={"POLITE": 1.0, "RUDE": 0.0},
        threshold=1.0,
    )
    score = custom(input="q", output="Thanks!")
    assert (score.name, score.value, score.label, score.passed) == ("tone", 1.0, "POLITE", True)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": "nonsense"}, ValueError, "no built-in template named 'nonsense'"),
        (
            {"name": "x", "template": "no output here", "choices": {"A": 1, "B": 0}},
            ValueError,
            r"must contain \{\{output\}\}",
        ),
        (
            {"name": "x", "template": "{{output}} {{answer}}", "choices": {"A": 1, "B": 0}},
            ValueError,
            r"unknown placeholder \{\{answer\}\}",
        ),
        ({"name": "x", "template": "{{output}}"}, ValueError, "needs choices"),
        (
            {"name": "x", "template": "{{output}}", "choices": {"A": 1}},
            ValueError,
            "at least two labels",
        ),
        (
            {"name": "x", "template": "{{output}}", "choices": {"very good": 1, "bad": 0}},
            ValueError,
            "must be one word",
        ),
        (
            {"name": "x", "template": "{{output}}", "choices": {"A": 1, "a": 0}},
            ValueError,
            "given twice",
        ),
        (
            {"name": "x", "template": "{{output}}", "choices": ["good", "bad"]},
            ValueError,
            "numeric labels",
        ),
        (
            {"name": "x", "template": "{{output}}", "choices": {"A": 1, "B": 0}, "threshold": 2},
            ValueError,
            "nothing could pass",
        ),
        ({"name": "correctness", "choices": {"A": 1, "B": 0}}, ValueError, "fixed labels"),
        ({"name": "helpfulness", "threshold": "4"}, TypeError, "threshold: give a number"),
        ({"name": "helpfulness", "threshold": 6}, ValueError, "nothing could pass"),
        ({"name": "correctness", "n": 0}, ValueError, "n: give the number of judge runs"),
        (
            {"name": "correctness", "temperature": 3},
            ValueError,
            "temperature: give a number from 0 to 2",
        ),
    ],
)
def test_invalid_judges_are_refused_at_construction(
    kwargs: dict[str, Any], error: type, message: str
) -> None:
    """Bad templates, choices, thresholds and run counts fail when the judge is built."""
    with pytest.raises(error, match=message):
        evals.llm_judge(model="m", base_url="http://127.0.0.1:9/v1", **kwargs)


def test_endpoint_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """No model, no key for api.openai.com, an async client: clear ConfigurationErrors."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigurationError, match="give model="):
        evals.llm_judge("correctness", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigurationError, match=r"no API key for https://api\.openai\.com/v1"):
        evals.llm_judge("correctness", model="gpt-4o-mini")
    async_client = openai.AsyncOpenAI(api_key="sk-x", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigurationError, match="async client; give a sync one"):
        evals.llm_judge("correctness", model="m", client=async_client)
    with pytest.raises(ConfigurationError, match="not an http"):
        evals.llm_judge("correctness", model="m", base_url="ftp://x")
