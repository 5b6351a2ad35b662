"""API-change detection in the call path (otelite._llm._changes) and ``otelite changes``."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import otelite
from cassettes import all_cassettes, load, make_client
from fakeopenai import (
    Frames,
    Recorder,
    chat_chunks,
    client,
    json_response,
    response_object,
    sse,
    stream_response,
)
from otelite import _llm, cli
from otelite._llm import _changes
from otelite.testing import capture_spans

TESTS = Path(__file__).parent
# A real recorded chat completion (opentelemetry-python-contrib, Apache-2.0; see cassettes/INDEX.md).
RECORDED = next(
    i.response_json()
    for i in load("opentelemetry-python-contrib/test_chat_completion_with_content.yaml")
    if i.endpoint == "/chat/completions"
)
MESSAGES = [{"role": "user", "content": "Say this is a test"}]
NOW_NS = 1_764_300_000_000_000_000  # 2025-11-28 03:20:00 UTC, the pinned clock


@pytest.fixture(autouse=True)
def _instrumented(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """openai is instrumented, baselines start empty and the change clock is pinned."""
    monkeypatch.setattr(_changes, "clock", lambda: NOW_NS)
    _changes.reset()
    otelite.instrument_openai()
    yield
    otelite.uninstrument_openai()


def body(**changes: Any) -> dict[str, Any]:
    """The recorded response with top-level keys replaced (``None`` removes a key)."""
    out = copy.deepcopy(RECORDED)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def events(cap: Any) -> list[list[dict[str, Any]]]:
    """The API-change events of each captured span, in order."""
    return [
        [dict(e.attributes or {}) for e in s.events if e.name == "otelite.api.change"]
        for s in cap.spans
    ]


def call(answers: list[Any], model: str = "gpt-4o-mini", **client_kwargs: Any) -> Any:
    """One chat call per answer (a body or an ``httpx`` response) through the real client."""
    queue = list(answers)

    def respond(request: Any) -> Any:
        answer = queue.pop(0)
        return answer if not isinstance(answer, dict) else json_response(answer)

    fake = client(Recorder(respond), **client_kwargs)
    with capture_spans() as cap:
        for _ in answers:
            with contextlib.suppress(openai.APIError):
                fake.chat.completions.create(model=model, messages=MESSAGES)
    return cap


def change(kind: str, old: str, new: str) -> dict[str, Any]:
    return {"kind": kind, "old": old, "new": new}


def test_first_call_is_the_baseline_and_same_answers_report_nothing() -> None:
    """A first-ever observation is the baseline; identical answers afterwards report nothing."""
    cap = call([body(), body(), body()])
    assert events(cap) == [[], [], []]
    assert "otelite.api.changes" not in cap.metrics()


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (
            body(model="gpt-4o-mini-2025-09-01"),
            [change("response_model", "gpt-4o-mini-2024-07-18", "gpt-4o-mini-2025-09-01")],
        ),
        (
            body(system_fingerprint="fp_new"),
            [change("system_fingerprint", "fp_0ba0d124f1", "fp_new")],
        ),
        (body(service_tier="default"), [change("field_added", "", "service_tier")]),
        (body(object=None), [change("field_removed", "object", "")]),
        (
            body(choices=[{**RECORDED["choices"][0], "finish_reason": "length"}]),
            [change("finish_reason", "stop", "length")],
        ),
        (
            body(choices=[{**RECORDED["choices"][0], "logprobs": None, "extra_flag": 1}]),
            [change("field_added", "", "choices[].extra_flag")],
        ),
        (
            body(usage={**RECORDED["usage"], "cost_usd": 0.1}),
            [change("field_added", "", "usage.cost_usd")],
        ),
        (
            body(warning="gpt-4o-mini is deprecated and will be removed on 2026-12-01"),
            [
                change("field_added", "", "warning"),
                change(
                    "deprecation",
                    "",
                    "body warning: gpt-4o-mini is deprecated and will be removed on 2026-12-01",
                ),
            ],
        ),
    ],
    ids=[
        "model",
        "fingerprint",
        "field-added",
        "field-removed",
        "finish",
        "nested-field",
        "usage-field",
        "body-notice",
    ],
)
def test_each_kind_is_reported_once(changed: dict[str, Any], expected: list[Any]) -> None:
    """A change is a span event (kind, old, new) on the call that saw it, and never again after."""
    cap = call([body(), changed, changed, changed])
    assert events(cap)[0] == []
    assert sorted(events(cap)[1], key=str) == sorted(expected, key=str)
    assert events(cap)[2:] == [[], []]
    points = cap.metrics()["otelite.api.changes"]
    assert sorted(((p["attributes"], p["value"]) for p in points), key=str) == sorted(
        (
            (
                {
                    "otelite.api.change.kind": e["kind"],
                    "gen_ai.provider.name": "openai",
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o-mini",
                },
                1,
            )
            for e in expected
        ),
        key=str,
    )


def test_optional_fields_are_not_removals() -> None:
    """A field first sent after the baseline is optional: it comes and goes with one report only."""
    extra = body(service_tier="default")
    cap = call([body(), extra, body(), extra, body()])
    assert events(cap) == [[], [change("field_added", "", "service_tier")], [], [], []]


def test_baseline_field_that_comes_back_is_not_reported_again() -> None:
    """A baseline field no longer sent is reported once; its return and later absences are not."""
    gone = body(created=None)
    cap = call([body(), gone, body(), gone])
    assert events(cap) == [[], [change("field_removed", "created", "")], [], []]


def test_fields_are_read_on_one_call_in_n_after_warm_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the first responses, fields are read on one call in STRUCTURE_EVERY: a lasting change is still seen once."""
    monkeypatch.setattr(_changes, "STRUCTURE_ALWAYS", 1)
    monkeypatch.setattr(_changes, "STRUCTURE_EVERY", 4)
    extra = body(service_tier="default", model="snap-2")
    cap = call([body(), extra, extra, extra, extra, extra])
    assert events(cap) == [
        [],
        [change("response_model", "gpt-4o-mini-2024-07-18", "snap-2")],  # read on every call
        [],
        [change("field_added", "", "service_tier")],  # the 4th call: fields read
        [],
        [],
    ]


