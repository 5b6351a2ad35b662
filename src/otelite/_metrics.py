"""The GenAI client metrics: created once per meter, shared by every LLM call recorder.

The OpenAI wrapper and the evaluation judges both record LLM calls; the
instruments (with the conventions' bucket advice) live here so both use the same.
The dashboards and alert rules in ``otelite/integrations/grafana`` query these
instruments by name (``docs/grafana.md`` is the reference): each recording site
calls one helper here, so what a dashboard sees is decided in one place.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional

from opentelemetry.metrics import Counter, Histogram, Meter

from otelite import _context
from otelite import _semconv as sc

if TYPE_CHECKING:
    from otelite._dimensions import Limiter


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
    __slots__ = (
        "api_changes",
        "cost",
        "duration",
        "per_chunk",
        "score",
        "token_details",
        "tokens",
        "ttfc",
    )

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
        self.token_details: Counter = meter.create_counter(
            sc.METRIC_TOKEN_DETAILS,
            unit="{token}",
            description="Cached input and reasoning output tokens (already in the input/output counts)",
        )
        self.score = _histogram(
            meter,
            sc.METRIC_EVALUATION_SCORE,
            "1",
            "Evaluation scores, by evaluator",
            sc.SCORE_BUCKETS,
        )
        self.api_changes: Counter = meter.create_counter(
            sc.METRIC_API_CHANGES,
            unit="{change}",
            description="Changes seen in a provider's API (response model, fingerprint, shape)",
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


def dimension_attributes(
    limiter: Optional[Limiter], request: Mapping[str, Any]
) -> Mapping[str, Any]:
    """The opt-in dimension labels of a call starting now (empty unless configured)."""
    if limiter is None:
        return {}
    return limiter.attributes(_context.current_attributes(), request)


def record_token_details(
    meter: Meter, attrs: Mapping[str, Any], outcome_attrs: Mapping[str, Any]
) -> None:
    """Count a finished call's cached input and reasoning output tokens, when it had any."""
    made = instruments(meter)
    for key, detail in (
        (sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, sc.TOKEN_DETAIL_CACHE_READ),
        (sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, sc.TOKEN_DETAIL_REASONING),
    ):
        value = outcome_attrs.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            made.token_details.add(value, {**attrs, sc.OTELITE_TOKEN_DETAIL: detail})


def record_score(
    meter: Meter, name: str, value: Optional[float], kind: str, passed: Optional[bool]
) -> None:
    """Record one evaluation score (scores without a value are not recorded)."""
    if value is None:
        return
    attrs: dict[str, Any] = {
        sc.GEN_AI_EVALUATION_NAME: name,
        sc.OTELITE_EVALUATION_KIND: kind,
    }
    if passed is not None:
        attrs[sc.OTELITE_EVALUATION_PASSED] = passed
    traffic = _context.current_attributes().get(sc.OTELITE_TRAFFIC)
    if traffic is not None:
        attrs[sc.OTELITE_TRAFFIC] = traffic
    instruments(meter).score.record(float(value), attrs)


def record_api_change(
    meter: Meter, provider: str, kind: str, attributes: Optional[Mapping[str, Any]] = None
) -> None:
    """Count one change seen in a provider's API (``kind``: e.g. ``response_model``,
    ``fingerprint``, ``schema``).

    Called by API-change detection (``otelite._llm._changes``); the "API health"
    dashboards and the ``OteliteApiChangeSeen`` alert read ``otelite.api.changes``.
    """
    attrs: dict[str, Any] = dict(attributes or {})
    attrs[sc.GEN_AI_PROVIDER_NAME] = provider
    attrs[sc.OTELITE_API_CHANGE_KIND] = kind
    instruments(meter).api_changes.add(1, attrs)
