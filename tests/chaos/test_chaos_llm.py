"""Chaos: LLM calls under a hanging tokenizer, early stream exits and client retries."""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import otelite
from cassettes import http
from fakeopenai import (
    AsyncFrames,
    Frames,
    Recorder,
    chat_chunks,
    chat_completion,
    json_response,
    response_events,
    sse,
    stream_response,
)
from otelite import _tokens
from otelite.testing import Captured, capture_spans
from otelite.tokens import count_tokens

TESTS = Path(__file__).resolve().parents[1]
MESSAGES = [{"role": "user", "content": "Say Paris."}]
PIECES = ["Pa", "ri", "s", "."]
# A local OpenAI-compatible server (vLLM's port): it sends no usage in streams.
VLLM = "http://127.0.0.1:8000/v1"
KEY = "sk-test-0123456789abcdefghij"

needs_cache = pytest.mark.skipif(
    not os.environ.get("TIKTOKEN_CACHE_DIR"),
    reason="tiktoken encodings need TIKTOKEN_CACHE_DIR offline",
)


pytestmark = pytest.mark.usefixtures("openai_instrumented")


@pytest.fixture(autouse=True)
def _no_encoding_loaded() -> Iterator[None]:
    """Each test starts (and ends) with no encoding loaded; autouse, so it runs before instrumenting."""
    _tokens._reset_for_tests()
    yield
    _tokens._reset_for_tests()


def make_client(handler: Any, *, is_async: bool = False, **kw: Any) -> Any:
    """A real openai client whose requests go to ``handler`` (no network)."""
    kw.setdefault("max_retries", 0)
    kw.setdefault("base_url", VLLM)
    if is_async:
        return openai.AsyncOpenAI(
            api_key=KEY, http_client=http.AsyncClient(transport=http.MockTransport(handler)), **kw
        )
    return openai.OpenAI(
        api_key=KEY, http_client=http.Client(transport=http.MockTransport(handler)), **kw
    )


def no_usage_stream(is_async: bool = False) -> Any:
    """A handler answering every chat request with a stream that carries no usage."""
    body = AsyncFrames if is_async else Frames
    return Recorder(lambda request: stream_response(body(sse(chat_chunks(PIECES, usage=False)))))


def only_span(cap: Captured) -> Any:
    """Exactly one finished span was recorded."""
    spans = cap.spans
    assert len(spans) == 1, [s.name for s in spans]
    assert spans[0].end_time is not None
    return spans[0]


# Chars/4 estimate of MESSAGES: 3 (priming) + 3 (message) + "user" (1) + "Say Paris." (3);
# of the output "Paris.": 2.
CHARS_INPUT = 3 + 3 + math.ceil(len("user") / 4) + math.ceil(len("Say Paris.") / 4)
CHARS_OUTPUT = math.ceil(len("Paris.") / 4)


# --- the tokenizer never loads on the caller's thread --------------------------------------


def warm_up_openai() -> None:
    """One uninstrumented call first: openai's own first-call imports take seconds on some versions."""
    otelite.uninstrument_openai()
    try:
        for _ in make_client(no_usage_stream()).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        ):
            pass
    finally:
        otelite.instrument_openai()


