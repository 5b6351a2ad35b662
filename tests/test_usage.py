"""Usage for every stream: requested where safe (and hidden from the caller), estimated otherwise."""

from __future__ import annotations

import asyncio
import copy
import gzip
import json
from typing import Any

import openai
import pytest

import otelite
from cassettes import Interaction, all_cassettes, call_kwargs, http, load, make_client, method_for
from fakeopenai import AsyncFrames, Frames, Recorder, chat_chunks, sse, stream_response
from otelite.testing import capture_spans

MESSAGES = [{"role": "user", "content": "Say Paris."}]
PIECES = ["Pa", "ri", "s", "."]


pytestmark = pytest.mark.usefixtures("openai_instrumented")


def openai_like(is_async: bool = False) -> Recorder:
    """A server that, like OpenAI, sends the usage chunk only when asked for it."""

    def respond(request: Any) -> Any:
        options = json.loads(request.content).get("stream_options") or {}
        frames = sse(chat_chunks(PIECES, usage=bool(options.get("include_usage"))))
        return stream_response((AsyncFrames if is_async else Frames)(frames))

    return Recorder(respond)


def make(
    handler: Recorder,
    *,
    is_async: bool = False,
    base_url: str = "https://api.openai.com/v1",
    azure_version: str = "",
) -> Any:
    transport = http.MockTransport(handler)
    if azure_version:
        cls = openai.AsyncAzureOpenAI if is_async else openai.AzureOpenAI
        return cls(
            api_key="k",
            api_version=azure_version,
            azure_endpoint="https://res.openai.azure.com",
            azure_deployment="dep",
            max_retries=0,
            http_client=(http.AsyncClient if is_async else http.Client)(transport=transport),
        )
    cls2 = openai.AsyncOpenAI if is_async else openai.OpenAI
    return cls2(
        api_key="k",
        base_url=base_url,
        max_retries=0,
        http_client=(http.AsyncClient if is_async else http.Client)(transport=transport),
    )


def chunks_of(c: Any, **kwargs: Any) -> list[Any]:
    return [
        ch.model_dump()
        for ch in c.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, **kwargs
        )
    ]


def test_usage_requested_and_chunk_hidden() -> None:
    """otelite asks for usage; the caller gets exactly the chunks it would get without otelite."""
    otelite.uninstrument_openai()
    plain = chunks_of(make(openai_like()))
    otelite.instrument_openai()
    handler = openai_like()
    with capture_spans() as cap:
        got = chunks_of(make(handler))
    assert got == plain
    assert all(ch["choices"] for ch in got)
    assert handler.bodies()[0]["stream_options"] == {"include_usage": True}
    attrs = cap.spans[0].attributes
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (9, 4)
    assert "otelite.usage.estimated" not in attrs
    assert attrs["otelite.cost.estimated"] is False


def test_usage_requested_async() -> None:
    """The same for the async client."""

    async def consume(c: Any) -> list[Any]:
        stream = await c.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        return [ch.model_dump() async for ch in stream]

    otelite.uninstrument_openai()
    plain = asyncio.run(consume(make(openai_like(True), is_async=True)))
    otelite.instrument_openai()
    with capture_spans() as cap:
        got = asyncio.run(consume(make(openai_like(True), is_async=True)))
    assert got == plain
    assert cap.spans[0].attributes["gen_ai.usage.output_tokens"] == 4


def test_caller_asked_for_usage_keeps_its_chunk() -> None:
    """When the caller asked for usage itself, nothing is changed or hidden."""
    handler = openai_like()
    with capture_spans() as cap:
        got = chunks_of(make(handler), stream_options={"include_usage": True})
    assert got[-1]["choices"] == []
    assert got[-1]["usage"]["completion_tokens"] == 4
    assert cap.spans[0].attributes["gen_ai.usage.output_tokens"] == 4


def test_switch_off_estimates_instead() -> None:
    """stream_usage=False: the request is untouched and usage is estimated, marked as such."""
    handler = openai_like()
    with capture_spans(stream_usage=False) as cap:
        chunks_of(make(handler))
    assert "stream_options" not in handler.bodies()[0]
    attrs = cap.spans[0].attributes
    assert attrs["otelite.usage.estimated"] is True
    assert attrs["otelite.cost.estimated"] is True
    assert attrs["gen_ai.usage.output_tokens"] == 2  # "Paris." is 2 tokens in o200k_base
    assert attrs["gen_ai.usage.input_tokens"] >= 9


