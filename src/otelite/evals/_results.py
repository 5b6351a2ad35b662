"""Experiment results: rows, per-evaluator summaries, run comparison and the CI gate.

What an :func:`otelite.evals.evaluate` run returns (:class:`EvalRun`) and what it
is made of, apart from how the run is executed (``_run``): summaries with pass
rates, means and latency percentiles, comparison of two runs with the regressed
rows, and the ``assert_passed`` gate.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from otelite._exceptions import ConfigurationError, DatasetError
from otelite._jsonl import write_jsonl as write_jsonl_atomic
from otelite._plural import plural
from otelite._pricing import fmt_money
from otelite._scores import Score
from otelite._units import percentile
from otelite.evals._dataset import Example, PathLike

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
        task_latency_p50_s=percentile(task_latencies, 50),
        task_latency_p95_s=percentile(task_latencies, 95),
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