def test_hanging_tokenizer_load_does_not_block_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """An encoding load that hangs (blackholed egress) never delays the caller; tokens are a marked chars/4 estimate."""
    import tiktoken

    release = threading.Event()
    callers: list[str] = []

    def hanging(name: str) -> Any:
        callers.append(threading.current_thread().name)
        release.wait(30)  # what requests.get without a timeout does on a blackholed network
        raise ConnectionError("blackholed")

    monkeypatch.setattr(tiktoken, "get_encoding", hanging)
    warm_up_openai()
    try:
        with capture_spans() as cap:
            started = time.monotonic()
            stream = make_client(no_usage_stream()).chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True
            )
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            elapsed = time.monotonic() - started
        assert text == "Paris."
        assert elapsed < 3, f"the caller waited {elapsed:.1f}s for the tokenizer"
        span = only_span(cap)
        attrs = dict(span.attributes or {})
        assert span.status.status_code.name == "UNSET"
        assert attrs["gen_ai.provider.name"] == "vllm"
        assert attrs["gen_ai.usage.input_tokens"] == CHARS_INPUT
        assert attrs["gen_ai.usage.output_tokens"] == CHARS_OUTPUT
        assert attrs["otelite.usage.estimated"] is True
        assert attrs["otelite.usage.estimate_method"] == "chars/4"
        assert "error.type" not in attrs
        # The load was attempted, once, and not on the caller's thread.
        assert callers
        assert threading.main_thread().name not in callers
    finally:
        release.set()


BLACKHOLE_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import openai
    import otelite
    from cassettes import http
    from fakeopenai import Frames, chat_chunks, sse, stream_response
    from otelite.testing import capture_spans

    handler = lambda request: stream_response(Frames(sse(chat_chunks(["Pa", "ris."], usage=False))))
    client = openai.OpenAI(
        api_key="sk-test-0123456789abcdefghij",
        base_url="http://127.0.0.1:8000/v1",
        max_retries=0,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )
    # openai's own first-call imports take seconds on some versions: not what is measured.
    for _ in client.chat.completions.create(model="m", messages=[], stream=True):
        pass
    otelite.instrument_openai()
    with capture_spans() as cap:
        started = time.monotonic()
        for _ in client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Say Paris."}], stream=True
        ):
            pass
        elapsed = time.monotonic() - started
    print(json.dumps({"elapsed": elapsed, "attributes": dict(cap.spans[0].attributes)}))
    sys.stdout.flush()
    """
)


def test_blackholed_download_in_a_fresh_process(tmp_path: Path) -> None:
    """No cached encoding and a download that never answers: the first stream still completes at once."""
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(16)  # accepts connections, never answers: a blackholed proxy
    env = {
        **os.environ,
        "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty-cache"),
        "HTTPS_PROXY": f"http://127.0.0.1:{blackhole.getsockname()[1]}",
        "HTTP_PROXY": f"http://127.0.0.1:{blackhole.getsockname()[1]}",
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    for name in ("NO_PROXY", "no_proxy", "https_proxy", "http_proxy"):
        env.pop(name, None)
    try:
        done = subprocess.run(
            [sys.executable, "-c", BLACKHOLE_CHILD],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        blackhole.close()
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["elapsed"] < 3, result
    attrs = result["attributes"]
    assert attrs["otelite.usage.estimated"] is True
    assert attrs["otelite.usage.estimate_method"] == "chars/4"
    assert attrs["gen_ai.usage.input_tokens"] == CHARS_INPUT
    assert attrs["gen_ai.usage.output_tokens"] == math.ceil(len("Paris.") / 4)


class TimedEncoding:
    """A real tiktoken encoding that notes when otelite first counts with it."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.first_ns: list[int] = []
        self.first_perf: list[float] = []

    def encode(self, text: str, **kw: Any) -> Any:
        if not self.first_ns:
            self.first_ns.append(time.time_ns())
            self.first_perf.append(time.perf_counter())
        return self.real.encode(text, **kw)


