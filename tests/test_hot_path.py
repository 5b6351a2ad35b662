"""What an instrumented call costs its caller, counted (not timed): span writes and metric records.

A change that moves work back onto the caller's thread (a metric recorded inline,
attributes set one by one, a write per stream chunk) fails here; the timings
themselves are in the benchmark (``nox -s bench``, docs/performance.md).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics import _internal as sdk_metrics
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import Span, Tracer, TracerProvider

import fakeopenai
import otelite
from otelite import _metrics

MESSAGES = [{"role": "user", "content": "Hi"}]
METRIC_KINDS = ("histogram.record", "counter.add")
OURS = ("gen_ai.", "otelite.")  # the instruments otelite records into


def _drain_elsewhere() -> None:
    """Record what is queued, on another thread (as otelite's recording thread does)."""
    drainer = threading.Thread(target=_metrics.drain)
    drainer.start()
    drainer.join()


class Writes:
    """Span writes and metric records, by kind and by whether the caller's thread made them."""

    def __init__(self) -> None:
        self.caller = threading.get_ident()
        self.on_caller: Counter[str] = Counter()
        self.elsewhere: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.keys: dict[str, list[str]] = {}  # the attribute keys of the last write of each kind

    def count(self, kind: str, n: int = 1) -> None:
        with self.lock:
            side = self.on_caller if threading.get_ident() == self.caller else self.elsewhere
            side[kind] += n


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Writes]:
    """Counts every span write and metric record the SDK receives (the SDK still does the work)."""
    seen = Writes()

    def counting(cls: Any, name: str, kind: str, size: Any = None) -> None:
        original = getattr(cls, name)

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            if kind in METRIC_KINDS and not str(getattr(self, "name", "")).startswith(OURS):
                # The SDK's own self-observability counters (otel.sdk.span.started, on
                # opentelemetry-sdk versions that count spans) are not otelite's work.
                return original(self, *args, **kwargs)
            seen.count(kind)
            if size is not None:
                seen.count(kind + " items", size(*args, **kwargs))
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, wrapper)

    def start_keys(name: str, *args: Any, **kwargs: Any) -> int:
        seen.keys["start_span"] = sorted(kwargs.get("attributes") or {})
        return len(kwargs.get("attributes") or {})

    def end_keys(attrs: Any, *args: Any, **kwargs: Any) -> int:
        seen.keys["set_attributes"] = sorted(attrs)
        return len(attrs)

    counting(Tracer, "start_span", "start_span", start_keys)
    counting(Span, "set_attribute", "set_attribute")
    counting(Span, "set_attributes", "set_attributes", end_keys)
    counting(Span, "add_event", "add_event")
    counting(Span, "end", "end")
    counting(sdk_metrics.instrument._Histogram, "record", "histogram.record")
    counting(sdk_metrics.instrument._Counter, "add", "counter.add")
    reader = InMemoryMetricReader()
    otelite.configure(
        tracer_provider=TracerProvider(),
        meter_provider=MeterProvider(metric_readers=[reader]),
        local_store=False,
    )
    otelite.instrument_openai()
    _metrics.drain()
    seen.on_caller.clear()
    seen.elsewhere.clear()
    yield seen
    otelite.uninstrument_openai()
    otelite.shutdown()


def test_one_chat_call_writes_its_span_twice_and_records_no_metric_on_the_caller(
    writes: Writes,
) -> None:
    """One start with the request's attributes, one set_attributes with the response's, no metric inline."""
    client = fakeopenai.client(
        lambda request: fakeopenai.json_response(fakeopenai.chat_completion())
    )
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0)
    assert dict(writes.on_caller) == {
        "start_span": 1,
        "start_span items": 7,
        "set_attributes": 1,
        "set_attributes items": 11,
        "end": 1,
    }
    assert writes.keys == {
        "start_span": [
            "gen_ai.operation.name",
            "gen_ai.provider.name",
            "gen_ai.request.model",
            "gen_ai.request.temperature",
            "openai.api.type",
            "server.address",
            "server.port",
        ],
        "set_attributes": [
            "gen_ai.response.finish_reasons",
            "gen_ai.response.id",
            "gen_ai.response.model",
            "gen_ai.usage.cost",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "otelite.cost.catalog_date",
            "otelite.cost.catalog_version",
            "otelite.cost.estimated",
            "otelite.cost.override",
            "otelite.cost.source",
        ],
    }
    _drain_elsewhere()
    assert dict(writes.elsewhere) == {"histogram.record": 3, "counter.add": 1}


