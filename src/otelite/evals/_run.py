"""Experiment runs: a task over every dataset row, scored by evaluators, traced, summarised.

Each row (and each repeat) is one trace: an ``evaluate {run}`` root span, the
task's span under it, and one ``evaluation {name}`` span per evaluator under the
task's span (the evaluated span). Every span of a run is marked
``otelite.traffic=evaluation``, so its LLM cost never mixes with production's.
A failing task or evaluator is recorded on its row and the run goes on.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, TextIO, Union

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from otelite import _config, _context, _scores, _spans
from otelite import _semconv as sc
from otelite._exceptions import ConfigurationError, DatasetError
from otelite._jsonl import write_jsonl as write_jsonl_atomic
from otelite._plural import plural
from otelite._pricing import fmt_money
from otelite._scores import Score
from otelite.evals._dataset import Dataset, Example, PathLike, as_dataset
from otelite.evals._heuristics import check_evaluators, evaluator_name

ROW_SPAN_KIND = "evaluation_run"


@dataclass
class RowResult:
    """One row of a run (one repeat of one example): output or error, scores, spend."""

    index: int
    repeat: int
    example: Example
    output: Any = None
    error: Optional[str] = None
    scores: dict[str, Score] = field(default_factory=dict)
    latency_s: float = 0.0
    cost: Optional[float] = None  # USD of the priced LLM calls; None: none was priced
    input_tokens: int = 0
    output_tokens: int = 0
    trace_id: Optional[str] = None
    llm_calls: int = 0
    unpriced_calls: int = 0  # LLM calls without a price: ``cost`` leaves them out

    def as_dict(self) -> dict[str, Any]:
        """The row as written to a run's JSONL."""
        out: dict[str, Any] = {
            "index": self.index,
            "repeat": self.repeat,
            "example": self.example.as_dict(),
            "output": self.output,
            "latency_s": self.latency_s,
            "cost": self.cost,
            "llm_calls": self.llm_calls,
            "unpriced_calls": self.unpriced_calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "trace_id": self.trace_id,
            "scores": {k: v.as_dict() for k, v in self.scores.items()},
        }
        if self.error is not None:
            out["error"] = self.error
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RowResult:
        """The inverse of :meth:`as_dict`."""
        ex = data["example"]
        example = Example(
            ex["input"], ex.get("expected"), ex.get("metadata") or {}, ex.get("id") or ""
        )
        return cls(
            index=int(data["index"]),
            repeat=int(data.get("repeat", 0)),
            example=example,
            output=data.get("output"),
            error=data.get("error"),
            scores={k: Score.from_dict(v) for k, v in (data.get("scores") or {}).items()},
            latency_s=float(data.get("latency_s") or 0.0),
            cost=data.get("cost"),
            llm_calls=int(data.get("llm_calls") or 0),
            unpriced_calls=int(data.get("unpriced_calls") or 0),
            input_tokens=int(data.get("input_tokens") or 0),
            output_tokens=int(data.get("output_tokens") or 0),
            trace_id=data.get("trace_id"),
        )


@dataclass(frozen=True)
class EvaluatorSummary:
    """How one evaluator scored the run.

    ``pass_rate`` counts every row: task errors, evaluator errors and unscored
    rows count as not passed. It is ``None`` for evaluators without pass/fail.
    """

    name: str
    rows: int
    scored: int
    passed: int
    errors: int
    mean: Optional[float]
    pass_rate: Optional[float]
    mean_agreement: Optional[float]
    cost: Optional[float]
    latency_s: float