@needs_cache
@pytest.mark.parametrize("is_async", [False, True])
def test_loaded_encoding_counts_exactly_and_after_the_clock_stops(
    monkeypatch: pytest.MonkeyPatch, is_async: bool
) -> None:
    """Once loaded, counts are exact tiktoken counts; the span's end and the duration metric precede counting."""
    import tiktoken

    real = tiktoken.get_encoding("o200k_base")
    timed = TimedEncoding(real)
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: timed)
    assert _tokens.prefetch(["o200k_base"]) == {"o200k_base": "ok"}

    async def consume_async() -> None:
        stream = await make_client(no_usage_stream(True), is_async=True).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        async for _ in stream:
            pass

    with capture_spans() as cap:
        before = time.perf_counter()
        if is_async:
            asyncio.run(consume_async())
        else:
            for _ in make_client(no_usage_stream()).chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True
            ):
                pass
    span = only_span(cap)
    attrs = dict(span.attributes or {})
    expected_input = 3 + 3 + len(real.encode("user")) + len(real.encode("Say Paris."))
    assert attrs["gen_ai.usage.input_tokens"] == expected_input
    assert attrs["gen_ai.usage.output_tokens"] == len(real.encode("Paris."))
    assert attrs["otelite.usage.estimated"] is True  # counted by otelite, not sent by the server
    assert attrs["otelite.usage.estimate_method"] == "tiktoken"
    assert timed.first_ns, "the loaded encoding was used"
    assert span.end_time <= timed.first_ns[0]
    (duration,) = cap.metrics()["gen_ai.client.operation.duration"]
    assert duration["count"] == 1
    assert duration["max"] <= timed.first_perf[0] - before


@needs_cache
def test_first_stream_starts_the_load_in_the_background() -> None:
    """A stream that will need counting starts loading its encoding; later calls count exactly."""
    with capture_spans() as cap:
        for _ in make_client(no_usage_stream()).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        ):
            pass
        assert _tokens.wait_loaded("o200k_base", 30)
        cap.clear()
        for _ in make_client(no_usage_stream()).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        ):
            pass
    attrs = only_span(cap).attributes
    assert attrs["otelite.usage.estimate_method"] == "tiktoken"
    assert attrs["gen_ai.usage.output_tokens"] == 2  # "Paris." in o200k_base


def test_public_count_tokens_wait_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """count_tokens waits for a hanging load at most `wait` seconds, then estimates (marked)."""
    import tiktoken

    release = threading.Event()
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: release.wait(30))
    try:
        started = time.monotonic()
        n = count_tokens("x" * 41, "gpt-4o", wait=0.2)
        assert time.monotonic() - started < 3
        assert (int(n), n.estimated, n.encoding) == (11, True, None)
    finally:
        release.set()


# --- leaving a stream early is not an error ------------------------------------------------


def chat_call(c: Any) -> Any:
    return c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)


def responses_call(c: Any) -> Any:
    return c.responses.create(model="gpt-4.1-mini", input="Say Paris.", stream=True)


SURFACES = {
    "chat": (lambda: sse(chat_chunks(PIECES, usage=False)), chat_call),
    "responses": (lambda: sse(response_events(PIECES), done=False, named=True), responses_call),
}


def surface_client(surface: str, is_async: bool, **frames_kw: Any) -> Any:
    frames, _ = SURFACES[surface]
    body = AsyncFrames if is_async else Frames
    handler = Recorder(lambda request: stream_response(body(frames(), **frames_kw)))
    return make_client(handler, is_async=is_async, base_url="https://api.openai.com/v1")


def assert_not_an_error(span: Any) -> None:
    """A stream left early: UNSET status, no error.type, no invented finish reason."""
    attrs = dict(span.attributes or {})
    assert span.status.status_code.name == "UNSET", span.status
    assert "error.type" not in attrs
    assert not span.events
    assert "gen_ai.response.finish_reasons" not in attrs, attrs.get(
        "gen_ai.response.finish_reasons"
    )
    assert attrs["otelite.usage.estimated"] is True
    assert attrs["gen_ai.usage.output_tokens"] >= 1  # "Pa" was seen