def test_a_stream_writes_nothing_per_chunk_on_the_caller(writes: Writes) -> None:
    """A 20-chunk stream: the same two span writes as one call; its 19 chunk gaps recorded off the caller."""
    pieces = [f"w{i} " for i in range(18)]
    client = fakeopenai.client(
        lambda request: fakeopenai.stream_response(
            fakeopenai.Frames(fakeopenai.sse(fakeopenai.chat_chunks(pieces)))
        )
    )
    chunks = list(
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    )
    assert len(chunks) == 19  # 18 text chunks and the finish chunk; the usage chunk is hidden
    assert writes.on_caller["start_span"] == 1
    assert writes.on_caller["set_attributes"] == 1
    assert writes.on_caller["set_attribute"] == 0
    assert writes.on_caller["add_event"] == 0
    assert writes.on_caller["histogram.record"] == 0
    assert writes.on_caller["counter.add"] == 0
    _drain_elsewhere()
    # duration, input and output tokens, time to first chunk, and one gap per chunk after the first
    assert writes.elsewhere["histogram.record"] == 4 + 19
    assert writes.elsewhere["counter.add"] == 1


# --- the stream chunk reader: openai's models read through __dict__, anything else by field ---

_BASE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1}
_CHUNKS: list[dict[str, Any]] = [
    # Azure's first chunk: empty model, no choices
    {**_BASE, "model": "", "choices": []},
    {
        **_BASE,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_1",
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None},
            {"index": 1, "delta": {"refusal": "No"}, "finish_reason": None},
        ],
    },
    {
        **_BASE,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {"index": 0, "delta": {"content": "lo"}, "finish_reason": None},
            {
                "index": 1,
                "delta": {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get", "arguments": '{"a":'},
                        }
                    ]
                },
                "finish_reason": None,
            },
        ],
    },
    {
        **_BASE,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 1,
                "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]},
                "finish_reason": "tool_calls",
            },
            {"index": 0, "delta": {}, "finish_reason": "stop"},
        ],
    },
    {
        **_BASE,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [],
        "usage": {
            "prompt_tokens": 9,
            "completion_tokens": 7,
            "total_tokens": 16,
            "prompt_tokens_details": {"cached_tokens": 2},
        },
    },
]


def _accumulate(chunks: list[Any]) -> tuple[Any, list[bool]]:
    from otelite._integrations.openai import _chat, _patch

    kwargs = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    client = fakeopenai.client("http://127.0.0.1:9/v1")
    request = _patch.CHAT.request(client.chat.completions, kwargs)
    accumulator = _chat.ChatAccumulator(request, kwargs, True, True)
    hidden = [accumulator.add(chunk) for chunk in chunks]
    return accumulator.outcome(False), hidden


