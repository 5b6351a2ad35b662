"""otelite benchmarks: overhead per instrumented call, import time, memory. Writes docs/performance.md.

Run with `nox -s bench`; `-- --overhead` prints only the side-by-side table, `-- --memory`
only the memory cases, `-- --quick` fewer calls (nothing written). Every LLM call goes
through the real openai client over an in-process mock transport that returns pre-built
bytes, so the numbers are the client's own cost plus what instrumentation adds.

Overhead is measured against two references on the same provider:
* the same call with no instrumentation (the baseline), and
* the "floor": the same call inside one plain OpenTelemetry span that sets the
  same attributes by hand — the least any instrumentation could cost;
and side by side with the official OpenAI instrumentation when it is installed
(the bench session installs it; it is never a dependency of otelite).
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Callable, Optional

import openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

import otelite

ROOT = Path(__file__).resolve().parent.parent
http: Any = sys.modules[openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0]]
QUICK = "--quick" in sys.argv
REPEATS = 3 if QUICK else 5
# The side-by-side overhead table: rounds of interleaved blocks (see compare()).
ROUNDS = 10 if QUICK else 40
BLOCK = 100 if QUICK else 200
ISOLATED_BLOCK = 500 if QUICK else 2000
MEMORY_CALLS = 4000 if QUICK else 20000
MESSAGES = [{"role": "user", "content": "Capital of France?"}]


class DropExporter(SpanExporter):
    """Receives batches and drops them (export cost out of the picture, batching kept)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def chat_body() -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Paris."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        }
    ).encode()


def stream_body(chunks: int = 50) -> bytes:
    base = {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
    }
    frames = [
        {**base, "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}]}
        for i in range(chunks - 2)
    ]
    frames.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    frames.append(
        {
            **base,
            "choices": [],
            "usage": {"prompt_tokens": 12, "completion_tokens": 48, "total_tokens": 60},
        }
    )
    return b"".join(f"data: {json.dumps(f)}\n\n".encode() for f in frames) + b"data: [DONE]\n\n"


def embeddings_body() -> bytes:
    return json.dumps(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.1] * 16}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 4, "total_tokens": 4},
        }
    ).encode()


BODIES = {"chat": chat_body(), "stream": stream_body(), "embeddings": embeddings_body()}


def handler(request: Any) -> Any:
    path = request.url.path
    if path.endswith("/embeddings"):
        return http.Response(
            200, content=BODIES["embeddings"], headers={"content-type": "application/json"}
        )
    if b'"stream": true' in request.content or b'"stream":true' in request.content:
        return http.Response(
            200, content=BODIES["stream"], headers={"content-type": "text/event-stream"}
        )
    return http.Response(200, content=BODIES["chat"], headers={"content-type": "application/json"})


SYNC = openai.OpenAI(
    api_key="sk-bench",
    max_retries=0,
    http_client=http.Client(transport=http.MockTransport(handler)),
)
ASYNC = openai.AsyncOpenAI(
    api_key="sk-bench",
    max_retries=0,
    http_client=http.AsyncClient(transport=http.MockTransport(handler)),
)


def chat() -> Any:
    return SYNC.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0)


def stream() -> Any:
    return list(
        SYNC.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )


def embeddings() -> Any:
    return SYNC.embeddings.create(model="text-embedding-3-small", input="hello")


async def achat() -> Any:
    return await ASYNC.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, temperature=0
    )


async def astream() -> Any:
    return [
        chunk
        async for chunk in await ASYNC.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    ]


CASES: dict[str, tuple[Callable[[], Any], bool]] = {
    "sync chat": (chat, False),
    "async chat": (achat, True),
    "embeddings": (embeddings, False),
    "50-chunk stream": (stream, False),
    "50-chunk stream, async": (astream, True),
}
TARGETS = {
    "sync chat": 1.3,
    "async chat": 1.3,
    "embeddings": 1.3,
    "50-chunk stream": 2.0,
    "50-chunk stream, async": 2.0,
}


class Times:
    """Per-call times of one timed loop, in microseconds."""

    __slots__ = ("caller", "process", "wall")

    def __init__(self, caller: float, process: float, wall: float) -> None:
        self.caller = caller  # CPU time of the calling thread: what the caller pays
        self.process = process  # CPU time of every thread, background recording included
        self.wall = wall


