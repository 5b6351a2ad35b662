"""Getting a canary ready to run: its messages (or prompt version), model, evaluators, endpoint.

Everything that can be wrong with a canary is found here, before any call is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from otelite import _semconv as sc
from otelite._exceptions import ConfigurationError, PromptError
from otelite.canary._file import Canary, CanaryError, CanaryFile, EvaluatorSpec
from otelite.evals import _heuristics as heuristics
from otelite.evals._client import ChatEndpoint
from otelite.evals._judge import llm_judge


@dataclass
class Prepared:
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


def prepare(
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
) -> Prepared:
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
    return Prepared(canary, chosen, messages, request, attributes, evaluators, endpoint)