def test_stream_chunks_read_alike_from_openai_models_and_from_plain_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """openai's chunk models take the one-lookup path; plain dicts (and every other shape) the
    field-by-field one; both give the same span attributes, output, text and hidden chunks."""
    from openai.types.chat import ChatCompletionChunk

    from otelite._integrations.openai import _chat

    models = [ChatCompletionChunk.model_validate(c) for c in _CHUNKS]
    generic_reads = []
    real_add_any = _chat.ChatAccumulator._add_any

    def counting(self: Any, chunk: Any) -> bool:
        generic_reads.append(chunk)
        return real_add_any(self, chunk)

    monkeypatch.setattr(_chat.ChatAccumulator, "_add_any", counting)
    fast, fast_hidden = _accumulate(models)
    assert generic_reads == []  # every openai chunk read through its __dict__
    plain, plain_hidden = _accumulate([dict(c) for c in _CHUNKS])
    assert len(generic_reads) == len(_CHUNKS)  # no dict here has every field: read by field

    assert fast.attributes == plain.attributes
    assert fast.attributes == {
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.finish_reasons": ["stop", "tool_calls"],
        "openai.response.service_tier": "default",
        "openai.response.system_fingerprint": "fp_1",
        "gen_ai.usage.input_tokens": 9,
        "gen_ai.usage.output_tokens": 7,
        "gen_ai.usage.cache_read.input_tokens": 2,
    }
    assert fast.output() == plain.output()
    assert fast.output() == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "Hello"}],
            "finish_reason": "stop",
        },
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "No"},
                {"type": "tool_call", "id": "call_1", "name": "get", "arguments": {"a": 1}},
            ],
            "finish_reason": "tool_calls",
        },
    ]
    assert fast.text() == plain.text() == 'HelloNoget{"a":1}'
    assert fast.refused
    assert plain.refused
    assert (fast.input_tokens, fast.output_tokens, fast.cache_read_tokens) == (9, 7, 2)
    # the usage-only chunk otelite asked for is hidden, whatever its shape
    assert fast_hidden == plain_hidden == [False, False, False, False, True]


def _namespace(value: Any, drop: frozenset[str] = frozenset()) -> Any:
    """``value`` as objects with attributes (a client library's own models), without ``drop``."""
    if isinstance(value, dict):
        return SimpleNamespace(
            **{k: _namespace(v, drop) for k, v in value.items() if k not in drop}
        )
    if isinstance(value, list):
        return [_namespace(v, drop) for v in value]
    return value


@pytest.mark.parametrize(
    "shapes",
    [
        "models",  # one batch, each identity field found in C
        "objects without a tier or fingerprint field",  # found chunk by chunk
        "models, dicts and objects mixed",
    ],
)
def test_a_batch_reads_like_one_chunk_at_a_time(shapes: str) -> None:
    """add_many over one batch gives what add gives chunk by chunk: the first id, the last
    real model (Azure's first is empty), tier and fingerprint, whatever the chunks' shapes."""
    from openai.types.chat import ChatCompletionChunk

    from otelite._integrations.openai import _chat, _patch

    models = [ChatCompletionChunk.model_validate(c) for c in _CHUNKS]
    bare = [_namespace(c, frozenset({"service_tier", "system_fingerprint"})) for c in _CHUNKS]
    chunks = {
        "models": models,
        "objects without a tier or fingerprint field": bare,
        "models, dicts and objects mixed": [
            dict(_CHUNKS[0]),
            models[1],
            _namespace(_CHUNKS[2]),
            models[3],
            dict(_CHUNKS[4]),
        ],
    }[shapes]
    kwargs = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    client = fakeopenai.client("http://127.0.0.1:9/v1")
    request = _patch.CHAT.request(client.chat.completions, kwargs)
    one_by_one = _chat.ChatAccumulator(request, kwargs, True, True)
    for chunk in chunks:
        one_by_one.add(chunk)
    batched = _chat.ChatAccumulator(request, kwargs, True, True)
    batched.add_many(chunks)
    got, expected = batched.outcome(False), one_by_one.outcome(False)
    assert got.attributes == expected.attributes
    assert got.output() == expected.output()
    tier_and_fingerprint = (
        {}
        if shapes == "objects without a tier or fingerprint field"
        else {
            "openai.response.service_tier": "default",
            "openai.response.system_fingerprint": "fp_1",
        }
    )
    assert got.attributes == {
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.finish_reasons": ["stop", "tool_calls"],
        **tier_and_fingerprint,
        "gen_ai.usage.input_tokens": 9,
        "gen_ai.usage.output_tokens": 7,
        "gen_ai.usage.cache_read.input_tokens": 2,
    }