@pytest.mark.parametrize(
    ("version", "injected"),
    [("2024-06-01", False), ("2024-10-21", True), ("2025-04-01-preview", True)],
)
def test_azure_only_with_recent_api_versions(version: str, injected: bool) -> None:
    """Old Azure api-versions reject stream_options: otelite only asks where it is accepted."""
    handler = openai_like()
    with capture_spans() as cap:
        chunks_of(make(handler, azure_version=version))
    assert ("stream_options" in handler.bodies()[0]) is injected
    attrs = cap.spans[0].attributes
    assert attrs["gen_ai.provider.name"] == "azure.ai.openai"
    assert ("otelite.usage.estimated" in attrs) is (not injected)


def test_other_providers_opt_in() -> None:
    """Hosts not known to accept stream_options are left alone until enabled."""
    handler = openai_like()
    with capture_spans():
        chunks_of(make(handler, base_url="https://api.groq.com/openai/v1"))
    assert "stream_options" not in handler.bodies()[0]
    otelite.enable_stream_usage("groq")
    try:
        with capture_spans() as cap:
            chunks_of(make(handler, base_url="https://api.groq.com/openai/v1"))
        assert handler.bodies()[1]["stream_options"] == {"include_usage": True}
        assert "otelite.usage.estimated" not in cap.spans[0].attributes
    finally:
        otelite.disable_stream_usage("groq")
    with capture_spans():
        chunks_of(make(handler, base_url="https://api.groq.com/openai/v1"))
    assert "stream_options" not in handler.bodies()[2]


def test_stream_closed_early_is_estimated() -> None:
    """A stream abandoned before its usage chunk gets estimated usage for what was seen."""
    with capture_spans() as cap:
        stream = make(openai_like()).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        next(iter(stream))
        stream.close()
    attrs = cap.spans[0].attributes
    assert attrs["otelite.usage.estimated"] is True
    assert attrs["gen_ai.usage.output_tokens"] == 1  # "Pa"


def strip_usage(interaction: Interaction) -> Interaction:
    """The same recording with the usage object removed from the response body."""
    body = interaction.response_json()
    body.pop("usage", None)
    stripped = copy.copy(interaction)
    stripped.body = json.dumps(body).encode()
    stripped.headers = [(k, v) for k, v in interaction.headers if k.lower() != "content-encoding"]
    return stripped


def plain_chat(interaction: Interaction) -> bool:
    """A successful non-streamed chat call with plain string messages (no tools, images or audio)."""
    request = interaction.request or {}
    if (
        interaction.endpoint != "/chat/completions"
        or interaction.is_stream
        or interaction.status != 200
    ):
        return False
    if any(k in request for k in ("tools", "functions", "audio", "response_format")):
        return False
    if "api.openai.com" not in interaction.url and "openai.azure.com" not in interaction.url:
        return False  # other servers use other tokenizers and chat templates
    usage = interaction.recorded_usage() or {}
    return bool(usage) and all(
        isinstance(m.get("content"), str) for m in request.get("messages", [])
    )


PLAIN = [(name, i) for name in all_cassettes() for i, it in enumerate(load(name)) if plain_chat(it)]


@pytest.mark.skipif(
    not __import__("os").environ.get("TIKTOKEN_CACHE_DIR"), reason="needs tiktoken encodings"
)
@pytest.mark.parametrize(("name", "index"), PLAIN)
def test_prompt_estimate_within_two_percent(name: str, index: int) -> None:
    """With the usage stripped from a recording, the prompt-token estimate is within 2% (or 3 tokens)."""
    interaction = load(name)[index]
    recorded = interaction.recorded_usage()["prompt_tokens"]  # type: ignore[index]
    stripped = strip_usage(interaction)
    client, _ = make_client([stripped])
    method = method_for(client, stripped)
    with capture_spans() as cap:
        method(**call_kwargs(method, stripped))
    attrs = cap.spans[0].attributes
    assert attrs["otelite.usage.estimated"] is True
    estimate = attrs["gen_ai.usage.input_tokens"]
    assert abs(estimate - recorded) <= max(3, 0.02 * recorded), (estimate, recorded)


def test_gzip_recordings_are_stripped_too() -> None:
    """(helper check) stripping works on gzip-encoded recordings."""
    gz = [
        it
        for name in all_cassettes()
        for it in load(name)
        if it.body[:2] == b"\x1f\x8b" and plain_chat(it)
    ]
    assert gz, "the corpus has gzip-encoded plain chat recordings"
    stripped = strip_usage(gz[0])
    assert "usage" not in json.loads(stripped.body)
    assert json.loads(gzip.decompress(gz[0].body))["usage"]