@pytest.mark.parametrize("surface", list(SURFACES))
@pytest.mark.parametrize("how", ["break-gc", "break-close", "break-with"])
def test_break_out_of_sync_stream(surface: str, how: str) -> None:
    """break (then GC, close() or leaving `with`) before the end records no error and no 'error' finish reason."""
    _, call = SURFACES[surface]
    with capture_spans(capture_content=True) as cap:
        stream = call(surface_client(surface, False))
        if how == "break-with":
            with stream:
                for i, _ in enumerate(stream):
                    if i == 3:
                        break
        else:
            for i, _ in enumerate(stream):
                if i == 3:
                    break
            if how == "break-close":
                stream.close()
            del stream
            gc.collect()
    span = only_span(cap)
    assert_not_an_error(span)
    output = json.loads(span.attributes["gen_ai.output.messages"])
    assert output[0]["parts"][0]["content"].startswith("Pa")
    assert "finish_reason" not in output[0]


@pytest.mark.parametrize("surface", list(SURFACES))
@pytest.mark.parametrize("how", ["break-close", "break-with", "break-gc"])
def test_break_out_of_async_stream(surface: str, how: str) -> None:
    """The same for the async client: break, then await close(), `async with` exit, or GC."""
    _, call = SURFACES[surface]

    async def main() -> None:
        stream = await call(surface_client(surface, True))
        if how == "break-with":
            async with stream:
                i = 0
                async for _ in stream:
                    i += 1
                    if i == 4:
                        break
            return
        i = 0
        async for _ in stream:
            i += 1
            if i == 4:
                break
        if how == "break-close":
            await stream.close()
        del stream
        gc.collect()

    with capture_spans() as cap:
        asyncio.run(main())
        gc.collect()
    assert_not_an_error(only_span(cap))


def test_break_after_the_finish_chunk_keeps_its_reason() -> None:
    """A chat stream left after its finish chunk but before its end records the reason seen."""
    frames = sse(chat_chunks(PIECES, usage=False))
    handler = Recorder(lambda request: stream_response(Frames(frames)))
    with capture_spans() as cap:
        stream = chat_call(make_client(handler))
        for chunk in stream:
            if chunk.choices and chunk.choices[0].finish_reason:
                break
        stream.close()
    span = only_span(cap)
    assert span.status.status_code.name == "UNSET"
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)


@pytest.mark.parametrize("surface", list(SURFACES))
def test_stream_cut_off_by_an_error_is_still_an_error(surface: str) -> None:
    """A connection dropped mid-stream keeps ERROR status and finish reason 'error'."""
    _, call = SURFACES[surface]
    with capture_spans() as cap:
        # httpx's ReadError, or openai's APIConnectionError wrapping it (openai 3.x)
        with pytest.raises(Exception, match=r"connection dropped|Connection error") as raised:
            for _ in call(surface_client(surface, False, fail_after=3)):
                pass
    span = only_span(cap)
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["gen_ai.response.finish_reasons"] == ("error",)
    kind = type(raised.value)
    assert span.attributes["error.type"] == f"{kind.__module__}.{kind.__qualname__}"


# --- client retries are visible ------------------------------------------------------------


def flaky(statuses: list[int], final: Any) -> Recorder:
    """Answers with the given error statuses first (asking for an immediate retry), then ``final``."""
    answers = iter(statuses)

    def respond(request: Any) -> Any:
        status = next(answers, None)
        if status is None:
            return final(request)
        return http.Response(
            status,
            json={"error": {"message": "try again", "type": "server_error"}},
            headers={"retry-after-ms": "1"},
        )

    return Recorder(respond)


@pytest.mark.parametrize("is_async", [False, True])
def test_retried_call_records_resend_count(is_async: bool) -> None:
    """500, 500, 200 with max_retries=2: one span, http.request.resend_count=2, the success attributes."""
    handler = flaky([500, 500], lambda request: json_response(chat_completion()))
    client = make_client(
        handler, is_async=is_async, max_retries=2, base_url="https://api.openai.com/v1"
    )

    async def call_async() -> Any:
        return await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    with capture_spans() as cap:
        if is_async:
            result = asyncio.run(call_async())
        else:
            result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert result.choices[0].message.content == "Paris."
    assert len(handler.requests) == 3
    span = only_span(cap)
    attrs = dict(span.attributes or {})
    assert span.status.status_code.name == "UNSET"
    assert attrs["http.request.resend_count"] == 2
    assert attrs["gen_ai.usage.input_tokens"] == 12
    assert attrs["gen_ai.usage.output_tokens"] == 3
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.response.id"] == "chatcmpl-1"
    assert "error.type" not in attrs


