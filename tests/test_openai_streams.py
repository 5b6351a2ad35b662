"""The stream lifecycle matrix (D4): every streaming surface ends its span exactly once, however the stream ends."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any, Callable

import openai
import pytest

import fakeopenai
import otelite
from cassettes import http
from fakeopenai import (
    AsyncFrames,
    Frames,
    Recorder,
    chat_chunks,
    completion_chunks,
    response_events,
    sse,
    stream_response,
)
from otelite.testing import Captured, capture_spans

MESSAGES = [{"role": "user", "content": "Say Paris."}]
PIECES = ["Pa", "ri", "s", "."]


# surface -> (frames, how to call create(stream=True), attributes when the stream completed)
def chat_frames(request: Any) -> list[bytes]:
    """Like OpenAI: the usage chunk is sent only when the request asks for it."""
    options = json.loads(request.content).get("stream_options") or {}
    return sse(chat_chunks(PIECES, usage=bool(options.get("include_usage"))))


# surface -> (frames for a request, how to call create(stream=True), attributes when completed)
SURFACES: dict[
    str, tuple[Callable[[Any], list[bytes]], Callable[[Any], Callable[..., Any]], dict[str, Any]]
] = {
    "chat": (
        chat_frames,
        lambda c: (
            lambda **kw: c.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True, **kw
            )
        ),
        {
            "gen_ai.response.finish_reasons": ("stop",),
            "gen_ai.usage.input_tokens": 9,
            "gen_ai.usage.output_tokens": 4,
        },
    ),
    "completions": (
        lambda request: sse(completion_chunks(PIECES)),
        lambda c: (
            lambda **kw: c.completions.create(
                model="gpt-3.5-turbo-instruct", prompt="Say Paris.", stream=True, **kw
            )
        ),
        {"gen_ai.response.finish_reasons": ("length",)},
    ),
    "responses": (
        lambda request: sse(response_events(PIECES), done=False, named=True),
        lambda c: (
            lambda **kw: c.responses.create(
                model="gpt-4.1-mini", input="Say Paris.", stream=True, **kw
            )
        ),
        {
            "gen_ai.response.finish_reasons": ("stop",),
            "gen_ai.usage.input_tokens": 20,
            "gen_ai.usage.output_tokens": 6,
        },
    ),
}


pytestmark = pytest.mark.usefixtures("openai_instrumented")


def make(surface: str, is_async: bool, **frames_kw: Any) -> Callable[..., Any]:
    frames, call, _ = SURFACES[surface]
    body_cls = AsyncFrames if is_async else Frames
    handler = Recorder(lambda request: stream_response(body_cls(frames(request), **frames_kw)))
    transport = http.MockTransport(handler)
    if is_async:
        c: Any = openai.AsyncOpenAI(
            api_key="sk-x", max_retries=0, http_client=http.AsyncClient(transport=transport)
        )
    else:
        c = openai.OpenAI(
            api_key="sk-x", max_retries=0, http_client=http.Client(transport=transport)
        )
    return call(c)


def only_span(cap: Captured) -> Any:
    """Exactly one span was recorded (so it ended exactly once)."""
    spans = cap.spans
    assert len(spans) == 1, [s.name for s in spans]
    assert spans[0].end_time is not None
    return spans[0]


SURFACE_NAMES = list(SURFACES)


@pytest.mark.parametrize("surface", SURFACE_NAMES)
def test_exhausted_sync(surface: str) -> None:
    """Iterated to the end: the caller's chunks are those of an uninstrumented client; full usage on the span."""
    otelite.uninstrument_openai()
    plain = [c.model_dump(warnings=False) for c in make(surface, False)()]
    otelite.instrument_openai()
    with capture_spans() as cap:
        stream = make(surface, False)()
        assert isinstance(stream, openai.Stream)
        assert stream.response.status_code == 200  # the proxy passes attributes through
        assert stream.response.headers["content-type"] == "text/event-stream"
        got = [c.model_dump(warnings=False) for c in stream]
    assert got == plain
    span = only_span(cap)
    assert span.status.status_code.name == "UNSET"
    for key, value in SURFACES[surface][2].items():
        assert span.attributes[key] == value, key
    assert span.attributes["gen_ai.request.stream"] is True
    assert span.attributes["gen_ai.response.time_to_first_chunk"] > 0


