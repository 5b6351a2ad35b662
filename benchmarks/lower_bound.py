"""How low the overhead can go: hand-specialised wrappers against the floor and otelite.

For the benchmark's sync chat call and its 50-chunk stream, the wrappers here
record exactly the span attributes otelite records (checked first; the time to
first chunk only for its presence) and queue the same metric values to otelite's
metrics thread, and they make the same checks on the way: the re-entrancy guard, another
instrumentation's span, suppression, the API-change sets, the context roll-up,
containment of a failing read. Like otelite, they read the response on the
caller's thread (D10), and a stream's chunks in batches of 64. What they leave
out is generality: they know the call's shape (one client, one model, one price,
openai's response models), so there are no adapter hooks, no request or outcome
objects, no price lookup. Not a product path: the bound that a path specialised
for the common call could reach, measured in one process with the floor and
otelite's own wrapper (which takes its lean path for these calls, otelite._llm._lean:
the difference is what its generality still costs).

    python benchmarks/lower_bound.py [--quick]     (the `nox -s bench-bound` session)

Prints the counted Python work (``run.python_work``) and the paired timing
(``run.compare``) of each, without HTTP, as in the benchmark's isolated table.
"""

from __future__ import annotations

import contextvars
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run
import wrapt
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
    "stream": "gen_ai.request.stream",
}
_get_span, _get_value = trace.get_current_span, otel_context.get_value
_perf, _wall = time.perf_counter, time.time_ns


