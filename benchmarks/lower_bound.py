"""How low the chat overhead can go: a hand-specialised wrapper against the floor and otelite.

The wrapper here records, for the benchmark's sync chat call, exactly the span
attributes otelite records (checked first) and queues the same metric values,
and it makes the same checks on the way: the re-entrancy guard, another
instrumentation's span, suppression, the API-change sets, the context roll-up,
containment of a failing read. What it leaves out is generality: it knows the
call's shape (one client, one model, one price, openai's response models), so it
has no adapter hooks, no request or outcome objects, no price lookup. It is not a
product path; it is the bound a specialised path for the common call could reach,
measured in one process with the floor and otelite's own wrapper.

    python benchmarks/lower_bound.py          (in the `nox -s bench` environment)

Prints the counted Python work (``run.python_work``) and the paired timing
(``run.compare``) of each, without HTTP, as in the benchmark's isolated table.
"""

from __future__ import annotations

import collections
import contextvars
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

import otelite
from otelite import _metrics, _pricing, _state
from otelite.testing import capture_spans

_CLIENT = SpanKind.CLIENT
_SUPPRESS = otel_context._SUPPRESS_INSTRUMENTATION_KEY  # what _spans.is_suppressed reads
# The request parameters otelite reads, with their attribute names.
_PARAMS = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
    "stop": "gen_ai.request.stop_sequences",
    "max_tokens": "gen_ai.request.max_tokens",
}


def specialised(
    model: str, rates: tuple[float, float], cost_attrs: dict[str, Any]
) -> Callable[..., Any]:
    """A wrapt-style wrapper for ``chat.completions.create`` that knows the call's shape."""
    inside: contextvars.ContextVar[Any] = contextvars.ContextVar("inside", default=None)
    rollup: contextvars.ContextVar[Any] = contextvars.ContextVar("rollup", default=None)
    queue: collections.deque[Any] = collections.deque(maxlen=4096)
    seen_models: set[str] = set()
    seen_reasons: set[str] = set()
    seen_fingerprints: set[str] = set()
    calls = [0]
    start_attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "server.address": "api.openai.com",
        "server.port": 443,
    }
    metric_attrs = dict(start_attrs)
    name = f"chat {model}"
    price_in, price_out = rates
    get_span, get_value, perf, wall = (
        trace.get_current_span,
        otel_context.get_value,
        time.perf_counter,
        time.time_ns,
    )

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if inside.get() is not None or getattr(get_span(), "kind", None) is _CLIENT:
            return wrapped(*args, **kwargs)
        if get_value(_SUPPRESS):
            return wrapped(*args, **kwargs)
        active = _state.active()
        attrs = start_attrs.copy()
        for key, value in kwargs.items():
            attr = _PARAMS.get(key)
            if attr is not None and value is not None:
                attrs[attr] = value
        span = active.tracer.start_span(name, kind=_CLIENT, attributes=attrs)
        started = perf()
        token = inside.set([0])
        try:
            result = wrapped(*args, **kwargs)
        finally:
            inside.reset(token)
        ended, ended_ns = perf(), wall()
        try:
            fields = result.__dict__
            response_model = fields["model"]
            reasons = [c.__dict__["finish_reason"] for c in fields["choices"]]
            out = {
                "openai.api.type": "chat_completions",
                "gen_ai.response.id": fields["id"],
                "gen_ai.response.model": response_model,
                "gen_ai.response.finish_reasons": reasons,
            }
            tier, fingerprint = fields["service_tier"], fields["system_fingerprint"]
            if tier:
                out["openai.response.service_tier"] = tier
            if fingerprint:
                out["openai.response.system_fingerprint"] = fingerprint
            usage = fields["usage"].__dict__
            tokens_in, tokens_out = usage["prompt_tokens"], usage["completion_tokens"]
            out["gen_ai.usage.input_tokens"] = tokens_in
            out["gen_ai.usage.output_tokens"] = tokens_out
            details = usage["prompt_tokens_details"]
            cached = details.__dict__["cached_tokens"] if details is not None else None
            if cached is not None:
                out["gen_ai.usage.cache_read.input_tokens"] = cached
            details = usage["completion_tokens_details"]
            reasoning = details.__dict__["reasoning_tokens"] if details is not None else None
            if reasoning is not None:
                out["gen_ai.usage.reasoning.output_tokens"] = reasoning
            cost = (tokens_in * price_in + tokens_out * price_out) / 1_000_000
            out["gen_ai.usage.cost"] = cost
            out.update(cost_attrs)
            span.set_attributes(out)
            if (
                response_model not in seen_models
                or (fingerprint and fingerprint not in seen_fingerprints)
                or not seen_reasons.issuperset(reasons)
            ):
                seen_models.add(response_model)
                seen_reasons.update(reasons)
                if fingerprint:
                    seen_fingerprints.add(fingerprint)
            calls[0] += 1
            frame = rollup.get()
            if frame is not None:
                frame.append((tokens_in, tokens_out, cost))
            measured = metric_attrs.copy()
            measured["gen_ai.response.model"] = response_model
            queue.append(
                (measured, ended - started, tokens_in, tokens_out, cost, span.get_span_context())
            )
        except Exception:
            pass
        finally:
            span.end(end_time=ended_ns)
        return result

    return wrapper


