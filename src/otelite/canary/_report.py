"""What a canary run reports: one result per canary, and the run's exit code and text."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from otelite._scores import Score

STATUSES = ("unchanged", "recorded", "changed", "failed")
_SHOWN = 200  # characters of an answer shown in the text report


@dataclass(frozen=True)
class CanaryResult:
    """What one canary did: its status, the reasons (no content), its answer and figures."""

    name: str
    status: str
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    model: Optional[str] = None
    response_model: Optional[str] = None
    answer: Optional[str] = None
    expected: Optional[str] = None
    latency_s: Optional[float] = None
    cost_usd: Optional[float] = None
    scores: tuple[Score, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The result as plain JSON data (``--json``)."""
        return {
            "name": self.name,
            "status": self.status,
            "reasons": list(self.reasons),
            "notes": list(self.notes),
            "model": self.model,
            "response_model": self.response_model,
            "answer": self.answer,
            "expected": self.expected,
            "latency_s": self.latency_s,
            "cost_usd": self.cost_usd,
            "scores": [s.as_dict() for s in self.scores],
        }


@dataclass(frozen=True)
class CanaryReport:
    """A whole run: every canary's result, and the exit code it calls for."""

    file: Path
    baseline: Path
    base_url: str
    record: bool
    results: tuple[CanaryResult, ...] = field(default_factory=tuple)

    def count(self, status: str) -> int:
        """How many canaries ended with ``status``."""
        return sum(1 for r in self.results if r.status == status)

    @property
    def exit_code(self) -> int:
        """0 when nothing changed or failed, else 1."""
        return 1 if any(r.status in ("changed", "failed") for r in self.results) else 0

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON data (``--json``)."""
        return {
            "file": str(self.file),
            "baseline": str(self.baseline),
            "base_url": self.base_url,
            "record": self.record,
            "counts": {status: self.count(status) for status in STATUSES},
            "exit_code": self.exit_code,
            "canaries": [r.as_dict() for r in self.results],
        }

    def text(self) -> str:
        """The human-readable report: one line per canary, its reasons below it."""
        what = "recording" if self.record else "baseline"
        lines = [f"canaries {self.file} against {self.base_url} ({what} {self.baseline})"]
        width = max(len(r.name) for r in self.results) if self.results else 0
        for r in self.results:
            status = r.status if r.status in ("unchanged", "recorded") else r.status.upper()
            latency = "-" if r.latency_s is None else f"{r.latency_s:.3f} s"
            cost = "-" if r.cost_usd is None else f"${r.cost_usd:.6f}"
            lines.append(
                f"  {status:<9}  {r.name:<{width}}  {r.response_model or '-'}  {latency}  {cost}"
            )
            for reason in r.reasons:
                lines.append(f"      - {reason}")
            for note in r.notes:
                lines.append(f"      note: {note}")
            if r.status == "changed" and r.expected is not None and r.answer != r.expected:
                lines.append(f"      was: {_shorten(r.expected)}")
                lines.append(f"      now: {_shorten(r.answer or '')}")
        counts = ", ".join(f"{self.count(s)} {s}" for s in STATUSES if self.count(s))
        lines.append(f"{len(self.results)} canaries: {counts}")
        return "\n".join(lines)


def _shorten(text: str) -> str:
    one = " ".join(text.split())
    return repr(one if len(one) <= _SHOWN else one[:_SHOWN] + "…")
