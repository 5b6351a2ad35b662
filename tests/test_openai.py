"""OpenAI instrumentation: whole spans and metrics per surface, sync and async, success and error."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import openai
import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation

import otelite
from fakeopenai import (
    AsyncFrames,
    Frames,
    Recorder,
    chat_chunks,
    chat_completion,
    client,
    json_response,
    response_object,
    sse,
    stream_response,
)
from otelite._pricing import catalog
from otelite.testing import capture_spans

CATALOG_DATE = catalog().date  # the bundled snapshot's date (changes when it is regenerated)
CHAT_ATTRS = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "server.address": "api.openai.com",
    "server.port": 443,
    "openai.api.type": "chat_completions",
}
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Capital of France?"},
]


pytestmark = pytest.mark.usefixtures("openai_instrumented")


def bucket_advice_supported() -> bool:
    """Whether the installed opentelemetry-api takes bucket advice (older ones use SDK defaults)."""
    import inspect

    from opentelemetry.metrics import Meter

    return (
        "explicit_bucket_boundaries_advisory"
        in inspect.signature(Meter.create_histogram).parameters
    )


def chat_handler(body: dict[str, Any]) -> Recorder:
    return Recorder(lambda request: json_response(body))


def test_chat_whole_span_and_metrics() -> None:
    """A plain chat call: the whole span (name, kind, every attribute) and the metric points."""
    handler = chat_handler(
        chat_completion(
            usage={
                "prompt_tokens": 12,
                "completion_tokens": 3,
                "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 2},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
            system_fingerprint="fp_1",
            service_tier="default",
        )
    )
    with capture_spans() as cap:
        result = client(handler).chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            temperature=0,
            top_p=1,
            max_tokens=50,
            seed=0,
            stop="\n",
            frequency_penalty=0.0,
            presence_penalty=0.5,
            n=1,
            response_format={"type": "json_object"},
            service_tier="default",
        )
    assert isinstance(result, openai.types.chat.ChatCompletion)
    spans = cap.as_dicts()
    # gpt-4o-mini in the catalog: $0.15/M input, $0.075/M cached input, $0.60/M output.
    cost = spans[0]["attributes"].pop("gen_ai.usage.cost")
    assert cost == pytest.approx((10 * 0.15 + 2 * 0.075 + 3 * 0.6) / 1e6)
    assert spans == [
        {
            "name": "chat gpt-4o-mini",
            "kind": "CLIENT",
            "trace_id": 1,
            "span_id": 1,
            "parent_id": None,
            "start_time": 1,
            "end_time": 2,
            "status": "UNSET",
            "status_description": None,
            "attributes": {
                **CHAT_ATTRS,
                "gen_ai.request.temperature": 0.0,
                "gen_ai.request.top_p": 1.0,
                "gen_ai.request.max_tokens": 50,
                "gen_ai.request.seed": 0,
                "gen_ai.request.stop_sequences": ["\n"],
                "gen_ai.request.frequency_penalty": 0.0,
                "gen_ai.request.presence_penalty": 0.5,
                "gen_ai.output.type": "json",
                "openai.request.service_tier": "default",
                "gen_ai.response.id": "chatcmpl-1",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.response.finish_reasons": ["stop"],
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 3,
                "gen_ai.usage.cache_read.input_tokens": 2,
                "gen_ai.usage.reasoning.output_tokens": 0,
                "openai.response.service_tier": "default",
                "openai.response.system_fingerprint": "fp_1",
                "otelite.cost.source": "genai-prices",
                "otelite.cost.catalog_version": "0.2.3",
                "otelite.cost.catalog_date": CATALOG_DATE,
                "otelite.cost.estimated": False,
                "otelite.cost.override": False,
            },
            "events": [],
        }
    ]
    metrics = cap.metrics()
    common = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "server.address": "api.openai.com",
        "server.port": 443,
    }
    (duration,) = metrics["gen_ai.client.operation.duration"]
    assert duration["attributes"] == common
    assert duration["count"] == 1
    if bucket_advice_supported():
        assert duration["explicit_bounds"] == [
            0.01,
            0.02,
            0.04,
            0.08,
            0.16,
            0.32,
            0.64,
            1.28,
            2.56,
            5.12,
            10.24,
            20.48,
            40.96,
            81.92,
        ]
    tokens = {p["attributes"]["gen_ai.token.type"]: p for p in metrics["gen_ai.client.token.usage"]}
    assert tokens["input"]["sum"] == 12
    assert tokens["output"]["sum"] == 3
    assert tokens["input"]["attributes"] == {**common, "gen_ai.token.type": "input"}
    if bucket_advice_supported():
        assert tokens["input"]["explicit_bounds"][:3] == [1, 4, 16]
    assert "gen_ai.client.operation.time_to_first_chunk" not in metrics


def test_content_captured_only_when_on() -> None:
    """Messages, system instructions, tool definitions and output appear only with capture on (D2)."""
    tool = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    body = chat_completion(
        content=None,  # type: ignore[arg-type]
        finish_reason="tool_calls",
        tool_calls=[
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    )
    handler = chat_handler(body)
    messages = [
        *MESSAGES,
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_0",
                    "type": "function",
                    "function": {"name": "weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_0", "content": "sunny"},
    ]
    with capture_spans() as off:
        client(handler).chat.completions.create(
            model="gpt-4o-mini", messages=messages, tools=[tool]
        )
    attrs = off.spans[0].attributes
    for key in (
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
    ):
        assert key not in attrs
    with capture_spans(capture_content=True) as on:
        client(handler).chat.completions.create(
            model="gpt-4o-mini", messages=messages, tools=[tool]
        )
    attrs = on.spans[0].attributes
    assert json.loads(attrs["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Be brief."}
    ]
    assert json.loads(attrs["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Capital of France?"}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "call_0", "name": "weather", "arguments": {}}],
        },
        {
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": "call_0", "response": "sunny"}],
        },
    ]
    assert json.loads(attrs["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "call_1",
                    "name": "weather",
                    "arguments": {"city": "Paris"},
                }
            ],
            "finish_reason": "tool_calls",
        }
    ]
    assert json.loads(attrs["gen_ai.tool.definitions"]) == [tool]


def test_api_key_never_recorded() -> None:
    """Neither the API key nor the auth header appears in any attribute, even with capture on."""
    handler = chat_handler(chat_completion())
    with capture_spans(capture_content=True) as cap:
        client(handler).chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "my key is sk-test-0123456789abcdefghij"}],
        )
    dumped = json.dumps(cap.as_dicts())
    assert "sk-test-0123456789abcdefghij" not in dumped
    assert "[REDACTED:api_key]" in dumped
    assert "authorization" not in dumped.lower()


def test_n_choices_and_refusal() -> None:
    """n>1 records the choice count and one finish reason per choice; a refusal is kept as output text."""
    choices = [
        {"index": 0, "message": {"role": "assistant", "content": "A"}, "finish_reason": "stop"},
        {
            "index": 1,
            "message": {"role": "assistant", "content": None, "refusal": "I can't."},
            "finish_reason": "content_filter",
        },
    ]
    handler = chat_handler(chat_completion(choices=choices))
    with capture_spans(capture_content=True) as cap:
        client(handler).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, n=2)
    attrs = cap.spans[0].attributes
    assert attrs["gen_ai.request.choice.count"] == 2
    assert list(attrs["gen_ai.response.finish_reasons"]) == ["stop", "content_filter"]
    assert json.loads(attrs["gen_ai.output.messages"])[1]["parts"] == [
        {"type": "text", "content": "I can't."}
    ]


@pytest.mark.parametrize("is_async", [False, True])
def test_api_error_reaches_caller_unchanged(is_async: bool) -> None:
    """A 4xx error is raised to the caller as openai raises it; the span has ERROR and error.type."""
    handler = Recorder(
        lambda request: json_response(
            {
                "error": {
                    "message": "nope",
                    "type": "invalid_request_error",
                    "code": "model_not_found",
                }
            },
            404,
        )
    )
    c = client(handler, is_async=is_async)

    def call() -> Any:
        result = c.chat.completions.create(model="gpt-x", messages=MESSAGES)
        return asyncio.run(result) if is_async else result

    with capture_spans() as cap, pytest.raises(openai.NotFoundError) as info:
        call()
    assert info.value.status_code == 404
    span = cap.as_dicts()[0]
    assert span["status"] == "ERROR"
    assert span["attributes"]["error.type"] == "openai.NotFoundError"
    assert span["attributes"]["gen_ai.request.model"] == "gpt-x"
    assert span["events"][0]["name"] == "exception"
    (duration,) = cap.metrics()["gen_ai.client.operation.duration"]
    assert duration["attributes"]["error.type"] == "openai.NotFoundError"


def test_connection_error_recorded() -> None:
    """A transport failure surfaces as openai.APIConnectionError, recorded on the span."""

    from cassettes import http

    def boom(request: Any) -> Any:
        raise http.ConnectError("refused")

    with capture_spans() as cap, pytest.raises(openai.APIConnectionError):
        client(Recorder(boom)).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert cap.spans[0].attributes["error.type"] == "openai.APIConnectionError"


def stream_handler(frames: list[bytes], is_async: bool, **kw: Any) -> Recorder:
    return Recorder(
        lambda request: stream_response((AsyncFrames if is_async else Frames)(frames, **kw))
    )


@pytest.mark.parametrize("is_async", [False, True])
def test_chat_stream_whole_span(is_async: bool) -> None:
    """A streamed chat: same chunks for the caller, TTFC, usage from the final chunk, output reassembled."""
    handler = stream_handler(sse(chat_chunks(["Pa", "ris", "."])), is_async)
    c = client(handler, is_async=is_async)

    async def consume_async() -> list[Any]:
        stream = await c.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        assert isinstance(stream, openai.AsyncStream)
        return [chunk async for chunk in stream]

    with capture_spans(capture_content=True) as cap:
        if is_async:
            chunks = asyncio.run(consume_async())
        else:
            stream = c.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
            assert isinstance(stream, openai.Stream)
            chunks = list(stream)
    assert [ch.choices[0].delta.content for ch in chunks[:3]] == ["Pa", "ris", "."]
    assert len(chunks) == 5
    (span,) = cap.as_dicts()
    attrs = span["attributes"]
    ttfc = attrs.pop("gen_ai.response.time_to_first_chunk")
    assert 0 < ttfc < 5
    assert attrs.pop("gen_ai.usage.cost") == pytest.approx((9 * 0.15 + 3 * 0.6) / 1e6)
    assert attrs == {
        **CHAT_ATTRS,
        "gen_ai.request.stream": True,
        "gen_ai.response.id": "chatcmpl-s",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": 9,
        "gen_ai.usage.output_tokens": 3,
        "otelite.cost.source": "genai-prices",
        "otelite.cost.catalog_version": "0.2.3",
        "otelite.cost.catalog_date": CATALOG_DATE,
        "otelite.cost.estimated": False,
        "otelite.cost.override": False,
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": "Capital of France?"}]}]
        ),
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": "Paris."}],
                    "finish_reason": "stop",
                }
            ]
        ),
    }
    assert span["status"] == "UNSET"
    metrics = cap.metrics()
    assert metrics["gen_ai.client.operation.time_to_first_chunk"][0]["count"] == 1
    assert metrics["gen_ai.client.operation.time_per_output_chunk"][0]["count"] == 4


def test_cumulative_usage_taken_once() -> None:
    """A provider repeating cumulative usage in every chunk is counted once (the last), never summed."""
    base = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    chunks = [
        {
            **base,
            "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        },
        {
            **base,
            "choices": [{"index": 0, "delta": {"content": "b"}, "finish_reason": None}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        },
        {
            **base,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        },
    ]
    handler = stream_handler(sse(chunks), False)
    with capture_spans() as cap:
        list(
            client(handler, base_url="https://api.deepseek.com/v1").chat.completions.create(
                model="m", messages=MESSAGES, stream=True
            )
        )
    attrs = cap.spans[0].attributes
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (5, 3)
    assert attrs["gen_ai.provider.name"] == "deepseek"
    assert not [k for k in attrs if k.startswith("openai.")]


def test_azure_first_chunk_without_model() -> None:
    """Azure's first chunk (model "", no choices) does not blank the response model."""
    first = {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [],
        "prompt_filter_results": [],
    }
    handler = stream_handler(
        sse([first, *chat_chunks(["ok"], usage=False, model="gpt-4o-2024-08-06")]), False
    )
    with capture_spans() as cap:
        list(
            client(handler).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        )
    attrs = cap.spans[0].attributes
    assert attrs["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert attrs["gen_ai.response.id"] == "chatcmpl-s"
    assert attrs["otelite.usage.estimated"] is True  # no usage chunk arrived


@pytest.mark.parametrize(
    "body",
    [
        {"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": []},
        {
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "x"},
                    "finish_reason": "brand_new_reason",
                }
            ],
            "usage": {"prompt_tokens": -3, "completion_tokens": "many"},
        },
        {"unexpected": True},
    ],
    ids=["no-choices-no-usage", "odd-reason-bad-usage", "unexpected-shape"],
)
def test_malformed_responses_never_raise(body: dict[str, Any]) -> None:
    """Malformed bodies give the caller exactly what openai gives; the span records what it can."""
    handler = chat_handler(body)
    otelite.uninstrument_openai()
    expected = (
        client(handler)
        .chat.completions.create(model="m", messages=MESSAGES)
        .model_dump(warnings=False)
    )
    otelite.instrument_openai()
    with capture_spans() as cap:
        got = client(handler).chat.completions.create(model="m", messages=MESSAGES)
    assert got.model_dump(warnings=False) == expected
    attrs = cap.spans[0].attributes
    assert cap.spans[0].status.status_code.name == "UNSET"
    if "usage" in body:
        # Negative / non-numeric usage is never used nor priced.
        assert attrs["otelite.usage.unreadable"] is True
        assert "gen_ai.usage.input_tokens" not in attrs
        assert "gen_ai.usage.cost" not in attrs
    else:
        # No usage at all: counted from the request and marked estimated.
        assert attrs["otelite.usage.estimated"] is True
        assert attrs["gen_ai.usage.input_tokens"] > 0


