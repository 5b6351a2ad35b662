"""What API-change detection adds to an instrumented call (budget: 5 µs per call).

Run with `nox -s bench-changes` (`-- --quick` for fewer calls). Two measures, in
the same process:

* end to end: the same instrumented sync chat call through the real openai
  client (in-process mock transport, pre-built bytes) with detection on and off,
  interleaved, the minimum of several repeats kept;
* the detector alone: the time of the comparison the call path runs when
  nothing changed (every call but the rare first sight of a value), on the
  Outcome the adapter read from a real parsed response. End-to-end differences
  of a few microseconds are within the noise of a call that takes hundreds; this
  one is not.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from typing import Any, Callable

import openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import otelite
from otelite._llm import _changes

http: Any = sys.modules[openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0]]
QUICK = "--quick" in sys.argv
CALLS = 500 if QUICK else 2000
REPEATS = 3 if QUICK else 7
BUDGET_US = 5.0
MESSAGES = [{"role": "user", "content": "Capital of France?"}]

# A chat completion shaped as OpenAI sends it today (fingerprint, tier, usage details).
BODY = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Paris.",
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 3,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_0ba0d124f1",
    }
).encode()


def handler(request: Any) -> Any:
    return http.Response(200, content=BODY, headers={"content-type": "application/json"})


CLIENT = openai.OpenAI(
    api_key="sk-bench",
    max_retries=0,
    http_client=http.Client(transport=http.MockTransport(handler)),
)


def chat() -> Any:
    return CLIENT.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, temperature=0)


def per_call_us(fn: Callable[[], Any], calls: int) -> float:
    """CPU time per call in microseconds (the process's own time: other load on the machine,
    which shares its cores, does not count)."""
    gc.collect()
    start = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - start) / calls * 1e6


def end_to_end() -> dict[str, float]:
    """The instrumented call with detection on and off, interleaved; the minimum of each."""
    best = {"off": float("inf"), "on": float("inf")}
    for _ in range(REPEATS):
        for name in best:
            _changes.enabled = name == "on"
            per_call_us(chat, CALLS // 10)  # warm up after switching
            best[name] = min(best[name], per_call_us(chat, CALLS))
    _changes.enabled = True
    return {"off_us": best["off"], "on_us": best["on"], "added_us": best["on"] - best["off"]}


def detector_alone() -> dict[str, float]:
    """What an unchanged call adds: the adapter's extra reads and the learner's comparison."""
    from otelite._integrations.openai import _chat, _fields, _shape

    response = CLIENT.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES
    ).parse()
    captured: list[Any] = []
    original = _changes.observe

    def keep(invocation: Any, *args: Any) -> None:
        captured.append(invocation)
        original(invocation, *args)

    _changes.observe = keep  # type: ignore[assignment]
    try:
        chat()  # a real Invocation, on a baseline already learnt
    finally:
        _changes.observe = original  # type: ignore[assignment]
    invocation = captured[-1]
    kwargs = {"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": 0}
    outcome = _chat._chat_outcome(response, invocation.request, kwargs)

    def adapter_reads() -> Any:
        # What _fields._outcome does for detection: two closures and the fingerprint.
        return (
            lambda: _shape.structure(response),
            _fields._text(_fields._get(response, "system_fingerprint")),
            lambda: _shape.notices(response),
        )

    def learner() -> None:
        original(invocation, outcome, None, None)

    def structure_read() -> None:
        _changes._baselines[("openai", "chat", "gpt-4o-mini")].calls = 0  # always read
        original(invocation, outcome, None, None)

    out = {}
    for name, fn in (
        ("adapter_us", adapter_reads),
        ("learner_us", learner),
        ("every_call_us", structure_read),
    ):
        out[name] = min(per_call_us(fn, CALLS * 10) for _ in range(REPEATS))
    out["added_us"] = out["adapter_us"] + out["learner_us"]
    return out


def main() -> None:
    provider = TracerProvider()  # spans are dropped: no processor
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    otelite.configure(tracer_provider=provider, meter_provider=meters, local_store=False)
    otelite.instrument_openai()
    try:
        for _ in range(_changes.STRUCTURE_ALWAYS):
            chat()  # the baseline is learnt, as in a running app
        whole = end_to_end()
        alone = detector_alone()
    finally:
        otelite.uninstrument_openai()
        otelite.shutdown()
    lines = [
        f"sync chat, detection off:  {whole['off_us']:.1f} µs CPU per call",
        f"sync chat, detection on:   {whole['on_us']:.1f} µs CPU per call",
        f"added, end to end:         {whole['added_us']:+.1f} µs (within the call's own noise)",
        f"adapter reads per call:    {alone['adapter_us']:.2f} µs",
        f"learner per unchanged call:{alone['learner_us']:.2f} µs (fields read 1 call in "
        f"{_changes.STRUCTURE_EVERY}; {alone['every_call_us']:.2f} µs when read)",
        f"detection added per call:  {alone['added_us']:.2f} µs (budget {BUDGET_US} µs)",
    ]
    print("\n".join(lines))
    if alone["added_us"] > BUDGET_US:
        sys.exit(
            f"API-change detection adds {alone['added_us']:.2f} µs per call, over {BUDGET_US} µs"
        )


if __name__ == "__main__":
    main()
