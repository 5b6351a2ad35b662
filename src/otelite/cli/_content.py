"""``otelite trace --content``: a span's captured messages as role-labelled, wrapped text."""

from __future__ import annotations

import json
import textwrap
from typing import Any, Optional

from otelite import _semconv as sc
from otelite.store import StoredSpan

_CONTENT_KEYS = (
    sc.GEN_AI_SYSTEM_INSTRUCTIONS,
    sc.GEN_AI_INPUT_MESSAGES,
    sc.GEN_AI_OUTPUT_MESSAGES,
    sc.OTELITE_INPUT,
    sc.OTELITE_OUTPUT,
    sc.GEN_AI_TOOL_CALL_ARGUMENTS,
    sc.GEN_AI_TOOL_CALL_RESULT,
)


_CONTENT_LABELS = {
    sc.OTELITE_INPUT: "input",
    sc.OTELITE_OUTPUT: "output",
    sc.GEN_AI_TOOL_CALL_ARGUMENTS: "arguments",
    sc.GEN_AI_TOOL_CALL_RESULT: "result",
}
_CONTENT_OPERATIONS = (sc.OP_CHAT, sc.OP_TEXT_COMPLETION, sc.OP_EXECUTE_TOOL)
_CONTENT_OFF = (
    "content not captured (capture was off: configure(capture_content=True) "
    "or OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true)"
)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _cut_chars(text: str, max_chars: Optional[int]) -> str:
    if max_chars is None or len(text) <= max_chars:
        return text
    return f"{text[:max_chars]}… ({len(text) - max_chars} more characters)"


def _part_text(part: Any, max_chars: Optional[int]) -> str:
    """One message part (GenAI semantic conventions) as text, its content cut to ``max_chars``."""
    if not isinstance(part, dict):
        return _cut_chars(_as_text(part), max_chars)

    def content(key: str) -> str:
        value = part.get(key)
        return "" if value is None else _cut_chars(_as_text(value), max_chars)

    kind = part.get("type")
    if kind == "text":
        return content("content")
    if kind == "reasoning":
        return f"(reasoning) {content('content')}"
    if kind == "tool_call":
        return f"calls tool {part.get('name')}({content('arguments')}) [id {part.get('id')}]"
    if kind == "tool_call_response":
        return f"result of [id {part.get('id')}]: {content('response')}"
    if kind in ("blob", "uri", "file"):
        what = " ".join(str(part[k]) for k in ("modality", "mime_type") if part.get(k))
        where = {
            "blob": f"{len(str(part.get('content', '')))} base64 characters",
            "uri": str(part.get("uri")),
            "file": f"file id {part.get('file_id')}",
        }[kind]
        return f"[{what or kind}] {where}"
    return _cut_chars(json.dumps(part, ensure_ascii=False), max_chars)


def _messages(key: str, value: Any, max_chars: Optional[int]) -> list[tuple[str, list[str]]]:
    """``(label, texts)`` per message of a captured attribute; raw text when not JSON."""
    label = _CONTENT_LABELS.get(key)
    if label is not None:
        return [(label, [_cut_chars(_as_text(value), max_chars)])]
    try:
        data = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        data = None
    if key == sc.GEN_AI_SYSTEM_INSTRUCTIONS and isinstance(data, list):
        return [("system", [_part_text(p, max_chars) for p in data])]
    if isinstance(data, list) and all(isinstance(m, dict) for m in data):
        out = []
        for message in data:
            role = str(message.get("role", "?"))
            if message.get("finish_reason"):
                role += f" ({message['finish_reason']})"
            parts = message.get("parts")
            texts = [_part_text(p, max_chars) for p in parts] if isinstance(parts, list) else []
            out.append((role, texts or [""]))
        return out
    return [(key, [_cut_chars(_as_text(value), max_chars)])]


def _wrap(label: str, text: str, indent: str, width: int) -> list[str]:
    """``label: text`` wrapped to ``width``; continuation lines line up after the label."""
    first = f"{indent}{label}: "
    rest = " " * len(first)
    lines: list[str] = []
    for n, paragraph in enumerate(text.split("\n") or [""]):
        lead = first if n == 0 else rest
        wrapped = textwrap.wrap(
            paragraph,
            width=max(width, len(lead) + 8),
            initial_indent=lead,
            subsequent_indent=rest,
            break_long_words=True,
            break_on_hyphens=False,
            drop_whitespace=True,
        )
        lines.extend(wrapped or [lead.rstrip()])
    return lines


def content_lines(span: StoredSpan, indent: str, width: int, max_chars: Optional[int]) -> list[str]:
    """The captured content of a span as role-labelled, wrapped text."""
    lines: list[str] = []
    for key in _CONTENT_KEYS:
        if key not in span.attributes:
            continue
        for label, texts in _messages(key, span.attributes[key], max_chars):
            for n, text in enumerate(texts):
                shown = _wrap(label, text, indent, width)
                if n:  # further parts of one message: under the first, without the label
                    pad = " " * (len(label) + 2)
                    blank = " " * (len(indent) + len(pad))
                    shown = [blank + line[len(blank) :] for line in shown]
                lines.extend(shown)
    if not lines and span.attributes.get(sc.GEN_AI_OPERATION_NAME) in _CONTENT_OPERATIONS:
        lines.extend(
            textwrap.wrap(
                _CONTENT_OFF,
                width=max(width, len(indent) + 8),
                initial_indent=indent,
                subsequent_indent=" " * len(indent),
            )
        )
    return lines
