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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from otelite import _semconv as sc
from otelite import _state
from otelite._evaluation import Score, score
from otelite._exceptions import ConfigurationError, PromptError
from otelite.canary import _baseline
from otelite.canary._file import Canary, CanaryError, CanaryFile, EvaluatorSpec, load
from otelite.evals import _heuristics as heuristics
from otelite.evals._client import DEFAULT_BASE_URL, ChatEndpoint, Completion, EndpointError
from otelite.evals._judge import llm_judge

STATUSES = ("unchanged", "recorded", "changed", "failed")
_LISTED = 5  # response fields named in a reason before "and N more"
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


# --- preparing a canary -------------------------------------------------------------------


@dataclass
class _Prepared:
    canary: Canary
    model: str
    messages: list[dict[str, str]]
    request: dict[str, Any]
    attributes: dict[str, Any]
    evaluators: list[tuple[Any, bool]]  # (evaluator, compares with the baseline answer)
    endpoint: ChatEndpoint


def _split_ref(ref: str) -> tuple[str, Optional[int], Optional[str]]:
    name, version, label = ref.strip(), None, None
    if "@" in name:
        name, _, number = name.partition("@")
        if not number.strip().isdigit():
            raise ValueError(f"the version after '@' must be a number, e.g. {name or 'qa'}@3")
        version = int(number)
    elif ":" in name:
        name, _, label = name.partition(":")
        label = label.strip()
        if not label:
            raise ValueError("give a label after ':', e.g. qa:production")
    if not name.strip():
        raise ValueError("give NAME, NAME@VERSION or NAME:LABEL, e.g. qa:production")
    return name.strip(), version, label


def _evaluator(spec: EvaluatorSpec, judge_defaults: Mapping[str, Any]) -> tuple[Any, bool]:
    """An otelite.evals evaluator for ``spec``, and whether it compares with the baseline."""
    options = spec.options
    kwargs: dict[str, Any] = dict(options) if isinstance(options, Mapping) else {}
    if spec.kind == "exact":
        return heuristics.exact_match(name="exact", **kwargs), True
    if spec.kind == "similarity":
        return heuristics.similarity(name="similarity", **kwargs), True
    if spec.kind == "is_json":
        return heuristics.is_json(name="is_json"), False
    if spec.kind == "schema":
        return heuristics.matches_schema(options, name="schema"), False
    if spec.kind == "contains":
        values = kwargs.pop("values", None) if kwargs else options
        return heuristics.contains(values, name="contains", **kwargs), False
    if spec.kind == "regex":
        if isinstance(options, str):
            return heuristics.regex(options, name="regex"), False
        return heuristics.regex(name="regex", **kwargs), False
    # judge: a built-in template's name, or options: {template: NAME} or {name, prompt, choices}.
    if isinstance(options, str) or options is None:
        kwargs = {"template": options or "correctness"}
    settings = {**judge_defaults, **kwargs}
    builtin = settings.pop("template", None)
    prompt = settings.pop("prompt", None)
    name = settings.pop("name", None)
    if prompt is None:
        judge = llm_judge(builtin or name or "correctness", None, **settings)
    else:
        judge = llm_judge(name or "judge", prompt, **settings)
    return judge, "expected" in judge.template.fields


