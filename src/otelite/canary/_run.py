"""Running canaries: call the endpoint, compare with the baseline and the budgets, trace it all.

One ``canary run`` root span per run, one ``canary {name}`` span per canary with the
LLM call (``chat {model}``, priced by the LLM-call core, ``otelite.traffic=canary``)
and the scores (evaluation spans, as ``otelite.score`` records them) under it. A canary
is *changed* when its answer fails an evaluator, a budget is exceeded, or the response
differs in kind from the recorded one (another model snapshot, finish reason, or set of
response fields); *failed* when the endpoint could not answer. Reasons recorded on
spans never quote content; the answers themselves are shown only in the command's
output (they are in the baseline file anyway).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, Optional, Union

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from otelite import _semconv as sc
from otelite import _state
from otelite._scores import Score, score
from otelite.canary import _baseline
from otelite.canary._compare import baseline_entry, differences, response_fields, score_reason
from otelite.canary._file import CanaryError, CanaryFile, load
from otelite.canary._prepare import Prepared, prepare
from otelite.canary._report import CanaryReport, CanaryResult
from otelite.evals import _heuristics as heuristics
from otelite.evals._client import DEFAULT_BASE_URL, EndpointError

__all__ = ["CanaryReport", "CanaryResult", "response_fields", "run"]


# --- running -----------------------------------------------------------------------------


def _clock() -> Callable[[], float]:
    """The clock latency is read from (a function, so tests can pin it)."""
    return time.perf_counter


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _run_one(
    prepared: Prepared,
    entry: Optional[Mapping[str, Any]],
    record: bool,
    baseline_path: Path,
    clock: Callable[[], float],
) -> tuple[CanaryResult, Optional[dict[str, Any]]]:
    canary = prepared.canary
    started = clock()
    try:
        done = prepared.endpoint.complete(
            prepared.messages, temperature=canary.temperature, attributes=prepared.attributes
        )
    except EndpointError as exc:
        return (
            CanaryResult(
                canary.name,
                "failed",
                (f"the endpoint failed: {exc}",),
                model=prepared.model,
                expected=None if entry is None else entry.get("answer"),
            ),
            None,
        )
    latency = clock() - started
    fields = response_fields(done.raw)
    reasons: list[str] = []
    notes: list[str] = []
    expected: Optional[str] = None
    if not record:
        if entry is None:
            reasons.append(f"not in the baseline {baseline_path}: record it with --record")
        else:
            expected = entry.get("answer") if isinstance(entry.get("answer"), str) else None
            found, notes = differences(prepared, done, fields, entry)
            reasons.extend(found)
    question = next((m["content"] for m in reversed(prepared.messages) if m["role"] == "user"), "")
    scores: list[Score] = []
    for evaluator, needs_reference in prepared.evaluators:
        if needs_reference and expected is None:
            continue
        scores.append(evaluator(input=question, output=done.text, expected=expected))
    if canary.max_latency_s is not None:
        budget = heuristics.latency_below(canary.max_latency_s)
        scores.append(budget(input=question, output=done.text, latency_s=latency))
    if canary.max_cost_usd is not None:
        if done.cost is None:
            reasons.append(
                f"no cost for model {done.response_model or prepared.model} (no price known): "
                "add a price (OTELITE_PRICES_FILE) or drop max_cost_usd"
            )
        else:
            budget = heuristics.cost_below(canary.max_cost_usd)
            scores.append(budget(input=question, output=done.text, cost=done.cost))
    # Scores become evaluation spans under the canary's span; with tracing off
    # (OTEL_SDK_DISABLED) there is no span to hang them on, and the run goes on.
    traced = trace.get_current_span().get_span_context().is_valid
    for each in scores:
        if traced:
            score(each)
        reason = score_reason(each, canary)
        if reason is not None:
            reasons.append(reason)
    status = ("recorded" if record else "unchanged") if not reasons else "changed"
    result = CanaryResult(
        canary.name,
        status,
        tuple(reasons),
        tuple(notes),
        prepared.model,
        done.response_model,
        done.text,
        expected,
        latency,
        done.cost,
        tuple(scores),
    )
    return result, baseline_entry(prepared, done, fields, latency)


def run(
    canaries: Union[str, Path, CanaryFile],
    *,
    record: bool = False,
    baseline: Union[str, Path, None] = None,
    base_url: Optional[str] = None,
    model: Optional[str] = None,
    api_key: Optional[str] = None,
    prompts_dir: Union[str, Path, None] = None,
    timeout: float = 60.0,
    transport: Any = None,
    clock: Optional[Callable[[], float]] = None,
    now: Optional[Callable[[], str]] = None,
) -> CanaryReport:
    """Run a canary file against an OpenAI-compatible endpoint and compare with its baseline.

    ``record=True`` writes the answers as the new baseline (default
    ``NAME.baseline.json`` beside the canary file). The endpoint is ``base_url``,
    else the file's ``base_url``, else ``OPENAI_BASE_URL``, else OpenAI's; the key
    is ``api_key`` or ``OPENAI_API_KEY``. ``model`` overrides every canary's model.
    ``transport`` (an httpx transport), ``clock`` (seconds, for latency; default
    ``time.perf_counter``) and ``now`` (the baseline's UTC timestamp) are for tests.

    Raises:
        CanaryError: the file is malformed, the baseline is missing (without ``record``),
            a canary has no model, or an evaluator or prompt reference is invalid.

    Example:
        >>> from otelite import canary
        >>> report = canary.run("canaries.yaml")  # doctest: +SKIP
        >>> report.exit_code  # doctest: +SKIP
        0
    """
    import httpx

    file = canaries if isinstance(canaries, CanaryFile) else load(canaries)
    baseline_path = Path(baseline) if baseline is not None else _baseline.default_path(file.path)
    entries = _baseline.read(baseline_path)
    if entries is None and not record:
        raise CanaryError(
            f"no baseline {baseline_path}: record one first with "
            f"otelite canary run {file.path} --record"
        )
    url = (base_url or file.base_url or _env_base_url()).rstrip("/")
    directory = Path(prompts_dir) if prompts_dir is not None else None
    http = httpx.Client(timeout=timeout, transport=transport)
    try:
        prepared = [
            prepare(
                c,
                file,
                model=model,
                base_url=url,
                api_key=api_key,
                timeout=timeout,
                transport=transport,
                http=http,
                prompts_dir=directory,
            )
            for c in file.canaries
        ]
        tick = clock if clock is not None else _clock()
        results, recorded = _run_all(prepared, entries or {}, record, baseline_path, file, tick)
    finally:
        http.close()
    if record:
        kept = {c.name: entries[c.name] for c in file.canaries if entries and c.name in entries}
        try:
            _baseline.write(baseline_path, {**kept, **recorded}, (now or _now)())
        except OSError as exc:
            raise CanaryError(f"cannot write the baseline {baseline_path}: {exc}") from None
    return CanaryReport(file.path, baseline_path, url, record, tuple(results))


def _env_base_url() -> str:
    import os

    return os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL


def _run_all(
    prepared: Sequence[Prepared],
    entries: Mapping[str, Mapping[str, Any]],
    record: bool,
    baseline_path: Path,
    file: CanaryFile,
    clock: Callable[[], float],
) -> tuple[list[CanaryResult], dict[str, dict[str, Any]]]:
    tracer = _state.active().tracer
    counter = _state.active().meter.create_counter(
        sc.METRIC_CANARY_RESULTS,
        unit="{canary}",
        description="Canary results, by canary name and status (changed and failed alert)",
    )
    results: list[CanaryResult] = []
    recorded: dict[str, dict[str, Any]] = {}
    with tracer.start_as_current_span(
        "canary run",
        kind=SpanKind.INTERNAL,
        attributes={
            sc.OTELITE_SPAN_KIND: "canary_run",
            sc.OTELITE_TRAFFIC: sc.TRAFFIC_CANARY,
            sc.OTELITE_CANARY_FILE: str(file.path),
            sc.OTELITE_CANARY_COUNT: len(prepared),
        },
    ) as root:
        for one in prepared:
            with tracer.start_as_current_span(
                f"canary {one.canary.name}",
                kind=SpanKind.INTERNAL,
                attributes={
                    sc.OTELITE_SPAN_KIND: "canary",
                    sc.OTELITE_TRAFFIC: sc.TRAFFIC_CANARY,
                    sc.OTELITE_CANARY_NAME: one.canary.name,
                    sc.GEN_AI_REQUEST_MODEL: one.model,
                    **one.attributes,
                },
            ) as span:
                result, entry = _run_one(
                    one, entries.get(one.canary.name), record, baseline_path, clock
                )
                content = _state.active().content
                span.set_attribute(sc.OTELITE_CANARY_STATUS, result.status)
                if result.reasons:
                    span.set_attribute(
                        sc.OTELITE_CANARY_REASONS, [content.clean_error(r) for r in result.reasons]
                    )
                if result.status == "failed":
                    span.set_status(
                        Status(StatusCode.ERROR, content.clean_error(result.reasons[0]))
                    )
            results.append(result)
            counter.add(
                1,
                {sc.OTELITE_CANARY_NAME: result.name, sc.OTELITE_CANARY_STATUS: result.status},
            )
            if entry is not None:
                recorded[one.canary.name] = entry
        changed = sum(1 for r in results if r.status == "changed")
        failed = sum(1 for r in results if r.status == "failed")
        root.set_attribute(sc.OTELITE_CANARY_CHANGED, changed)
        root.set_attribute(sc.OTELITE_CANARY_FAILED, failed)
        if changed or failed:
            root.set_status(Status(StatusCode.ERROR, f"{changed} changed, {failed} failed"))
    return results, recorded
