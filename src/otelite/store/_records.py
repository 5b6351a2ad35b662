"""What reading the local store returns: the record types, and the ``stats`` keys and sums."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from otelite._units import percentile
from otelite.store import _rollup


@dataclass(frozen=True)
class StoredSpan:
    """One recorded span, as read back from the store."""

    trace_id: str
    span_id: str
    parent_span_id: Optional[str]
    name: str
    kind: str
    start_time_ns: int
    end_time_ns: int
    status_code: str
    status_message: Optional[str]
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    links: list[dict[str, Any]]
    resource: dict[str, Any]
    scope_name: Optional[str]

    @property
    def duration_ns(self) -> int:
        """End minus start, in nanoseconds."""
        return self.end_time_ns - self.start_time_ns


@dataclass(frozen=True)
class TraceSummary:
    """One trace in a listing: its root span and totals over all its spans."""

    trace_id: str
    root_name: str
    start_time_ns: int
    end_time_ns: int
    span_count: int
    llm_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Optional[float]  # of the priced LLM calls; None: none was priced
    status_code: str
    service_name: Optional[str]
    user_id: Optional[str]
    unpriced_calls: int = 0  # LLM calls without a price, left out of cost_usd
    estimated_calls: int = 0  # LLM calls whose token counts are estimates

    @property
    def duration_ns(self) -> int:
        """Time from the first span's start to the last span's end."""
        return self.end_time_ns - self.start_time_ns


@dataclass
class SpanNode:
    """A span with its children, for walking a trace as a tree."""

    span: StoredSpan
    children: list[SpanNode] = field(default_factory=list)


# The operations of LLM calls: the spans stats count (and the rollups hold).
LLM_OPERATIONS = _rollup.LLM_OPERATIONS


# `otelite stats --by` keys and the SQL that computes each.
STATS_KEYS: Mapping[str, str] = {
    "model": "s.model",
    "provider": "s.provider",
    "operation": "s.operation",
    "user": "s.user_id",
    "session": "s.session_id",
    "service": "r.service_name",
    "service.version": "r.service_version",
    "prompt": "s.prompt",
    "geo": "s.geo",
    "day": "strftime('%Y-%m-%d', s.start_time_ns / 1000000000, 'unixepoch')",
    "hour": "strftime('%Y-%m-%d %H:00', s.start_time_ns / 1000000000, 'unixepoch')",
    # Spans of judges and dataset runs say `evaluation`; the application's are `app`.
    "traffic": "COALESCE(json_extract(s.attributes, '$.\"otelite.traffic\"'), 'app')",
}


@dataclass(frozen=True)
class StatsRow:
    """Aggregates of LLM calls for one group (``key`` holds one value per ``--by`` key)."""

    key: tuple[Optional[str], ...]
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: Optional[float]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    p50_ttfc_ms: Optional[float]
    estimated_share: float
    unpriced: int

    @property
    def error_rate(self) -> float:
        """Errors over calls."""
        return self.errors / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class StoredScore:
    """One score (a ``gen_ai.evaluation.result`` event) and the span it scores."""

    trace_id: str
    span_id: str
    name: str
    value: Optional[float]
    label: Optional[str]
    passed: Optional[bool]
    kind: Optional[str]
    source: Optional[str]
    explanation: Optional[str]
    comment: Optional[str]
    error: Optional[str]
    time_ns: int


@dataclass(frozen=True)
class ScoreStatsRow:
    """Aggregates of one score name (and ``--by`` keys of the scored spans)."""

    name: str
    key: tuple[Optional[str], ...]
    count: int
    scored: int
    mean: Optional[float]
    passed: int
    failed: int

    @property
    def pass_rate(self) -> Optional[float]:
        """Passed over scores with a pass/fail verdict (``None`` if there are none)."""
        decided = self.passed + self.failed
        return self.passed / decided if decided else None


class _Group:
    """Running totals of one stats group."""

    __slots__ = (
        "calls",
        "cost",
        "durations",
        "errors",
        "estimated",
        "input_tokens",
        "output_tokens",
        "ttfcs",
        "unpriced",
    )

    def __init__(self) -> None:
        self.calls = self.errors = self.input_tokens = self.output_tokens = self.estimated = (
            self.unpriced
        ) = 0
        self.cost: Optional[float] = None
        self.durations: list[int] = []
        self.ttfcs: list[float] = []

    def add(self, values: Sequence[Any]) -> None:
        duration, ttfc, failed, tokens_in, tokens_out, cost, estimated, unpriced = values
        self.calls += 1
        self.durations.append(duration)
        if ttfc is not None:
            self.ttfcs.append(ttfc)
        self.errors += failed
        self.input_tokens += tokens_in or 0
        self.output_tokens += tokens_out or 0
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost
        self.estimated += 1 if estimated else 0
        self.unpriced += 1 if unpriced else 0

    def row(self, key: tuple[Any, ...]) -> StatsRow:
        durations = sorted(self.durations)
        firsts = sorted(self.ttfcs)
        # Sorted once here: each percentile below reads the sorted lists.
        return StatsRow(
            key=key,
            calls=self.calls,
            errors=self.errors,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_usd=self.cost,
            p50_ms=percentile(durations, 50, presorted=True) / 1e6,
            p95_ms=percentile(durations, 95, presorted=True) / 1e6,
            p99_ms=percentile(durations, 99, presorted=True) / 1e6,
            p50_ttfc_ms=percentile(firsts, 50, presorted=True) * 1000 if firsts else None,
            estimated_share=self.estimated / self.calls if self.calls else 0.0,
            unpriced=self.unpriced,
        )


# Users see the public path (otelite.store.StoredSpan), not this file's.
for _public in (StoredSpan, TraceSummary, SpanNode, StatsRow, StoredScore, ScoreStatsRow):
    _public.__module__ = "otelite.store"