def test_non_json_body_error() -> None:
    """A non-JSON body makes openai raise as usual; otelite records the error and adds nothing."""
    from cassettes import http

    handler = Recorder(
        lambda request: http.Response(
            200, content=b"<html>oops</html>", headers={"content-type": "application/json"}
        )
    )
    otelite.uninstrument_openai()
    with pytest.raises((openai.OpenAIError, ValueError)) as plain:
        client(handler).chat.completions.create(model="m", messages=MESSAGES)
    otelite.instrument_openai()
    with capture_spans() as cap, pytest.raises(type(plain.value)):
        client(handler).chat.completions.create(model="m", messages=MESSAGES)
    assert cap.spans[0].status.status_code.name == "ERROR"


def test_embeddings_span() -> None:
    """Embeddings: operation, encoding format, dimensions and input tokens."""
    body = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    with capture_spans() as cap:
        client(chat_handler(body)).embeddings.create(
            model="text-embedding-3-small", input="hello", encoding_format="float", dimensions=2
        )
    span = cap.as_dicts()[0]
    assert span["name"] == "embeddings text-embedding-3-small"
    assert span["attributes"] == {
        "gen_ai.operation.name": "embeddings",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "text-embedding-3-small",
        "server.address": "api.openai.com",
        "server.port": 443,
        "gen_ai.request.encoding_formats": ["float"],
        "gen_ai.embeddings.dimension.count": 2,
        "gen_ai.response.model": "text-embedding-3-small",
        "gen_ai.usage.input_tokens": 4,
        "gen_ai.usage.cost": pytest.approx(4 * 0.02 / 1e6),
        "otelite.cost.source": "genai-prices",
        "otelite.cost.catalog_version": "0.2.3",
        "otelite.cost.catalog_date": CATALOG_DATE,
        "otelite.cost.estimated": False,
        "otelite.cost.override": False,
    }