@pytest.mark.parametrize("surface", SURFACE_NAMES)
def test_exhausted_async(surface: str) -> None:
    """The same for the async client."""

    async def main() -> list[Any]:
        stream = await make(surface, True)()
        assert isinstance(stream, openai.AsyncStream)
        return [c async for c in stream]

    with capture_spans() as cap:
        chunks = asyncio.run(main())
    assert len(chunks) >= len(PIECES)
    span = only_span(cap)
    for key, value in SURFACES[surface][2].items():
        assert span.attributes[key] == value, key


@pytest.mark.parametrize("surface", SURFACE_NAMES)
def test_break_then_garbage_collected(surface: str) -> None:
    """Broken out of and dropped: the span ends at collection, with the output seen so far."""
    with capture_spans(capture_content=True) as cap:
        stream = make(surface, False)()
        for i, _ in enumerate(stream):
            if i == 3:  # the first text has arrived, the end has not
                break
        assert cap.spans == []
        del stream
        gc.collect()
        span = only_span(cap)
    assert span.status.status_code.name == "UNSET"
    assert "error.type" not in span.attributes
    # Leaving early is not an error: no finish reason was seen, and none is invented.
    assert "gen_ai.response.finish_reasons" not in span.attributes
    assert '"Pa' in span.attributes["gen_ai.output.messages"]


@pytest.mark.parametrize("surface", SURFACE_NAMES)
@pytest.mark.parametrize("when", ["in the loop", "at the loop's end"])
def test_async_break_then_garbage_collected(surface: str, when: str) -> None:
    """The same for the async client: the span ends once the loop has closed the abandoned
    iteration, whether the task goes on or the event loop ends first."""

    async def main() -> None:
        stream = await make(surface, True)()
        i = 0
        async for _ in stream:
            if i == 3:
                break
            i += 1
        assert cap.spans == []
        del stream
        gc.collect()
        if when == "in the loop":
            for _ in range(3):
                await asyncio.sleep(0)
            gc.collect()
            assert len(cap.spans) == 1

    with capture_spans(capture_content=True) as cap:
        asyncio.run(main())
        gc.collect()
        span = only_span(cap)
    assert span.status.status_code.name == "UNSET"
    assert "error.type" not in span.attributes
    assert "gen_ai.response.finish_reasons" not in span.attributes
    assert '"Pa' in span.attributes["gen_ai.output.messages"]


@pytest.mark.parametrize("surface", SURFACE_NAMES)
def test_async_loop_next_and_loop_again(surface: str) -> None:
    """An async loop left early, then anext(), then a second loop: each chunk reaches the
    caller once, in order; the span ends once, when the stream is exhausted, with it all."""

    async def chunks(instrumented: bool) -> tuple[list[Any], Any]:
        stream = await make(surface, True)()
        got = []
        async for chunk in stream:
            got.append(chunk.model_dump(warnings=False))
            if len(got) == 2:
                break
        got.append((await stream.__anext__()).model_dump(warnings=False))
        if instrumented:
            assert cap.spans == []
        got += [c.model_dump(warnings=False) async for c in stream]
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()
        async for _ in stream:  # exhausted: nothing more, and the span is not ended again
            raise AssertionError("a chunk after the end")
        return got, stream

    otelite.uninstrument_openai()
    plain, _ = asyncio.run(chunks(False))
    otelite.instrument_openai()
    with capture_spans(capture_content=True) as cap:
        # The stream is kept: its span ended when it was exhausted, not when it was collected.
        got, _kept = asyncio.run(chunks(True))
        span = only_span(cap)
    assert got == plain
    for key, value in SURFACES[surface][2].items():
        assert span.attributes[key] == value, key