def test_streams_compare_model_and_finish_reason() -> None:
    """A stream's response model and finish reasons are compared (it has no parsed body to read fields from)."""
    first = chat_chunks(["Par", "is."])
    changed = chat_chunks(["Par", "is."], model="gpt-4o-mini-2025-09-01")
    changed[-2]["choices"][0]["finish_reason"] = "length"
    queue = [first, changed, changed]
    fake = client(Recorder(lambda request: stream_response(Frames(sse(queue.pop(0))))))
    with capture_spans() as cap:
        for _ in range(3):
            list(fake.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert [sorted(e, key=str) for e in events(cap)] == [
        [],
        sorted(
            [
                change("response_model", "gpt-4o-mini-2024-07-18", "gpt-4o-mini-2025-09-01"),
                change("finish_reason", "stop", "length"),
            ],
            key=str,
        ),
        [],
    ]


def test_async_responses_api_fields() -> None:
    """The Responses API (async client): a new usage detail field is reported once."""
    import asyncio

    changed = response_object()
    changed["usage"]["output_tokens_details"]["audio_tokens"] = 0
    queue = [response_object(), changed, changed]
    fake = client(Recorder(lambda request: json_response(queue.pop(0))), is_async=True)

    async def main() -> None:
        for _ in range(3):
            await fake.responses.create(model="gpt-4.1-mini", input="Capital of France?")

    with capture_spans() as cap:
        asyncio.run(main())
    assert events(cap) == [
        [],
        [change("field_added", "", "usage.output_tokens_details.audio_tokens")],
        [],
    ]


def test_a_failing_detector_never_changes_the_call(
    contained_errors: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in detection is contained: the caller gets its answer and the span ends normally."""

    def broken(*args: Any) -> None:
        raise RuntimeError("detector bug")

    monkeypatch.setattr(_changes, "observe", broken)
    fake = client(Recorder(lambda request: json_response(body())))
    with capture_spans() as cap:
        answer = fake.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert answer.choices[0].message.content == RECORDED["choices"][0]["message"]["content"]
    (span,) = cap.spans
    assert span.status.is_ok
    assert span.attributes is not None
    assert span.attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert events(cap) == [[]]


def test_error_type_and_deprecation_headers_of_an_error() -> None:
    """A new error type is a change; the error's Deprecation/Sunset headers are reported once."""
    headers = {"Deprecation": "@1767225600", "Sunset": "Thu, 01 Jan 2026 00:00:00 GMT"}
    gone = json_response({"error": {"message": "model retired", "type": "invalid"}}, 404)
    gone.headers.update(headers)
    cap = call([body(), gone, gone])
    assert events(cap)[0] == []
    assert sorted(events(cap)[1], key=str) == sorted(
        [
            change("error_type", "", "openai.NotFoundError"),
            change("deprecation", "", "deprecation: @1767225600"),
            change("deprecation", "", "sunset: Thu, 01 Jan 2026 00:00:00 GMT"),
        ],
        key=str,
    )
    assert events(cap)[2] == []


def test_deprecation_header_of_a_raw_response() -> None:
    """``with_raw_response`` exposes a successful call's headers: a Deprecation header is reported."""
    response = json_response(body())
    response.headers["Deprecation"] = "true"
    fake = client(Recorder(lambda request: response))
    with capture_spans() as cap:
        raw = fake.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
        raw.parse()
    assert events(cap) == [[change("deprecation", "", "deprecation: true")]]


EMBEDDING = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 1, "total_tokens": 1},
}