@dataclass(frozen=True)
class Summary:
    """A run's totals: rows, task errors, each evaluator's figures, task and judge spend.

    A cost is ``None`` when no call was priced (unknown is not zero); when only
    some were, it covers the priced ones and ``*_unpriced_calls`` counts the rest.
    """

    rows: int
    task_errors: int
    evaluators: Mapping[str, EvaluatorSummary]
    task_cost: Optional[float]
    task_latency_p50_s: float
    task_latency_p95_s: float
    judge_cost: Optional[float]
    judge_latency_s: float
    duration_s: float
    task_llm_calls: int = 0
    task_unpriced_calls: int = 0
    judge_verdicts: int = 0
    judge_unpriced_verdicts: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for JSON."""
        out = dict(self.__dict__)
        out["evaluators"] = {k: dict(v.__dict__) for k, v in self.evaluators.items()}
        return out


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[rank]


def summarise(rows: Sequence[RowResult], names: Sequence[str], duration_s: float) -> Summary:
    """The summary of ``rows`` for the evaluators ``names``."""
    evaluators: dict[str, EvaluatorSummary] = {}
    judge_costs: list[float] = []
    judge_latency = 0.0
    judge_verdicts = judge_unpriced = 0
    for name in names:
        scores = [r.scores.get(name) for r in rows]
        present = [s for s in scores if s is not None]
        values = [s.value for s in present if s.value is not None]
        scored = [s for s in present if s.scored]
        decided = [s for s in present if s.passed is not None]
        agreements = [s.agreement for s in present if s.agreement is not None]
        costs = [s.cost for s in present if s.cost is not None]
        latency = sum(s.latency_s or 0.0 for s in present)
        passed = sum(1 for s in present if s.passed is True)
        has_pass = bool(decided)
        evaluators[name] = EvaluatorSummary(
            name=name,
            rows=len(rows),
            scored=len(scored),
            passed=passed,
            errors=sum(1 for s in present if s.error is not None),
            mean=sum(values) / len(values) if values else None,
            pass_rate=passed / len(rows) if rows and has_pass else None,
            mean_agreement=sum(agreements) / len(agreements) if agreements else None,
            cost=sum(costs) if costs else None,
            latency_s=latency,
        )
        judged = [s for s in present if s.kind == "llm_judge"]
        if judged:
            judge_costs.extend(costs)
            judge_latency += latency
            judge_verdicts += len(judged)
            # A judge verdict without a cost (and without an error before its call) had no price.
            judge_unpriced += sum(1 for s in judged if s.cost is None and s.error is None)
    task_latencies = [r.latency_s for r in rows if r.error is None]
    return Summary(
        rows=len(rows),
        task_errors=sum(1 for r in rows if r.error is not None),
        evaluators=evaluators,
        task_cost=_known_sum(r.cost for r in rows),
        task_latency_p50_s=_percentile(task_latencies, 50),
        task_latency_p95_s=_percentile(task_latencies, 95),
        judge_cost=_known_sum(judge_costs),
        judge_latency_s=judge_latency,
        duration_s=duration_s,
        task_llm_calls=sum(r.llm_calls for r in rows),
        task_unpriced_calls=sum(r.unpriced_calls for r in rows),
        judge_verdicts=judge_verdicts,
        judge_unpriced_verdicts=judge_unpriced,
    )


def _known_sum(costs: Iterable[Optional[float]]) -> Optional[float]:
    """The sum of the known costs; ``None`` when none is known (unknown is not zero)."""
    known = [c for c in costs if c is not None]
    return sum(known) if known else None


def cost_text(cost: Optional[float], count: int, unpriced: int, noun: str = "LLM call") -> str:
    """A cost for people: ``$0.0012``, ``$0.0012 + 3 LLM calls unpriced`` or ``unknown (...)``.

    ``count`` is how many calls (or judge verdicts) there were, ``unpriced`` how many had no price.
    """

    def many(n: int) -> str:
        return f"{n} {noun}" + ("" if n == 1 else "s")

    if cost is None:
        if unpriced:
            return (
                f"unknown ({many(unpriced)} without a price; add the model's price with "
                "configure(prices=...))"
            )
        if count:
            return f"unknown (no {noun} was priced)"
        return f"unknown (no {noun}s recorded)"
    text = fmt_money(cost)  # the CLI's money format
    if unpriced:
        text += f" + {many(unpriced)} unpriced"
    return text


@dataclass(frozen=True)
class Change:
    """One evaluator's figures before and after."""

    name: str
    mean_before: Optional[float]
    mean_after: Optional[float]
    pass_rate_before: Optional[float]
    pass_rate_after: Optional[float]

    @property
    def mean_delta(self) -> Optional[float]:
        """After minus before (``None`` if either is missing)."""
        if self.mean_before is None or self.mean_after is None:
            return None
        return self.mean_after - self.mean_before

    @property
    def pass_rate_delta(self) -> Optional[float]:
        """After minus before (``None`` if either is missing)."""
        if self.pass_rate_before is None or self.pass_rate_after is None:
            return None
        return self.pass_rate_after - self.pass_rate_before


