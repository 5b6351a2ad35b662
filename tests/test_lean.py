"""The lean path records what the general path records, on every recorded response.

Each cassette is replayed three times through the real client: once to learn
the API-change baselines and prices (as a process does on its first calls),
once with the lean path off and once with it on. The spans (name, kind, status,
every attribute and event) and the metric points must be the same; only times
differ. A call the lean path cannot take is handed over to the general path, so
both runs of it go through the same code; the test also asserts which calls the
lean path did end, so it cannot pass by handing everything over.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import opentelemetry.sdk.trace as sdk_trace
import pytest

import otelite
from cassettes import Interaction, all_cassettes, call_kwargs, load, make_client
from otelite import _metrics, _pricing
from otelite._integrations.openai import _patch
from otelite._llm import _changes, _lean
from otelite.testing import Captured, capture_spans
from test_openai_cassettes import run_async, run_sync

PINNED_NS = 1_795_000_000 * 10**9  # a fixed call time: prices that vary by time are the same
TIMED = ("duration", "time_to_first", "time_per_output")  # metrics whose values are times


@pytest.fixture
def steady(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Pinned clock; the change detector past its first calls; lean endings counted."""
    monkeypatch.setattr(sdk_trace, "time_ns", lambda: PINNED_NS)
    monkeypatch.setattr(_changes, "STRUCTURE_ALWAYS", 0)
    monkeypatch.setattr(_changes, "STRUCTURE_EVERY", 10**9)
    ended: list[bool] = []
    finish = _lean.finish

    def counted(*args: Any, **kwargs: Any) -> bool:
        done = finish(*args, **kwargs)
        ended.append(done)
        return done

    monkeypatch.setattr(_lean, "finish", counted)
    otelite.uninstrument_openai()
    yield ended
    otelite.uninstrument_openai()


