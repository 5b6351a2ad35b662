"""The GenAI client metrics: created once per meter, shared by every LLM call recorder.

The OpenAI wrapper and the evaluation judges both record LLM calls; the
instruments (with the conventions' bucket advice) live here so both use the same.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from opentelemetry.metrics import Counter, Histogram, Meter

from otelite import _semconv as sc


def _histogram(
    meter: Meter, name: str, unit: str, description: str, buckets: Sequence[float]
) -> Histogram:
    try:
        return meter.create_histogram(
            name,
            unit=unit,
            description=description,
            explicit_bucket_boundaries_advisory=list(buckets),
        )
    except TypeError:
        # opentelemetry-api older than 1.28 has no bucket advice: the SDK's default buckets apply.
        return meter.create_histogram(name, unit=unit, description=description)


class _Instruments:
    __slots__ = ("cost", "duration", "per_chunk", "tokens", "ttfc")

    def __init__(self, meter: Meter) -> None:
        self.duration = _histogram(
            meter,
            sc.METRIC_OPERATION_DURATION,
            "s",
            "GenAI operation duration",
            sc.DURATION_BUCKETS,
        )
        self.tokens = _histogram(
            meter,
            sc.METRIC_TOKEN_USAGE,
            "{token}",
            "Number of input and output tokens used",
            sc.TOKEN_BUCKETS,
        )
        self.ttfc = _histogram(
            meter,
            sc.METRIC_TIME_TO_FIRST_CHUNK,
            "s",
            "Time to receive the first chunk of a streamed response",
            sc.DURATION_BUCKETS,
        )
        self.per_chunk = _histogram(
            meter,
            sc.METRIC_TIME_PER_OUTPUT_CHUNK,
            "s",
            "Time between consecutive chunks of a streamed response",
            sc.DURATION_BUCKETS,
        )
        self.cost: Counter = meter.create_counter(
            sc.METRIC_COST,
            unit="USD",
            description="Cost of GenAI calls, from token usage and prices",
        )


MAX_METERS = 16  # meters whose instruments are kept; the oldest is forgotten beyond that

_instruments_lock = threading.Lock()
# id(meter) -> (meter, its instruments), oldest first. Instrumentation asks for the meter
# of the current provider on every call; the meter is kept with its instruments so a
# recycled id can never return another meter's instruments.
_instruments: dict[int, tuple[Meter, _Instruments]] = {}


def instruments(meter: Meter) -> _Instruments:
    """The GenAI histograms on ``meter`` (created once per meter; the cache is bounded)."""
    found = _instruments.get(id(meter))
    if found is not None and found[0] is meter:
        return found[1]
    with _instruments_lock:
        found = _instruments.get(id(meter))
        if found is not None and found[0] is meter:
            return found[1]
        made = _Instruments(meter)
        _instruments.pop(id(meter), None)
        while len(_instruments) >= MAX_METERS:
            del _instruments[next(iter(_instruments))]
        _instruments[id(meter)] = (meter, made)
        return made