@pytest.mark.parametrize("surface", SURFACE_NAMES)
def test_loop_next_and_loop_again(surface: str) -> None:
    """A loop left early, then next(), then a second loop: each chunk reaches the caller once,
    in order, and is recorded once; the span ends when the stream is exhausted, with it all."""
    otelite.uninstrument_openai()
    plain = [c.model_dump(warnings=False) for c in make(surface, False)()]
    otelite.instrument_openai()
    with capture_spans(capture_content=True) as cap:
        stream = make(surface, False)()
        got = []
        for chunk in stream:
            got.append(chunk.model_dump(warnings=False))
            if len(got) == 2:
                break
        got.append(next(stream).model_dump(warnings=False))
        assert cap.spans == []
        got += [c.model_dump(warnings=False) for c in stream]
        span = only_span(cap)
        with pytest.raises(StopIteration):
            next(stream)
        for _ in stream:  # exhausted: nothing more, and the span is not ended again
            raise AssertionError("a chunk after the end")
    assert got == plain
    assert len(cap.spans) == 1
    for key, value in SURFACES[surface][2].items():
        assert span.attributes[key] == value, key
    assert "Paris." in "".join(
        part["content"]
        for message in json.loads(span.attributes["gen_ai.output.messages"])
        for part in message["parts"]
        if part["type"] == "text"
    )


@pytest.mark.parametrize("surface", SURFACE_NAMES)
def test_close_and_context_exit(surface: str) -> None:
    """close() and leaving a `with` block each end the span once; closing again changes nothing."""
    with capture_spans() as cap:
        stream = make(surface, False)()
        next(iter(stream))
        stream.close()
        stream.close()
        only_span(cap)
        cap.clear()
        with make(surface, False)() as stream2:
            next(iter(stream2))
        only_span(cap)


def consume_failing(surface: str, is_async: bool) -> BaseException:
    """Iterate a stream whose connection drops after two frames; return what was raised."""

    async def consume_async() -> None:
        async for _ in await make(surface, True, fail_after=2)():
            pass

    try:
        if is_async:
            asyncio.run(consume_async())
        else:
            for _ in make(surface, False, fail_after=2)():
                pass
    except Exception as exc:
        return exc
    raise AssertionError("the stream did not fail")


@pytest.mark.parametrize("surface", SURFACE_NAMES)
@pytest.mark.parametrize("is_async", [False, True])
def test_error_mid_stream(surface: str, is_async: bool) -> None:
    """A connection dropped mid-stream reaches the caller as without otelite; the span ends with ERROR."""
    otelite.uninstrument_openai()
    plain = consume_failing(surface, is_async)
    otelite.instrument_openai()
    with capture_spans() as cap:
        got = consume_failing(surface, is_async)
    assert type(got) is type(plain)
    assert str(got) == str(plain)
    span = only_span(cap)
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == f"{type(got).__module__}.{type(got).__qualname__}"


@pytest.mark.parametrize("surface", SURFACE_NAMES)
def test_cancelled_task(surface: str) -> None:
    """Cancelling the consuming task ends the span (with CancelledError) and the task is cancelled."""

    async def main() -> None:
        async def consume() -> None:
            async for _ in await make(surface, True, delay=0.05)():
                pass

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.12)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with capture_spans() as cap:
        asyncio.run(main())
    span = only_span(cap)
    assert span.attributes["error.type"].endswith("CancelledError")


@pytest.mark.parametrize("surface", SURFACE_NAMES)
def test_async_close_and_context_exit(surface: str) -> None:
    """await close() and `async with` end the span once."""

    async def main(cap: Captured) -> None:
        stream = await make(surface, True)()
        await stream.__anext__()
        await stream.close()
        only_span(cap)
        cap.clear()
        async with await make(surface, True)() as stream2:
            await stream2.__anext__()
        only_span(cap)

    with capture_spans() as cap:
        asyncio.run(main(cap))


def resource_of(surface: str, c: Any) -> Any:
    return {"chat": c.chat.completions, "completions": c.completions, "responses": c.responses}[
        surface
    ]


def raw_kwargs(surface: str) -> dict[str, Any]:
    return {
        "chat": {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True},
        "completions": {"model": "gpt-3.5-turbo-instruct", "prompt": "Say Paris.", "stream": True},
        "responses": {"model": "gpt-4.1-mini", "input": "Say Paris.", "stream": True},
    }[surface]


def clients(surface: str) -> tuple[Any, Any]:
    frames = SURFACES[surface][0]
    sync_t = http.MockTransport(lambda r: stream_response(Frames(frames(r))))
    async_t = http.MockTransport(lambda r: stream_response(AsyncFrames(frames(r))))
    return (
        openai.OpenAI(api_key="sk-x", max_retries=0, http_client=http.Client(transport=sync_t)),
        openai.AsyncOpenAI(
            api_key="sk-x", max_retries=0, http_client=http.AsyncClient(transport=async_t)
        ),
    )


