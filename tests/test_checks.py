"""Online checks: the right spans are marked in real recordings, failures are counted, nothing breaks."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Optional

import openai
import pytest

import otelite
from cassettes import Interaction, all_cassettes, call_kwargs, http, load, make_client, method_for
from fakeopenai import chat_completion
from otelite import ConfigurationError, _checks
from otelite.evals import Score, checks
from otelite.testing import capture_spans

ALL = [
    checks.empty(),
    checks.refusal(),
    checks.truncated(),
    checks.error(),
    checks.invalid_json(),
    checks.pii(),
]


pytestmark = pytest.mark.usefixtures("openai_instrumented")


def _responses(interaction: Interaction) -> list[Any]:
    if interaction.status >= 400:
        return []
    if interaction.is_stream:
        return interaction.sse_events()
    return [interaction.response_json()]


def expected_failures(interaction: Interaction) -> set[str]:
    """What the checks must find, read straight from the recorded response."""
    if interaction.status >= 400:
        return {"error"}
    found: set[str] = set()
    for body in _responses(interaction):
        for choice in body.get("choices") or ():
            if choice.get("finish_reason") == "length":
                found.add("truncated")
            message = choice.get("message") or choice.get("delta") or {}
            if message.get("refusal"):
                found.add("refusal")
        details = (body.get("response") or body).get("incomplete_details") or {}
        if details.get("reason") == "max_output_tokens":
            found.add("truncated")
    if not interaction.is_stream and interaction.endpoint == "/chat/completions":
        body = interaction.response_json()
        if all(
            not ((c.get("message") or {}).get("content") or "").strip()
            and not (c.get("message") or {}).get("tool_calls")
            and not (c.get("message") or {}).get("function_call")
            and not (c.get("message") or {}).get("refusal")
            for c in body["choices"]
        ):
            found.add("empty")
    return found


def _call(client: Any, interaction: Interaction) -> None:
    method = method_for(client, interaction)
    try:
        result = method(**call_kwargs(method, interaction))
        if interaction.is_stream:
            list(result)
    except openai.OpenAIError:
        pass


@pytest.mark.parametrize("name", all_cassettes())
def test_checks_mark_the_right_recorded_calls(name: str) -> None:
    """Replaying every recording, a span lists exactly the checks its response fails."""
    interactions = load(name)
    client, replay = make_client(interactions)
    for interaction in interactions:
        with capture_spans(checks=ALL) as cap:
            _call(client, interaction)
        (span,) = cap.spans
        expected = expected_failures(interaction)
        failed = set(span.attributes.get("otelite.checks.failed", ()))  # type: ignore[union-attr]
        assert failed == expected, (interaction.url, failed, expected)
        events = [e for e in span.events if e.name == "gen_ai.evaluation.result"]
        assert sorted(e.attributes["gen_ai.evaluation.name"] for e in events) == sorted(expected)  # type: ignore[index]
        counted = cap.metrics().get("otelite.client.check.failures", [])
        assert sorted(p["attributes"]["otelite.check.name"] for p in counted) == sorted(expected)
        assert all(p["value"] == 1 for p in counted)
    assert replay.mismatches == []


@pytest.mark.parametrize("name", all_cassettes())
def test_checks_mark_the_right_recorded_calls_async(name: str) -> None:
    """The same with the async client (streams iterated with async for)."""
    interactions = load(name)
    client, replay = make_client(interactions, is_async=True)

    async def call(interaction: Interaction) -> None:
        method = method_for(client, interaction)
        try:
            result = await method(**call_kwargs(method, interaction))
            if interaction.is_stream:
                async for _ in result:
                    pass
        except openai.OpenAIError:
            pass

    async def main() -> None:
        for interaction in interactions:
            with capture_spans(checks=ALL) as cap:
                await call(interaction)
            (span,) = cap.spans
            failed = set(span.attributes.get("otelite.checks.failed", ()))  # type: ignore[union-attr]
            assert failed == expected_failures(interaction), interaction.url

    asyncio.run(main())
    assert replay.mismatches == []


def test_refusal_recording_whole_span_event_and_metric() -> None:
    """The structured-output refusal: the event's attributes and the counter's point, in full."""
    (interaction, *_) = load("openllmetry/test_chat_parse/test_parsed_refused_completion.yaml")
    client, _ = make_client([interaction])
    with capture_spans(checks=[checks.refusal(), checks.truncated()]) as cap:
        _call(client, interaction)
    (span,) = cap.as_dicts()
    response_id = interaction.response_json()["id"]
    assert span["attributes"]["otelite.checks.failed"] == ["refusal"]
    assert span["events"] == [
        {
            "name": "gen_ai.evaluation.result",
            "timestamp": span["events"][0]["timestamp"],
            "attributes": {
                "gen_ai.evaluation.name": "refusal",
                "otelite.evaluation.kind": "check",
                "gen_ai.evaluation.score.label": "fail",
                "gen_ai.evaluation.explanation": "the model refused (refusal field set)",
                "otelite.evaluation.passed": False,
                "gen_ai.response.id": response_id,
            },
        }
    ]
    assert cap.metrics()["otelite.client.check.failures"] == [
        {
            "attributes": {
                "otelite.check.name": "refusal",
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
            },
            "value": 1,
        }
    ]


def _fake_client(body: dict[str, Any], status: int = 200) -> openai.OpenAI:
    def handler(request: Any) -> Any:
        return http.Response(status, json=body)

    return openai.OpenAI(
        api_key="sk-test",
        base_url="http://127.0.0.1:9/v1",
        http_client=http.Client(transport=http.MockTransport(handler)),
        max_retries=0,
    )


def test_passing_response_records_nothing() -> None:
    """A good answer: no failed-checks attribute, no event, no counter point."""
    client = _fake_client(chat_completion("Paris is the capital."))
    with capture_spans(checks=ALL) as cap:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}]
        )
    (span,) = cap.spans
    assert "otelite.checks.failed" not in span.attributes  # type: ignore[operator]
    assert span.events == ()
    assert "otelite.client.check.failures" not in cap.metrics()


@pytest.mark.parametrize(
    ("content", "response_format", "expected"),
    [
        ('{"city": "Oslo"}', {"type": "json_object"}, set()),
        ("Oslo, I think", {"type": "json_object"}, {"invalid_json"}),
        ("Oslo, I think", None, set()),
        ("I'm sorry, but I can't help with that.", None, {"refusal"}),
        ("Mail me at ana@example.com", None, {"pii"}),
        ("Card 4111 1111 1111 1111 works", None, {"pii"}),
        ("Order 1234 5678 9012 3456 shipped", None, set()),
        ("Call +44 20 7946 0958 after six", None, {"pii"}),
        ("Her SSN is 123-45-6789", None, {"pii"}),
        ("Version 1.2.3 shipped in 2024 with 3,000 fixes", None, set()),
        ("   ", None, {"empty"}),
    ],
)
def test_text_checks_on_live_responses(
    content: str, response_format: Optional[dict[str, str]], expected: set[str]
) -> None:
    """JSON, refusal-phrase, personal-data and empty checks read the response text."""
    client = _fake_client(chat_completion(content))
    kwargs: dict[str, Any] = {"response_format": response_format} if response_format else {}
    with capture_spans(checks=ALL) as cap:
        result = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}], **kwargs
        )
    assert result.choices[0].message.content == content
    (span,) = cap.spans
    assert set(span.attributes.get("otelite.checks.failed", ())) == expected  # type: ignore[union-attr]


def test_slow_check_uses_the_measured_duration() -> None:
    """slow() fails calls over its threshold and passes the others."""
    slow = checks.slow(0.5)
    assert slow(_checks.Call(operation="chat", provider="openai", duration_s=0.7)) == (
        "took 0.700 s, over the 0.5 s threshold"
    )
    assert slow(_checks.Call(operation="chat", provider="openai", duration_s=0.5)) is None


def test_a_check_that_raises_never_reaches_the_caller(contained_errors: None) -> None:
    """A broken custom check is skipped; the call returns normally and the other checks still run."""

    class Broken:
        name = "broken"

        def __call__(self, call: _checks.Call) -> Optional[str]:
            raise RuntimeError("bug in my check")

    client = _fake_client(chat_completion("", finish_reason="length"))
    with capture_spans(checks=[Broken(), checks.truncated()]) as cap:
        result = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}]
        )
    assert result.choices[0].finish_reason == "length"
    (span,) = cap.spans
    assert span.attributes["otelite.checks.failed"] == ("truncated",)  # type: ignore[index]


def test_checks_are_validated_at_configure() -> None:
    """Non-checks, duplicate names and unsampled judges are refused with a clear message."""
    with pytest.raises(ConfigurationError, match=r"checks\[0\]: 'refusal' is not a check"):
        otelite.configure(local_store=False, checks=["refusal"])
    with pytest.raises(ConfigurationError, match="two checks are named 'slow'"):
        otelite.configure(local_store=False, checks=[checks.slow(1), checks.slow(2)])

    class FakeJudge:
        kind = "llm_judge"
        name = "helpfulness"

        def __call__(self, **kwargs: Any) -> Score:
            return Score("helpfulness", 5)

    with pytest.raises(ConfigurationError, match=r"sample_rate=0\.05"):
        otelite.configure(local_store=False, checks=[FakeJudge()])
    with pytest.raises(ConfigurationError, match=r"fraction in \(0, 1\]"):
        checks.judge(FakeJudge(), sample_rate=0)
    with pytest.raises(ConfigurationError, match="seconds above 0"):
        checks.slow(-1)


def test_checks_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTELITE_CHECKS names built-in checks; slow takes its threshold; unknown names are refused."""
    from otelite import _config

    monkeypatch.setenv("OTELITE_CHECKS", "refusal, truncated,slow:2.5")
    otelite.configure(local_store=False)
    assert _config.active().checks == (checks.refusal(), checks.truncated(), checks.slow(2.5))
    monkeypatch.setenv("OTELITE_CHECKS", "refusal,toxic")
    with pytest.raises(ConfigurationError, match="OTELITE_CHECKS: unknown check 'toxic'"):
        otelite.configure(local_store=False)
    monkeypatch.setenv("OTELITE_CHECKS", "slow:fast")
    with pytest.raises(ConfigurationError, match="'slow:5'"):
        otelite.configure(local_store=False)


