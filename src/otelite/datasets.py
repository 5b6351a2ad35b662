"""Reusing recorded LLM calls: OpenAI chat fine-tuning JSONL from the local store.

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


class RecordedCall(Protocol):
    """What an export needs of a recorded span (``otelite.store.StoredSpan`` fits)."""

    @property
    def attributes(self) -> Mapping[str, Any]: ...

    @property
    def status_code(self) -> str: ...


__all__ = [
    "FinetuneResult",
    "RecordedCall",
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


@dataclass
class FinetuneResult:
    """The examples to write and why other calls were left out."""

    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    seen: int = 0


class _Unsupported(Exception):
    pass


def _text_of(parts: Iterable[Any]) -> str:
    texts = []
    for part in parts:
        kind = part.get("type")
        if kind == "text":
            texts.append(str(part.get("content") or ""))
        elif kind not in ("tool_call", "tool_call_response", "reasoning"):
            raise _Unsupported(kind)
    return "".join(texts)


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
    message: dict[str, Any] = {"role": role, "content": _text_of(parts)}
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
        messages.append({"role": "system", "content": _text_of(json.loads(system))})
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
    """Select recorded chat calls and convert them; ``prompt`` is NAME or NAME@VERSION.

    ``spans`` are LLM call spans, e.g. ``LocalStore.llm_spans(model=..., since_ns=...)``;
    ``keep`` is a further filter (``otelite export finetune --min-score`` uses it).
    """
    result = FinetuneResult()
    hashes: set[str] = set()
    prompt_name, _, prompt_version = (prompt or "").partition("@")
    for span in spans:
        result.seen += 1
        a = span.attributes
        if a.get(sc.GEN_AI_OPERATION_NAME) != sc.OP_CHAT:
            result.skipped[SKIP_NOT_CHAT] += 1
            continue
        if prompt_name and (
            a.get(sc.GEN_AI_PROMPT_NAME) != prompt_name
            or (prompt_version and str(a.get(sc.GEN_AI_PROMPT_VERSION)) != prompt_version)
        ):
            result.skipped[SKIP_FILTERED] += 1
            continue
        if label and a.get(sc.OTELITE_PROMPT_LABEL) != label:
            result.skipped[SKIP_FILTERED] += 1
            continue
        if tags and not set(tags) <= set(a.get(sc.OTELITE_TAGS) or ()):
            result.skipped[SKIP_FILTERED] += 1
            continue
        if span.status_code == "ERROR":
            result.skipped[SKIP_FAILED] += 1
            continue
        if keep is not None and not keep(span):
            result.skipped[SKIP_LOW_SCORE] += 1
            continue
        try:
            example = to_chat_example(span)
        except _Unsupported:
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
    if result.skipped.get(SKIP_NO_CONTENT, 0) and len(result.skipped) == 1:
        return (
            f"{result.seen} LLM calls were found but none has captured content; record with "
            "configure(capture_content=True) to export them"
        )
    details = ", ".join(f"{n} {why}" for why, n in sorted(result.skipped.items()))
    return f"{result.seen} LLM calls were found, none exportable ({details}); are the filters too narrow?"


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Write one JSON object per line, atomically (a half-written file never appears)."""
    _jsonl.write_jsonl(path, records)