class Bound:
    """Wrappers for ``chat.completions.create`` that know the call's shape (see the module doc)."""

    def __init__(self, model: str, rates: tuple[float, float], cost_attrs: dict[str, Any]) -> None:
        self.inside: contextvars.ContextVar[Any] = contextvars.ContextVar("inside", default=None)
        self.rollup: contextvars.ContextVar[Any] = contextvars.ContextVar("rollup", default=None)
        self.seen_models: set[str] = set()
        self.seen_reasons: set[str] = set()
        self.calls = 0
        self.start_attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model,
            "server.address": "api.openai.com",
            "server.port": 443,
        }
        self.name = f"chat {model}"
        self.rates = rates
        self.cost_attrs = cost_attrs

    def begin(self, kwargs: dict[str, Any]) -> Any:
        """The span, or ``None`` when the call is not recorded (nested, suppressed)."""
        if self.inside.get() is not None or getattr(_get_span(), "kind", None) is _CLIENT:
            return None
        if _get_value(_SUPPRESS):
            return None
        attrs = self.start_attrs.copy()
        for key, value in kwargs.items():
            attr = _PARAMS.get(key)
            if attr is not None and value is not None:
                attrs[attr] = value
        return _state.active().tracer.start_span(self.name, kind=_CLIENT, attributes=attrs)

    def end(
        self,
        span: Any,
        identity: dict[str, Any],
        reasons: list[str],
        usage: Any,
        took: float,
        ended_ns: int,
        extra: dict[str, Any],
        gaps: Any = None,
    ) -> None:
        """Read what is left, set the attributes in one call, end the span, queue the metrics."""
        try:
            model = identity["model"]
            out = {
                "openai.api.type": "chat_completions",
                "gen_ai.response.id": identity["id"],
                "gen_ai.response.model": model,
                "gen_ai.response.finish_reasons": reasons,
            }
            tier, fingerprint = identity["service_tier"], identity.get("system_fingerprint")
            if tier:
                out["openai.response.service_tier"] = tier
            if fingerprint:
                out["openai.response.system_fingerprint"] = fingerprint
            counts = usage.__dict__
            tokens_in, tokens_out = counts["prompt_tokens"], counts["completion_tokens"]
            out["gen_ai.usage.input_tokens"] = tokens_in
            out["gen_ai.usage.output_tokens"] = tokens_out
            details = counts["prompt_tokens_details"]
            if details is not None:
                out["gen_ai.usage.cache_read.input_tokens"] = details.__dict__["cached_tokens"]
            details = counts["completion_tokens_details"]
            if details is not None:
                out["gen_ai.usage.reasoning.output_tokens"] = details.__dict__["reasoning_tokens"]
            cost = (tokens_in * self.rates[0] + tokens_out * self.rates[1]) / 1_000_000
            out["gen_ai.usage.cost"] = cost
            out.update(self.cost_attrs)
            out.update(extra)
            span.set_attributes(out)
            if model not in self.seen_models or not self.seen_reasons.issuperset(reasons):
                self.seen_models.add(model)
                self.seen_reasons.update(reasons)
            self.calls += 1
            frame = self.rollup.get()
            if frame is not None:
                frame.append((tokens_in, tokens_out, cost))
            measured = self.start_attrs.copy()
            measured["gen_ai.response.model"] = model
            made = _metrics.instruments(_state.active().meter)
            _metrics.defer(  # recorded by otelite's metrics thread, as otelite's are
                _metrics.CallMeasurements(
                    made,
                    measured,
                    took,
                    tokens_in,
                    tokens_out,
                    cost,
                    out,
                    extra.get("gen_ai.response.time_to_first_chunk"),
                    gaps,
                    span.get_span_context(),
                )
            )
        except Exception:  # a failing read never reaches the caller
            pass
        finally:
            span.end(end_time=ended_ns)

    def chat(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        span = self.begin(kwargs)
        if span is None:
            return wrapped(*args, **kwargs)
        started = _perf()
        token = self.inside.set([0])
        try:
            result = wrapped(*args, **kwargs)
        finally:
            self.inside.reset(token)
        ended, ended_ns = _perf(), _wall()
        fields = result.__dict__
        reasons = [c.__dict__["finish_reason"] for c in fields["choices"]]
        self.end(span, fields, reasons, fields["usage"], ended - started, ended_ns, {})
        return result

    def stream(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        span = self.begin(kwargs)
        if span is None:
            return wrapped(*args, **kwargs)
        started = _perf()
        token = self.inside.set([0])
        try:
            result = wrapped(*args, **kwargs)
        finally:
            self.inside.reset(token)
        return _BoundStream(result, self, span, started)


class _BoundStream(wrapt.ObjectProxy):  # type: ignore[misc]
    """The stream as the caller sees it; per chunk: a timestamp and an append, and every 64
    chunks a loop that reads the text, finish reasons and usage (what otelite reads)."""

    def __init__(self, wrapped: Any, bound: Bound, span: Any, started: float) -> None:
        super().__init__(wrapped)
        self._self_bound = bound
        self._self_span = span
        self._self_started = started
        self._self_arrivals: list[float] = []
        self._self_pending: list[Any] = []
        self._self_texts: list[str] = []  # what usage would be estimated from
        self._self_reasons: dict[int, str] = {}
        self._self_usage = None
        self._self_first: Any = None
        self._self_last: Any = None

    def __iter__(self) -> Any:
        # A generator: resuming it costs less than a call of __next__ per chunk.
        arrivals = self._self_arrivals
        pending = self._self_pending
        for chunk in self.__wrapped__:
            arrivals.append(_perf())
            pending.append(chunk)
            if len(pending) >= 64:
                self._self_read()
                pending = self._self_pending
            yield chunk
        self._self_finish()

    def __next__(self) -> Any:
        try:
            chunk = self.__wrapped__.__next__()
        except StopIteration:
            self._self_finish()
            raise
        self._self_arrivals.append(_perf())
        pending = self._self_pending
        pending.append(chunk)
        if len(pending) >= 64:
            self._self_read()
        return chunk

    def _self_read(self) -> None:
        pending, self._self_pending = self._self_pending, []
        texts, reasons = self._self_texts, self._self_reasons
        for chunk in pending:
            fields = chunk.__dict__
            for choice in fields["choices"]:
                known = choice.__dict__
                content = known["delta"].__dict__["content"]
                if content:
                    texts.append(content)
                reason = known["finish_reason"]
                if reason:
                    reasons[known["index"]] = reason
            usage = fields["usage"]
            if usage is not None:
                self._self_usage = usage
        if self._self_first is None and pending:
            self._self_first = pending[0].__dict__
        if pending:
            self._self_last = pending[-1].__dict__

    def _self_finish(self) -> None:
        ended, ended_ns = _perf(), _wall()
        self._self_read()
        arrivals = self._self_arrivals
        gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
        first, last = self._self_first, self._self_last
        identity = {
            "id": first["id"],
            "model": last["model"],
            "service_tier": last["service_tier"],
            "system_fingerprint": last["system_fingerprint"],
        }
        reasons = [self._self_reasons[i] for i in sorted(self._self_reasons)]
        ttfc = arrivals[0] - self._self_started
        extra = {"gen_ai.response.time_to_first_chunk": ttfc}
        self._self_bound.end(
            self._self_span,
            identity,
            reasons,
            self._self_usage,
            ended - self._self_started,
            ended_ns,
            extra,
            gaps,
        )


def _case(
    label: str,
    make: Callable[..., Any],
    kwargs: dict[str, Any],
    transport: Callable[[], Any],
    bound_wrapper: Callable[..., Any],
    streams: bool,
    tracer: Any,
) -> None:
    """Check the bound records otelite's attributes for this call, then count and time all."""
    resource = run.SYNC.chat.completions
    otelite.instrument_openai()
    ours = run._installed_wrapper(resource)
    name, start_attrs, end_attrs = run.attributes_of(transport, False)
    otelite.uninstrument_openai()

    def consume(result: Any) -> Any:
        if streams:
            for _ in result:
                pass
        return result

    with capture_spans() as cap:
        consume(bound_wrapper(make, resource, (), kwargs))
    got = dict(cap.spans[0].attributes or {})
    expected = {**start_attrs, **end_attrs}
    for timing in ("gen_ai.response.time_to_first_chunk",):  # a time: only its presence
        if timing in expected:
            expected[timing] = got.get(timing) if isinstance(got.get(timing), float) else None
    if got != expected or cap.spans[0].name != name:
        raise SystemExit(
            f"{label}: the bound records other attributes than otelite:\n{got}\n{expected}"
        )

    def floor() -> Any:
        span = tracer.start_span(name, kind=SpanKind.CLIENT, attributes=start_attrs)
        result = consume(make(**kwargs))
        span.set_attributes(end_attrs)
        span.end()
        return result

    variants: dict[str, Callable[[], Any]] = {
        "baseline": lambda: consume(make(**kwargs)),
        "floor": floor,
        "bound": lambda: consume(bound_wrapper(make, resource, (), kwargs)),
        "otelite": lambda: consume(ours(make, resource, (), kwargs)),
    }
    calls = 400 if streams else 2000
    work = {variant: run.python_work(fn) for variant, fn in variants.items()}
    times = run.compare({k: (fn, run._nothing) for k, fn in variants.items()}, False, calls)
    _metrics.drain()
    base_work, base_time = work["baseline"], times["baseline"].caller
    floor_time = times["floor"].caller - base_time
    print(f"\n{label}: {run.ROUNDS} paired rounds of {calls} calls")
    print("| variant | instructions over the call | × floor | µs over the call | × floor |")
    print("|---|---:|---:|---:|---:|")
    for variant in ("floor", "bound", "otelite"):
        over = times[variant].caller - base_time
        counted, floor_counted = work[variant], work["floor"]
        if counted is None or floor_counted is None or base_work is None:
            instructions = "— | —"  # no sys.monitoring before Python 3.12
        else:
            extra, floor_extra = counted[0] - base_work[0], floor_counted[0] - base_work[0]
            instructions = f"{extra:,} | {extra / floor_extra:.2f}×"
        print(f"| {variant} | {instructions} | {over:.1f} | {over / floor_time:.2f}× |")


def main() -> None:
    from openai.types.chat import ChatCompletionChunk

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(run.DropExporter()))
    meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
    otelite.configure(tracer_provider=provider, meter_provider=meters, local_store=False)
    tracer = provider.get_tracer("bench")
    print(f"Python {sys.version.split()[0]}, otelite {otelite.__version__}, no HTTP (as the")
    print("benchmark's isolated table); instructions: the mean of 100 calls on this thread")
    model = "gpt-4o-mini"
    entry = _pricing.catalog().lookup("openai", model)
    assert entry is not None
    price = entry.price()
    rates = (float(price.input), float(price.output))  # USD per million tokens
    otelite.instrument_openai()
    _, _, end_attrs = run.attributes_of(run.chat, False)
    otelite.uninstrument_openai()
    cost_attrs = {k: v for k, v in end_attrs.items() if k.startswith("otelite.cost.")}
    bound = Bound(model, rates, cost_attrs)

    response = run.chat()
    body = run.BODIES["stream"].decode()
    chunks = [
        ChatCompletionChunk.model_validate(json.loads(line[len("data: ") :]))
        for line in body.split("\n\n")
        if line.startswith("data: {")
    ]
    chat_kwargs = {"model": model, "messages": run.MESSAGES, "temperature": 0}
    stream_kwargs = {
        "model": model,
        "messages": run.MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    _case(
        "sync chat",
        lambda **_: response,
        chat_kwargs,
        run.chat,
        bound.chat,
        False,
        tracer,
    )
    _case(
        "50-chunk stream",
        lambda **_: run._PrebuiltStream(chunks),
        stream_kwargs,
        run.stream,
        bound.stream,
        True,
        tracer,
    )


if __name__ == "__main__":
    main()