def timed(fn: Callable[[], Any], is_async: bool, calls: int) -> Times:
    """Per-call times over ``calls`` calls.

    The process CPU time includes recording what the loop left queued (otelite records
    metrics on a background thread), so no work is left out of it.
    """
    gc.collect()
    from otelite import _metrics

    if is_async:

        async def loop() -> None:
            for _ in range(calls):
                await fn()

        runner = asyncio.new_event_loop()
        try:
            start = (time.thread_time(), time.process_time(), time.perf_counter())
            runner.run_until_complete(loop())
            caller, wall = time.thread_time(), time.perf_counter()
            _metrics.drain()
            process = time.process_time()
        finally:
            runner.run_until_complete(runner.shutdown_asyncgens())
            runner.close()
    else:
        start = (time.thread_time(), time.process_time(), time.perf_counter())
        for _ in range(calls):
            fn()
        caller, wall = time.thread_time(), time.perf_counter()
        _metrics.drain()
        process = time.process_time()
    return Times(
        (caller - start[0]) / calls * 1e6,
        (process - start[1]) / calls * 1e6,
        (wall - start[2]) / calls * 1e6,
    )


def compare(
    variants: dict[str, tuple[Callable[[], Any], Callable[[], None]]], is_async: bool, calls: int
) -> dict[str, Times]:
    """Per-call times of each variant, paired with the uninstrumented run of the same round.

    ``ROUNDS`` rounds; in each, every variant runs one block of ``calls`` calls, in an order
    rotated from round to round. The baseline's time is the median of its blocks; each other
    variant's is that plus the median, over rounds, of its block minus the baseline's block
    of the same round. A slow moment of a shared machine hits one round's blocks alike and
    cancels out of the difference; the median drops the rounds it hit unevenly.
    """
    names = list(variants)
    got: dict[str, list[Times]] = {name: [] for name in names}
    for round_ in range(ROUNDS):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            fn, setup = variants[name]
            setup()
            timed(fn, is_async, max(calls // 10, 5))  # warm up after switching
            got[name].append(timed(fn, is_async, calls))
    base = got["baseline"]

    def median(values: Iterable[float]) -> float:
        return statistics.median(list(values))

    base_median = Times(
        median(t.caller for t in base),
        median(t.process for t in base),
        median(t.wall for t in base),
    )
    out = {"baseline": base_median}
    for name in names:
        if name == "baseline":
            continue
        pairs = list(zip(got[name], base))
        out[name] = Times(
            base_median.caller + median(t.caller - b.caller for t, b in pairs),
            base_median.process + median(t.process - b.process for t, b in pairs),
            base_median.wall + median(t.wall - b.wall for t, b in pairs),
        )
    return out


def floor_wrapper(
    fn: Callable[[], Any],
    is_async: bool,
    tracer: Any,
    name: str,
    start_attrs: dict[str, Any],
    end_attrs: dict[str, Any],
) -> Callable[[], Any]:
    """The same call inside one plain span with the same attributes set by hand."""
    if is_async:

        async def afloor() -> Any:
            span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=start_attrs)
            result = await fn()
            span.set_attributes(end_attrs)
            span.end()
            return result

        return afloor

    def floor() -> Any:
        span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=start_attrs)
        result = fn()
        span.set_attributes(end_attrs)
        span.end()
        return result

    return floor