def test_responses_span() -> None:
    """Responses API: usage with cached and reasoning detail, instructions as system instructions."""
    with capture_spans(capture_content=True) as cap:
        client(chat_handler(response_object())).responses.create(
            model="gpt-4.1-mini",
            input="Capital of France?",
            instructions="Be brief.",
            max_output_tokens=100,
        )
    attrs = dict(cap.spans[0].attributes)
    assert cap.spans[0].name == "chat gpt-4.1-mini"
    assert attrs["openai.api.type"] == "responses"
    assert attrs["gen_ai.request.max_tokens"] == 100
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (20, 6)
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 4
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 2
    assert json.loads(attrs["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Be brief."}
    ]
    assert json.loads(attrs["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Paris."}],
            "finish_reason": "stop",
        }
    ]


def test_compatible_providers_from_base_url() -> None:
    """The provider comes from the base URL's host, or a local server's port; users can add hosts."""
    handler = chat_handler(chat_completion())
    cases = {
        "https://api.groq.com/openai/v1": "groq",
        "https://openrouter.ai/api/v1": "openrouter",
        "https://generativelanguage.googleapis.com/v1beta/openai": "gcp.gemini",
        "http://localhost:11434/v1": "ollama",
        "http://127.0.0.1:8000/v1": "vllm",
        "https://llm.internal.example.com/v1": "openai_compatible",
    }
    for base_url, provider in cases.items():
        with capture_spans() as cap:
            client(handler, base_url=base_url).chat.completions.create(model="m", messages=MESSAGES)
        assert cap.spans[0].attributes["gen_ai.provider.name"] == provider, base_url
    otelite.register_provider("llm.internal.example.com", "vllm")
    with capture_spans() as cap:
        client(
            handler, base_url="https://gw.llm.internal.example.com:8443/v1"
        ).chat.completions.create(model="m", messages=MESSAGES)
    attrs = cap.spans[0].attributes
    assert (attrs["gen_ai.provider.name"], attrs["server.address"], attrs["server.port"]) == (
        "vllm",
        "gw.llm.internal.example.com",
        8443,
    )
    with pytest.raises(ValueError, match="bare host name"):
        otelite.register_provider("https://x/y", "p")