def check_raw_span(surface: str, span: Any) -> None:
    """Raw-response calls are never given stream_options (the caller reads the raw body):
    a chat stream then carries no usage, so it is estimated; the Responses API reports it."""
    expected = dict(SURFACES[surface][2])
    if surface == "chat":
        assert span.attributes["otelite.usage.estimated"] is True
        expected = {"gen_ai.response.finish_reasons": ("stop",)}
    for key, value in expected.items():
        assert span.attributes[key] == value, key


@pytest.mark.parametrize("surface", SURFACE_NAMES)
def test_with_raw_response(surface: str) -> None:
    """with_raw_response: parse() gives the (proxied) stream; the span carries the stream's usage."""
    sync_client, async_client = clients(surface)
    with capture_spans() as cap:
        raw = resource_of(surface, sync_client).with_raw_response.create(**raw_kwargs(surface))
        assert raw.headers["content-type"] == "text/event-stream"
        stream = raw.parse()
        assert isinstance(stream, openai.Stream)
        assert raw.parse() is stream
        list(stream)
        check_raw_span(surface, only_span(cap))
        cap.clear()

        async def main() -> None:
            raw = await resource_of(surface, async_client).with_raw_response.create(
                **raw_kwargs(surface)
            )
            [c async for c in raw.parse()]

        asyncio.run(main())
        only_span(cap)


@pytest.mark.parametrize("surface", SURFACE_NAMES)
def test_with_streaming_response(surface: str) -> None:
    """with_streaming_response: the span ends when the parsed stream ends, or when the block exits."""
    sync_client, async_client = clients(surface)
    with capture_spans() as cap:
        with resource_of(surface, sync_client).with_streaming_response.create(
            **raw_kwargs(surface)
        ) as response:
            list(response.parse())
        check_raw_span(surface, only_span(cap))
        cap.clear()
        with resource_of(surface, sync_client).with_streaming_response.create(
            **raw_kwargs(surface)
        ):
            pass  # never parsed: the span still ends at exit
        only_span(cap)
        cap.clear()

        async def main() -> None:
            async with resource_of(surface, async_client).with_streaming_response.create(
                **raw_kwargs(surface)
            ) as response:
                [c async for c in await response.parse()]

        asyncio.run(main())
        only_span(cap)


def test_chat_stream_helper() -> None:
    """client.chat.completions.stream() (the helper) records one span with usage."""
    sync_client, _ = clients("chat")
    with capture_spans() as cap:
        # The helper moved from client.beta.chat.completions to client.chat.completions in openai 1.9x.
        helper = (
            getattr(sync_client.chat.completions, "stream", None)
            or sync_client.beta.chat.completions.stream
        )
        with helper(model="gpt-4o-mini", messages=MESSAGES) as stream:
            text = "".join(e.delta for e in stream if e.type == "content.delta")
    assert text == "Paris."
    span = only_span(cap)
    assert span.attributes["gen_ai.usage.output_tokens"] == 4


def test_responses_stream_helper() -> None:
    """client.responses.stream() (the helper) records one span with usage."""
    sync_client, _ = clients("responses")
    with capture_spans() as cap:
        with sync_client.responses.stream(model="gpt-4.1-mini", input="Say Paris.") as stream:
            final = stream.get_final_response()
    assert final.output_text == "Paris."
    span = only_span(cap)
    assert span.attributes["gen_ai.usage.input_tokens"] == 20