def attributes_of(
    fn: Callable[[], Any], is_async: bool
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The span name and attributes otelite records for this call (start-time and end-time sets)."""
    from otelite.testing import capture_spans

    with capture_spans() as cap:
        asyncio.run(fn()) if is_async else fn()
    span = cap.spans[0]
    attrs = dict(span.attributes or {})
    start_keys = (
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "server.address",
        "server.port",
    )
    start = {k: v for k, v in attrs.items() if k in start_keys or k.startswith("gen_ai.request.")}
    end = {k: v for k, v in attrs.items() if k not in start}
    return span.name, start, end


def _ratio(overhead: float, floor: float) -> float:
    """overhead ÷ floor overhead; NaN when the floor is lost in noise (not above 1 µs)."""
    return overhead / floor if floor > 1.0 else float("nan")


def official_instrumentor() -> Any:
    """The official OpenAI instrumentation (opentelemetry-instrumentation-openai-v2), if installed."""
    try:
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    except ImportError:
        return None
    return OpenAIInstrumentor()


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in (
        "openai",
        "opentelemetry-sdk",
        "opentelemetry-instrumentation-openai-v2",
        "opentelemetry-util-genai",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _rows(label: str, times: dict[str, Times]) -> list[dict[str, Any]]:
    """Table rows of one case: each instrumentation's overhead against the floor's."""
    base, floor = times["baseline"], times["floor"]
    rows = []
    for variant, got in times.items():
        if variant in ("baseline", "floor"):
            continue
        rows.append(
            {
                "case": label,
                "variant": variant,
                "baseline_us": base.caller,
                "floor_overhead_us": floor.caller - base.caller,
                "overhead_us": got.caller - base.caller,
                "ratio": _ratio(got.caller - base.caller, floor.caller - base.caller),
                "process_overhead_us": got.process - base.process,
                "process_ratio": _ratio(got.process - base.process, floor.process - base.process),
                "target": TARGETS.get(label) if variant == "otelite" else None,
            }
        )
    return rows


def overhead() -> list[dict[str, Any]]:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])

    def configure(**options: Any) -> None:
        otelite.configure(
            tracer_provider=provider, meter_provider=meters, local_store=False, **options
        )

    configure()
    tracer = provider.get_tracer("bench")
    official = official_instrumentor()
    state = {"official": False}

    def plain() -> None:
        otelite.uninstrument_openai()
        if state["official"]:
            official.uninstrument()
            state["official"] = False

    def use_official() -> None:
        plain()
        official.instrument(tracer_provider=provider, meter_provider=meters)
        state["official"] = True

    def use_otelite(**options: Any) -> Callable[[], None]:
        def setup() -> None:
            plain()
            configure(**options)
            otelite.instrument_openai()

        return setup

    from otelite.evals import checks

    built_in = [
        checks.empty(),
        checks.refusal(),
        checks.truncated(),
        checks.error(),
        checks.invalid_json(),
        checks.pii(),
        checks.slow(60.0),
    ]
    rows = []
    for label, (fn, is_async) in CASES.items():
        otelite.instrument_openai()
        name, start_attrs, end_attrs = attributes_of(fn, is_async)
        plain()
        floor_fn = floor_wrapper(fn, is_async, tracer, name, start_attrs, end_attrs)
        variants: dict[str, tuple[Callable[[], Any], Callable[[], None]]] = {
            "baseline": (fn, plain),
            "floor": (floor_fn, plain),
        }
        if official is not None:
            variants["official"] = (fn, use_official)
        variants["otelite"] = (fn, use_otelite())
        if label == "sync chat":
            variants["otelite, content captured"] = (fn, use_otelite(capture_content=True))
            variants["otelite, 7 built-in checks"] = (fn, use_otelite(checks=built_in))
        times = compare(variants, is_async, BLOCK // 5 if "stream" in label else BLOCK)
        plain()
        configure()
        rows.extend(_rows(label, times))
    otelite.shutdown()
    return rows


class _PrebuiltStream(openai.Stream):  # type: ignore[type-arg]
    """An openai ``Stream`` over chunks parsed beforehand: no HTTP, no SSE parsing."""

    def __init__(self, chunks: list[Any]) -> None:  # no super().__init__: nothing to read
        self._chunks = iter(chunks)

    def __iter__(self) -> Any:
        return self

    def __next__(self) -> Any:
        return next(self._chunks)

    def close(self) -> None:
        pass


class _PrebuiltAsyncStream(openai.AsyncStream):  # type: ignore[type-arg]
    def __init__(self, chunks: list[Any]) -> None:
        self._chunks = iter(chunks)

    def __aiter__(self) -> Any:
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self._chunks)
        except StopIteration:
            raise StopAsyncIteration from None

    async def close(self) -> None:
        pass


def _installed_wrapper(resource: Any) -> Callable[..., Any]:
    """The wrapper function an instrumentation installed on ``resource``'s ``create`` (wrapt)."""
    installed = type(resource).__dict__["create"]
    wrapper: Callable[..., Any] = installed._self_wrapper
    return wrapper


def _nothing() -> None:
    pass


_MONITOR_TOOL = 5  # a sys.monitoring tool id no debugger or profiler uses during the benchmark


def python_work(
    fn: Callable[[], Any], warm_up: int = 300, calls: int = 100
) -> Optional[tuple[int, int]]:
    """Python bytecode instructions and function calls per call of ``fn`` on this thread.

    Counted, not timed: the same on every run and every machine, so a ratio between
    variants is free of the noise the timed tables carry. C code (dict operations, the
    interpreter's own builtins) is not counted. ``None`` before Python 3.12 (no
    ``sys.monitoring``). ``warm_up`` calls first, so that caches (and the API-change
    baseline's first 100 fully fingerprinted calls) are behind it; then the mean over
    ``calls`` calls, so that work done once every so many calls (the batch span
    processor waking its exporter) counts for its share.
    """
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None:
        return None
    for _ in range(warm_up):
        fn()
    counts = [0, 0]
    # sys.monitoring sees every thread: only this one's work is counted (otelite's metric
    # recording and the batch span processor run on threads of their own).
    caller = threading.get_ident()
    ident = threading.get_ident

    def instruction(code: Any, offset: int) -> None:
        if ident() == caller:
            counts[0] += 1

    def start(code: Any, offset: int) -> None:
        if ident() == caller:
            counts[1] += 1

    events = monitoring.events
    monitoring.use_tool_id(_MONITOR_TOOL, "otelite-bench")
    try:
        monitoring.register_callback(_MONITOR_TOOL, events.INSTRUCTION, instruction)
        monitoring.register_callback(_MONITOR_TOOL, events.PY_START, start)
        monitoring.set_events(_MONITOR_TOOL, events.INSTRUCTION | events.PY_START)
        try:
            for _ in range(calls):
                fn()
        finally:
            monitoring.set_events(_MONITOR_TOOL, 0)
    finally:
        monitoring.free_tool_id(_MONITOR_TOOL)
    return round(counts[0] / calls), round(counts[1] / calls)


def _through(
    wrapper: Optional[Callable[..., Any]],
    fake: Callable[..., Any],
    resource: Any,
    kwargs: dict[str, Any],
    is_async: bool,
    streams: bool,
) -> Callable[[], Any]:
    """One call of ``fake`` (through ``wrapper`` when given), a stream read to its end."""

    def call() -> Any:
        if wrapper is None:
            return fake(**kwargs)
        return wrapper(fake, resource, (), dict(kwargs))

    if is_async:

        async def acall() -> Any:
            got = await call()
            return [c async for c in got] if streams else got

        return acall

    def scall() -> Any:
        got = call()
        return list(got) if streams else got

    return scall


def isolated() -> list[dict[str, Any]]:
    """The same comparison without HTTP: each instrumentation's own wrapper around a
    function that returns a response (or a stream of chunks) parsed beforehand.

    The transport table above is the call as an application makes it, but its ~1 ms of
    HTTP and parsing per call carries more noise, on a shared machine, than the overhead
    measured. Here the wrappers installed by ``instrument()`` are called directly, so the
    whole of each instrumentation's work is measured and nothing else.
    """
    from openai.types.chat import ChatCompletionChunk

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    otelite.configure(tracer_provider=provider, meter_provider=meters, local_store=False)
    tracer = provider.get_tracer("bench")
    chat_response = chat()
    embedding_response = embeddings()
    body = BODIES["stream"].decode()
    chunks = [
        ChatCompletionChunk.model_validate(json.loads(line[len("data: ") :]))
        for line in body.split("\n\n")
        if line.startswith("data: {")
    ]
    stream_kwargs = {
        "model": "gpt-4o-mini",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    chat_kwargs = {"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": 0}

    def sync_chat(**_: Any) -> Any:
        return chat_response

    async def async_chat(**_: Any) -> Any:
        return chat_response

    def sync_embeddings(**_: Any) -> Any:
        return embedding_response

    def sync_stream(**_: Any) -> Any:
        return _PrebuiltStream(chunks)

    async def async_stream(**_: Any) -> Any:
        return _PrebuiltAsyncStream(chunks)

    # case -> (the resource patched, the function standing in for the client, arguments,
    # is async, is a stream, the transport case whose span attributes the floor sets)
    cases: dict[str, tuple[Any, Callable[..., Any], dict[str, Any], bool, bool, Any]] = {
        "sync chat": (SYNC.chat.completions, sync_chat, chat_kwargs, False, False, chat),
        "async chat": (ASYNC.chat.completions, async_chat, chat_kwargs, True, False, achat),
        "embeddings": (
            SYNC.embeddings,
            sync_embeddings,
            {"model": "text-embedding-3-small", "input": "hello"},
            False,
            False,
            embeddings,
        ),
        "50-chunk stream": (
            SYNC.chat.completions,
            sync_stream,
            stream_kwargs,
            False,
            True,
            stream,
        ),
        "50-chunk stream, async": (
            ASYNC.chat.completions,
            async_stream,
            stream_kwargs,
            True,
            True,
            astream,
        ),
    }
    official = official_instrumentor()
    rows = []
    for label, (resource, fake, kwargs, is_async, streams, transport) in cases.items():
        otelite.instrument_openai()
        ours = _installed_wrapper(resource)
        name, start_attrs, end_attrs = attributes_of(transport, is_async)
        otelite.uninstrument_openai()
        theirs = None
        if official is not None:
            official.instrument(tracer_provider=provider, meter_provider=meters)
            theirs = _installed_wrapper(resource)
            official.uninstrument()

        through = functools.partial(
            _through,
            fake=fake,
            resource=resource,
            kwargs=kwargs,
            is_async=is_async,
            streams=streams,
        )
        base = through(None)
        variants: dict[str, tuple[Callable[[], Any], Callable[[], None]]] = {
            "baseline": (base, _nothing),
            "floor": (
                floor_wrapper(base, is_async, tracer, name, start_attrs, end_attrs),
                _nothing,
            ),
        }
        if theirs is not None:
            variants["official"] = (through(theirs), _nothing)
        variants["otelite"] = (through(ours), _nothing)
        times = compare(variants, is_async, ISOLATED_BLOCK // 5 if streams else ISOLATED_BLOCK)
        case_rows = _rows(label, times)
        if not is_async:  # the async wrappers run the same reading code
            work = {name: python_work(fn) for name, (fn, _) in variants.items()}
            base_work, floor_work = work["baseline"], work["floor"]
            for row in case_rows:
                got = work[row["variant"]]
                if got is not None and base_work is not None and floor_work is not None:
                    row["instructions"] = got[0] - base_work[0]
                    row["python_calls"] = got[1] - base_work[1]
                    row["floor_instructions"] = floor_work[0] - base_work[0]
                    row["floor_python_calls"] = floor_work[1] - base_work[1]
        rows.extend(case_rows)
    otelite.shutdown()
    return rows


def work_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The counted table: Python instructions and calls per call, over the uninstrumented call."""
    names = {"official": "official openai-v2", "otelite": "otelite"}
    lines = [
        "| case | instrumentation | floor: instructions (calls) | instructions (calls) "
        "| × floor, instructions |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        if "instructions" not in r:
            continue
        lines.append(
            f"| {r['case']} | {names[r['variant']]} "
            f"| {r['floor_instructions']:,} ({r['floor_python_calls']}) "
            f"| {r['instructions']:,} ({r['python_calls']}) "
            f"| {r['instructions'] / r['floor_instructions']:.2f}× |"
        )
    return lines


def heuristics() -> dict[str, float]:
    """Time per call of the heuristic evaluators on a 400-character answer."""
    from otelite import evals

    answer = ("The Eiffel Tower is in Paris, France, and was completed in 1889. " * 7)[:400]
    reference = answer.replace("1889", "1887")
    cases = {
        "exact_match": evals.exact_match(),
        "similarity (ratio)": evals.similarity(),
        "similarity (token_f1)": evals.similarity(method="token_f1"),
        "contains": evals.contains(["paris", "tower"], mode="all"),
        "regex": evals.regex(r"\b1[89]\d\d\b"),
        "is_json": evals.is_json(),
        "length": evals.length(max=500),
    }
    out = {}
    for name, evaluator in cases.items():
        calls = 2000
        best = float("inf")
        for _ in range(REPEATS):
            start = time.perf_counter()
            for _ in range(calls):
                evaluator(input="q", output=answer, expected=reference)
            best = min(best, (time.perf_counter() - start) / calls * 1e6)
        out[name] = best
    return out


def memory() -> dict[str, float]:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    otelite.configure(
        tracer_provider=provider,
        meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]),
        local_store=False,
    )
    otelite.instrument_openai()
    half = MEMORY_CALLS // 2
    for _ in range(500):
        chat()
    # The batch queue and the metrics queue are drained before each reading: retained
    # memory, not export or recording backlog (up to a thousand calls' measurements wait
    # for the metrics thread).
    from otelite import _metrics

    def settle() -> None:
        provider.force_flush()
        _metrics.drain()
        gc.collect()

    settle()
    tracemalloc.start()
    for _ in range(half):
        chat()
    settle()
    at_half = tracemalloc.get_traced_memory()[0]
    for _ in range(half):
        chat()
    settle()
    at_end = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    otelite.uninstrument_openai()
    otelite.shutdown()
    return {
        "calls": MEMORY_CALLS,
        "at_half_kib": at_half / 1024,
        "at_end_kib": at_end / 1024,
        "growth_kib": (at_end - at_half) / 1024,
    }


INSTRUMENT_ONLY_STEPS = (3000, 6000, 9000) if QUICK else (10000, 20000, 30000)


def _rss_kib() -> float:
    """Resident set size now (Linux), in KiB; 0 where /proc is not available."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024


def _instrument_only_memory_here() -> dict[str, Any]:
    """In a fresh interpreter: the app sets only a TracerProvider and calls instrument_openai()."""
    from opentelemetry import trace

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    trace.set_tracer_provider(provider)
    otelite.instrument_openai()
    for _ in range(500):
        chat()
    provider.force_flush()
    gc.collect()
    tracemalloc.start()
    done = 0
    points = []
    for step in INSTRUMENT_ONLY_STEPS:
        for _ in range(step - done):
            chat()
        done = step
        provider.force_flush()
        gc.collect()
        proxies = sum(1 for o in gc.get_objects() if type(o).__name__ == "_ProxyHistogram")
        points.append(
            {
                "calls": step,
                "traced_kib": tracemalloc.get_traced_memory()[0] / 1024,
                "rss_kib": _rss_kib(),
                "proxy_histograms": proxies,
            }
        )
    tracemalloc.stop()
    return {"points": points}


def instrument_only_memory() -> dict[str, Any]:
    """Memory over many chat calls with instrument_openai() and no configure() (own process:
    the global providers must be untouched)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL", "OTELITE"))}
    args = [sys.executable, __file__, "--instrument-only-memory"] + (["--quick"] if QUICK else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def memory_lines(mem: dict[str, float], bare: dict[str, Any]) -> list[str]:
    """The Memory section of the report."""
    points = bare["points"]
    first, last = points[0], points[-1]
    per_call = (last["traced_kib"] - first["traced_kib"]) * 1024 / (last["calls"] - first["calls"])
    lines = [
        "## Memory",
        "",
        f"With `configure()`: {mem['calls']} instrumented chat calls; traced Python memory after "
        f"{mem['calls'] // 2} calls:",
        f"{mem['at_half_kib']:.0f} KiB, after {mem['calls']}: {mem['at_end_kib']:.0f} KiB "
        f"(growth {mem['growth_kib']:+.0f} KiB).",
        "",
        "Instrument-only path (`instrument_openai()` and no `configure()`, as under",
        "`opentelemetry-instrument` or in an app that sets up only a `TracerProvider`; no meter",
        "provider, so metrics go to the API's proxy meter). Measured in its own interpreter after",
        "500 warm-up calls:",
        "",
        "| chat calls | traced Python memory | RSS | live proxy histograms |",
        "|---:|---:|---:|---:|",
        *(
            f"| {p['calls']:,} | {p['traced_kib']:.0f} KiB | {p['rss_kib'] / 1024:.1f} MB "
            f"| {p['proxy_histograms']} |"
            for p in points
        ),
        "",
        f"Growth from {first['calls']:,} to {last['calls']:,} calls: {per_call:+.1f} bytes per call "
        "of traced memory. (RSS includes tracemalloc's own bookkeeping.)",
    ]
    return lines


def prompts() -> dict[str, float]:
    """A cached get() + compile() of a 1 KB chat prompt."""
    import tempfile

    from otelite.prompts import PromptRegistry

    registry = PromptRegistry(tempfile.mkdtemp())
    system = ("You answer questions about observability using only the context. " * 16)[:970]
    messages = [
        {"role": "system", "content": system + "\nContext:\n{{context}}"},
        {"role": "user", "content": "Question: {{question}}\nAnswer in {{style}} style."},
    ]
    registry.push("bench", messages=messages, labels=["production"])
    size = sum(len(m["content"]) for m in messages)
    registry.get("bench").compile(context="c", question="q", style="s")
    best = float("inf")
    calls = 20000
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(calls):
            registry.get("bench").compile(context="ctx", question="What is OTLP?", style="terse")
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return {"bytes": float(size), "us": best}


def import_ms(code: str) -> tuple[float, float]:
    """Milliseconds ``import openai`` and then ``code`` take in a fresh interpreter.

    Returns (the whole, the part after ``import openai``). Bytecode caches are used
    (``PYTHONDONTWRITEBYTECODE`` is dropped): users' installs have them, and compiling
    the sources is not what is measured.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL", "OTELITE", "PYTHONDONTWRITEBYTECODE"))
    }
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time; t = time.perf_counter(); import openai; u = time.perf_counter(); "
            f"{code}; e = time.perf_counter(); print(e - t, e - u)",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    whole, added = out.stdout.split()
    return float(whole) * 1000, float(added) * 1000


IMPORTS = {
    "openai": "pass",
    "otelite": "import otelite; otelite.instrument_openai()",
    "official": "from opentelemetry.instrumentation.openai_v2 import "
    "OpenAIInstrumentor; OpenAIInstrumentor().instrument()",
}


def imports(official: bool) -> dict[str, dict[str, float]]:
    """Import time over ``import openai``: interleaved fresh interpreters; median, min and max.

    Each round runs every variant once, in turn, so a slow moment of the machine hits
    them alike. Two figures per variant: the difference of the medians of the whole
    (``import openai`` plus the variant, against ``import openai`` alone), and the
    median, min and max of the time the variant's own lines took after ``import openai``
    in each interpreter (the same quantity without the noise of openai's own import).
    """
    runs = 8 if QUICK else 21
    variants = {k: v for k, v in IMPORTS.items() if official or k != "official"}
    for code in variants.values():
        import_ms(code)  # bytecode caches are written first
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    for _ in range(runs):
        for key, code in variants.items():
            got[key].append(import_ms(code))
    base = [whole for whole, _ in got["openai"]]
    out = {"openai": {"median_ms": statistics.median(base), "runs": float(runs)}}
    for key in variants:
        if key == "openai":
            continue
        added = [part for _, part in got[key]]
        out[key] = {
            "whole_added_median_ms": statistics.median(w for w, _ in got[key])
            - statistics.median(base),
            "added_median_ms": statistics.median(added),
            "added_min_ms": min(added),
            "added_max_ms": max(added),
        }
    return out


def _rss_here(variant: str) -> dict[str, Any]:
    """In a fresh interpreter: RSS after 10,000 and 20,000 sync chat calls with ``variant``."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter()))
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    if variant == "otelite":
        otelite.configure(tracer_provider=provider, meter_provider=meters, local_store=False)
        otelite.instrument_openai()
    elif variant == "official":
        official_instrumentor().instrument(tracer_provider=provider, meter_provider=meters)
    points = []
    done = 0
    for step in (10000, 20000) if not QUICK else (2000, 4000):
        for _ in range(step - done):
            chat()
        done = step
        provider.force_flush()
        from otelite import _metrics

        _metrics.drain()
        gc.collect()
        points.append({"calls": step, "rss_mb": _rss_kib() / 1024})
    return {"variant": variant, "points": points}


def rss(official: bool) -> list[dict[str, Any]]:
    """RSS per variant, each in its own interpreter."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL", "OTELITE"))}
    out = []
    for variant in ("uninstrumented", "official", "otelite"):
        if variant == "official" and not official:
            continue
        args = [sys.executable, __file__, "--rss", variant] + (["--quick"] if QUICK else [])
        done = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
        out.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