def test_suppression_and_uninstrument() -> None:
    """No span inside suppress_instrumentation(); uninstrument restores the original methods."""
    from openai.resources.chat.completions import Completions

    handler = chat_handler(chat_completion())
    with capture_spans() as cap, suppress_instrumentation():
        client(handler).chat.completions.create(model="m", messages=MESSAGES)
    assert cap.spans == []
    patched = Completions.__dict__["create"]
    otelite.instrument_openai()  # idempotent
    assert Completions.__dict__["create"] is patched
    otelite.uninstrument_openai()
    assert Completions.__dict__["create"] is patched.__wrapped__
    with capture_spans() as cap:
        client(handler).chat.completions.create(model="m", messages=MESSAGES)
    assert cap.spans == []
    otelite.uninstrument_openai()  # idempotent


def test_span_nests_under_decorated_function_and_context_attributes() -> None:
    """An LLM span is a child of the decorated caller and carries the context attributes."""
    handler = chat_handler(chat_completion())

    @otelite.trace(name="answer")
    def answer() -> None:
        client(handler).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    with capture_spans() as cap, otelite.attributes(user_id="u-1", tags=["t"]):
        answer()
    outer, llm = cap.as_dicts()
    assert llm["parent_id"] == outer["span_id"]
    assert llm["attributes"]["user.id"] == "u-1"
    assert llm["attributes"]["otelite.tags"] == ["t"]