@pytest.mark.parametrize("is_async", [False, True])
def test_retries_exhausted_records_resend_count_and_error(is_async: bool) -> None:
    """500 three times with max_retries=2: the error is raised as usual; the span says 2 resends."""
    handler = flaky([500, 500, 500], lambda request: json_response(chat_completion()))
    client = make_client(
        handler, is_async=is_async, max_retries=2, base_url="https://api.openai.com/v1"
    )

    async def call_async() -> Any:
        return await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    def call() -> Any:
        if is_async:
            return asyncio.run(call_async())
        return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    with capture_spans() as cap:
        with pytest.raises(openai.InternalServerError):
            call()
    span = only_span(cap)
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["http.request.resend_count"] == 2
    assert span.attributes["error.type"] == "openai.InternalServerError"


def test_retried_stream_records_resend_count() -> None:
    """A stream whose first attempt got a 500: resend_count 1 on the stream's span."""
    handler = flaky(
        [500], lambda request: stream_response(Frames(sse(chat_chunks(PIECES, usage=True))))
    )
    client = make_client(handler, max_retries=2, base_url="https://api.openai.com/v1")
    with capture_spans() as cap:
        for _ in chat_call(client):
            pass
    attrs = only_span(cap).attributes
    assert attrs["http.request.resend_count"] == 1
    assert attrs["gen_ai.usage.output_tokens"] == 4


def test_no_retry_no_resend_count() -> None:
    """A call answered at once has no http.request.resend_count (semconv: only when resent)."""
    handler = flaky([], lambda request: json_response(chat_completion()))
    client = make_client(handler, max_retries=2, base_url="https://api.openai.com/v1")
    with capture_spans() as cap:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert "http.request.resend_count" not in only_span(cap).attributes


def test_azure_retries_are_counted_too() -> None:
    """AzureOpenAI builds its requests through its own override: its retries are counted the same way."""
    handler = flaky([503], lambda request: json_response(chat_completion()))
    client = openai.AzureOpenAI(
        api_key="0123456789abcdef0123456789abcdef",
        api_version="2024-10-21",
        azure_endpoint="https://example.openai.azure.com",
        azure_deployment="gpt-4o-mini",
        max_retries=2,
        http_client=http.Client(transport=http.MockTransport(handler)),
    )
    with capture_spans() as cap:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = only_span(cap).attributes
    assert len(handler.requests) == 2
    assert attrs["gen_ai.provider.name"] == "azure.ai.openai"
    assert attrs["http.request.resend_count"] == 1
    assert attrs["gen_ai.usage.input_tokens"] == 12


FORK_CHILD = textwrap.dedent(
    """
    import os, sys, threading, warnings
    import tiktoken
    from otelite import _tokens

    warnings.simplefilter("ignore")  # fork() with a thread running warns on 3.12+
    real, hang = tiktoken.get_encoding, threading.Event()
    tiktoken.get_encoding = lambda name: hang.wait(60)
    _tokens.preload("gpt-4o")  # a load in flight, hanging, when the process forks
    pid = os.fork()
    if pid == 0:
        tiktoken.get_encoding = real
        os._exit(0 if _tokens.wait_loaded("o200k_base", 20) else 3)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status))
    sys.stdout.flush()
    os._exit(0)
    """
)


@needs_cache
@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() only")
def test_forked_child_loads_again() -> None:
    """A child forked while a load was in flight (its thread is not copied) starts its own load."""
    done = subprocess.run(
        [sys.executable, "-c", FORK_CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0", done.stderr