def overhead_lines(rows: list[dict[str, Any]], found: dict[str, str]) -> list[str]:
    """The side-by-side table: overhead on the caller's thread, and on all threads."""
    names = {
        "official": "official openai-v2",
        "otelite": "otelite",
        "otelite, content captured": "otelite, content captured",
        "otelite, 7 built-in checks": "otelite, 7 built-in online checks",
    }
    lines = [
        "| case | instrumentation | uninstrumented µs/call | floor overhead µs | overhead µs "
        "| × floor | target | × floor, all threads |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        target = r["target"]
        verdict = ""
        if target is not None:
            verdict = f"≤ {target}× " + ("met" if r["ratio"] <= target else "**missed**")
            if r["ratio"] != r["ratio"]:  # NaN: the floor was lost in noise
                verdict = f"≤ {target}×: not measurable in this run"
        lines.append(
            f"| {r['case']} | {names[r['variant']]} | {r['baseline_us']:.1f} "
            f"| {r['floor_overhead_us']:.1f} | {r['overhead_us']:.1f} | {r['ratio']:.2f}× "
            f"| {verdict} | {r['process_ratio']:.2f}× |"
        )
    return lines


def write_report(
    rows: list[dict[str, Any]],
    alone: list[dict[str, Any]],
    mem: dict[str, float],
    imp: dict[str, dict[str, float]],
    prompt: dict[str, float],
    heur: dict[str, float],
    bare: dict[str, Any],
    rss_rows: list[dict[str, Any]],
    found: dict[str, str],
) -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    lines = [
        "# Performance",
        "",
        "Measured by `nox -s bench` (`benchmarks/run.py`), which installs the official",
        "OpenAI instrumentation (`opentelemetry-instrumentation-openai-v2`) next to otelite, for",
        "this benchmark only. The real `openai` client talks to an in-process mock transport",
        "returning pre-built bytes. Every variant runs in one process against the same",
        "`TracerProvider` + `BatchSpanProcessor` + an exporter that drops the spans, and the same",
        "`MeterProvider` with an in-memory reader (metrics really recorded). Content capture off, no",
        "online checks, unless the row says otherwise.",
        "",
        "* *uninstrumented*: the call with no instrumentation;",
        "* *floor*: the same call inside one plain OpenTelemetry span that sets, by hand, the",
        "  attributes otelite records, and no metrics: the least any instrumentation could cost;",
        "* *overhead*: time per call above the uninstrumented call, **on the calling thread**",
        "  (its CPU time: what the application waits for); *× floor* divides it by the floor's",
        "  overhead;",
        "* *× floor, all threads*: the same ratio with the CPU time of every thread, including",
        "  otelite's background metric recording and the batch span processor, and the recording",
        "  left queued when the loop ends: the cost to the machine rather than to the caller.",
        "",
        f"* Date: {datetime.date.today().isoformat()}; load average at the end "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
        f"* Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        f"* Python {platform.python_version()}, "
        + ", ".join(f"{k} {v}" for k, v in found.items())
        + f", otelite {otelite.__version__}",
        f"* {ROUNDS} rounds; in each, every variant runs a block of {BLOCK} calls ({BLOCK // 5} for"
        " streams), in an order rotated each round; a variant's overhead is the median over",
        "  rounds of its block minus the uninstrumented block of the same round (paired, so a",
        "  slow moment of the machine cancels out)",
        "* Command: `nox -s bench` (`python benchmarks/run.py` in an environment with",
        "  `opentelemetry-instrumentation-openai-v2==2.4b0` and `opentelemetry-util-genai==1.1b0`)",
        "",
        *overhead_lines(rows, found),
        "",
        "Targets: at most 1.3× the floor on the caller's thread for chat (sync and async) and",
        "embeddings, 2× for the 50-chunk streams; no target with content capture or checks on.",
        "",
        "### The same, without HTTP",
        "",
        "Each instrumentation's own wrapper (the one `instrument()` installs on `create`),",
        "called directly around a function that returns the same response, or a stream of",
        "the same 50 chunks, parsed beforehand; the floor wraps that function in its span.",
        "The table above includes about 1 ms of HTTP and parsing per call, which on a shared",
        "machine varies by more than the overhead measured; here only the instrumentations'",
        f"own work is left ({ROUNDS} paired rounds of {ISOLATED_BLOCK} calls, "
        f"{ISOLATED_BLOCK // 5} for streams).",
        "",
        *overhead_lines(alone, found),
        "",
        "### Python work per call, counted",
        "",
        "The same wrapper-only calls (sync cases), counted instead of timed: the Python",
        "bytecode instructions and function calls one call executes on the caller's thread",
        "over the uninstrumented call (`sys.monitoring`: the mean of 100 calls after 300 warm-up",
        "calls). The counts",
        "are the same on every run and machine; C code (dictionary operations, builtins) is not",
        "counted, so the timed ratios above are the measure, and these say where they come from.",
        "",
        *work_lines(alone),
        "",
        *memory_lines(mem, bare),
        "",
        "RSS of a fresh interpreter making sync chat calls (each variant in its own process):",
        "",
        "| instrumentation | "
        + " | ".join(f"after {p['calls']:,} calls" for p in rss_rows[0]["points"])
        + " |",
        "|---|" + "---:|" * len(rss_rows[0]["points"]),
        *(
            f"| {r['variant']} | " + " | ".join(f"{p['rss_mb']:.1f} MB" for p in r["points"]) + " |"
            for r in rss_rows
        ),
        "",
        "## Import time",
        "",
        f"Added to `import openai` ({imp['openai']['median_ms']:.1f} ms), in "
        f"{imp['openai']['runs']:.0f} interleaved fresh interpreters with bytecode caches. "
        "*Added* is the time of the lines below, run right after `import openai` in the "
        "same interpreter: its median, min and max. *Whole* is the median of `import openai` "
        "plus those lines, minus the median of `import openai` alone (the same quantity, "
        "with the noise of openai's own import in it). Target for otelite: at most 40 ms.",
        "",
        "| after `import openai` | added ms (median) | min | max | whole, difference of medians |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| `{IMPORTS[key]}` | **{v['added_median_ms']:.1f}** | {v['added_min_ms']:.1f} "
            f"| {v['added_max_ms']:.1f} | {v['whole_added_median_ms']:.1f} |"
            for key, v in imp.items()
            if key != "openai"
        ),
        "",
        "## Prompt registry",
        "",
        f"A cached `get()` + `compile()` of a {prompt['bytes']:.0f}-character chat prompt: "
        f"**{prompt['us']:.1f} µs** (target: at most 20 µs).",
        "",
        "## Evaluation",
        "",
        "Online checks: see the row *otelite, 7 built-in online checks* above (empty, refusal,",
        "truncated, error, invalid_json, pii, slow; all passing).",
        "",
        "Heuristic evaluators on a 400-character answer (µs per call):",
        "",
        "| evaluator | µs |",
        "|---|---:|",
        *(f"| {name} | {us:.1f} |" for name, us in heur.items()),
        "",
        "The character ratio (difflib) compares every pair of positions, so its cost grows with",
        'the square of the length; for long answers prefer `method="token_f1"`.',
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    if "--instrument-only-memory" in sys.argv:
        print(json.dumps(_instrument_only_memory_here()))
        return
    if "--rss" in sys.argv:
        print(json.dumps(_rss_here(sys.argv[sys.argv.index("--rss") + 1])))
        return
    if "--memory" in sys.argv:
        # Only the memory cases; the report section is printed, docs are not rewritten.
        print("\n".join(memory_lines(memory(), instrument_only_memory())))
        return
    found = versions()
    has_official = official_instrumentor() is not None
    rows = overhead()
    alone = isolated()
    if "--overhead" in sys.argv:  # only the side-by-side tables, printed
        print("\n".join(overhead_lines(rows, found)))
        print()
        print("\n".join(overhead_lines(alone, found)))
        print()
        print("\n".join(work_lines(alone)))
        return
    mem = memory()
    bare = instrument_only_memory()
    rss_rows = rss(has_official)
    imp = imports(has_official)
    prompt = prompts()
    heur = heuristics()
    report = write_report(rows, alone, mem, imp, prompt, heur, bare, rss_rows, found)
    print(report)
    if not QUICK:
        path = ROOT / "docs" / "performance.md"
        # Keep the sections written by the other benchmarks (the store, the web view), and
        # the hand-written account of where the time goes.
        previous = path.read_text() if path.exists() else ""
        kept = ""
        for marker in ("\n## Where the time goes\n", "\n## Local store at scale\n"):
            if marker in previous:
                kept = previous[previous.index(marker) :]
                break
        path.write_text(report.rstrip("\n") + "\n" + kept)


if __name__ == "__main__":
    main()
