"""`otelite canary run`: record the answers, compare later runs, report what changed and why.

The endpoint is a fake OpenAI-compatible server on 127.0.0.1 whose behaviour a test
changes between runs (model snapshot, speed, answer, response fields). Latency is
read from a step clock the server advances, never from the wall clock.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from fakeopenai import chat_completion
from otelite import canary
from otelite.canary import _baseline, _run
from otelite.cli import main
from otelite.prompts import PromptRegistry
from otelite.testing import capture_spans

SNAPSHOT = "gpt-4o-mini-2024-07-18"
CAPITAL = "Capital of France? One word."
CITY = "Largest city of Norway?"
RECORDED = "2026-01-02T03:04:05Z"


class StepClock:
    """Seconds that move only when the fake server says an answer took time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeEndpoint:
    """An OpenAI-compatible chat endpoint on 127.0.0.1 whose behaviour tests change."""

    def __init__(self, clock: StepClock) -> None:
        self.clock = clock
        self.answers = {CAPITAL: "Paris.", CITY: '{"city": "Oslo"}'}
        self.model = SNAPSHOT
        self.finish_reason = "stop"
        self.extra: dict[str, Any] = {"system_fingerprint": "fp_1"}
        self.seconds = 0.25  # how long each answer takes, on the step clock
        self.status = 200
        self.verdict = "VERDICT: CORRECT"
        self.requests: list[dict[str, Any]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.requests.append(body)
                payload = json.dumps(endpoint.answer(body)).encode()
                self.send_response(endpoint.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.status >= 400:
            return {"error": {"type": "server_error", "code": "overloaded", "message": "busy"}}
        self.clock.now += self.seconds
        messages = body["messages"]
        if "impartial evaluator" in messages[0]["content"]:
            text = f"The response matches the reference.\n{self.verdict}"
        else:
            text = self.answers.get(messages[-1]["content"], "?")
        return chat_completion(
            text, model=self.model, finish_reason=self.finish_reason, **self.extra
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> StepClock:
    """The step clock, used by the command line too; the baseline's timestamp is pinned."""
    found = StepClock()
    monkeypatch.setattr(_run, "_clock", lambda: found)
    monkeypatch.setattr(_run, "_now", lambda: RECORDED)
    return found


@pytest.fixture
def server(clock: StepClock) -> Iterator[FakeEndpoint]:
    """The fake endpoint, stopped after the test."""
    found = FakeEndpoint(clock)
    yield found
    if found.thread.is_alive():
        found.close()


def write_canaries(server: FakeEndpoint, **defaults: Any) -> Path:
    """canaries.json in the working directory: a plain answer and a JSON answer."""
    data = {
        "base_url": server.url,
        "defaults": {"model": "gpt-4o-mini", "max_latency_s": 1.0, **defaults},
        "canaries": [
            {
                "name": "capital",
                "messages": [{"role": "user", "content": CAPITAL}],
                "evaluators": ["exact"],
            },
            {
                "name": "city-json",
                "messages": [
                    {"role": "system", "content": "Answer in JSON."},
                    {"role": "user", "content": CITY},
                ],
                "evaluators": [
                    "is_json",
                    {"schema": {"type": "object", "required": ["city"]}},
                    {"similarity": {"threshold": 0.9}},
                ],
            },
        ],
    }
    path = Path("canaries.json")
    path.write_text(json.dumps(data, indent=2))
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command line; its exit code, stdout and stderr."""
    code = main(["canary", "run", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_record_then_unchanged_run(
    server: FakeEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    """--record writes a sorted, reviewable baseline and exits 0; an unchanged rerun exits 0."""
    write_canaries(server)
    code, out, err = cli(capsys, "canaries.json", "--record")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"canaries canaries.json against {server.url} (recording canaries.baseline.json)",
        f"  recorded   capital    {SNAPSHOT}  0.250 s  $0.000004",
        f"  recorded   city-json  {SNAPSHOT}  0.250 s  $0.000004",
        "2 canaries: 2 recorded",
    ]
    text = Path("canaries.baseline.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    entry = {
        "finish_reason": "stop",
        "latency_s": 0.25,
        "response_fields": [
            "choices",
            "choices[].finish_reason",
            "choices[].index",
            "choices[].message",
            "choices[].message.content",
            "choices[].message.role",
            "created",
            "id",
            "model",
            "object",
            "system_fingerprint",
            "usage",
            "usage.completion_tokens",
            "usage.prompt_tokens",
            "usage.total_tokens",
        ],
        "response_model": SNAPSHOT,
        "system_fingerprint": "fp_1",
        "usage": {"input_tokens": 12, "output_tokens": 3},
    }
    baseline = json.loads(text)
    cost = 12 * 0.15e-6 + 3 * 0.6e-6  # gpt-4o-mini: $0.15 and $0.60 per million tokens
    for found in baseline["canaries"].values():
        assert found.pop("cost_usd") == pytest.approx(cost)
    assert baseline == {
        "otelite_canary_baseline": 1,
        "recorded": RECORDED,
        "canaries": {
            "capital": {
                **entry,
                "answer": "Paris.",
                "request": {
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": CAPITAL}],
                    "temperature": 0.0,
                },
            },
            "city-json": {
                **entry,
                "answer": '{"city": "Oslo"}',
                "request": {
                    "model": "gpt-4o-mini",
                    "messages": [
                        {"role": "system", "content": "Answer in JSON."},
                        {"role": "user", "content": CITY},
                    ],
                    "temperature": 0.0,
                },
            },
        },
    }
    assert [r["model"] for r in server.requests] == ["gpt-4o-mini", "gpt-4o-mini"]
    assert [r["temperature"] for r in server.requests] == [0.0, 0.0]

    code, out, err = cli(capsys, "canaries.json")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"canaries canaries.json against {server.url} (baseline canaries.baseline.json)",
        f"  unchanged  capital    {SNAPSHOT}  0.250 s  $0.000004",
        f"  unchanged  city-json  {SNAPSHOT}  0.250 s  $0.000004",
        "2 canaries: 2 unchanged",
    ]


CHANGES = {
    "new snapshot": (
        lambda s: setattr(s, "model", "gpt-4o-mini-2024-11-20"),
        {
            "capital": ["model snapshot changed: gpt-4o-mini-2024-07-18 -> gpt-4o-mini-2024-11-20"],
            "city-json": [
                "model snapshot changed: gpt-4o-mini-2024-07-18 -> gpt-4o-mini-2024-11-20"
            ],
        },
    ),
    "slower": (
        lambda s: setattr(s, "seconds", 2.5),
        {
            "capital": ["latency over budget: 2.5 s (limit 1 s)"],
            "city-json": ["latency over budget: 2.5 s (limit 1 s)"],
        },
    ),
    "different answer": (
        lambda s: s.answers.update({CAPITAL: "Lyon."}),
        {"capital": ["the answer differs from the recorded one"]},
    ),
    "answer no longer JSON": (
        lambda s: s.answers.update({CITY: "Oslo"}),
        {
            "city-json": [
                "is_json failed",
                "schema failed",
                "similarity below threshold: ratio 0.400 vs threshold 0.9",  # 2*4/(4+16)
            ]
        },
    ),
    "new field": (
        lambda s: s.extra.update({"service_tier": "default"}),
        {
            "capital": ["new response fields: service_tier"],
            "city-json": ["new response fields: service_tier"],
        },
    ),
    "field no longer sent": (
        lambda s: s.extra.clear(),
        {
            "capital": ["response fields no longer sent: system_fingerprint"],
            "city-json": ["response fields no longer sent: system_fingerprint"],
        },
    ),
    "finish reason": (
        lambda s: setattr(s, "finish_reason", "length"),
        {
            "capital": ["finish reason changed: stop -> length"],
            "city-json": ["finish reason changed: stop -> length"],
        },
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_changed_server_exits_1_with_the_reason(
    change: str, server: FakeEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a recording, each kind of server change makes the run exit 1 naming the reason."""
    write_canaries(server)
    assert cli(capsys, "canaries.json", "--record")[0] == 0
    alter, expected = CHANGES[change]
    alter(server)
    code, out, err = cli(capsys, "canaries.json", "--json")
    assert (code, err) == (1, "")
    report = json.loads(out)
    assert report["exit_code"] == 1
    assert {c["name"]: c["reasons"] for c in report["canaries"] if c["reasons"]} == expected
    assert {c["name"]: c["status"] for c in report["canaries"]} == {
        name: "changed" if name in expected else "unchanged" for name in ("capital", "city-json")
    }


def test_changed_answer_text_report(
    server: FakeEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    """The text report shows the reason, the recorded and the new answer of a changed canary."""
    write_canaries(server)
    cli(capsys, "canaries.json", "--record")
    server.answers[CAPITAL] = "Lyon."
    code, out, _ = cli(capsys, "canaries.json")
    assert code == 1
    assert out.splitlines() == [
        f"canaries canaries.json against {server.url} (baseline canaries.baseline.json)",
        f"  CHANGED    capital    {SNAPSHOT}  0.250 s  $0.000004",
        "      - the answer differs from the recorded one",
        "      was: 'Paris.'",
        "      now: 'Lyon.'",
        f"  unchanged  city-json  {SNAPSHOT}  0.250 s  $0.000004",
        "2 canaries: 1 unchanged, 1 changed",
    ]


def test_new_system_fingerprint_is_a_note_not_a_change(
    server: FakeEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new system_fingerprint alone is reported as a note and the run still exits 0."""
    write_canaries(server)
    cli(capsys, "canaries.json", "--record")
    server.extra["system_fingerprint"] = "fp_2"
    code, out, _ = cli(capsys, "canaries.json")
    assert code == 0
    assert out.splitlines()[1:3] == [
        f"  unchanged  capital    {SNAPSHOT}  0.250 s  $0.000004",
        "      note: system_fingerprint changed: fp_1 -> fp_2",
    ]


def test_endpoint_down_is_a_failed_canary(
    server: FakeEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    """An endpoint that refuses connections fails every canary (exit 1) without a crash."""
    write_canaries(server)
    cli(capsys, "canaries.json", "--record")
    server.close()
    code, out, err = cli(capsys, "canaries.json", "--json")
    assert (code, err) == (1, "")
    report = json.loads(out)
    assert report["counts"] == {"unchanged": 0, "recorded": 0, "changed": 0, "failed": 2}
    for found in report["canaries"]:
        assert found["status"] == "failed"
        assert found["answer"] is None
        assert found["latency_s"] is None
        [reason] = found["reasons"]
        assert reason.startswith("the endpoint failed: ")
        assert "refused" in reason


def test_endpoint_error_answer_is_a_failed_canary_and_keeps_the_baseline(
    server: FakeEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    """An HTTP 500 fails the canary; re-recording then keeps its earlier baseline entry."""
    write_canaries(server)
    cli(capsys, "canaries.json", "--record")
    before = json.loads(Path("canaries.baseline.json").read_text())
    server.status = 500
    code, out, _ = cli(capsys, "canaries.json", "--record")
    assert code == 1
    assert out.splitlines()[1:3] == [
        "  FAILED     capital    -  -  -",
        f"      - the endpoint failed: {server.url} answered HTTP 500 "
        "(type: server_error, code: overloaded)",
    ]
    assert json.loads(Path("canaries.baseline.json").read_text()) == before


def test_span_tree(server: FakeEndpoint, clock: StepClock) -> None:
    """A run is one root span, a span per canary, the priced LLM call and the scores under it."""
    path = write_canaries(server)
    canary.run(path, record=True, clock=clock, now=lambda: RECORDED)
    server.answers[CAPITAL] = "Lyon."
    with capture_spans() as captured:
        report = canary.run(path, clock=clock)
    assert report.exit_code == 1
    spans = captured.spans
    by_id = {s.context.span_id: s for s in spans}

    def parent(span: Any) -> Any:
        return by_id[span.parent.span_id].name if span.parent else None

    assert sorted((s.name, parent(s)) for s in spans) == sorted(
        [
            ("canary run", None),
            ("canary capital", "canary run"),
            ("chat gpt-4o-mini", "canary capital"),
            ("evaluation exact", "canary capital"),
            ("evaluation latency", "canary capital"),
            ("canary city-json", "canary run"),
            ("chat gpt-4o-mini", "canary city-json"),
            ("evaluation is_json", "canary city-json"),
            ("evaluation schema", "canary city-json"),
            ("evaluation similarity", "canary city-json"),
            ("evaluation latency", "canary city-json"),
        ]
    )
    root = captured.span("canary run")
    assert dict(root.attributes or {}) == {
        "otelite.span.kind": "canary_run",
        "otelite.traffic": "canary",
        "otelite.canary.file": "canaries.json",
        "otelite.canary.count": 2,
        "otelite.canary.changed": 1,
        "otelite.canary.failed": 0,
    }
    assert root.status.description == "1 changed, 0 failed"
    capital = captured.span("canary capital")
    assert dict(capital.attributes or {}) == {
        "otelite.span.kind": "canary",
        "otelite.traffic": "canary",
        "otelite.canary.name": "capital",
        "gen_ai.request.model": "gpt-4o-mini",
        "otelite.canary.status": "changed",
        "otelite.canary.reasons": ("the answer differs from the recorded one",),
    }
    assert dict(captured.span("canary city-json").attributes or {})["otelite.canary.status"] == (
        "unchanged"
    )
    calls = [s for s in spans if s.name == "chat gpt-4o-mini"]
    for call in calls:
        attrs = dict(call.attributes or {})
        assert attrs["otelite.traffic"] == "canary"
        assert attrs["gen_ai.response.model"] == SNAPSHOT
        assert attrs["gen_ai.usage.input_tokens"] == 12
        assert attrs["gen_ai.usage.output_tokens"] == 3
        assert attrs["gen_ai.usage.cost"] == pytest.approx(3.6e-6)
        assert "gen_ai.input.messages" not in attrs
        assert "gen_ai.output.messages" not in attrs
    exact = dict(
        next(
            s for s in spans if s.name == "evaluation exact" and parent(s) == "canary capital"
        ).attributes
        or {}
    )
    assert exact["gen_ai.evaluation.score.value"] == 0.0
    assert exact["otelite.evaluation.passed"] is False
    assert "gen_ai.evaluation.explanation" not in exact  # may quote content: capture is off
    metrics = captured.metrics()
    points = metrics["gen_ai.client.operation.duration"]
    assert {p["attributes"]["otelite.traffic"] for p in points} == {"canary"}
    assert sorted(
        (
            p["attributes"]["otelite.canary.name"],
            p["attributes"]["otelite.canary.status"],
            p["value"],
        )
        for p in metrics["otelite.canary.results"]
    ) == [("capital", "changed", 1), ("city-json", "unchanged", 1)]


def test_prompt_registry_reference(
    server: FakeEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    """A canary can name a prompt by label; a label moved to a new version is a change."""
    registry = PromptRegistry("prompts")
    registry.push(
        "qa",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "{{question}}"},
        ],
        config={"model": "gpt-4o-mini"},
        labels=["production"],
    )
    Path("canaries.json").write_text(
        json.dumps(
            {
                "base_url": server.url,
                "prompts_dir": "prompts",
                "canaries": [
                    {
                        "name": "qa",
                        "prompt": "qa:production",
                        "variables": {"question": CAPITAL},
                    }
                ],
            }
        )
    )
    with capture_spans() as captured:
        assert canary.run("canaries.json", record=True).exit_code == 0
    attrs = dict(captured.span("chat gpt-4o-mini").attributes or {})
    assert (attrs["gen_ai.prompt.name"], attrs["gen_ai.prompt.version"]) == ("qa", 1)
    assert attrs["otelite.prompt.label"] == "production"
    recorded = json.loads(Path("canaries.baseline.json").read_text())["canaries"]["qa"]
    assert recorded["request"] == {
        "prompt": "qa@1",
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": CAPITAL},
        ],
        "temperature": 0.0,
    }
    assert cli(capsys, "canaries.json")[0] == 0
    registry.push(
        "qa",
        messages=[
            {"role": "system", "content": "Be very brief."},
            {"role": "user", "content": "{{question}}"},
        ],
        config={"model": "gpt-4o-mini"},
        labels=["production"],
    )
    code, out, _ = cli(capsys, "canaries.json", "--json")
    assert code == 1
    assert json.loads(out)["canaries"][0]["reasons"] == [
        "the request differs from the recorded one in messages, prompt (qa@1 -> qa@2): "
        "re-record with --record if the canary was changed on purpose"
    ]


def test_llm_judge_evaluator(server: FakeEndpoint, capsys: pytest.CaptureFixture[str]) -> None:
    """A judge compares a reworded answer with the recorded one; its verdict decides the change."""
    Path("canaries.json").write_text(
        json.dumps(
            {
                "base_url": server.url,
                "canaries": [
                    {
                        "name": "capital",
                        "model": "gpt-4o-mini",
                        "messages": [{"role": "user", "content": CAPITAL}],
                        "evaluators": [{"judge": "correctness"}],
                    }
                ],
            }
        )
    )
    assert cli(capsys, "canaries.json", "--record")[0] == 0
    assert len(server.requests) == 1  # no reference yet: the judge is not asked
    server.answers[CAPITAL] = "It is Paris."
    with capture_spans() as captured:
        assert cli(capsys, "canaries.json")[0] == 0
    judged = server.requests[-1]["messages"][1]["content"]
    assert "REFERENCE:\nParis.\n\nRESPONSE:\nIt is Paris." in judged
    traffic = sorted(
        dict(s.attributes or {})["otelite.traffic"]
        for s in captured.spans
        if s.name.startswith("chat")
    )
    assert traffic == ["canary", "evaluation"]
    server.verdict = "VERDICT: INCORRECT"
    code, out, _ = cli(capsys, "canaries.json", "--json")
    assert code == 1
    assert json.loads(out)["canaries"][0]["reasons"] == ["correctness: the judge said INCORRECT"]


def test_cost_budget(server: FakeEndpoint, capsys: pytest.CaptureFixture[str]) -> None:
    """A cost over max_cost_usd is a change; a model with no known price cannot meet a budget."""
    write_canaries(server, max_cost_usd=0.000001)
    code, out, _ = cli(capsys, "canaries.json", "--record", "--json")
    assert code == 1
    reasons = [c["reasons"] for c in json.loads(out)["canaries"]]
    assert reasons == [["cost over budget: 3.6e-06 USD (limit 1e-06 USD)"]] * 2
    server.model = "my-local-model"
    code, out, _ = cli(capsys, "canaries.json", "--record", "--json", "--model", "my-local-model")
    assert code == 1
    assert [c["reasons"] for c in json.loads(out)["canaries"]] == [
        [
            "no cost for model my-local-model (no price known): add a price "
            "(OTELITE_PRICES_FILE) or drop max_cost_usd"
        ]
    ] * 2
    assert [r["model"] for r in server.requests[-2:]] == ["my-local-model"] * 2


def test_rerecording_is_byte_stable(
    server: FakeEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    """Recording the same answers twice writes the same bytes (a clean diff in review)."""
    write_canaries(server)
    cli(capsys, "canaries.json", "--record")
    first = Path("canaries.baseline.json").read_bytes()
    cli(capsys, "canaries.json", "--record")
    assert Path("canaries.baseline.json").read_bytes() == first


def test_baseline_write_is_atomic(
    server: FakeEndpoint, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed write leaves the old baseline whole, no temporary file, and exits 2."""
    write_canaries(server)
    cli(capsys, "canaries.json", "--record")
    before = Path("canaries.baseline.json").read_bytes()
    server.answers[CAPITAL] = "Lyon."

    def broken(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_baseline.os, "replace", broken)
    code, _, err = cli(capsys, "canaries.json", "--record")
    assert code == 2
    assert err == (
        "otelite canary: cannot write the baseline canaries.baseline.json: "
        "[Errno 28] No space left on device\n"
    )
    assert Path("canaries.baseline.json").read_bytes() == before
    assert sorted(p.name for p in Path().iterdir() if p.name.startswith(".canaries")) == []


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "canaries.json",
            # An unquoted key: the decoder's message is the same on every Python
            # (3.13 words a trailing comma differently).
            '{"canaries": [\n  {name: "a"}\n]}',
            "canaries.json line 2 column 4: not valid JSON: "
            "Expecting property name enclosed in double quotes",
        ),
        (
            "canaries.json",
            '{"canaries": [{"name": "a", "model": "m"}]}',
            "canaries.json line 1: canaries[0] 'a': give messages (a list) or prompt "
            "(a registry reference such as qa@3)",
        ),
        (
            "canaries.json",
            '[{"name": "a", "messages": [{"role": "user", "content": "q"}], "evaluators": ["exakt"]}]',
            "canaries.json line 1: canaries[0] 'a'.evaluators[0]: unknown evaluator 'exakt'; use one of "
            "exact, similarity, is_json, schema, judge, contains, regex",
        ),
        (
            "canaries.json",
            '{"canaries": [\n  {"name": "a", "model": "m",\n   "messages": [\n'
            '     {"role": "user", "content": 3}]}\n]}',
            "canaries.json line 4: canaries[0] 'a'.messages[0].content: give the text, got int 3",
        ),
        (
            "canaries.yaml",
            "canaries:\n  - name: a\n    messages: [\n",
            "canaries.yaml line 4 column 1: not valid YAML: "
            "expected the node content, but found '<stream end>'",
        ),
        (
            "canaries.yaml",
            "canaries:\n  - name: a\n    messages:\n      - {role: user, content: q}\n"
            "  - name: b\n    model: m\n    mesages: []\n",
            "canaries.yaml line 5: canaries[1]: unknown field 'mesages'; fields: name, model, "
            "messages, prompt, variables, temperature, evaluators, max_latency_s, max_cost_usd",
        ),
        (
            "canaries.yaml",
            "canaries:\n  - name: a\n    messages:\n      - {role: robot, content: q}\n",
            "canaries.yaml line 4: canaries[0] 'a'.messages[0].role: use system, developer, "
            "user or assistant, not 'robot'",
        ),
        (
            "canaries.yaml",
            "defaults: {max_latency_s: -1}\ncanaries:\n  - name: a\n    model: m\n"
            "    messages: [{role: user, content: q}]\n",
            "canaries.yaml line 3: canaries[0] 'a'.max_latency_s: give a positive number of "
            "seconds, got -1",
        ),
    ],
)
def test_malformed_file_is_a_usage_error_naming_the_line(
    name: str, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A malformed canary file exits 2 with one message naming the line (or the field)."""
    Path(name).write_text(text)
    code, out, err = cli(capsys, name, "--record")
    assert (code, out, err) == (2, "", f"otelite canary: {message}\n")


def test_yaml_without_pyyaml(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A YAML file without PyYAML installed says how to install it, or to use JSON."""
    monkeypatch.setitem(sys.modules, "yaml", None)
    Path("canaries.yml").write_text("canaries: []\n")
    code, _, err = cli(capsys, "canaries.yml")
    assert code == 2
    assert err == (
        "otelite canary: canaries.yml: reading YAML needs PyYAML: pip install "
        "'otelite[yaml]', or write the canary file as JSON\n"
    )


def test_usage_errors(server: FakeEndpoint, capsys: pytest.CaptureFixture[str]) -> None:
    """No file, no baseline, a corrupt baseline, no model or a bad option: exit 2, one message."""
    assert cli(capsys, "missing.json")[::2] == (
        2,
        "otelite canary: missing.json: no such canary file\n",
    )
    write_canaries(server)
    assert cli(capsys, "canaries.json")[::2] == (
        2,
        "otelite canary: no baseline canaries.baseline.json: record one first with "
        "otelite canary run canaries.json --record\n",
    )
    Path("canaries.baseline.json").write_text('{"canaries": {\n')
    assert cli(capsys, "canaries.json")[::2] == (
        2,
        "otelite canary: canaries.baseline.json line 2 column 1: the baseline is not valid "
        "JSON: Expecting property name enclosed in double quotes; record it again with --record\n",
    )
    Path("nomodel.json").write_text(
        json.dumps([{"name": "a", "messages": [{"role": "user", "content": "q"}]}])
    )
    assert cli(capsys, "nomodel.json", "--record", "--base-url", server.url)[::2] == (
        2,
        "otelite canary: canary 'a': no model; give model: in the canary or defaults, or --model\n",
    )
    Path("bad.json").write_text(
        json.dumps(
            [
                {
                    "name": "a",
                    "model": "m",
                    "messages": [{"role": "user", "content": "q"}],
                    "evaluators": [{"similarity": {"threshold": 2}}],
                }
            ]
        )
    )
    assert cli(capsys, "bad.json", "--record", "--base-url", server.url)[::2] == (
        2,
        "otelite canary: canary 'a': threshold: give a number between 0 and 1, such as 0.95, "
        "got 2\n",
    )
    assert server.requests == []  # nothing is called before every canary is valid


def test_parse_accepts_a_list_and_defaults() -> None:
    """A bare list is a file of canaries; defaults fill what a canary leaves out."""
    found = canary.parse(
        json.dumps(
            {
                "defaults": {"model": "m", "temperature": 0.5, "evaluators": ["is_json"]},
                "canaries": [
                    {"name": "a", "messages": [{"role": "user", "content": "q"}]},
                    {
                        "name": "b",
                        "model": "n",
                        "temperature": 0,
                        "messages": [{"role": "user", "content": "q"}],
                        "evaluators": [{"contains": ["x"]}, {"regex": "\\d"}],
                        "max_cost_usd": 0.01,
                    },
                ],
            }
        ),
        "c.json",
    )
    assert [
        (
            c.name,
            c.model,
            c.temperature,
            [(e.kind, e.options) for e in c.evaluators],
            c.max_cost_usd,
        )
        for c in found.canaries
    ] == [
        ("a", "m", 0.5, [("is_json", None)], None),
        ("b", "n", 0.0, [("contains", ["x"]), ("regex", "\\d")], 0.01),
    ]
    bare = canary.parse('[{"name": "a", "messages": [{"role": "user", "content": "q"}]}]')
    assert [(c.name, c.model, [e.kind for e in c.evaluators]) for c in bare.canaries] == [
        ("a", None, ["exact"])
    ]


def test_baseline_follows_the_file(
    server: FakeEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    """A canary added after recording is a change until recorded; a removed one leaves the baseline."""
    write_canaries(server)
    cli(capsys, "canaries.json", "--record")
    data = json.loads(Path("canaries.json").read_text())
    data["canaries"] = [
        data["canaries"][0],
        {"name": "new", "messages": [{"role": "user", "content": CITY}]},
    ]
    Path("canaries.json").write_text(json.dumps(data))
    code, out, _ = cli(capsys, "canaries.json", "--json")
    assert code == 1
    assert [(c["name"], c["status"], c["reasons"]) for c in json.loads(out)["canaries"]] == [
        ("capital", "unchanged", []),
        (
            "new",
            "changed",
            ["not in the baseline canaries.baseline.json: record it with --record"],
        ),
    ]
    assert cli(capsys, "canaries.json", "--record")[0] == 0
    recorded = json.loads(Path("canaries.baseline.json").read_text())["canaries"]
    assert sorted(recorded) == ["capital", "new"]
    assert cli(capsys, "canaries.json")[0] == 0


def test_contains_regex_and_custom_judge(
    server: FakeEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    """contains, regex and a custom judge template run on every answer, recorded or not."""
    Path("canaries.json").write_text(
        json.dumps(
            {
                "base_url": server.url,
                "canaries": [
                    {
                        "name": "capital",
                        "model": "gpt-4o-mini",
                        "messages": [{"role": "user", "content": CAPITAL}],
                        "evaluators": [
                            {"contains": {"values": ["paris"], "mode": "all"}},
                            {"regex": {"pattern": "^[A-Z][a-z]+\\.$", "full": True}},
                            {
                                "judge": {
                                    "name": "brevity",
                                    "prompt": "Is this short? {{output}}",
                                    "choices": {"CORRECT": 1, "WORDY": 0},
                                    "threshold": 1,
                                }
                            },
                        ],
                    }
                ],
            }
        )
    )
    code, out, _ = cli(capsys, "canaries.json", "--record", "--json")
    assert code == 0
    [result] = json.loads(out)["canaries"]
    assert [(s["name"], s["passed"]) for s in result["scores"]] == [
        ("contains", True),
        ("regex", True),
        ("brevity", True),
    ]
    assert server.requests[-1]["messages"][1]["content"].startswith("Is this short? Paris.")
    server.answers[CAPITAL] = "It is Lyon, of course"
    server.verdict = "VERDICT: WORDY"
    code, out, _ = cli(capsys, "canaries.json", "--json")
    assert code == 1
    assert json.loads(out)["canaries"][0]["reasons"] == [
        "contains failed",
        "regex failed",
        "brevity: the judge said WORDY",
    ]


def test_endpoint_settings_are_checked_before_any_call(
    server: FakeEndpoint, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenAI without a key, or a base URL that is not http(s), is a usage error; nothing is sent."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    write_canaries(server)
    args = ("canaries.json", "--record", "--base-url")
    assert cli(capsys, *args, "https://api.openai.com/v1")[::2] == (
        2,
        "otelite canary: canary 'capital': no API key for https://api.openai.com/v1; "
        "set OPENAI_API_KEY\n",
    )
    assert cli(capsys, *args, "ftp://example.com")[::2] == (
        2,
        "otelite canary: canary 'capital': base_url 'ftp://example.com' is not an http(s) URL\n",
    )
    assert cli(capsys, "canaries.json", "--record", "--timeout", "0")[::2] == (
        2,
        "otelite canary: --timeout must be a positive number of seconds\n",
    )
    assert server.requests == []


def test_runs_with_tracing_disabled(
    server: FakeEndpoint, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With OTEL_SDK_DISABLED the canaries still run and compare; only the spans are missing."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    write_canaries(server)
    assert cli(capsys, "canaries.json", "--record")[0] == 0
    server.answers[CAPITAL] = "Lyon."
    code, out, _ = cli(capsys, "canaries.json", "--json")
    assert code == 1
    assert [c["reasons"] for c in json.loads(out)["canaries"]] == [
        ["the answer differs from the recorded one"],
        [],
    ]


def test_judge_that_cannot_answer_or_has_no_threshold(
    server: FakeEndpoint, clock: StepClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """A judge whose endpoint is down is a change (could not score); a score with no threshold is not."""
    down = FakeEndpoint(clock)
    down.close()
    Path("canaries.json").write_text(
        json.dumps(
            {
                "base_url": server.url,
                "canaries": [
                    {
                        "name": "capital",
                        "model": "gpt-4o-mini",
                        "messages": [{"role": "user", "content": CAPITAL}],
                        "evaluators": [
                            {"judge": {"template": "correctness", "base_url": down.url}},
                            {
                                "judge": {
                                    "name": "tone",
                                    "prompt": "Rate the tone: {{output}}",
                                    "choices": {"CORRECT": 1, "ODD": 0},
                                }
                            },
                        ],
                    }
                ],
            }
        )
    )
    assert cli(capsys, "canaries.json", "--record")[0] == 0
    code, out, _ = cli(capsys, "canaries.json", "--json")
    assert code == 1
    [result] = json.loads(out)["canaries"]
    [reason] = result["reasons"]
    assert reason.startswith("correctness: could not score (EndpointError: ConnectError: ")
    assert [(s["name"], s.get("value"), s.get("passed")) for s in result["scores"]] == [
        ("correctness", None, None),
        ("tone", 1.0, None),
    ]


def test_yaml_canary_file(server: FakeEndpoint, capsys: pytest.CaptureFixture[str]) -> None:
    """A YAML canary file runs like its JSON twin: record, then an unchanged run exits 0."""
    Path("canaries.yaml").write_text(
        f"""
base_url: {server.url}
defaults:
  model: gpt-4o-mini
  max_latency_s: 1
canaries:
  - name: capital
    messages:
      - {{role: user, content: "{CAPITAL}"}}
  - name: city-json
    messages:
      - {{role: system, content: Answer in JSON.}}
      - {{role: user, content: "{CITY}"}}
    evaluators:
      - is_json
      - schema: {{type: object, required: [city], properties: {{city: {{type: string}}}}}}
"""
    )
    code, out, err = cli(capsys, "canaries.yaml", "--record")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == (
        f"canaries canaries.yaml against {server.url} (recording canaries.baseline.json)"
    )
    recorded = json.loads(Path("canaries.baseline.json").read_text())["canaries"]
    assert {name: e["answer"] for name, e in recorded.items()} == {
        "capital": "Paris.",
        "city-json": '{"city": "Oslo"}',
    }
    code, out, _ = cli(capsys, "canaries.yaml", "--json")
    assert code == 0
    assert [
        (c["name"], c["status"], [s["name"] for s in c["scores"]])
        for c in json.loads(out)["canaries"]
    ] == [
        ("capital", "unchanged", ["exact", "latency"]),
        ("city-json", "unchanged", ["is_json", "schema", "latency"]),
    ]
    server.answers[CITY] = '{"city": 7}'
    code, out, _ = cli(capsys, "canaries.yaml", "--json")
    assert code == 1
    assert json.loads(out)["canaries"][1]["reasons"] == ["schema failed"]