def answers(request: Any, chat: dict[str, Any]) -> Any:
    return json_response(EMBEDDING if request.url.path.endswith("/embeddings") else chat)


def test_not_reported_across_models_or_providers() -> None:
    """Each provider + operation + requested model has its own baseline: no change across them."""
    with capture_spans() as cap:
        for model, base_url, answer in (
            ("gpt-4o-mini", "https://api.openai.com/v1", body()),
            ("gpt-4o", "https://api.openai.com/v1", body(model="gpt-4o-2024-08-06")),
            ("gpt-4o-mini", "https://api.groq.com/openai/v1", body(model="llama", object=None)),
        ):
            fake = client(Recorder(lambda r, a=answer: answers(r, a)), base_url=base_url)
            fake.chat.completions.create(model=model, messages=MESSAGES)
            fake.embeddings.create(model=model, input="x")  # another operation, same model
    assert events(cap) == [[]] * 6
    assert _changes.stats() == {"skipped": 0, "baselines": 6}


def test_unfingerprintable_response_is_skipped_and_counted(contained_errors: None) -> None:
    """A response whose fields cannot be read is skipped and counted, never raised on."""

    def broken() -> Any:
        raise RuntimeError("odd object")

    request = _llm.Request("chat", "openai", "m", None, None, {})
    with capture_spans() as cap:
        for structure in (lambda: None, broken):
            invocation = _llm.start(request)
            assert invocation is not None
            invocation.end(_llm.Outcome({}, "m-1", structure=structure))
    assert events(cap) == [[], []]
    assert _changes.stats()["skipped"] == 2
    assert [s.status.is_ok for s in cap.spans] == [True, True]


def test_disabled_detection_reads_nothing() -> None:
    """With detection off, no baseline is learnt and no event is added."""
    _changes.enabled = False
    try:
        cap = call([body(), body(model="other")])
    finally:
        _changes.enabled = True
    assert events(cap) == [[], []]
    assert _changes.stats()["baselines"] == 0


@pytest.mark.parametrize(
    "name", [n for n in all_cassettes() if any(not i.is_stream for i in load(n))]
)
def test_recorded_answers_replayed_report_nothing_new(name: str) -> None:
    """Replaying a recorded cassette a second time reports no change (no false alarm on real answers)."""
    interactions = [i for i in load(name) if not i.is_stream]
    for attempt in range(2):
        fake, _ = make_client(interactions)
        with capture_spans() as cap:
            for interaction in interactions:
                method = {
                    "/chat/completions": fake.chat.completions.create,
                    "/completions": fake.completions.create,
                    "/embeddings": fake.embeddings.create,
                    "/responses": fake.responses.create,
                }[interaction.endpoint]
                with contextlib.suppress(openai.APIError, TypeError):
                    method(**(interaction.request or {}))
        if attempt == 1:
            assert events(cap) == [[] for _ in cap.spans]