def _text_chunks(choices: int) -> list[dict[str, Any]]:
    """A text stream as OpenAI sends it (Azure's empty first chunk included), ``choices`` wide."""

    def piece(index: int, delta: dict[str, Any], reason: Any = None) -> dict[str, Any]:
        return {"index": index, "delta": delta, "finish_reason": reason}

    model = "gpt-4o-mini-2024-07-18"
    chunks: list[dict[str, Any]] = [{**_BASE, "model": "", "choices": []}]
    for text in ("Hel", "", "lo", None):
        chunks.append(
            {
                **_BASE,
                "model": model,
                "choices": [piece(i, {"content": text}) for i in range(choices)],
            }
        )
    chunks.append({**_BASE, "model": model, "choices": [piece(0, {"refusal": "No"})]})
    chunks.append(
        {
            **_BASE,
            "model": model,
            "system_fingerprint": "fp_2",
            "choices": [piece(i, {}, "stop") for i in range(choices)],
        }
    )
    chunks.append(
        {
            **_BASE,
            "model": model,
            "choices": [],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
        }
    )
    return chunks


@pytest.mark.parametrize("choices", [1, 2])
def test_text_batches_read_alike_from_models_and_from_plain_dicts(choices: int) -> None:
    """A batch of openai text chunks (one choice or two) read from the models' ``__dict__``
    gives what the same chunks as plain dicts, read field by field, give."""
    from openai.types.chat import ChatCompletionChunk

    from otelite._integrations.openai import _chat, _patch

    kwargs = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    client = fakeopenai.client("http://127.0.0.1:9/v1")
    request = _patch.CHAT.request(client.chat.completions, kwargs)
    chunks = _text_chunks(choices)
    models = _chat.ChatAccumulator(request, kwargs, True, False)
    models.add_many([ChatCompletionChunk.model_validate(c) for c in chunks])
    plain = _chat.ChatAccumulator(request, kwargs, True, False)
    plain.add_many([dict(c) for c in chunks])
    got, expected = models.outcome(False), plain.outcome(False)
    assert got.attributes == expected.attributes
    assert got.output() == expected.output()
    assert got.text() == expected.text()
    assert got.refused
    assert expected.refused
    assert got.attributes == {
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.finish_reasons": ["stop"] * choices,
        "openai.response.system_fingerprint": "fp_2",
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.usage.output_tokens": 3,
    }
    first = got.output()[0]
    assert first["parts"] == [
        {"type": "text", "content": "Hello"},
        {"type": "text", "content": "No"},
    ]


