"""Comparing an answer with its recorded baseline entry: what changed, in words without content."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

from otelite._scores import Score
from otelite.canary._file import Canary
from otelite.canary._prepare import Prepared
from otelite.evals._client import Completion

_LISTED = 5  # response fields named in a reason before "and N more"


def response_fields(raw: Any) -> list[str]:
    """The response's key structure (``choices[].message.content``, ...), sorted, values left out."""
    if not isinstance(raw, Mapping):
        dump = getattr(raw, "model_dump", None)
        raw = dump(exclude_unset=True) if callable(dump) else {}
    found: set[str] = set()

    def walk(value: Any, prefix: str, depth: int) -> None:
        if depth > 8:
            return
        if isinstance(value, Mapping):
            for key, item in value.items():
                path = f"{prefix}.{key}" if prefix else str(key)
                found.add(path)
                walk(item, path, depth + 1)
        elif isinstance(value, list):
            for item in value:
                walk(item, f"{prefix}[]", depth + 1)

    walk(raw, "", 0)
    return sorted(found)


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown if len(names) <= _LISTED else f"{shown} and {len(names) - _LISTED} more"


def baseline_entry(
    prepared: Prepared, done: Completion, fields: list[str], latency: float
) -> dict[str, Any]:
    """What the baseline keeps of one answer (never the API key or headers)."""
    return {
        "request": prepared.request,
        "answer": done.text,
        "response_model": done.response_model,
        "system_fingerprint": done.system_fingerprint,
        "finish_reason": done.finish_reason,
        "response_fields": fields,
        "latency_s": round(latency, 3),
        "cost_usd": done.cost,
        "usage": {"input_tokens": done.input_tokens, "output_tokens": done.output_tokens},
    }


def differences(
    prepared: Prepared, done: Completion, fields: list[str], entry: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    """Reasons (what changed) and notes (what is worth knowing) against a recorded entry."""
    reasons: list[str] = []
    notes: list[str] = []
    recorded = entry.get("request")
    if isinstance(recorded, Mapping) and dict(recorded) != prepared.request:
        keys = sorted(
            k
            for k in set(recorded) | set(prepared.request)
            if recorded.get(k) != prepared.request.get(k)
        )
        what = ", ".join(keys)
        if "prompt" in keys:
            what += f" ({recorded.get('prompt')} -> {prepared.request.get('prompt')})"
        reasons.append(
            f"the request differs from the recorded one in {what}: re-record with --record "
            "if the canary was changed on purpose"
        )
    for key, label in (("response_model", "model snapshot"), ("finish_reason", "finish reason")):
        before, now = entry.get(key), getattr(done, key)
        if before != now:
            reasons.append(f"{label} changed: {before or 'none'} -> {now or 'none'}")
    before_fields = entry.get("response_fields")
    if isinstance(before_fields, list):
        new = [f for f in fields if f not in before_fields]
        gone = [f for f in before_fields if f not in fields]
        if new:
            reasons.append(f"new response fields: {_listed(new)}")
        if gone:
            reasons.append(f"response fields no longer sent: {_listed(gone)}")
    before_print = entry.get("system_fingerprint")
    if before_print and before_print != done.system_fingerprint:
        notes.append(
            f"system_fingerprint changed: {before_print} -> {done.system_fingerprint or 'none'}"
        )
    return reasons, notes


def score_reason(result: Score, canary: Canary) -> Optional[str]:
    """Why a score counts as a change (never quoting content), or None when it passed."""
    if not result.scored:
        return f"{result.name}: could not score ({result.error or 'no verdict'})"
    if result.passed is not False:  # passed, or a value with no threshold to fail
        return None
    if result.kind == "llm_judge":
        return f"{result.name}: the judge said {result.label}"
    if result.name == "latency":
        return f"latency over budget: {result.value:g} s (limit {canary.max_latency_s:g} s)"
    if result.name == "cost":
        return f"cost over budget: {result.value:g} USD (limit {canary.max_cost_usd:g} USD)"
    if result.name == "similarity":
        return f"similarity below threshold: {result.explanation}"
    if result.name == "exact":
        return "the answer differs from the recorded one"
    return f"{result.name} failed"