def snapshot(cap: Captured) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The spans without ids and times, and the metric points without time values."""
    _metrics.drain()
    spans = []
    for span in cap.as_dicts():
        for key in ("trace_id", "span_id", "parent_id", "start_time", "end_time"):
            del span[key]
        span["attributes"].pop("gen_ai.response.time_to_first_chunk", None)
        for event in span["events"]:
            del event["timestamp"]
        spans.append(span)
    points = {}
    for name, found in cap.metrics().items():
        if any(word in name for word in TIMED):
            found = [{"attributes": p["attributes"], "count": p.get("count")} for p in found]
        points[name] = sorted(found, key=repr)
    return spans, points


def replay(interactions: list[Interaction], is_async: bool) -> Any:
    """What the calls recorded: spans, metrics, and the calls the change detector counted."""
    client, served = make_client(interactions, is_async=is_async)
    counted = sum(base.calls for base in _changes._baselines.values())
    with capture_spans() as cap:
        for interaction in interactions:
            if is_async:
                asyncio.run(run_async(client, interaction))
            else:
                run_sync(client, interaction)
        spans, points = snapshot(cap)
    assert served.mismatches == []
    return spans, points, sum(base.calls for base in _changes._baselines.values()) - counted


def lean_expected(interaction: Interaction) -> bool:
    """A call the lean path must end: OpenAI's own API, chat (streamed or not) or
    embeddings, a successful response with usage, priced the same at any time (a tier's
    price may not be)."""
    if not (
        "api.openai.com" in interaction.url
        and (
            interaction.endpoint == "/chat/completions"
            or (interaction.endpoint == "/embeddings" and not interaction.is_stream)
        )
        and interaction.status == 200
        and interaction.recorded_usage() is not None
    ):
        return False
    if interaction.is_stream:
        events = interaction.sse_events()
        model = [e["model"] for e in events if e.get("model")][-1]
        tier = ([e["service_tier"] for e in events if e.get("service_tier")] or [None])[-1]
    else:
        body = interaction.response_json()
        model, tier = body["model"], body.get("service_tier")
    entry = _pricing.catalog().lookup("openai", model)
    assert entry is not None  # every recorded OpenAI model is in the catalog
    return not entry.conditional and not (tier in entry.tiers and entry.time_dependent)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("name", all_cassettes())
def test_lean_and_general_paths_record_the_same(
    steady: list[bool], monkeypatch: pytest.MonkeyPatch, name: str, is_async: bool
) -> None:
    interactions = load(name)
    otelite.instrument_openai()
    replay(interactions, is_async)  # the baselines and prices a running process has learnt
    otelite.uninstrument_openai()

    with monkeypatch.context() as general_only:
        general_only.setattr(_patch, "_LEAN", {})
        otelite.instrument_openai()
        steady.clear()
        general = replay(interactions, is_async)
        assert steady == []  # the general run never took the lean path
        otelite.uninstrument_openai()

    otelite.instrument_openai()
    lean = replay(interactions, is_async)
    assert lean == general
    expected = sum(lean_expected(i) for i in interactions)
    assert steady.count(True) == expected, (steady, expected)


CHAT = "opentelemetry-python-contrib/test_chat_completion_with_content.yaml"


@pytest.mark.usefixtures("contained_errors")
@pytest.mark.parametrize("failing", ["resolved", "steady", "defer"])
def test_a_failing_lean_step_never_reaches_the_caller(
    steady: list[bool],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failing: str,
) -> None:
    """A step of the lean path that raises: before the span's end, the call is handed over
    and recorded as the general path records it; after it (the metrics queue), it is
    contained and logged, as on the general path. The caller gets the same result."""
    interactions = load(CHAT)
    otelite.instrument_openai()
    replay(interactions, False)
    plain = replay(interactions, False)
    assert steady.count(True) == len(interactions)
    owner = {"resolved": _pricing, "steady": _changes, "defer": _lean}[failing]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(owner, failing, broken)
    client, _served = make_client(interactions)
    with capture_spans() as cap:
        result, error = run_sync(client, interactions[0])
        spans, points = snapshot(cap)
    assert error is None
    assert result["id"] == interactions[0].response_json()["id"]
    if failing == "defer":  # the span ended on the lean path; its metrics were lost, logged
        assert spans == plain[0][:1]
        assert points == {}
        assert "internal error in queueing LLM call metrics" in caplog.text
    else:
        assert (spans, points) == (plain[0][:1], plain[1])


STREAM = "opentelemetry-python-contrib/test_chat_completion_multiple_choices_streaming.yaml"


@pytest.mark.parametrize("how", ["close", "break", "drop"])
def test_a_stream_left_early_is_handed_over_and_recorded_alike(
    steady: list[bool], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A stream the caller leaves after three chunks (closed, a loop left, or dropped) has
    no finish reasons yet: the lean path hands it over, and the span and metrics are the
    general path's."""
    interactions = load(STREAM)

    def leave_early() -> Any:
        client, _ = make_client(interactions)
        with capture_spans() as cap:
            kwargs = call_kwargs(client.chat.completions.create, interactions[0])
            stream = client.chat.completions.create(**kwargs)
            if how == "break":
                for seen, _chunk in enumerate(stream):
                    if seen == 2:
                        break
            else:
                for _ in range(3):
                    next(stream)
            if how == "close":
                stream.close()
            del stream
            gc.collect()  # a stream left in a loop, or dropped, ends when collected
            return snapshot(cap)

    otelite.instrument_openai()
    replay(interactions, False)
    with monkeypatch.context() as general_only:
        general_only.setattr(_patch, "_LEAN", {})
        otelite.uninstrument_openai()
        otelite.instrument_openai()
        general = leave_early()
        otelite.uninstrument_openai()
    otelite.instrument_openai()
    steady.clear()
    handed: list[Any] = []
    handover = _lean.handover

    def counted(call: Any, *args: Any) -> Any:
        handed.append(call)
        return handover(call, *args)

    monkeypatch.setattr(_lean, "handover", counted)
    lean = leave_early()
    assert steady == []  # never ended on the lean path:
    assert len(handed) == 1  # begun there, and handed over
    assert lean == general
    (span,) = lean[0]
    assert "gen_ai.response.finish_reasons" not in span["attributes"]
    assert span["attributes"]["gen_ai.response.id"] == interactions[0].sse_events()[0]["id"]
