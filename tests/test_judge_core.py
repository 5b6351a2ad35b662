"""A judge's call and an instrumented client's call to the same endpoint make the same LLM span."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import otelite
from cassettes import http
from fakeopenai import chat_completion, client
from otelite.evals._client import ChatEndpoint
from otelite.testing import capture_spans

MESSAGES = [
    {"role": "system", "content": "Grade the answer."},
    {"role": "user", "content": "Is Paris the capital of France?"},
]
# What both calls must agree on: who served the call, what it used, what it cost and why.
SHARED = (
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "server.address",
    "server.port",
    "gen_ai.response.model",
    "gen_ai.response.id",
    "gen_ai.response.finish_reasons",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cost",
    "otelite.cost.source",
    "otelite.cost.catalog_version",
    "otelite.cost.catalog_date",
    "otelite.cost.estimated",
    "otelite.cost.override",
)
ENDPOINTS = [
    # (base URL, requested model, answering model, provider name)
    ("https://api.openai.com/v1", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai"),
    (
        "https://api.groq.com/openai/v1",
        "llama-3.3-70b-versatile",
        "llama-3.3-70b-versatile",
        "groq",
    ),
]


@pytest.fixture
def instrumented() -> Iterator[None]:
    otelite.instrument_openai()
    yield
    otelite.uninstrument_openai()


def _body(model: str) -> dict[str, Any]:
    return chat_completion(
        "Yes.",
        model=model,
        usage={
            "prompt_tokens": 1200,
            "completion_tokens": 40,
            "total_tokens": 1240,
            "prompt_tokens_details": {"cached_tokens": 1024},
        },
    )


@pytest.mark.parametrize(("base_url", "requested", "answering", "provider"), ENDPOINTS)
def test_judge_span_matches_instrumented_span(
    instrumented: None, base_url: str, requested: str, answering: str, provider: str
) -> None:
    """Provider name, usage (cached tokens included) and cost provenance are the same."""
    seen: list[dict[str, Any]] = []

    def app_handler(request: Any) -> Any:
        seen.append(json.loads(request.content))
        return http.Response(200, json=_body(answering))

    def judge_handler(request: Any) -> Any:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=_body(answering))

    with capture_spans() as app:
        client(app_handler, base_url=base_url).chat.completions.create(
            model=requested, messages=MESSAGES, temperature=0.0
        )
    endpoint = ChatEndpoint(
        model=requested,
        base_url=base_url,
        api_key="sk-judge-0123456789abcdefghij",
        transport=httpx.MockTransport(judge_handler),
    )
    with capture_spans() as judge:
        completion = endpoint.complete(MESSAGES)

    assert len(seen) == 2
    assert len(app.spans) == len(judge.spans) == 1
    app_attrs, judge_attrs = dict(app.spans[0].attributes), dict(judge.spans[0].attributes)
    assert app_attrs["gen_ai.provider.name"] == provider
    assert app_attrs["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert app_attrs["otelite.cost.source"] == "genai-prices"
    for key in SHARED:
        assert key in app_attrs, key
        assert judge_attrs.get(key) == app_attrs[key], key
    # The judge's call is evaluation traffic; its returned cost is the span's.
    assert judge_attrs["otelite.traffic"] == "evaluation"
    assert "otelite.traffic" not in app_attrs
    assert completion.cost == judge_attrs["gen_ai.usage.cost"]
    assert (completion.input_tokens, completion.output_tokens) == (1200, 40)
    # Cached tokens are priced as such: at OpenAI the same tokens uncached cost more
    # (the catalog has no cache price for Groq's model: the same price there).
    uncached = _body(answering)
    del uncached["usage"]["prompt_tokens_details"]
    full = ChatEndpoint(
        model=requested,
        base_url=base_url,
        api_key="sk-judge-0123456789abcdefghij",
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json=uncached)),
    ).complete(MESSAGES)
    assert completion.cost is not None
    assert full.cost is not None
    if provider == "openai":
        assert 0 < completion.cost < full.cost
    else:
        assert 0 < completion.cost == full.cost


def test_judge_metrics_match_instrumented_metrics(instrumented: None) -> None:
    """The judge's call records the same GenAI instruments, marked as evaluation traffic."""
    base_url, requested, answering, _ = ENDPOINTS[1]
    with capture_spans() as judge:
        ChatEndpoint(
            model=requested,
            base_url=base_url,
            api_key="sk-judge-0123456789abcdefghij",
            transport=httpx.MockTransport(lambda r: httpx.Response(200, json=_body(answering))),
        ).complete(MESSAGES)
    metrics = judge.metrics()
    duration = metrics["gen_ai.client.operation.duration"]
    assert [p["attributes"] for p in duration] == [
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "groq",
            "gen_ai.request.model": requested,
            "server.address": "api.groq.com",
            "server.port": 443,
            "otelite.traffic": "evaluation",
            "gen_ai.response.model": answering,
        }
    ]
    tokens = sorted(
        (p["attributes"]["gen_ai.token.type"], p["sum"])
        for p in metrics["gen_ai.client.token.usage"]
    )
    assert tokens == [("input", 1200), ("output", 40)]