@dataclass(frozen=True)
class Regression:
    """An example that got worse on one evaluator (or whose task started failing)."""

    example_id: str
    input: Any
    evaluator: str
    before: str
    after: str


@dataclass(frozen=True)
class Comparison:
    """What changed between two runs: per-evaluator deltas and the rows that regressed."""

    baseline: str
    candidate: str
    changes: Mapping[str, Change]
    regressions: Sequence[Regression]
    improvements: Sequence[Regression]

    @property
    def regressed(self) -> bool:
        """Whether any row got worse."""
        return bool(self.regressions)

    def report(self) -> str:
        """A plain-text report for a terminal or a CI log."""
        lines = [f"{self.candidate} vs {self.baseline}"]
        for change in self.changes.values():
            parts = [f"  {change.name}:"]
            if change.pass_rate_delta is not None:
                parts.append(
                    f"pass rate {change.pass_rate_before:.1%} -> {change.pass_rate_after:.1%} "
                    f"({change.pass_rate_delta:+.1%})"
                )
            if change.mean_delta is not None:
                parts.append(
                    f"mean {change.mean_before:.3f} -> {change.mean_after:.3f} ({change.mean_delta:+.3f})"
                )
            lines.append(" ".join(parts))
        lines.append(f"  {len(self.regressions)} regressed, {len(self.improvements)} improved")
        for item in self.regressions[:20]:
            text = str(item.input).replace("\n", " ")[:60]
            lines.append(
                f"    [{item.evaluator}] {item.example_id} {text!r}: {item.before} -> {item.after}"
            )
        return "\n".join(lines)


def _verdict(
    scores: Sequence[Optional[Score]], error: bool
) -> tuple[Optional[bool], Optional[float]]:
    """Pass (majority of repeats) and mean value of one example on one evaluator."""
    present = [s for s in scores if s is not None]
    decided = [s.passed for s in present if s.passed is not None]
    values = [s.value for s in present if s.value is not None]
    if error and not present:
        return False, None
    passed = None
    if decided or error:
        passed = sum(1 for p in decided if p) * 2 > len(scores)
    return passed, (sum(values) / len(values) if values else None)


def _describe(passed: Optional[bool], value: Optional[float], error: bool) -> str:
    if error:
        return "task error"
    bits = []
    if passed is not None:
        bits.append("pass" if passed else "fail")
    if value is not None:
        bits.append(f"{value:g}")
    return " ".join(bits) or "unscored"


class EvalGateError(AssertionError):
    """A run missed a pass-rate or regression gate (an AssertionError, so pytest reports it)."""