@pytest.mark.parametrize("stop_after", [None, 100])
def test_long_stream_read_in_batches(stop_after: Any) -> None:
    """Chunks are read in batches after the caller got them: a stream longer than a batch
    gives the same span as it would chunk by chunk, whether it is read to the end or left
    part-way (the chunks waiting in an unfinished batch are read when the span ends)."""
    from otelite._llm import _streams

    pieces = [f"w{i} " for i in range(3 * _streams.BATCH + 5)]
    frames = chat_chunks(pieces)
    frames[0]["model"] = ""  # Azure's first chunk names no model
    frames[70]["system_fingerprint"] = "fp_early"
    frames[-2]["system_fingerprint"] = "fp_late"
    handler = Recorder(lambda request: stream_response(Frames(sse(frames))))
    with capture_spans(capture_content=True) as cap:
        stream = fakeopenai.client(handler).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        seen = []
        for chunk in stream:
            seen.append(chunk)
            if stop_after is not None and len(seen) == stop_after:
                stream.close()
                break
        span = only_span(cap)
    attrs = dict(span.attributes)
    output = json.loads(attrs.pop("gen_ai.output.messages"))
    attrs.pop("gen_ai.input.messages")
    if stop_after is None:
        # every chunk but the usage-only one otelite asked for reached the caller
        assert len(seen) == len(pieces) + 1
        assert output == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "".join(pieces)}],
                "finish_reason": "stop",
            }
        ]
        assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
        assert attrs["openai.response.system_fingerprint"] == "fp_late"
        assert attrs["gen_ai.usage.input_tokens"] == 9
        assert attrs["gen_ai.usage.output_tokens"] == len(pieces)
        assert "otelite.usage.estimated" not in attrs
    else:
        assert output == [
            {"role": "assistant", "parts": [{"type": "text", "content": "".join(pieces[:100])}]}
        ]
        assert "gen_ai.response.finish_reasons" not in attrs
        assert attrs["openai.response.system_fingerprint"] == "fp_early"
        assert attrs["otelite.usage.estimated"] is True
    assert attrs["gen_ai.response.id"] == "chatcmpl-s"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert span.status.status_code.name == "UNSET"


@pytest.mark.usefixtures("contained_errors")
def test_failing_batch_read_never_reaches_the_caller(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A batch of chunks otelite cannot read: the caller still gets every chunk, the span
    still ends once, and the failure is logged once."""
    from otelite._integrations.openai import _chat
    from otelite._llm import _streams

    def broken(self: Any, chunks: Any) -> None:
        raise RuntimeError("unreadable batch")

    monkeypatch.setattr(_chat.ChatAccumulator, "add_many", broken)
    pieces = [f"w{i} " for i in range(2 * _streams.BATCH + 3)]
    handler = Recorder(lambda request: stream_response(Frames(sse(chat_chunks(pieces)))))
    with caplog.at_level("WARNING", logger="otelite"), capture_spans() as cap:
        stream = fakeopenai.client(handler).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        texts = [c.choices[0].delta.content for c in stream if c.choices]
        span = only_span(cap)
    assert "".join(t or "" for t in texts) == "".join(pieces)
    assert span.status.status_code.name == "UNSET"
    assert span.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    logged = [r.getMessage() for r in caplog.records if "internal error" in r.getMessage()]
    assert logged == [
        "otelite: internal error in reading a stream chunk (the application is unaffected; "
        "further errors here are not logged)"
    ]


class _HidingUsage:
    """A batched accumulator that hides the chunk with usage and no choices, whatever its shape."""

    hides = True

    def __init__(self) -> None:
        self.read: list[Any] = []
        self.asked: list[Any] = []

    def add_many(self, chunks: Any) -> None:
        self.read.extend(chunks)

    def hidden(self, chunk: Any) -> bool:
        self.asked.append(chunk)
        usage = chunk.get("usage") if isinstance(chunk, dict) else chunk.usage
        choices = chunk["choices"] if isinstance(chunk, dict) else chunk.choices
        return usage is not None and not choices

    def outcome(self, failed: bool) -> Any:
        from otelite._llm import Outcome

        return Outcome({})


@pytest.mark.parametrize("shape", ["openai models", "dicts"])
def test_only_a_chunk_with_usage_is_asked_whether_it_is_hidden(shape: str) -> None:
    """The proxy hides the usage-only chunk otelite asked for; an openai chunk without usage
    is passed on without asking, any other shape is asked about every chunk."""
    from openai._models import construct_type
    from openai.types.chat import ChatCompletionChunk

    from otelite._llm import _streams

    frames = chat_chunks(PIECES, usage=True)
    chunks = (
        [construct_type(type_=ChatCompletionChunk, value=f) for f in frames]
        if shape == "openai models"
        else [dict(f) for f in frames]
    )
    accumulator = _HidingUsage()
    recorder = _streams.StreamRecorder(None, accumulator)
    seen = list(_streams.SyncStreamProxy(iter(chunks), recorder))
    assert seen == chunks[:-1]
    assert accumulator.read == chunks
    assert accumulator.asked == (chunks[-1:] if shape == "openai models" else chunks)
    assert len(recorder.arrivals) == len(chunks)