def test_sampled_judge_runs_off_the_request_path() -> None:
    """A judge check returns at once; its score lands later under the LLM span, and failures count."""
    release = threading.Event()
    seen: list[dict[str, Any]] = []

    def judge(*, input: str, output: str) -> Score:
        release.wait(5)
        seen.append({"input": input, "output": output})
        return Score(
            "helpful",
            1.0,
            label="1",
            passed=False,
            explanation="quotes the answer",
            kind="llm_judge",
        )

    client = _fake_client(chat_completion("Paris."))
    with capture_spans(checks=[checks.judge(judge, sample_rate=1.0, name="helpful")]) as cap:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Capital of France?"},
            ],
        )
        # The call has returned while the judge is still blocked.
        assert [s.name for s in cap.spans] == ["chat gpt-4o-mini"]
        release.set()
        assert checks.wait_for_judges(timeout=5)
        llm, evaluation = cap.as_dicts()
    assert seen == [{"input": "system: Be brief.\nuser: Capital of France?", "output": "Paris."}]
    assert evaluation["name"] == "evaluation helpful"
    assert evaluation["parent_id"] == llm["span_id"]
    assert evaluation["trace_id"] == llm["trace_id"]
    assert evaluation["attributes"] == {
        "gen_ai.evaluation.name": "helpful",
        "otelite.span.kind": "evaluation",
        "otelite.traffic": "evaluation",
        "otelite.evaluation.kind": "llm_judge",
        "gen_ai.evaluation.score.value": 1.0,
        "gen_ai.evaluation.score.label": "1",
        "otelite.evaluation.passed": False,
        "gen_ai.response.id": "chatcmpl-1",
    }
    # Content capture is off: the judge's explanation (which quotes content) is not recorded.
    assert "gen_ai.evaluation.explanation" not in evaluation["events"][0]["attributes"]
    (point,) = cap.metrics()["otelite.client.check.failures"]
    assert point["attributes"]["otelite.check.name"] == "helpful"


