"""What an instrumented call costs its caller, counted (not timed): span writes and metric records.

A change that moves work back onto the caller's thread (a metric recorded inline,
attributes set one by one, a write per stream chunk) fails here; the timings
themselves are in the benchmark (``nox -s bench``, docs/performance.md).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
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