def _mixed_chunks() -> list[dict[str, Any]]:
    """Two choices taking turns, text with a finish reason in one chunk, a choice without an
    index, tool-call and refusal pieces between text pieces: every way out of the text case."""

    def chunk(*choices: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return {**_BASE, "model": "gpt-4o-mini-2024-07-18", "choices": list(choices), **fields}

    def piece(index: Any, reason: Any = None, **delta: Any) -> dict[str, Any]:
        return {"index": index, "delta": delta, "finish_reason": reason}

    call = {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": '{"a"'}}
    more = {"index": 0, "function": {"arguments": ": 1}"}}
    return [
        chunk(piece(0, content="A0")),
        chunk(piece(1, content="B0")),
        chunk(piece(0, content="A1")),
        chunk(piece(0, content="A2"), piece(1, content="B1")),
        chunk(piece(1, tool_calls=[call])),
        chunk(piece(1, content="B2")),
        chunk(piece(1, tool_calls=[more])),
        chunk(piece(0, refusal="R0")),
        chunk(piece(0, content="A3")),
        chunk(piece(None, content="A4")),
        chunk(piece(0, content="")),
        chunk(piece(0, "length", content="A5")),
        chunk(piece(1, content="B3")),
        chunk(piece(1, "tool_calls")),
        chunk(
            usage={"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14},
            system_fingerprint="fp_3",
        ),
    ]


def _chunk_model(model: Any, event: dict[str, Any]) -> Any:
    """``event`` as the openai client builds a chunk from a stream's event (leniently, without
    validation: Azure's first chunk, a choice without an index)."""
    from openai._models import construct_type

    return construct_type(type_=model, value=event)


def _stream_cassettes() -> list[Any]:
    import cassettes

    found = []
    for name in cassettes.all_cassettes():
        for number, call in enumerate(cassettes.load(name)):
            if call.is_stream and call.status < 400 and call.endpoint == "/chat/completions":
                found.append(pytest.param(call, id=f"{name}#{number}"))
    return found


@pytest.mark.parametrize(
    "chunks",
    [pytest.param(_mixed_chunks, id="mixed")]
    + [
        pytest.param(lambda call=c.values[0]: call.sse_events(), id=c.id)
        for c in _stream_cassettes()
    ],
)
@pytest.mark.parametrize("batch", [64, 1, 3])
def test_stream_chunks_read_alike_from_models_and_from_plain_dicts(chunks: Any, batch: int) -> None:
    """Every recorded chat stream, and one that leaves the text case in every way, give the
    same outcome read from openai's models (the text case read by lookups in their
    ``__dict__``) as read field by field from plain dicts, in batches of any size."""
    from openai.types.chat import ChatCompletionChunk

    from otelite._integrations.openai import _chat, _patch

    events = chunks()
    kwargs = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    client = fakeopenai.client("http://127.0.0.1:9/v1")
    request = _patch.CHAT.request(client.chat.completions, kwargs)
    models = _chat.ChatAccumulator(request, kwargs, True, False)
    plain = _chat.ChatAccumulator(request, kwargs, True, False)
    parsed = [_chunk_model(ChatCompletionChunk, event) for event in events]
    for start in range(0, len(events), batch):
        models.add_many(parsed[start : start + batch])
        plain.add_many([dict(event) for event in events[start : start + batch]])
    got, expected = models.outcome(False), plain.outcome(False)
    assert got.attributes == expected.attributes
    assert got.output() == expected.output()
    assert got.text() == expected.text()
    assert got.refused == expected.refused
    # What the lean path ends a stream from; the usage object itself differs in kind (a
    # model, a dict), and the tokens read from it are compared in the attributes above.
    lean, plain_lean = models.lean_state(), plain.lean_state()
    assert (lean is None) == (plain_lean is None)
    if lean is not None and plain_lean is not None:
        assert lean[:4] + lean[5:] == plain_lean[:4] + plain_lean[5:]
    assert got.output(), "every stream here has output"


def test_mixed_stream_is_read_in_full() -> None:
    """The hand-made stream above, read from openai's models: each choice's text, refusal,
    tool call and reason where they belong."""
    from openai.types.chat import ChatCompletionChunk

    from otelite._integrations.openai import _chat, _patch

    kwargs = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    client = fakeopenai.client("http://127.0.0.1:9/v1")
    request = _patch.CHAT.request(client.chat.completions, kwargs)
    accumulator = _chat.ChatAccumulator(request, kwargs, True, False)
    accumulator.add_many([_chunk_model(ChatCompletionChunk, c) for c in _mixed_chunks()])
    outcome = accumulator.outcome(False)
    assert outcome.attributes == {
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.finish_reasons": ["length", "tool_calls"],
        "openai.response.system_fingerprint": "fp_3",
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.usage.output_tokens": 9,
    }
    assert outcome.output() == [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "A0A1A2A3A4A5"},
                {"type": "text", "content": "R0"},
            ],
            "finish_reason": "length",
        },
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "B0B1B2B3"},
                {"type": "tool_call", "id": "call_1", "name": "f", "arguments": {"a": 1}},
            ],
            "finish_reason": "tool_calls",
        },
    ]