def test_sampled_judge_respects_the_rate() -> None:
    """sample_rate picks that share of calls (seeded generator), never more."""
    import random

    calls: list[str] = []

    def judge(*, input: str, output: str) -> Score:
        calls.append(output)
        return Score("j", 1.0, kind="llm_judge")

    check = _checks.Judge(judge, 0.25, "j", rng=random.Random(7))
    client = _fake_client(chat_completion("ok"))
    with capture_spans(checks=[check]):
        for _ in range(200):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}]
            )
        assert checks.wait_for_judges(timeout=10)
    same = random.Random(7)
    expected = sum(1 for _ in range(200) if same.random() < 0.25)
    assert len(calls) == expected
    assert 30 <= len(calls) <= 70


def test_json_roundtrip_of_call_text() -> None:
    """messages_text renders system instructions and the conversation in order."""
    text = _checks.messages_text(
        {
            "gen_ai.system_instructions": json.loads('[{"type": "text", "content": "Be brief."}]'),
            "gen_ai.input.messages": [
                {"role": "user", "parts": [{"type": "text", "content": "Hi"}]},
                {"role": "assistant", "parts": [{"type": "text", "content": "Hello"}]},
            ],
        }
    )
    assert text == "system: Be brief.\nuser: Hi\nassistant: Hello"