# --- persistence, restarts and several processes -------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    import otelite
    from fakeopenai import Recorder, client, json_response
    from otelite._llm import _changes
    from otelite.testing import capture_spans

    store, model = Path(sys.argv[1]), sys.argv[2]
    if len(sys.argv) > 3:  # wait for the other racer
        go = Path(sys.argv[3])
        while not go.exists():
            pass
    _changes.use_store(store)
    otelite.instrument_openai()
    answer = json.loads({body!r})
    answer["model"] = model
    fake = client(Recorder(lambda request: json_response(answer)))
    with capture_spans() as cap:
        fake.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}])
    print(json.dumps([dict(e.attributes) for s in cap.spans for e in s.events]))
    """
)


def run_process(tmp_path: Path, model: str, *extra: str) -> subprocess.Popen[str]:
    script = tmp_path / "app.py"
    script.write_text(SCRIPT.format(tests=str(TESTS), body=json.dumps(RECORDED)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "store"), model, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def reported(process: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    result: list[dict[str, Any]] = json.loads(out)
    return result


def test_baseline_survives_a_restart(tmp_path: Path) -> None:
    """A restarted process loads the baseline from the store: a change is reported once in all."""
    assert reported(run_process(tmp_path, "snap-1")) == []
    assert reported(run_process(tmp_path, "snap-2")) == [
        change("response_model", "snap-1", "snap-2")
    ]
    assert reported(run_process(tmp_path, "snap-2")) == []
    assert reported(run_process(tmp_path, "snap-1")) == []  # seen before: not new


def test_reopened_store_keeps_fields_and_removals(tmp_path: Path) -> None:
    """Re-opening the store restores the field baseline: removals are reported once across restarts."""

    def restart() -> None:
        _changes.reset()
        _changes.use_store(tmp_path / "otelite.db")

    restart()
    assert events(call([body()])) == [[]]
    restart()
    assert events(call([body(created=None), body(service_tier="x")])) == [
        [change("field_removed", "created", "")],
        [change("field_added", "", "service_tier")],
    ]
    restart()
    assert events(call([body(created=None), body(), body(service_tier="y")])) == [[], [], []]


def test_unusable_store_keeps_baselines_in_memory(tmp_path: Path, contained_errors: None) -> None:
    """A store that cannot be opened is reported, and changes are still detected, from memory."""
    (tmp_path / "otelite.db").mkdir()  # a directory where the database file should be
    _changes.use_store(tmp_path / "otelite.db")
    cap = call([body(), body(model="snap-2"), body(model="snap-2")])
    assert events(cap) == [[], [change("response_model", "gpt-4o-mini-2024-07-18", "snap-2")], []]
    assert [s.status.is_ok for s in cap.spans] == [True, True, True]


def test_two_processes_racing_report_once(tmp_path: Path) -> None:
    """Two processes seeing the same change at the same time: exactly one reports it."""
    assert reported(run_process(tmp_path, "snap-1")) == []
    go = tmp_path / "go"
    racers = [run_process(tmp_path, "snap-2", str(go)) for _ in range(2)]
    go.touch()
    results = [reported(p) for p in racers]
    assert sorted(results, key=len) == [[], [change("response_model", "snap-1", "snap-2")]]


def test_configure_keeps_baselines_in_the_local_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With configure()'s local store, changes are kept there and `otelite changes` lists them."""
    store = tmp_path / "data"
    otelite.configure(local_store=store, service_name="app")
    answers = [body(), body(model="gpt-4o-mini-2025-09-01")]
    fake = client(Recorder(lambda request: json_response(answers.pop(0))))
    for _ in range(2):
        fake.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    otelite.shutdown()
    capsys.readouterr()
    assert cli.main(["changes", "--store", str(store), "--json"]) == 1
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 1
    assert rows[0]["trace_id"] is not None
    assert len(rows[0]["trace_id"]) == 32
    assert {k: v for k, v in rows[0].items() if k != "trace_id"} == {
        "at_ns": NOW_NS,
        "provider": "openai",
        "operation": "chat",
        "model": "gpt-4o-mini",
        "kind": "response_model",
        "old": "gpt-4o-mini-2024-07-18",
        "new": "gpt-4o-mini-2025-09-01",
    }


# --- otelite changes ------------------------------------------------------------------------


def seeded_store(tmp_path: Path) -> Path:
    """A store where snap-1 -> snap-2 was seen, then a new finish reason."""
    _changes.use_store(tmp_path / "otelite.db")
    cap = call(
        [
            body(model="snap-1"),
            body(model="snap-2"),
            body(model="snap-2", choices=[{**RECORDED["choices"][0], "finish_reason": "length"}]),
        ]
    )
    assert [len(e) for e in events(cap)] == [0, 1, 1]
    _changes.reset()
    return tmp_path / "otelite.db"


def test_changes_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`otelite changes` prints one line per change (when, provider, model, kind, old, new), exit 1."""
    store = seeded_store(tmp_path)
    assert cli.main(["changes", "--store", str(store)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "WHEN                  PROVIDER  MODEL        KIND            OLD     NEW",
        "2025-11-28 03:20:00Z  openai    gpt-4o-mini  response_model  snap-1  snap-2",
        "2025-11-28 03:20:00Z  openai    gpt-4o-mini  finish_reason   stop    length",
    ]


def test_changes_since_window(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--since keeps only the recent changes; none in the window prints so and exits 0."""
    store = seeded_store(tmp_path)
    args = cli.build_parser().parse_args(["changes", "--store", str(store), "--since", "1h"])
    from otelite.cli import _changes as _cli_changes

    assert _cli_changes.run(args, now_ns=NOW_NS + 2 * 3600 * 10**9) == 0
    assert capsys.readouterr().out == "No API changes seen in the last 1h.\n"
    assert _cli_changes.run(args, now_ns=NOW_NS + 1800 * 10**9) == 1
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_changes_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad --since or a missing store is exit 2 with a message saying what to do."""
    store = seeded_store(tmp_path)
    assert cli.main(["changes", "--store", str(store), "--since", "soon"]) == 2
    assert "--since: 'soon' is not a duration; write e.g. 30m, 24h or 7d" in capsys.readouterr().err
    assert cli.main(["changes", "--store", str(tmp_path / "none")]) == 2
    assert "no local store here yet" in capsys.readouterr().err


def test_changes_on_a_store_without_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store written before change detection existed has no table: nothing changed, exit 0."""
    otelite.configure(local_store=tmp_path, service_name="app")
    otelite.shutdown()
    capsys.readouterr()
    assert cli.main(["changes", "--store", str(tmp_path), "--json"]) == 0
    assert capsys.readouterr().out == ""