def main() -> None:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(run.DropExporter()))
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    otelite.configure(tracer_provider=provider, meter_provider=meters, local_store=False)
    tracer = provider.get_tracer("bench")
    kwargs = {"model": "gpt-4o-mini", "messages": run.MESSAGES, "temperature": 0}
    response = run.chat()
    resource = run.SYNC.chat.completions

    def sync_chat(**_: Any) -> Any:
        return response

    otelite.instrument_openai()
    ours = run._installed_wrapper(resource)
    name, start_attrs, end_attrs = run.attributes_of(run.chat, False)
    otelite.uninstrument_openai()
    recorded = {**start_attrs, **end_attrs}
    cost_attrs = {k: v for k, v in end_attrs.items() if k.startswith("otelite.cost.")}
    price = _pricing.catalog().lookup("openai", "gpt-4o-mini")
    assert price is not None
    rates = (float(price.price().input), float(price.price().output))  # USD per million
    bound = specialised("gpt-4o-mini", rates, cost_attrs)
    with capture_spans() as cap:
        bound(sync_chat, resource, (), kwargs)
    got = dict(cap.spans[0].attributes or {})
    if got != recorded or cap.spans[0].name != name:
        raise SystemExit(f"the bound records other attributes than otelite:\n{got}\n{recorded}")

    def floor() -> Any:
        span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=start_attrs)
        result = sync_chat(**kwargs)
        span.set_attributes(end_attrs)
        span.end()
        return result

    variants: dict[str, Callable[[], Any]] = {
        "baseline": lambda: sync_chat(**kwargs),
        "floor": floor,
        "bound": lambda: bound(sync_chat, resource, (), kwargs),
        "otelite": lambda: ours(sync_chat, resource, (), kwargs),
    }
    work = {label: run.python_work(fn) for label, fn in variants.items()}
    times = run.compare({k: (fn, run._nothing) for k, fn in variants.items()}, False, 2000)
    _metrics.drain()
    base_work, base_time = work["baseline"], times["baseline"].caller
    floor_time = times["floor"].caller - base_time
    print(f"Python {sys.version.split()[0]}; {run.ROUNDS} paired rounds of 2000 calls")
    print("| variant | instructions over the call | × floor | µs over the call | × floor |")
    print("|---|---:|---:|---:|---:|")
    for label in ("floor", "bound", "otelite"):
        over = times[label].caller - base_time
        counted, floor_counted = work[label], work["floor"]
        if counted is None or floor_counted is None or base_work is None:
            instructions = "— | —"  # no sys.monitoring before Python 3.12
        else:
            extra, floor_extra = counted[0] - base_work[0], floor_counted[0] - base_work[0]
            instructions = f"{extra:,} | {extra / floor_extra:.2f}×"
        print(f"| {label} | {instructions} | {over:.1f} | {over / floor_time:.2f}× |")


if __name__ == "__main__":
    main()