def test_chat_responses_read_alike_from_openai_models_and_from_plain_fields() -> None:
    """A chat completion read through the model's __dict__ gives the same outcome as the
    field-by-field reading of the same response as a plain dict."""
    from openai.types.chat import ChatCompletion

    from otelite._integrations.openai import _chat, _patch

    body = {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_9",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Paris"},
                "finish_reason": "stop",
            },
            {
                "index": 1,
                "message": {"role": "assistant", "content": None, "refusal": "No"},
                "finish_reason": "length",
            },
        ],
        "usage": {
            "prompt_tokens": 11,
            "completion_tokens": 4,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 1, "audio_tokens": 0},
        },
    }
    kwargs = {"model": "gpt-4o-mini", "messages": MESSAGES}
    client = fakeopenai.client("http://127.0.0.1:9/v1")
    request = _patch.CHAT.request(client.chat.completions, kwargs)
    request.provider = "openai"  # as for api.openai.com: the openai.* attributes are read too
    from_model = _chat._chat_outcome(ChatCompletion.model_validate(body), request, kwargs)
    from_dict = _chat._chat_outcome(body, request, kwargs)
    expected = {
        "gen_ai.response.id": "chatcmpl-9",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.finish_reasons": ["stop", "length"],
        "openai.response.service_tier": "default",
        "openai.response.system_fingerprint": "fp_9",
        "gen_ai.usage.input_tokens": 11,
        "gen_ai.usage.output_tokens": 4,
        "gen_ai.usage.cache_read.input_tokens": 3,
        "gen_ai.usage.reasoning.output_tokens": 1,
    }
    assert from_model.attributes == expected
    assert from_dict.attributes == expected
    for outcome in (from_model, from_dict):
        assert outcome.refused
        assert outcome.fingerprint == "fp_9"
        assert outcome.service_tier == "default"
        assert (outcome.input_tokens, outcome.output_tokens, outcome.cache_read_tokens) == (
            11,
            4,
            3,
        )
        assert outcome.text() == "ParisNo"


def test_usage_details_an_older_client_keeps_as_extras_are_read() -> None:
    """Counts are read from the model's __dict__; details an older client does not declare
    (pydantic keeps them as extras, outside __dict__) are still read from the object."""
    import pydantic

    from otelite._llm import Usage

    class OldUsage(pydantic.BaseModel):  # openai 1.66's CompletionUsage: no details fields
        model_config = pydantic.ConfigDict(extra="allow")
        prompt_tokens: int
        completion_tokens: int

    old = OldUsage.model_validate(
        {
            "prompt_tokens": 11,
            "completion_tokens": 4,
            "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 2},
            "completion_tokens_details": {"reasoning_tokens": 1, "audio_tokens": 0},
        }
    )
    assert "prompt_tokens_details" not in old.__dict__  # an extra, as in the old client
    usage = Usage(old, "prompt_tokens", "completion_tokens")
    got = (usage.input, usage.output, usage.cached, usage.audio_in, usage.reasoning)
    assert got == (11, 4, 3, 2, 1)
    assert usage.audio_out == 0
    assert not usage.unreadable


def test_a_name_a_model_does_not_declare_is_read_from_its_extras_without_asking_it() -> None:
    """member() reads a pydantic model's declared fields, properties and extras as getattr
    does, and a name it has nowhere gives None without the model's __getattr__ (which raises
    and catches an AttributeError inside pydantic on every miss: embeddings' usage has no
    output count, their response no fingerprint)."""
    import pydantic

    from otelite._llm import Usage, member

    asked: list[str] = []

    class Counted(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="allow")
        prompt_tokens: int
        total_tokens: int

        @property
        def doubled(self) -> int:
            return self.prompt_tokens * 2

        def __getattr__(self, name: str) -> Any:
            asked.append(name)
            return super().__getattr__(name)  # type: ignore[misc]

    usage = Counted.model_validate({"prompt_tokens": 8, "total_tokens": 8, "note": "extra"})
    assert member(usage, "prompt_tokens") == 8
    assert member(usage, "doubled") == 16
    assert member(usage, "note") == "extra"
    assert member(usage, "completion_tokens") is None
    assert member({"completion_tokens": 3}, "completion_tokens") == 3
    assert member(SimpleNamespace(a=1), "a") == 1
    assert member(SimpleNamespace(a=1), "b") is None
    read = Usage(usage, "prompt_tokens", "completion_tokens")
    assert (read.input, read.output, read.cached, read.reasoning) == (8, None, None, None)
    assert not read.unreadable
    assert asked == []  # never asked for a name it does not have
    assert getattr(usage, "completion_tokens", None) is None
    assert asked == ["completion_tokens"]  # (what getattr would have done)
