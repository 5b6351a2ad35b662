"""Fine-tuning export: recorded LLM calls written as OpenAI chat fine-tuning JSONL.

This is all the module does (``otelite export finetune`` is built on it).
Evaluation datasets are :class:`otelite.evals.Dataset`; synthetic test inputs
are :func:`otelite.evals.synthesize`.

Only calls recorded with content capture on can be exported (the messages are
needed). Each example is one call: its system instructions, input messages and
the model's first choice, with tool calls and tool results kept in OpenAI's
format. Identical examples are written once.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

from otelite import _jsonl
from otelite import _semconv as sc
from otelite._exceptions import ConfigurationError
from otelite._messages import UnsupportedPart, text_of


class RecordedCall(Protocol):
    """What an export needs of a recorded span (``otelite.store.StoredSpan`` fits)."""

    @property
    def attributes(self) -> Mapping[str, Any]: ...

    @property
    def status_code(self) -> str: ...


__all__ = [
    "FinetuneResult",
    "RecordedCall",
    "describe_skipped",
    "explain_empty",
    "finetune_records",
    "to_chat_example",
    "write_jsonl",
]

SKIP_NO_CONTENT = "without captured content"
SKIP_NOT_CHAT = "not chat calls"
SKIP_FAILED = "failed calls"
SKIP_UNSUPPORTED = "with images, audio or files"
SKIP_DUPLICATE = "duplicates"
SKIP_FILTERED = "not matching the filters"
SKIP_LOW_SCORE = "below the minimum score or unscored"

# How each reason reads with a count: (one, many).
_SKIP_PHRASES = {
    SKIP_NO_CONTENT: ("call without captured content", "calls without captured content"),
    SKIP_NOT_CHAT: ("non-chat call", "non-chat calls"),
    SKIP_FAILED: ("failed call", "failed calls"),
    SKIP_UNSUPPORTED: ("call with images, audio or files", "calls with images, audio or files"),
    SKIP_DUPLICATE: ("duplicate", "duplicates"),
    SKIP_FILTERED: ("call not matching the filters", "calls not matching the filters"),
    SKIP_LOW_SCORE: (
        "call below the minimum score or unscored",
        "calls below the minimum score or unscored",
    ),
}

# The filters of `finetune_records`, in the order they apply (keys of `FinetuneResult.removed`).
FILTERS = ("prompt", "label", "tags", "keep")


@dataclass
class FinetuneResult:
    """The examples to write and why other calls were left out."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    seen: int = 0
    #: how many calls each filter (``prompt``, ``label``, ``tags``, ``keep``) left out; those
    #: calls are also counted in ``skipped`` (as filtered, or below the minimum score)
    removed: Counter[str] = field(default_factory=Counter)


def describe_skipped(reason: str, count: int) -> str:
    """``1 failed call``, ``2 duplicates``: a ``FinetuneResult.skipped`` entry for people."""
    one, many = _SKIP_PHRASES.get(reason, (reason, reason))
    return f"{count} {one if count == 1 else many}"


def _parse_prompt(prompt: Optional[str]) -> tuple[str, Optional[str]]:
    if not prompt:
        return "", None
    name, at, version = prompt.partition("@")
    if not name.strip() or (at and not version.strip().isdigit()) or ":" in name:
        raise ConfigurationError(
            f"prompt {prompt!r}: give NAME or NAME@VERSION (a label, NAME:LABEL, is resolved "
            "through the registry first: PromptRegistry().get(NAME, label=LABEL).version)"
        )
    return name.strip(), str(int(version)) if at else None


def _tool_calls(parts: Iterable[Any]) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    for part in parts:
        if part.get("type") == "tool_call":
            arguments = part.get("arguments")
            calls.append(
                {
                    "id": part.get("id") or f"call_{len(calls)}",
                    "type": "function",
                    "function": {
                        "name": part.get("name") or "",
                        "arguments": arguments
                        if isinstance(arguments, str)
                        else json.dumps(arguments),
                    },
                }
            )
    return calls


def _message(role: str, parts: Sequence[Any]) -> list[dict[str, Any]]:
    if role == "tool":
        out = []
        for part in parts:
            if part.get("type") == "tool_call_response":
                response = part.get("response")
                out.append(
                    {
                        "role": "tool",
                        "tool_call_id": part.get("id") or "",
                        "content": response if isinstance(response, str) else json.dumps(response),
                    }
                )
        return out
    message: dict[str, Any] = {"role": role, "content": text_of(parts, strict=True)}
    calls = _tool_calls(parts)
    if calls and role == "assistant":
        message["tool_calls"] = calls
        if not message["content"]:
            message["content"] = None
    return [message]