def test_shutdown_waits_for_running_judges(tmp_path: Any) -> None:
    """A judge still running at shutdown finishes, and its score reaches the local store."""
    from otelite.store import LocalStore

    started = threading.Event()
    release = threading.Event()

    def judge(*, input: str, output: str) -> Score:
        started.set()
        release.wait(5)
        return Score("late", 1.0, passed=True, kind="llm_judge")

    otelite.configure(
        local_store=tmp_path, checks=[checks.judge(judge, sample_rate=1.0, name="late")]
    )
    _fake_client(chat_completion("ok")).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}]
    )
    assert started.wait(5)
    threading.Timer(0.05, release.set).start()
    otelite.shutdown()
    with LocalStore(tmp_path) as store:
        (score,) = store.scores(name="late")
        (llm,) = store.llm_spans()
    assert (score.value, score.passed, score.kind) == (1.0, True, "llm_judge")
    assert (score.trace_id, score.span_id) == (llm.trace_id, llm.span_id)


def test_judge_queue_is_bounded(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """When judges fall behind, further calls are not judged (and that is logged once)."""
    monkeypatch.setattr(_checks, "MAX_PENDING_JUDGES", 1)
    monkeypatch.setattr(_checks, "_dropped", 0)
    release = threading.Event()
    judged: list[str] = []

    def judge(*, input: str, output: str) -> Score:
        release.wait(5)
        judged.append(output)
        return Score("slowjudge", 1.0, kind="llm_judge")

    client = _fake_client(chat_completion("ok"))
    with capture_spans(checks=[checks.judge(judge, sample_rate=1.0, name="slowjudge")]):
        for _ in range(3):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}]
            )
        release.set()
        assert checks.wait_for_judges(timeout=5)
    assert judged == ["ok"]
    warnings = [
        r.getMessage()
        for r in caplog.records
        if "online judge checks are already waiting" in r.getMessage()
    ]
    assert warnings == [
        "otelite: 1 online judge checks are already waiting; further calls are not judged until they finish (lower sample_rate or use a faster judge)"
    ]


def test_a_failing_check_run_never_replaces_the_callers_error(
    contained_errors: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If running the checks itself fails, the caller still gets the API's own exception."""

    def broken_run(*args: Any, **kwargs: Any) -> list[str]:
        raise RuntimeError("bug in the check runner")

    monkeypatch.setattr(_checks, "run", broken_run)
    client = _fake_client(
        {"error": {"message": "nope", "type": "invalid_request_error"}}, status=400
    )
    with capture_spans(checks=[checks.error()]) as cap:
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}]
            )
        ok = _fake_client(chat_completion("fine"))
        assert (
            ok.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}]
            )
            .choices[0]
            .message.content
            == "fine"
        )
    assert [s.status.status_code.name for s in cap.spans] == ["ERROR", "UNSET"]
