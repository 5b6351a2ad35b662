"""Content: the messages, instructions and tool definitions of a call, as GenAI parts.

Built only when capture is on (``configure(capture_content=True)``); the core
renders and redacts what these functions return.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from otelite import _semconv as sc
from otelite._integrations.openai._fields import _get, _given, _prompt_link

# --- content (only built when capture is on) -------------------------------------------


def _json_or_text(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


def _parts(content: Any) -> list[dict[str, Any]]:
    """Message content (a string or a list of typed parts) as convention parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if isinstance(content, Iterable) and not isinstance(content, (bytes, Mapping)):
        for part in content:
            kind = _get(part, "type")
            if kind in ("text", "input_text", "output_text"):
                parts.append({"type": "text", "content": _get(part, "text")})
            elif kind == "refusal":
                parts.append({"type": "text", "content": _get(part, "refusal")})
            elif kind == "image_url":
                parts.append(
                    {
                        "type": "uri",
                        "modality": "image",
                        "uri": _get(_get(part, "image_url"), "url"),
                    }
                )
            elif kind == "input_image":
                parts.append(
                    {
                        "type": "uri",
                        "modality": "image",
                        "uri": _get(part, "image_url") or _get(part, "file_id"),
                    }
                )
            elif kind == "input_audio":
                audio = _get(part, "input_audio")
                parts.append(
                    {
                        "type": "blob",
                        "modality": "audio",
                        "mime_type": f"audio/{_get(audio, 'format')}",
                        "content": _get(audio, "data"),
                    }
                )
            else:
                parts.append({"type": "generic", "generic_type": str(kind)})
    return parts


def _tool_call_parts(tool_calls: Any) -> list[dict[str, Any]]:
    parts = []
    for call in tool_calls or ():
        function = _get(call, "function")
        parts.append(
            {
                "type": "tool_call",
                "id": _get(call, "id"),
                "name": _get(function, "name"),
                "arguments": _json_or_text(_get(function, "arguments")),
            }
        )
    return parts


def _chat_input(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for message in kwargs.get("messages") or ():
        role = _get(message, "role")
        content = _get(message, "content")
        if role in ("system", "developer"):
            system.extend(_parts(content))
            continue
        if role == "tool":
            parts: list[dict[str, Any]] = [
                {
                    "type": "tool_call_response",
                    "id": _get(message, "tool_call_id"),
                    "response": content,
                }
            ]
        else:
            parts = _parts(content) + _tool_call_parts(_get(message, "tool_calls"))
            function_call = _get(message, "function_call")
            if function_call is not None:
                parts.append(
                    {
                        "type": "tool_call",
                        "name": _get(function_call, "name"),
                        "arguments": _json_or_text(_get(function_call, "arguments")),
                    }
                )
        entry: dict[str, Any] = {"role": role, "parts": parts}
        name = _get(message, "name")
        if name:
            entry["name"] = name
        messages.append(entry)
    out: dict[str, Any] = {sc.GEN_AI_INPUT_MESSAGES: messages}
    if system:
        out[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = system
    tools = kwargs.get("tools")
    if _given(tools):
        out[sc.GEN_AI_TOOL_DEFINITIONS] = list(tools or ())
    return out


def _completion_input(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    prompt = kwargs.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else list(prompt or ())
    return {
        sc.GEN_AI_INPUT_MESSAGES: [
            {"role": "user", "parts": [{"type": "text", "content": p}]} for p in prompts
        ]
    }


def _responses_input(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    instructions = kwargs.get("instructions")
    if isinstance(instructions, str) and instructions:
        out[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = [{"type": "text", "content": instructions}]
    items = kwargs.get("input")
    messages: list[dict[str, Any]] = []
    if isinstance(items, str):
        messages.append({"role": "user", "parts": [{"type": "text", "content": items}]})
    else:
        for item in items or ():
            kind = _get(item, "type")
            if kind == "function_call":
                messages.append(
                    {
                        "role": "assistant",
                        "parts": [
                            {
                                "type": "tool_call",
                                "id": _get(item, "call_id"),
                                "name": _get(item, "name"),
                                "arguments": _json_or_text(_get(item, "arguments")),
                            }
                        ],
                    }
                )
            elif kind == "function_call_output":
                messages.append(
                    {
                        "role": "tool",
                        "parts": [
                            {
                                "type": "tool_call_response",
                                "id": _get(item, "call_id"),
                                "response": _get(item, "output"),
                            }
                        ],
                    }
                )
            elif _get(item, "role") is not None:
                role = _get(item, "role")
                if role in ("system", "developer"):
                    out.setdefault(sc.GEN_AI_SYSTEM_INSTRUCTIONS, []).extend(
                        _parts(_get(item, "content"))
                    )
                else:
                    messages.append({"role": role, "parts": _parts(_get(item, "content"))})
            else:
                messages.append(
                    {"role": "user", "parts": [{"type": "generic", "generic_type": str(kind)}]}
                )
    out[sc.GEN_AI_INPUT_MESSAGES] = messages
    tools = kwargs.get("tools")
    if _given(tools):
        out[sc.GEN_AI_TOOL_DEFINITIONS] = list(tools or ())
    return out


def _with_prompt_variables(kwargs: Mapping[str, Any], content: dict[str, Any]) -> dict[str, Any]:
    link = _prompt_link(kwargs)
    if link is not None and link.variables:
        content[sc.OTELITE_PROMPT_VARIABLES] = dict(link.variables)
    return content