def to_chat_example(span: RecordedCall) -> Optional[dict[str, Any]]:
    """One call as ``{"messages": [...]}`` in OpenAI's chat fine-tuning format, or None."""
    a = span.attributes
    raw_in = a.get(sc.GEN_AI_INPUT_MESSAGES)
    raw_out = a.get(sc.GEN_AI_OUTPUT_MESSAGES)
    if not isinstance(raw_in, str) or not isinstance(raw_out, str):
        return None
    inputs = json.loads(raw_in)
    outputs = json.loads(raw_out)
    messages: list[dict[str, Any]] = []
    system = a.get(sc.GEN_AI_SYSTEM_INSTRUCTIONS)
    if isinstance(system, str):
        messages.append({"role": "system", "content": text_of(json.loads(system), strict=True)})
    for item in inputs:
        messages.extend(_message(str(item.get("role")), item.get("parts") or []))
    if not outputs:
        return None
    messages.extend(_message("assistant", outputs[0].get("parts") or []))
    example: dict[str, Any] = {"messages": messages}
    tools = a.get(sc.GEN_AI_TOOL_DEFINITIONS)
    if isinstance(tools, str):
        example["tools"] = json.loads(tools)
    return example


def finetune_records(
    spans: Iterable[RecordedCall],
    *,
    prompt: Optional[str] = None,
    label: Optional[str] = None,
    tags: Sequence[str] = (),
    keep: Optional[Callable[[Any], bool]] = None,
) -> FinetuneResult:
    """Select recorded chat calls and convert them; ``prompt`` is NAME (every version) or
    NAME@VERSION, matched against the prompt name and version recorded on each call.

    ``spans`` are LLM call spans, e.g. ``LocalStore.llm_spans(model=..., since_ns=...)``;
    ``keep`` is a further filter (``otelite export finetune --min-score`` uses it). The
    filters apply in the order ``prompt``, ``label``, ``tags``, ``keep``, and
    ``FinetuneResult.removed`` counts the calls each one left out.

    Raises:
        ValueError: ``prompt`` is not NAME or NAME@VERSION.
    """
    result = FinetuneResult()
    hashes: set[str] = set()
    prompt_name, prompt_version = _parse_prompt(prompt)
    for span in spans:
        result.seen += 1
        a = span.attributes
        removed_by = None
        if prompt_name and (
            a.get(sc.GEN_AI_PROMPT_NAME) != prompt_name
            or (
                prompt_version is not None
                and str(a.get(sc.GEN_AI_PROMPT_VERSION)) != prompt_version
            )
        ):
            removed_by = "prompt"
        elif label and a.get(sc.OTELITE_PROMPT_LABEL) != label:
            removed_by = "label"
        elif tags and not set(tags) <= set(a.get(sc.OTELITE_TAGS) or ()):
            removed_by = "tags"
        if removed_by is not None:
            result.removed[removed_by] += 1
            result.skipped[SKIP_FILTERED] += 1
            continue
        if a.get(sc.GEN_AI_OPERATION_NAME) != sc.OP_CHAT:
            result.skipped[SKIP_NOT_CHAT] += 1
            continue
        if span.status_code == "ERROR":
            result.skipped[SKIP_FAILED] += 1
            continue
        if keep is not None and not keep(span):
            result.removed["keep"] += 1
            result.skipped[SKIP_LOW_SCORE] += 1
            continue
        try:
            example = to_chat_example(span)
        except UnsupportedPart:
            result.skipped[SKIP_UNSUPPORTED] += 1
            continue
        if example is None:
            result.skipped[SKIP_NO_CONTENT] += 1
            continue
        digest = hashlib.sha256(json.dumps(example, sort_keys=True).encode()).hexdigest()
        if digest in hashes:
            result.skipped[SKIP_DUPLICATE] += 1
            continue
        hashes.add(digest)
        result.records.append(example)
    return result


def explain_empty(result: FinetuneResult) -> str:
    """Why an export found nothing to write, and what to do about it."""
    if result.seen == 0:
        return "the store holds no LLM calls in that range; instrument your client with otelite.instrument_openai()"
    calls = f"{result.seen} LLM call{'s' if result.seen != 1 else ''}"
    if result.skipped.get(SKIP_NO_CONTENT, 0) and len(result.skipped) == 1:
        verb = "was" if result.seen == 1 else "were"
        return (
            f"{calls} {verb} found but none has captured content; record with "
            "configure(capture_content=True) to export them"
        )
    parts = [f"{name} removed {result.removed[name]}" for name in FILTERS if result.removed[name]]
    parts += [
        describe_skipped(why, n)
        for why, n in sorted(result.skipped.items())
        if why not in (SKIP_FILTERED, SKIP_LOW_SCORE)
    ]
    return f"0 of {calls} kept: {', '.join(parts)}"


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Write one JSON object per line, atomically (a half-written file never appears)."""
    _jsonl.write_jsonl(path, records)
