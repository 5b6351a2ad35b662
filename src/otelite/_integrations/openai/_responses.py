"""The Responses API: request, response and its event stream."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otelite import _semconv as sc
from otelite._integrations.openai._content import _json_or_text, _parts
from otelite._integrations.openai._fields import (
    _common_params,
    _get,
    _identity,
    _integer,
    _model,
    _openai_request,
    _outcome,
    _output_type,
    _prompt_attributes,
    _provider,
    _server,
    _text,
    _Usage,
)
from otelite._llm import Attributes, Outcome, Request

# --- Responses API --------------------------------------------------------------------


def _responses_request(instance: Any, kwargs: Mapping[str, Any]) -> Request:
    host, port, azure = _server(instance)
    provider = _provider(host, port, azure)
    attrs: Attributes = {}
    _common_params(kwargs, attrs)
    max_tokens = _integer(kwargs.get("max_output_tokens"))
    if max_tokens is not None:
        attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    text_format = _get(kwargs.get("text"), "format")
    output_type = _output_type(kwargs.get("text_format") or text_format)
    if output_type:
        attrs[sc.GEN_AI_OUTPUT_TYPE] = output_type
    conversation = kwargs.get("conversation")
    conversation_id = conversation if isinstance(conversation, str) else _get(conversation, "id")
    if isinstance(conversation_id, str) and conversation_id:
        attrs[sc.GEN_AI_CONVERSATION_ID] = conversation_id
    _openai_request(kwargs, provider, "responses", attrs)
    _prompt_attributes(kwargs, attrs)
    return Request(sc.OP_CHAT, provider, _model(instance, kwargs, azure), host, port, attrs)


def _responses_finish_reason(response: Any) -> str:
    status = _get(response, "status")
    if status == "completed":
        output = _get(response, "output") or ()
        return "tool_calls" if any(_get(i, "type") == "function_call" for i in output) else "stop"
    if status == "incomplete":
        reason = _get(_get(response, "incomplete_details"), "reason")
        return {"max_output_tokens": "length", "content_filter": "content_filter"}.get(
            reason, str(reason)
        )
    return "error" if status in ("failed", "cancelled", None) else str(status)


def _responses_output(response: Any) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for item in _get(response, "output") or ():
        kind = _get(item, "type")
        if kind == "message":
            parts.extend(_parts(_get(item, "content")))
        elif kind == "function_call":
            parts.append(
                {
                    "type": "tool_call",
                    "id": _get(item, "call_id"),
                    "name": _get(item, "name"),
                    "arguments": _json_or_text(_get(item, "arguments")),
                }
            )
        elif kind == "reasoning":
            for summary in _get(item, "summary") or ():
                parts.append({"type": "reasoning", "content": _get(summary, "text")})
        elif kind:
            parts.append({"type": "server_tool_call", "name": str(kind), "id": _get(item, "id")})
    return [
        {"role": "assistant", "parts": parts, "finish_reason": _responses_finish_reason(response)}
    ]


def _responses_text(response: Any) -> str:
    parts = []
    for item in _get(response, "output") or ():
        for content in _get(item, "content") or ():
            parts.append(str(_get(content, "text") or _get(content, "refusal") or ""))
        if _get(item, "type") == "function_call":
            parts.append(f"{_get(item, 'name') or ''}{_get(item, 'arguments') or ''}")
    return "".join(parts)


def _responses_outcome(response: Any, request: Request, kwargs: Mapping[str, Any]) -> Outcome:
    attrs: Attributes = {}
    model = _identity(attrs, _get(response, "id"), _get(response, "model"))
    attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = [_responses_finish_reason(response)]
    tier = _text(_get(response, "service_tier"))
    if request.provider == sc.PROVIDER_OPENAI and tier:
        attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] = tier
    raw_usage = _get(response, "usage")
    usage = _Usage(raw_usage, "input_tokens", "output_tokens") if raw_usage is not None else None
    return _outcome(
        attrs,
        model,
        usage,
        request,
        kwargs,
        lambda: _responses_text(response),
        lambda: _responses_output(response),
        tier,
        refused=any(
            _get(content, "type") == "refusal"
            for item in _get(response, "output") or ()
            for content in _get(item, "content") or ()
        ),
        response=response,
    )


class ResponsesAccumulator:
    """Follows a Responses API event stream; the terminal event carries the whole response."""

    __slots__ = ("_final", "_kwargs", "_latest", "_request", "_text")

    def __init__(
        self, request: Request, kwargs: Mapping[str, Any], capture: bool, hide_usage: bool
    ) -> None:
        self._request = request
        self._kwargs = kwargs
        self._latest: Any = None
        self._final: Any = None
        self._text: list[str] = []

    def add(self, event: Any) -> bool:
        kind = _get(event, "type")
        response = _get(event, "response")
        if response is not None:
            self._latest = response
            if kind in ("response.completed", "response.incomplete", "response.failed"):
                self._final = response
        elif kind == "response.output_text.delta":
            delta = _get(event, "delta")
            if isinstance(delta, str):
                self._text.append(delta)  # kept for estimating usage if the stream is cut short
        return False

    def outcome(self, failed: bool) -> Outcome:
        if self._final is not None:
            return _responses_outcome(self._final, self._request, self._kwargs)
        # Ended before the terminal event: what the created/in-progress events said, and
        # the text so far; finish reason "error" only when an error cut it off.
        attrs: Attributes = {}
        response = self._latest
        model = _identity(attrs, _get(response, "id"), _get(response, "model"))
        text = "".join(self._text)
        message: dict[str, Any] = {
            "role": "assistant",
            "parts": [{"type": "text", "content": text}] if text else [],
        }
        if failed:
            attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = ["error"]
            message["finish_reason"] = "error"
        return _outcome(
            attrs, model, None, self._request, self._kwargs, lambda: text, lambda: [message], None
        )