def _prepare(
    canary: Canary,
    file: CanaryFile,
    *,
    model: Optional[str],
    base_url: str,
    api_key: Optional[str],
    timeout: float,
    transport: Any,
    http: Any,
    prompts_dir: Optional[Path],
) -> _Prepared:
    where = f"canary {canary.name!r}"
    attributes: dict[str, Any] = {}
    request: dict[str, Any] = {}
    if canary.prompt is not None:
        from otelite.prompts import PromptRegistry

        try:
            name, version, label = _split_ref(canary.prompt)
            found = PromptRegistry(prompts_dir or file.prompts_dir).get(
                name, version=version, label=label
            )
            compiled = found.compile(**canary.variables)
        except (PromptError, ValueError) as exc:
            raise CanaryError(f"{where}: prompt {canary.prompt!r}: {exc}") from None
        if isinstance(compiled, str):
            messages = [{"role": "user", "content": str(compiled)}]
        else:
            messages = [{"role": m["role"], "content": m["content"]} for m in compiled]
        attributes = {sc.GEN_AI_PROMPT_NAME: found.name, sc.GEN_AI_PROMPT_VERSION: found.version}
        if found.label:
            attributes[sc.OTELITE_PROMPT_LABEL] = found.label
        request["prompt"] = f"{found.name}@{found.version}"
        chosen = model or canary.model or found.config.get("model")
    else:
        messages = [dict(m) for m in canary.messages or ()]
        chosen = model or canary.model
    if not isinstance(chosen, str) or not chosen:
        raise CanaryError(f"{where}: no model; give model: in the canary or defaults, or --model")
    request.update({"model": chosen, "messages": messages, "temperature": canary.temperature})
    try:  # its messages name the canary already
        endpoint = ChatEndpoint(
            client=http,
            model=chosen,
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            who=where,
            traffic=sc.TRAFFIC_CANARY,
        )
        if endpoint.provider == sc.PROVIDER_OPENAI and not endpoint.api_key:
            raise ConfigurationError(
                f"{where}: no API key for {endpoint.base_url}; set OPENAI_API_KEY"
            )
    except ConfigurationError as exc:
        raise CanaryError(str(exc)) from None
    try:
        judge_defaults = {
            "model": chosen,
            "base_url": base_url,
            "api_key": api_key,
            "timeout": timeout,
            "transport": transport,
        }
        evaluators = [_evaluator(spec, judge_defaults) for spec in canary.evaluators]
        heuristics.check_evaluators([e for e, _ in evaluators])
    except (ValueError, TypeError) as exc:  # ConfigurationError is a ValueError
        raise CanaryError(f"{where}: {exc}") from None
    return _Prepared(canary, chosen, messages, request, attributes, evaluators, endpoint)


# --- comparing ---------------------------------------------------------------------------


def _entry(
    prepared: _Prepared, done: Completion, fields: list[str], latency: float
) -> dict[str, Any]:
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


def _differences(
    prepared: _Prepared, done: Completion, fields: list[str], entry: Mapping[str, Any]
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


def _score_reason(result: Score, canary: Canary) -> Optional[str]:
    """Why a score counts as a change (never quoting content), or None when it passed."""
    if result.passed is True:
        return None
    if not result.scored:
        return f"{result.name}: could not score ({result.error or 'no verdict'})"
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
    return f"{result.name} failed" if result.passed is False else None


# --- running -----------------------------------------------------------------------------


def _clock() -> Callable[[], float]:
    """The clock latency is read from (a function, so tests can pin it)."""
    return time.perf_counter


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _run_one(
    prepared: _Prepared,
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
            found, notes = _differences(prepared, done, fields, entry)
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
        reason = _score_reason(each, canary)
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
    return result, _entry(prepared, done, fields, latency)


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
            _prepare(
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
    prepared: Sequence[_Prepared],
    entries: Mapping[str, Mapping[str, Any]],
    record: bool,
    baseline_path: Path,
    file: CanaryFile,
    clock: Callable[[], float],
) -> tuple[list[CanaryResult], dict[str, dict[str, Any]]]:
    tracer = _state.active().tracer
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
            if entry is not None:
                recorded[one.canary.name] = entry
        changed = sum(1 for r in results if r.status == "changed")
        failed = sum(1 for r in results if r.status == "failed")
        root.set_attribute(sc.OTELITE_CANARY_CHANGED, changed)
        root.set_attribute(sc.OTELITE_CANARY_FAILED, failed)
        if changed or failed:
            root.set_status(Status(StatusCode.ERROR, f"{changed} changed, {failed} failed"))
    return results, recorded