def test_concurrent_threads_and_tasks_do_not_mix() -> None:
    """Many threads and tasks at once: each span has its own model and usage."""

    def respond(request: Any) -> Any:
        body = json.loads(request.content)
        n = int(body["model"].split("-")[1])
        return json_response(
            chat_completion(
                model=body["model"],
                usage={"prompt_tokens": n, "completion_tokens": n * 2, "total_tokens": n * 3},
            )
        )

    sync_client = client(Recorder(respond))
    async_client = client(Recorder(respond), is_async=True)

    def call(i: int) -> None:
        sync_client.chat.completions.create(model=f"m-{i}", messages=MESSAGES)

    async def many() -> None:
        await asyncio.gather(
            *(
                async_client.chat.completions.create(model=f"m-{i}", messages=MESSAGES)
                for i in range(100, 140)
            )
        )

    with capture_spans() as cap:
        threads = [
            threading.Thread(target=otelite.bind_context(call), args=(i,)) for i in range(1, 41)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        asyncio.run(many())
    assert len(cap.spans) == 80
    for span in cap.spans:
        n = int(span.attributes["gen_ai.request.model"].split("-")[1])
        assert span.attributes["gen_ai.response.model"] == f"m-{n}"
        assert (
            span.attributes["gen_ai.usage.input_tokens"],
            span.attributes["gen_ai.usage.output_tokens"],
        ) == (n, 2 * n)


def test_instrumentor_entry_point() -> None:
    """OpenAIInstrumentor is registered for opentelemetry-instrument and patches like instrument_openai()."""
    from importlib.metadata import entry_points

    from openai.resources.chat.completions import Completions

    from otelite.instrumentation import OpenAIInstrumentor

    eps: Any = entry_points()
    group = (
        eps.select(group="opentelemetry_instrumentor")
        if hasattr(eps, "select")
        else eps.get("opentelemetry_instrumentor", [])
    )
    found = [ep for ep in group if ep.name == "otelite-openai"]
    assert [ep.load() for ep in found] == [OpenAIInstrumentor]
    otelite.uninstrument_openai()
    original = Completions.__dict__["create"]
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument()
    assert Completions.__dict__["create"].__wrapped__ is original
    instrumentor.uninstrument()
    assert Completions.__dict__["create"] is original


def test_opentelemetry_instrument_command(tmp_path: Any) -> None:
    """`opentelemetry-instrument python app.py` records otelite's OpenAI spans with no code change."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    app = tmp_path / "app.py"
    app.write_text(
        "import sys, openai\n"
        "http = sys.modules[openai.DefaultHttpxClient.__mro__[1].__module__.split('.')[0]]\n"
        "body = {'id': 'c', 'object': 'chat.completion', 'created': 1, 'model': 'gpt-4o-mini', 'choices': [{'index': 0, 'message': {'role': 'assistant', 'content': 'hi'}, 'finish_reason': 'stop'}], 'usage': {'prompt_tokens': 3, 'completion_tokens': 1, 'total_tokens': 4}}\n"
        "c = openai.OpenAI(api_key='k', http_client=http.Client(transport=http.MockTransport(lambda r: http.Response(200, json=body))))\n"
        "c.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'hi'}])\n"
    )
    command = Path(sys.executable).parent / "opentelemetry-instrument"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL")}
    env.update(
        {
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            # otelite's spans, even when the official OpenAI instrumentation is installed too.
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai",
        }
    )
    out = subprocess.run(
        [str(command), sys.executable, str(app)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    span = json.loads(out.stdout)
    assert span["name"] == "chat gpt-4o-mini"
    assert span["attributes"]["gen_ai.usage.input_tokens"] == 3
    assert span["attributes"]["otelite.cost.estimated"] is False  # recorded by otelite


def test_parse_structured_output_sync_and_async() -> None:
    """chat.completions.parse (sync and async) records one span with output type json."""
    import pydantic

    class City(pydantic.BaseModel):
        name: str

    body = chat_completion(content='{"name": "Paris"}')
    sync_c = client(chat_handler(body))
    async_c = client(chat_handler(body), is_async=True)
    sync_parse = (
        getattr(sync_c.chat.completions, "parse", None) or sync_c.beta.chat.completions.parse
    )
    async_parse = (
        getattr(async_c.chat.completions, "parse", None) or async_c.beta.chat.completions.parse
    )
    with capture_spans() as cap:
        parsed = sync_parse(model="gpt-4o-mini", messages=MESSAGES, response_format=City)
        assert parsed.choices[0].message.parsed == City(name="Paris")
        parsed_async = asyncio.run(
            async_parse(model="gpt-4o-mini", messages=MESSAGES, response_format=City)
        )
        assert parsed_async.choices[0].message.parsed == City(name="Paris")
    assert len(cap.spans) == 2
    for span in cap.spans:
        assert span.name == "chat gpt-4o-mini"
        assert span.attributes["gen_ai.output.type"] == "json"
        assert span.attributes["gen_ai.usage.input_tokens"] == 12


def test_raw_and_streaming_response_non_stream() -> None:
    """with_raw_response and with_streaming_response on plain calls: same objects for the caller, one span each."""
    handler = chat_handler(chat_completion())
    c = client(handler)
    with capture_spans() as cap:
        raw = c.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
        assert raw.http_response.status_code == 200
        completion = raw.parse()
        assert isinstance(completion, openai.types.chat.ChatCompletion)
        assert completion.choices[0].message.content == "Paris."
        with c.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES
        ) as response:
            assert response.parse().usage.prompt_tokens == 12
    assert [s.name for s in cap.spans] == ["chat gpt-4o-mini", "chat gpt-4o-mini"]
    for span in cap.spans:
        assert span.attributes["gen_ai.usage.input_tokens"] == 12
        assert span.attributes["gen_ai.response.id"] == "chatcmpl-1"


def test_async_raw_and_streaming_response_non_stream() -> None:
    """The async raw and streaming-response variants record one span each."""
    c = client(chat_handler(chat_completion()), is_async=True)

    async def main() -> None:
        raw = await c.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
        assert raw.parse().choices[0].message.content == "Paris."
        async with c.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES
        ) as response:
            assert (await response.parse()).usage.completion_tokens == 3

    with capture_spans() as cap:
        asyncio.run(main())
    assert [s.attributes["gen_ai.usage.output_tokens"] for s in cap.spans] == [3, 3]


def test_late_imported_resources_are_patched(tmp_path: Any) -> None:
    """instrument_openai() before openai loads a resource module: the module is patched when it loads."""
    import subprocess
    import sys

    code = (
        "import sys, otelite\n"
        "otelite.instrument_openai()\n"
        "assert 'openai.resources.embeddings' not in sys.modules\n"
        "import openai\n"
        "from openai.resources.embeddings import Embeddings\n"
        "assert type(Embeddings.__dict__['create']).__name__ == 'FunctionWrapper', type(Embeddings.__dict__['create'])\n"
        "otelite.uninstrument_openai()\n"
        "assert type(Embeddings.__dict__['create']).__name__ == 'function'\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr


def test_responses_parse() -> None:
    """responses.parse records one span with json output type and the usage."""
    import pydantic

    class City(pydantic.BaseModel):
        name: str

    body = response_object('{"name": "Paris"}')
    c = client(chat_handler(body))
    if not hasattr(c.responses, "parse"):
        pytest.skip("this openai version has no responses.parse")
    with capture_spans() as cap:
        parsed = c.responses.parse(
            model="gpt-4.1-mini", input="Capital of France?", text_format=City
        )
    assert parsed.output_parsed == City(name="Paris")
    (span,) = cap.spans
    assert span.attributes["gen_ai.output.type"] == "json"
    assert span.attributes["gen_ai.usage.input_tokens"] == 20
    assert span.attributes["openai.api.type"] == "responses"