class EvalRun:
    """The result of :func:`evaluate`: rows, summary, JSONL export, comparison with another run."""

    def __init__(
        self,
        name: str,
        run_id: str,
        rows: list[RowResult],
        evaluators: Sequence[str],
        duration_s: float = 0.0,
    ) -> None:
        self.name = name
        self.id = run_id
        self.rows = rows
        self.evaluator_names = list(evaluators)
        self.summary = summarise(rows, self.evaluator_names, duration_s)

    def __repr__(self) -> str:
        return f"<EvalRun {self.name!r} rows={len(self.rows)} errors={self.summary.task_errors}>"

    @property
    def errors(self) -> list[RowResult]:
        """Rows whose task raised."""
        return [r for r in self.rows if r.error is not None]

    def to_jsonl(self, path: PathLike) -> Path:
        """Write the run (a header line with the summary, then one line per row), atomically."""
        header = {
            "run": self.name,
            "id": self.id,
            "evaluators": self.evaluator_names,
            "summary": self.summary.as_dict(),
        }
        return write_jsonl_atomic(Path(path), [header, *(r.as_dict() for r in self.rows)])

    @classmethod
    def from_jsonl(cls, path: PathLike) -> EvalRun:
        """Read a run written by :meth:`to_jsonl` (e.g. a baseline kept in the repository)."""
        file = Path(path)
        try:
            lines = [line for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
        except OSError as exc:
            raise DatasetError(f"{file}: cannot read the run ({exc.strerror})") from None
        try:
            header = json.loads(lines[0])
            rows = [RowResult.from_dict(json.loads(line)) for line in lines[1:]]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise DatasetError(f"{file}: not a run written by EvalRun.to_jsonl ({exc})") from None
        summary = header.get("summary") or {}
        return cls(
            str(header.get("run", file.stem)),
            str(header.get("id", "")),
            rows,
            header.get("evaluators") or [],
            float(summary.get("duration_s") or 0.0),
        )

    def compare(self, baseline: EvalRun) -> Comparison:
        """How this run differs from ``baseline``: deltas per evaluator and regressed examples.

        Examples are matched by id (a hash of input and expected). An example
        regresses on an evaluator when it passed before and fails now, when its
        mean value dropped (evaluators without pass/fail), or when its task
        started failing.
        """
        changes = {}
        for name in dict.fromkeys([*baseline.evaluator_names, *self.evaluator_names]):
            before = baseline.summary.evaluators.get(name)
            after = self.summary.evaluators.get(name)
            changes[name] = Change(
                name,
                before.mean if before else None,
                after.mean if after else None,
                before.pass_rate if before else None,
                after.pass_rate if after else None,
            )
        old, new = _by_example(baseline.rows), _by_example(self.rows)
        regressions: list[Regression] = []
        improvements: list[Regression] = []
        for example_id, rows_after in new.items():
            rows_before = old.get(example_id)
            if rows_before is None:
                continue
            error_before = all(r.error is not None for r in rows_before)
            error_after = all(r.error is not None for r in rows_after)
            example = rows_after[0].example
            if error_after and not error_before:
                regressions.append(
                    Regression(example_id, example.input, "task", "ok", "task error")
                )
                continue
            if error_before and not error_after:
                improvements.append(
                    Regression(example_id, example.input, "task", "task error", "ok")
                )
                continue
            for name in changes:
                p0, v0 = _verdict([r.scores.get(name) for r in rows_before], error_before)
                p1, v1 = _verdict([r.scores.get(name) for r in rows_after], error_after)
                worse = better = False
                if p0 is not None and p1 is not None and p0 != p1:
                    worse, better = p0 and not p1, p1 and not p0
                elif p0 is None and p1 is None and v0 is not None and v1 is not None:
                    worse, better = v1 < v0 - 1e-9, v1 > v0 + 1e-9
                if worse or better:
                    item = Regression(
                        example_id,
                        example.input,
                        name,
                        _describe(p0, v0, error_before),
                        _describe(p1, v1, error_after),
                    )
                    (regressions if worse else improvements).append(item)
        return Comparison(baseline.name, self.name, changes, regressions, improvements)

    def failures(
        self,
        min_pass_rate: Optional[float] = None,
        *,
        per_evaluator: Optional[Mapping[str, float]] = None,
        baseline: Optional[EvalRun] = None,
    ) -> list[str]:
        """Why this run misses its gates (empty when it passes them).

        ``min_pass_rate`` holds every evaluator that has pass/fail verdicts;
        ``per_evaluator`` holds named ones (which must have verdicts); with a
        ``baseline``, any regressed row is a failure.
        """
        named = dict(per_evaluator or {})
        for name, rate in [("min_pass_rate", min_pass_rate), *named.items()]:
            if rate is not None and (
                isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1
            ):
                raise ConfigurationError(f"{name}: give a pass rate between 0 and 1, got {rate!r}")
        unknown = sorted(set(named) - set(self.summary.evaluators))
        if unknown:
            raise ConfigurationError(
                f"per_evaluator: no evaluator named {unknown[0]!r} in this run"
            )
        found = []
        for name, summary in self.summary.evaluators.items():
            limit = named.get(name, min_pass_rate)
            if limit is None:
                continue
            if summary.pass_rate is None:
                if name in named:
                    found.append(f"{name}: no pass/fail verdicts to hold to {limit:.1%}")
            elif summary.pass_rate < limit:
                found.append(f"{name}: pass rate {summary.pass_rate:.1%} is below {limit:.1%}")
        if baseline is not None:
            regressions = self.compare(baseline).regressions
            if regressions:
                found.append(f"{len(regressions)} rows regressed against {baseline.name}")
        return found

    def check(
        self,
        min_pass_rate: Optional[float] = None,
        *,
        per_evaluator: Optional[Mapping[str, float]] = None,
        baseline: Optional[EvalRun] = None,
    ) -> EvalRun:
        """Raise :class:`EvalGateError` when the run misses a gate (for pytest); else return it.

        Example:
            >>> from otelite import evals
            >>> run = evals.evaluate([{"input": "a", "expected": "a"}], str, [evals.exact_match()], progress=False)
            >>> run.check(min_pass_rate=0.9).summary.rows
            1
        """
        found = self.failures(min_pass_rate, per_evaluator=per_evaluator, baseline=baseline)
        if found:
            raise EvalGateError(f"run {self.name}: " + "; ".join(found))
        return self

    def report(self) -> str:
        """A plain-text summary for a terminal or a CI log."""
        s = self.summary
        lines = [
            f"run {self.name} ({self.id}): {plural(s.rows, 'row')}, "
            f"{plural(s.task_errors, 'task error')}, "
            f"{s.duration_s:.1f} s",
            f"  task: cost {cost_text(s.task_cost, s.task_llm_calls, s.task_unpriced_calls)}, "
            f"latency p50 {s.task_latency_p50_s * 1000:.0f} ms, "
            f"p95 {s.task_latency_p95_s * 1000:.0f} ms",
        ]
        if s.judge_verdicts or s.judge_cost is not None:
            judge = cost_text(s.judge_cost, s.judge_verdicts, s.judge_unpriced_verdicts, "verdict")
            lines.append(f"  judges: cost {judge}, {s.judge_latency_s:.1f} s in calls")
        for e in s.evaluators.values():
            bits = [f"  {e.name}:"]
            if e.pass_rate is not None:
                bits.append(f"pass rate {e.pass_rate:.1%} ({e.passed}/{e.rows})")
            if e.mean is not None:
                bits.append(f"mean {e.mean:.3f}")
            if e.mean_agreement is not None:
                bits.append(f"agreement {e.mean_agreement:.2f}")
            if e.errors:
                bits.append(plural(e.errors, "error"))
            if e.scored < e.rows:
                bits.append(f"{e.rows - e.scored} unscored")
            lines.append(" ".join(bits))
        return "\n".join(lines)


def _by_example(rows: Sequence[RowResult]) -> dict[str, list[RowResult]]:
    out: dict[str, list[RowResult]] = {}
    for row in rows:
        out.setdefault(row.example.id, []).append(row)
    return out


# --- running ---------------------------------------------------------------------------


class _Progress:
    """``name: 37/200 rows, 2 errors`` on one terminal line, when stderr is a terminal."""

    def __init__(self, name: str, total: int, enabled: Optional[bool], stream: TextIO) -> None:
        self.name, self.total, self.stream = name, total, stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.done = self.errors = 0
        self._lock = threading.Lock()

    def step(self, error: bool) -> None:
        with self._lock:
            self.done += 1
            self.errors += error
            if self.enabled:
                self.stream.write(
                    f"\r{self.name}: {self.done}/{self.total} rows, {self.errors} errors"
                )
                if self.done == self.total:
                    self.stream.write("\n")
                self.stream.flush()


def _score_from(name: str, result: Any) -> Score:
    if isinstance(result, Score):
        return result
    if isinstance(result, bool):
        return Score(
            name, 1.0 if result else 0.0, label="pass" if result else "fail", passed=result
        )
    if isinstance(result, (int, float)):
        return Score(name, float(result))
    raise TypeError(
        f"the evaluator returned {type(result).__name__}; return a Score, a bool or a number"
    )


def _accepted_names(func: Callable[..., Any]) -> Optional[frozenset[str]]:
    """The keyword names ``func`` accepts; ``None`` when it takes ``**kwargs`` (or cannot tell)."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return frozenset(params)


def _error_text(exc: BaseException) -> str:
    return _spans.error_text(exc)  # redacted; an HTTP error's body only when content is captured


class _Runner:
    def __init__(
        self,
        name: str,
        run_id: str,
        task: Callable[..., Any],
        evaluators: Sequence[Any],
        progress: _Progress,
    ) -> None:
        self.name, self.run_id, self.task = name, run_id, task
        self.evaluators = evaluators
        self.names = [evaluator_name(e) for e in evaluators]
        # Read once per run, not once per row.
        self.accepts = {id(e): _accepted_names(e) for e in evaluators}
        self.progress = progress
        self.task_name = getattr(task, "__qualname__", None) or getattr(task, "__name__", "task")

    def _root(self, example: Example, index: int, repeat: int) -> Span:
        return _config.active().tracer.start_span(
            f"evaluate {self.name}",
            kind=SpanKind.INTERNAL,
            attributes={
                sc.OTELITE_SPAN_KIND: ROW_SPAN_KIND,
                sc.OTELITE_EVAL_RUN_NAME: self.name,
                sc.OTELITE_EVAL_RUN_ID: self.run_id,
                sc.OTELITE_EVAL_ROW: index,
                sc.OTELITE_EVAL_REPEAT: repeat,
                sc.OTELITE_TRAFFIC: sc.TRAFFIC_EVALUATION,
            },
            context=trace.set_span_in_context(trace.INVALID_SPAN),
        )

    def _task_span(self) -> Span:
        return _config.active().tracer.start_span(
            f"task {self.task_name}",
            kind=SpanKind.INTERNAL,
            attributes={sc.OTELITE_SPAN_KIND: "task", sc.OTELITE_TRAFFIC: sc.TRAFFIC_EVALUATION},
        )

    def _record_io(self, span: Span, key: str, value: Any) -> None:
        content = _config.active().content
        if content.capture and span.is_recording():
            span.set_attribute(key, content.render(value))

    def _evaluator_kwargs(self, evaluator: Any, row: RowResult, task_span: Span) -> dict[str, Any]:
        """What ``evaluator`` is called with: the row, its metadata and the task's figures.

        Evaluators without ``**kwargs`` get only the names they accept.
        """
        ctx = task_span.get_span_context()
        kwargs = {
            **dict(row.example.metadata),
            "input": row.example.input,
            "output": row.output,
            "expected": row.example.expected,
            "latency_s": row.latency_s,
            "cost": row.cost,
            "trace_id": format(ctx.trace_id, "032x"),
            "span_id": format(ctx.span_id, "016x"),
        }
        accepted = self.accepts[id(evaluator)]
        return kwargs if accepted is None else {k: v for k, v in kwargs.items() if k in accepted}

    def _finish_score(self, name: str, span: Span, result: Any, started: float) -> Score:
        try:
            score = _score_from(name, result)
        except Exception as exc:
            score = Score(
                name, error=_error_text(exc), explanation="the evaluator's result is not a score"
            )
        if score.name != name:
            score = score.with_updates(name=name)
        if score.latency_s is None:
            score = score.with_updates(latency_s=time.perf_counter() - started)
        _scores.end_span(span, score)
        return score

    @contextmanager
    def _row(self, example: Example, index: int, repeat: int) -> Iterator[RowResult]:
        """The row's trace: its root span, current inside the block, marked evaluation traffic."""
        row = RowResult(index, repeat, example)
        with _context.attributes({sc.OTELITE_TRAFFIC: sc.TRAFFIC_EVALUATION}):
            root = self._root(example, index, repeat)
            row.trace_id = format(root.get_span_context().trace_id, "032x")
            with trace.use_span(root, end_on_exit=True):
                yield row
                if row.error is not None:
                    _spans.record_error(root, RuntimeError(row.error))
        self.progress.step(row.error is not None)

    @contextmanager
    def _task(self, row: RowResult) -> Iterator[Span]:
        """The task's span and usage tally; an exception in the block becomes the row's error."""
        task_span = self._task_span()
        with trace.use_span(task_span, end_on_exit=True), _context.tally() as spent:
            self._record_io(task_span, sc.OTELITE_INPUT, row.example.input)
            started = time.perf_counter()
            try:
                yield task_span
            except Exception as exc:
                row.error = _error_text(exc)
                _spans.record_error(task_span, exc)
            else:
                self._record_io(task_span, sc.OTELITE_OUTPUT, row.output)
            row.latency_s = time.perf_counter() - started
        row.input_tokens, row.output_tokens = spent.input_tokens, spent.output_tokens
        row.cost = spent.cost if spent.calls > spent.unpriced else None
        row.llm_calls, row.unpriced_calls = spent.calls, spent.unpriced

    # -- sync --

    def run_row(self, example: Example, index: int, repeat: int) -> RowResult:
        with self._row(example, index, repeat) as row:
            with self._task(row) as task_span:
                result = self.task(example.input)
                row.output = _run_coroutine(result) if inspect.isawaitable(result) else result
            if row.error is None:
                for evaluator, name in zip(self.evaluators, self.names):
                    row.scores[name] = self._evaluate_sync(evaluator, name, row, task_span)
        return row

    def _evaluate_sync(self, evaluator: Any, name: str, row: RowResult, task_span: Span) -> Score:
        span = _scores.start_span(name, task_span.get_span_context())
        started = time.perf_counter()
        with trace.use_span(span, end_on_exit=False):
            try:
                result = evaluator(**self._evaluator_kwargs(evaluator, row, task_span))
                if inspect.isawaitable(result):
                    result = _run_coroutine(result)
            except Exception as exc:
                result = Score(name, error=_error_text(exc), explanation="the evaluator raised")
        return self._finish_score(name, span, result, started)

    # -- async --

    async def arun_row(self, example: Example, index: int, repeat: int) -> RowResult:
        with self._row(example, index, repeat) as row:
            with self._task(row) as task_span:
                result = self.task(example.input)
                row.output = await result if inspect.isawaitable(result) else result
            if row.error is None:
                for evaluator, name in zip(self.evaluators, self.names):
                    row.scores[name] = await self._evaluate_async(evaluator, name, row, task_span)
        return row

    async def _evaluate_async(
        self, evaluator: Any, name: str, row: RowResult, task_span: Span
    ) -> Score:
        span = _scores.start_span(name, task_span.get_span_context())
        started = time.perf_counter()
        kwargs = self._evaluator_kwargs(evaluator, row, task_span)
        with trace.use_span(span, end_on_exit=False):
            try:
                if _is_async(evaluator):
                    result = await evaluator(**kwargs)
                else:
                    # Sync evaluators (a judge waiting on HTTP) run on a thread, off the loop.
                    result = await _to_thread(evaluator, **kwargs)
                    if inspect.isawaitable(result):
                        result = await result
            except Exception as exc:
                result = Score(name, error=_error_text(exc), explanation="the evaluator raised")
        return self._finish_score(name, span, result, started)


def _is_async(func: Any) -> bool:
    method = type(func).__dict__.get("__call__")  # an object whose __call__ is async
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(method)


def _run_coroutine(awaitable: Any) -> Any:
    async def wrap() -> Any:
        return await awaitable

    return asyncio.run(wrap())


async def _to_thread(func: Callable[..., Any], **kwargs: Any) -> Any:
    loop = asyncio.get_running_loop()
    call = _context.bind_context(lambda: func(**kwargs))
    return await loop.run_in_executor(None, call)


def _prepare(
    data: Any, task: Any, evaluators: Any, max_concurrency: Any, repeats: Any, name: Optional[str]
) -> tuple[Dataset, list[Any], str]:
    dataset = as_dataset(data)
    if not callable(task):
        raise TypeError("task: give the function to evaluate, called as task(input)")
    checked = check_evaluators(evaluators)
    for argument, value in (("max_concurrency", max_concurrency), ("repeats", repeats)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{argument}: give a whole number of 1 or more, got {value!r}")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ConfigurationError("name: give the run a non-empty name")
    return dataset, checked, name or f"{getattr(task, '__name__', 'task')}-{dataset.name}"


def evaluate(
    data: Union[Dataset, Sequence[Mapping[str, Any]]],
    task: Callable[..., Any],
    evaluators: Sequence[Any],
    *,
    max_concurrency: int = 8,
    repeats: int = 1,
    name: Optional[str] = None,
    progress: Optional[bool] = None,
) -> EvalRun:
    """Run ``task`` on every row concurrently, score each output, and summarise.

    ``task(input)`` may be sync or async. Each evaluator is called as
    ``evaluator(input=..., output=..., expected=..., **metadata)``, where the
    metadata holds the row's metadata plus ``latency_s``, ``cost``, ``trace_id``
    and ``span_id`` of the task (evaluators that do not take ``**kwargs`` get only
    the names they accept). ``repeats`` runs every row several times. Progress is
    shown on a terminal (``progress=False`` hides it). Call :func:`aevaluate`
    from async code.

    Example:
        >>> from otelite import evals
        >>> run = evals.evaluate(
        ...     [{"input": "2+2", "expected": "4"}], lambda q: str(eval(q)), [evals.exact_match()]
        ... )
        >>> run.summary.evaluators["exact_match"].pass_rate
        1.0
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "evaluate() was called inside a running event loop; use `await evals.aevaluate(...)`"
        )
    dataset, checked, run_name = _prepare(data, task, evaluators, max_concurrency, repeats, name)
    if inspect.iscoroutinefunction(task):
        return asyncio.run(
            aevaluate(
                dataset,
                task,
                checked,
                max_concurrency=max_concurrency,
                repeats=repeats,
                name=run_name,
                progress=progress,
            )
        )
    jobs = [(ex, i, r) for r in range(repeats) for i, ex in enumerate(dataset)]
    runner = _Runner(
        run_name,
        uuid.uuid4().hex[:12],
        task,
        checked,
        _Progress(run_name, len(jobs), progress, sys.stderr),
    )
    started = time.perf_counter()
    with _context.ContextThreadPoolExecutor(
        max_workers=max_concurrency, thread_name_prefix="otelite-eval"
    ) as pool:
        futures: list[Future[RowResult]] = [pool.submit(runner.run_row, *job) for job in jobs]
        rows = [f.result() for f in futures]
    return EvalRun(run_name, runner.run_id, rows, runner.names, time.perf_counter() - started)


async def aevaluate(
    data: Union[Dataset, Sequence[Mapping[str, Any]]],
    task: Callable[..., Any],
    evaluators: Sequence[Any],
    *,
    max_concurrency: int = 8,
    repeats: int = 1,
    name: Optional[str] = None,
    progress: Optional[bool] = None,
) -> EvalRun:
    """:func:`evaluate` for async code: rows run as tasks, at most ``max_concurrency`` at once.

    Example:
        >>> import asyncio
        >>> from otelite import evals
        >>> async def answer(q: str) -> str:
        ...     return "4"
        >>> run = asyncio.run(evals.aevaluate([{"input": "2+2", "expected": "4"}], answer, [evals.exact_match()]))
        >>> run.summary.rows
        1
    """
    dataset, checked, run_name = _prepare(data, task, evaluators, max_concurrency, repeats, name)
    jobs = [(ex, i, r) for r in range(repeats) for i, ex in enumerate(dataset)]
    runner = _Runner(
        run_name,
        uuid.uuid4().hex[:12],
        task,
        checked,
        _Progress(run_name, len(jobs), progress, sys.stderr),
    )
    limit = asyncio.Semaphore(max_concurrency)

    async def one(job: tuple[Example, int, int]) -> RowResult:
        async with limit:
            return await runner.arun_row(*job)

    started = time.perf_counter()
    rows = list(await asyncio.gather(*(one(job) for job in jobs)))
    return EvalRun(run_name, runner.run_id, rows, runner.names, time.perf_counter() - started)
