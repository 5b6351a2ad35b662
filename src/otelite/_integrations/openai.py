"""The OpenAI adapter: maps ``openai`` requests, responses and chunks to GenAI attributes.

The only module that imports ``openai``. It patches the resource classes (so
clients created before or after are covered) with wrapt, and restores the
originals on :func:`uninstrument_openai`. Span lifecycle, errors, metrics and
stream handling live in ``_wrapper`` and ``_streams``; this file only reads
OpenAI's shapes. Chat completions, legacy completions, embeddings and the
Responses API are covered, sync and async, plain and streamed, including the
``with_raw_response`` / ``with_streaming_response`` variants and the
``parse`` / ``stream`` helpers.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import json
import logging
import sys
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Callable, Optional

import wrapt
from opentelemetry import trace as _trace

from otelite import _guard, _tokens
from otelite import _semconv as sc
from otelite._exceptions import ConfigurationError
from otelite._integrations import _hosts
from otelite._integrations._streams import AsyncStreamProxy, SyncStreamProxy
from otelite._integrations._wrapper import (
    Attributes,
    Invocation,
    Outcome,
    Request,
    StreamRecorder,
    start,
    stop_clock,
)
from otelite._tokens import count_any_tokens, count_message_tokens, count_tokens

if TYPE_CHECKING:
    _Proxy = wrapt.ObjectProxy[Any]
else:
    _Proxy = wrapt.ObjectProxy

# Set while an instrumented call runs: a call made inside it (a helper calling ``create``)
# is not recorded twice. Its value holds the most retries the client took for the call
# (``retries_taken`` of the HTTP requests it built), for ``http.request.resend_count``.
_inside_call: contextvars.ContextVar[Optional[list[int]]] = contextvars.ContextVar(
    "otelite_openai_call", default=None
)

_SENTINELS = frozenset({"NotGiven", "Omit"})


# --- reading OpenAI's shapes ---------------------------------------------------------


def _get(obj: Any, name: str) -> Any:
    """A field of a dict (request parameters) or an object (openai's models); ``None`` when absent."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _given(value: Any) -> bool:
    return value is not None and type(value).__name__ not in _SENTINELS


def _count(value: Any) -> Optional[int]:
    """A token count: a non-negative int, else ``None`` (unreadable counts are never used)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _integer(value: Any) -> Optional[int]:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


_servers: weakref.WeakKeyDictionary[Any, tuple[Any, tuple[Optional[str], Optional[int], bool]]] = (
    weakref.WeakKeyDictionary()
)


def _server(instance: Any) -> tuple[Optional[str], Optional[int], bool]:
    """Host and port of the resource's client base URL, and whether it is an Azure client."""
    client = getattr(instance, "_client", None)
    url = getattr(client, "base_url", None)
    try:
        cached = _servers.get(client)
    except TypeError:  # not weak-referenceable
        cached = None
    if cached is not None and cached[0] is url:
        return cached[1]
    result = _read_server(client, url)
    with contextlib.suppress(TypeError):
        _servers[client] = (url, result)
    return result


def _read_server(client: Any, url: Any) -> tuple[Optional[str], Optional[int], bool]:
    host = getattr(url, "host", None) or None
    port = getattr(url, "port", None)
    if port is None and host:
        port = 443 if getattr(url, "scheme", "https") == "https" else 80
    azure = type(client).__name__ in ("AzureOpenAI", "AsyncAzureOpenAI")
    return host, port, azure


def _model(instance: Any, kwargs: Mapping[str, Any], azure: bool) -> Optional[str]:
    """The requested model; for an Azure client bound to a deployment, that deployment."""
    if azure:
        deployment = getattr(getattr(instance, "_client", None), "_azure_deployment", None)
        if isinstance(deployment, str) and deployment:
            return deployment
    model = kwargs.get("model")
    return model if isinstance(model, str) else None


def _provider(host: Optional[str], port: Optional[int], azure: bool) -> str:
    return sc.PROVIDER_AZURE_OPENAI if azure else _hosts.provider_for(host, port)


def _output_type(response_format: Any) -> Optional[str]:
    if isinstance(response_format, type):
        return "json"  # a pydantic model given to .parse(): structured output
    kind = _get(response_format, "type")
    if kind in ("json_object", "json_schema"):
        return "json"
    if kind == "text":
        return "text"
    return None


def _common_params(kwargs: Mapping[str, Any], attrs: Attributes) -> None:
    for key, attr, convert in (
        ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE, _number),
        ("top_p", sc.GEN_AI_REQUEST_TOP_P, _number),
        ("frequency_penalty", sc.GEN_AI_REQUEST_FREQUENCY_PENALTY, _number),
        ("presence_penalty", sc.GEN_AI_REQUEST_PRESENCE_PENALTY, _number),
        ("seed", sc.GEN_AI_REQUEST_SEED, _integer),
    ):
        value = kwargs.get(key)
        if _given(value):
            converted = convert(value)
            if converted is not None:  # 0 and 0.0 are real values and are recorded
                attrs[attr] = converted
    n = _integer(kwargs.get("n"))
    if n is not None and n != 1:
        attrs[sc.GEN_AI_REQUEST_CHOICE_COUNT] = n
    stop = kwargs.get("stop")
    if isinstance(stop, str):
        attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = [stop]
    elif isinstance(stop, (list, tuple)) and all(isinstance(s, str) for s in stop) and stop:
        attrs[sc.GEN_AI_REQUEST_STOP_SEQUENCES] = list(stop)
    if kwargs.get("stream") is True:
        attrs[sc.GEN_AI_REQUEST_STREAM] = True


def _openai_request(
    kwargs: Mapping[str, Any], provider: str, api_type: Optional[str], attrs: Attributes
) -> None:
    if provider != sc.PROVIDER_OPENAI:
        return
    tier = kwargs.get("service_tier")
    if _given(tier) and isinstance(tier, str):
        attrs[sc.OPENAI_REQUEST_SERVICE_TIER] = tier
    if api_type:
        attrs[sc.OPENAI_API_TYPE] = api_type


class _Usage:
    """Token counts read from a response's usage object."""

    __slots__ = ("audio_in", "audio_out", "cached", "input", "output", "reasoning", "unreadable")

    def __init__(self, usage: Any, input_key: str, output_key: str) -> None:
        raw_in, raw_out = _get(usage, input_key), _get(usage, output_key)
        self.input = _count(raw_in)
        self.output = _count(raw_out)
        # A server that sends negative or non-numeric counts: recorded as unreadable, never priced.
        self.unreadable = (raw_in is not None and self.input is None) or (
            raw_out is not None and self.output is None
        )
        if self.unreadable:
            self.input = self.output = None
        details_in = _get(usage, "prompt_tokens_details") or _get(usage, "input_tokens_details")
        details_out = _get(usage, "completion_tokens_details") or _get(
            usage, "output_tokens_details"
        )
        self.cached = _count(_get(details_in, "cached_tokens"))
        self.audio_in = _count(_get(details_in, "audio_tokens"))
        self.reasoning = _count(_get(details_out, "reasoning_tokens"))
        self.audio_out = _count(_get(details_out, "audio_tokens"))

    def apply(self, attrs: Attributes) -> None:
        if self.unreadable:
            attrs[sc.OTELITE_USAGE_UNREADABLE] = True
            return
        if self.input is not None:
            attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = self.input
        if self.output is not None:
            attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = self.output
        if self.cached is not None:
            attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = self.cached
        if self.reasoning is not None:
            attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = self.reasoning


def _estimate_input(operation: str, kwargs: Mapping[str, Any], model: str) -> int:
    """Prompt tokens counted from the request, when the server reported none.

    Never waits for an encoding to load (``wait=0``): until it is loaded in the
    background, the count is the chars/4 estimate.
    """
    if operation == sc.OP_CHAT and "messages" in kwargs:
        tools = kwargs.get("tools")
        prompt = int(
            count_message_tokens(
                kwargs.get("messages") or (), model, tools if _given(tools) else None, wait=0
            )
        )
        # A structured-output schema is part of the prompt the model sees.
        schema = _get(_get(kwargs.get("response_format"), "json_schema"), "schema")
        if isinstance(schema, Mapping):
            prompt += int(count_any_tokens(schema, model, wait=0))
        return prompt
    if "prompt" in kwargs:
        return int(count_any_tokens(kwargs.get("prompt") or "", model, wait=0))
    total = 0
    instructions = kwargs.get("instructions")
    if isinstance(instructions, str):
        total += count_tokens(instructions, model, wait=0)
    items = kwargs.get("input")
    if isinstance(items, str) or operation == sc.OP_EMBEDDINGS:
        return total + count_any_tokens(items if items is not None else "", model, wait=0)
    messages = [i for i in items or () if _get(i, "role") is not None]
    others = [i for i in items or () if _get(i, "role") is None]
    if messages:
        total += count_message_tokens(messages, model, wait=0)
    if others:
        total += count_any_tokens(others, model, wait=0)
    return total


def _outcome(
    attrs: Attributes,
    model: Optional[str],
    usage: Optional[_Usage],
    request: Request,
    kwargs: Mapping[str, Any],
    output_text: Callable[[], str],
    output: Optional[Callable[[], Any]],
    service_tier: Optional[str],
    estimate_output: bool = True,
    refused: bool = False,
) -> Outcome:
    """Attributes plus usage; when the server sent no usage, counted from request and output."""
    estimated = False
    if usage is not None:
        usage.apply(attrs)
        input_tokens, output_tokens = usage.input, usage.output
    else:
        input_tokens = output_tokens = None
    if usage is None or (usage.input is None and usage.output is None and not usage.unreadable):
        reference = model or request.model or ""
        with _guard.contained("estimating token usage"):
            # Loaded before counting: every count below is tiktoken's. Never waited for here.
            exact = _tokens.is_loaded(reference)
            input_tokens = int(_estimate_input(request.operation, kwargs, reference))
            attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
            if estimate_output:
                output_tokens = int(count_tokens(output_text(), reference, wait=0))
                attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
            attrs[sc.OTELITE_USAGE_ESTIMATED] = True
            attrs[sc.OTELITE_USAGE_ESTIMATE_METHOD] = (
                sc.ESTIMATE_METHOD_TIKTOKEN if exact else sc.ESTIMATE_METHOD_CHARS
            )
            estimated = True
    return Outcome(
        attrs,
        model,
        input_tokens,
        output_tokens,
        output,
        cache_read_tokens=(usage.cached or 0) if usage is not None else 0,
        audio_input_tokens=(usage.audio_in or 0) if usage is not None else 0,
        audio_output_tokens=(usage.audio_out or 0) if usage is not None else 0,
        service_tier=service_tier,
        estimated=estimated,
        text=output_text,
        refused=refused,
    )


def _openai_response(obj: Any, provider: str, attrs: Attributes) -> None:
    if provider != sc.PROVIDER_OPENAI:
        return
    tier = _text(_get(obj, "service_tier"))
    if tier:
        attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] = tier
    fingerprint = _text(_get(obj, "system_fingerprint"))
    if fingerprint:
        attrs[sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fingerprint


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


# --- chat completions -------------------------------------------------------------------


def _prompt_link(kwargs: Mapping[str, Any]) -> Any:
    """The prompt version the call's input was compiled from (see otelite.prompts), if any."""
    for key in ("messages", "prompt", "input", "instructions"):
        value = kwargs.get(key)
        link = getattr(value, sc.PROMPT_LINK, None)
        if link is not None:
            return link
        if isinstance(value, list):
            for item in value:
                link = getattr(item, sc.PROMPT_LINK, None) or getattr(
                    _get(item, "content"), sc.PROMPT_LINK, None
                )
                if link is not None:
                    return link
    return None


def _prompt_attributes(kwargs: Mapping[str, Any], attrs: Attributes) -> None:
    link = _prompt_link(kwargs)
    if link is None:
        return
    attrs[sc.GEN_AI_PROMPT_NAME] = link.name
    attrs[sc.GEN_AI_PROMPT_VERSION] = link.version
    if link.label:
        attrs[sc.OTELITE_PROMPT_LABEL] = link.label


def _with_prompt_variables(kwargs: Mapping[str, Any], content: dict[str, Any]) -> dict[str, Any]:
    link = _prompt_link(kwargs)
    if link is not None and link.variables:
        content[sc.OTELITE_PROMPT_VARIABLES] = dict(link.variables)
    return content


def _identity(attrs: Attributes, response_id: Any, model: Any) -> Optional[str]:
    """Record the response id and model (when they are real strings); returns the model."""
    found_id, found_model = _text(response_id), _text(model)
    if found_id:
        attrs[sc.GEN_AI_RESPONSE_ID] = found_id
    if found_model:
        attrs[sc.GEN_AI_RESPONSE_MODEL] = found_model
    return found_model


def _finish_reason(value: Any) -> str:
    return value if isinstance(value, str) and value else "error"


def _chat_request(instance: Any, kwargs: Mapping[str, Any], operation: str = sc.OP_CHAT) -> Request:
    host, port, azure = _server(instance)
    provider = _provider(host, port, azure)
    attrs: Attributes = {}
    _common_params(kwargs, attrs)
    max_tokens = kwargs.get("max_completion_tokens")
    if not _given(max_tokens):
        max_tokens = kwargs.get("max_tokens")
    if _given(max_tokens) and _integer(max_tokens) is not None:
        attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    output_type = _output_type(kwargs.get("response_format"))
    if output_type:
        attrs[sc.GEN_AI_OUTPUT_TYPE] = output_type
    api_type = "chat_completions" if operation == sc.OP_CHAT else None
    _openai_request(kwargs, provider, api_type, attrs)
    _prompt_attributes(kwargs, attrs)
    return Request(operation, provider, _model(instance, kwargs, azure), host, port, attrs)


def _choice_text(choice: Any) -> str:
    message = _get(choice, "message")
    if message is None:
        return str(_get(choice, "text") or "")
    parts = [str(_get(message, "content") or ""), str(_get(message, "refusal") or "")]
    for call in _get(message, "tool_calls") or ():
        function = _get(call, "function")
        parts.append(f"{_get(function, 'name') or ''}{_get(function, 'arguments') or ''}")
    function_call = _get(message, "function_call")  # the legacy functions API
    if function_call is not None:
        parts.append(f"{_get(function_call, 'name') or ''}{_get(function_call, 'arguments') or ''}")
    return "".join(parts)


def _chat_outcome(response: Any, request: Request, kwargs: Mapping[str, Any]) -> Outcome:
    attrs: Attributes = {}
    model = _identity(attrs, _get(response, "id"), _get(response, "model"))
    choices = _get(response, "choices") or []
    attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = [
        _finish_reason(_get(c, "finish_reason")) for c in choices
    ]
    raw_usage = _get(response, "usage")
    usage = (
        _Usage(raw_usage, "prompt_tokens", "completion_tokens") if raw_usage is not None else None
    )
    _openai_response(response, request.provider, attrs)

    def output() -> list[dict[str, Any]]:
        messages = []
        for choice in choices:
            message = _get(choice, "message")
            text = _get(choice, "text")  # legacy completions
            parts = _parts(_get(message, "content") if message is not None else text)
            refusal = _get(message, "refusal")
            if refusal:
                parts.append({"type": "text", "content": refusal})
            parts += _tool_call_parts(_get(message, "tool_calls"))
            function_call = _get(message, "function_call")
            if function_call is not None:
                parts.append(
                    {
                        "type": "tool_call",
                        "name": _get(function_call, "name"),
                        "arguments": _json_or_text(_get(function_call, "arguments")),
                    }
                )
            messages.append(
                {
                    "role": "assistant",
                    "parts": parts,
                    "finish_reason": _finish_reason(_get(choice, "finish_reason")),
                }
            )
        return messages

    return _outcome(
        attrs,
        model,
        usage,
        request,
        kwargs,
        lambda: "".join(_choice_text(c) for c in choices),
        output,
        _text(_get(response, "service_tier")),
        refused=any(_get(_get(c, "message"), "refusal") for c in choices),
    )


class _Choice:
    __slots__ = ("finish_reason", "refusal", "text", "tool_calls")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: Optional[str] = None


class ChatAccumulator:
    """Rebuilds a chat (or legacy completion) response from its chunks."""

    __slots__ = (
        "_capture",
        "_choices",
        "_fingerprint",
        "_hide_usage",
        "_id",
        "_kwargs",
        "_model",
        "_request",
        "_tier",
        "_usage",
    )

    def __init__(
        self, request: Request, kwargs: Mapping[str, Any], capture: bool, hide_usage: bool
    ) -> None:
        self._request = request
        self._kwargs = kwargs
        self._capture = capture
        self._hide_usage = hide_usage
        self._id: Optional[str] = None
        self._model: Optional[str] = None
        self._usage: Any = None
        self._tier: Optional[str] = None
        self._fingerprint: Optional[str] = None
        self._choices: dict[int, _Choice] = {}

    def add(self, chunk: Any) -> bool:
        # Runs for every chunk the caller reads: read only what the span needs.
        if self._id is None:
            self._id = _text(_get(chunk, "id"))
        # Azure's first chunk has model "": keep the last real name.
        self._model = _text(_get(chunk, "model")) or self._model
        self._tier = _text(_get(chunk, "service_tier")) or self._tier
        if self._request.provider == sc.PROVIDER_OPENAI:
            self._fingerprint = _text(_get(chunk, "system_fingerprint")) or self._fingerprint
        choices = _get(chunk, "choices") or ()
        for choice in choices:
            index = _get(choice, "index") or 0
            state = self._choices.get(index)
            if state is None:
                state = self._choices[index] = _Choice()
            reason = _get(choice, "finish_reason")
            if reason:
                state.finish_reason = reason
            # Text is kept even without capture: it is what usage is estimated from.
            self._add_content(state, choice)
        usage = _get(chunk, "usage")
        if usage is not None:
            self._usage = usage  # providers that repeat cumulative usage: the last one wins
            # The usage-only chunk otelite asked for is not shown to the caller.
            return self._hide_usage and not choices
        return False

    @staticmethod
    def _add_content(state: _Choice, choice: Any) -> None:
        delta = _get(choice, "delta")
        if delta is None:  # legacy completions stream text directly
            text = _get(choice, "text")
            if text:
                state.text.append(text)
            return
        content = _get(delta, "content")
        if content:
            state.text.append(content)
        refusal = _get(delta, "refusal")
        if refusal:
            state.refusal.append(refusal)
        for call in _get(delta, "tool_calls") or ():
            slot = state.tool_calls.setdefault(
                _get(call, "index") or 0, {"id": None, "name": None, "arguments": []}
            )
            slot["id"] = slot["id"] or _get(call, "id")
            function = _get(call, "function")
            slot["name"] = slot["name"] or _get(function, "name")
            arguments = _get(function, "arguments")
            if arguments:
                slot["arguments"].append(arguments)
        function_call = _get(delta, "function_call")
        if function_call is not None:
            slot = state.tool_calls.setdefault(0, {"id": None, "name": None, "arguments": []})
            slot["name"] = slot["name"] or _get(function_call, "name")
            if _get(function_call, "arguments"):
                slot["arguments"].append(_get(function_call, "arguments"))

    def outcome(self, failed: bool) -> Outcome:
        attrs: Attributes = {}
        _identity(attrs, self._id, self._model)
        indexes = sorted(self._choices)
        # The reasons seen; a choice cut off by an error is "error"; one the caller
        # left early (break, close, GC) has no reason yet, and none is invented.
        reasons = {
            i: _finish_reason(self._choices[i].finish_reason)
            for i in indexes
            if failed or self._choices[i].finish_reason
        }
        if reasons:
            attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = list(reasons.values())
        if self._request.provider == sc.PROVIDER_OPENAI:
            if self._tier:
                attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] = self._tier
            if self._fingerprint:
                attrs[sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = self._fingerprint
        choices = self._choices

        def text() -> str:
            out = []
            for state in choices.values():
                out += state.text + state.refusal
                for call in state.tool_calls.values():
                    out.append(str(call["name"] or "") + "".join(call["arguments"]))
            return "".join(out)

        def output() -> list[dict[str, Any]]:
            messages = []
            for i in indexes:
                state = choices[i]
                parts: list[dict[str, Any]] = []
                if state.text:
                    parts.append({"type": "text", "content": "".join(state.text)})
                if state.refusal:
                    parts.append({"type": "text", "content": "".join(state.refusal)})
                for _, call in sorted(state.tool_calls.items()):
                    parts.append(
                        {
                            "type": "tool_call",
                            "id": call["id"],
                            "name": call["name"],
                            "arguments": _json_or_text("".join(call["arguments"])),
                        }
                    )
                message: dict[str, Any] = {"role": "assistant", "parts": parts}
                if i in reasons:
                    message["finish_reason"] = reasons[i]
                messages.append(message)
            return messages

        usage = (
            _Usage(self._usage, "prompt_tokens", "completion_tokens")
            if self._usage is not None
            else None
        )
        return _outcome(
            attrs,
            self._model,
            usage,
            self._request,
            self._kwargs,
            text,
            output,
            self._tier,
            refused=any(state.refusal for state in choices.values()),
        )


# --- embeddings ----------------------------------------------------------------------------


def _embeddings_request(instance: Any, kwargs: Mapping[str, Any]) -> Request:
    host, port, azure = _server(instance)
    provider = _provider(host, port, azure)
    attrs: Attributes = {}
    fmt = kwargs.get("encoding_format")
    if _given(fmt) and isinstance(fmt, str):
        attrs[sc.GEN_AI_REQUEST_ENCODING_FORMATS] = [fmt]
    dimensions = _integer(kwargs.get("dimensions"))
    if dimensions is not None:
        attrs[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
    return Request(sc.OP_EMBEDDINGS, provider, _model(instance, kwargs, azure), host, port, attrs)


def _embeddings_outcome(response: Any, request: Request, kwargs: Mapping[str, Any]) -> Outcome:
    attrs: Attributes = {}
    model = _identity(attrs, None, _get(response, "model"))
    raw_usage = _get(response, "usage")
    usage = (
        _Usage(raw_usage, "prompt_tokens", "completion_tokens") if raw_usage is not None else None
    )
    outcome = _outcome(attrs, model, usage, request, kwargs, str, None, None, estimate_output=False)
    outcome.output_tokens = None  # embeddings produce no output tokens
    return outcome


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


# --- usage in streams ------------------------------------------------------------------

# Providers known to accept stream_options={"include_usage": true}; users add more.
_STREAM_USAGE_PROVIDERS: set[str] = {sc.PROVIDER_OPENAI, sc.PROVIDER_AZURE_OPENAI}
_AZURE_STREAM_USAGE_SINCE = "2024-09-01"  # older Azure api-versions reject stream_options
_RAW_HEADER = "x-stainless-raw-response"


def enable_stream_usage(provider: str) -> None:
    """Let otelite ask ``provider`` for usage in streamed responses (it must accept
    ``stream_options={"include_usage": true}``, as OpenAI-compatible servers such as
    vLLM, DeepSeek and Groq do).

    Example:
        >>> import otelite
        >>> otelite.enable_stream_usage("vllm")
    """
    if not isinstance(provider, str) or not provider:
        raise ConfigurationError(
            f"enable_stream_usage: provider must be a non-empty str, got {provider!r}"
        )
    _STREAM_USAGE_PROVIDERS.add(provider)


def _with_stream_usage(
    instance: Any, kwargs: Mapping[str, Any], request: Request, enabled: bool
) -> Optional[dict[str, Any]]:
    """The call's arguments with usage requested, or ``None`` to leave the call alone."""
    if not enabled or kwargs.get("stream") is not True or _given(kwargs.get("stream_options")):
        return None
    if request.provider not in _STREAM_USAGE_PROVIDERS:
        return None
    headers = kwargs.get("extra_headers")
    if isinstance(headers, Mapping) and any(str(k).lower() == _RAW_HEADER for k in headers):
        return None  # the caller reads the raw body: it must be exactly what it asked for
    if request.provider == sc.PROVIDER_AZURE_OPENAI:
        version = getattr(getattr(instance, "_client", None), "_api_version", None)
        if not isinstance(version, str) or version[:10] < _AZURE_STREAM_USAGE_SINCE:
            return None
    return {**kwargs, "stream_options": {"include_usage": True}}


# --- the wrappers ------------------------------------------------------------------------

RequestReader = Callable[[Any, Mapping[str, Any]], Request]
OutcomeReader = Callable[[Any, Request, Mapping[str, Any]], Outcome]
ContentReader = Callable[[Mapping[str, Any]], dict[str, Any]]
AccumulatorFactory = Callable[[Request, Mapping[str, Any], bool, bool], Any]


class _Surface:
    """How to read one patched method's request, response and stream."""

    __slots__ = ("accumulator", "content", "outcome", "request", "stream_usage")

    def __init__(
        self,
        request: RequestReader,
        outcome: OutcomeReader,
        content: Optional[ContentReader],
        accumulator: Optional[AccumulatorFactory],
        stream_usage: bool = False,
    ) -> None:
        self.request = request
        self.outcome = outcome
        self.content = content
        self.accumulator = accumulator
        self.stream_usage = stream_usage


CHAT = _Surface(
    _chat_request,
    _chat_outcome,
    lambda kwargs: _with_prompt_variables(kwargs, _chat_input(kwargs)),
    ChatAccumulator,
    stream_usage=True,
)
COMPLETIONS = _Surface(
    lambda instance, kwargs: _chat_request(instance, kwargs, sc.OP_TEXT_COMPLETION),
    _chat_outcome,
    lambda kwargs: _with_prompt_variables(kwargs, _completion_input(kwargs)),
    ChatAccumulator,
    stream_usage=True,
)
EMBEDDINGS = _Surface(_embeddings_request, _embeddings_outcome, None, None)
RESPONSES = _Surface(
    _responses_request,
    _responses_outcome,
    lambda kwargs: _with_prompt_variables(kwargs, _responses_input(kwargs)),
    ResponsesAccumulator,
)


class _Call:
    """One intercepted call: what to read it with, its span, and the arguments sent."""

    __slots__ = ("hide_usage", "invocation", "is_async", "kwargs", "surface")

    def __init__(
        self,
        surface: _Surface,
        invocation: Invocation,
        kwargs: Mapping[str, Any],
        hide_usage: bool,
        is_async: bool,
    ) -> None:
        self.surface = surface
        self.invocation = invocation
        self.kwargs = kwargs
        self.hide_usage = hide_usage
        self.is_async = is_async

    def outcome(self, result: Any) -> Outcome:
        return self.surface.outcome(result, self.invocation.request, self.kwargs)


_stream_types: dict[type, bool] = {}


def _is_stream(result: Any) -> bool:
    """Whether ``result`` is an openai ``Stream``/``AsyncStream`` (by class, cached per type)."""
    cls = type(result)
    found = _stream_types.get(cls)
    if found is None:
        found = any(base.__name__ in ("Stream", "AsyncStream") for base in cls.__mro__)
        if len(_stream_types) < 256:
            _stream_types[cls] = found
    return found


def _handle_result(call: _Call, result: Any) -> Any:
    """Finish the span for a complete response, or hand back a proxy that finishes it later."""
    invocation = call.invocation
    if _is_stream(result):
        factory = call.surface.accumulator
        if factory is None:
            invocation.succeed(Outcome({}))
            return result
        capture = invocation.active.content.capture
        recorder = StreamRecorder(
            invocation, factory(invocation.request, call.kwargs, capture, call.hide_usage)
        )
        return (
            AsyncStreamProxy(result, recorder)
            if call.is_async
            else SyncStreamProxy(result, recorder)
        )
    name = type(result).__name__
    if name == "LegacyAPIResponse":
        return _LegacyResponseProxy(result, call)
    if name == "APIResponse":
        return _RawResponseProxy(result, call)
    if name == "AsyncAPIResponse":
        return _AsyncRawResponseProxy(result, call)
    ended = stop_clock()  # before the response is read (and maybe counted)
    invocation.succeed(call.outcome(result), ended=ended)
    return result


def _parsed_result(call: _Call, parsed: Any) -> Any:
    try:
        return _handle_result(call, parsed)
    except Exception as exc:
        _guard.report("reading an OpenAI raw response", exc)
        return parsed


class _LegacyResponseProxy(_Proxy):
    """``with_raw_response``: the body is read; ``parse()`` gives the object the span is made from."""

    def __init__(self, wrapped: Any, call: _Call) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_parsed: dict[Any, Any] = {}
        if not getattr(wrapped, "_stream", False):
            # Not a stream: parse now (openai caches it) so the span ends with the call.
            self.parse()

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        parsed = self.__wrapped__.parse(*args, **kwargs)
        key = kwargs.get("to")
        if key in self._self_parsed:
            return self._self_parsed[key]
        result = _parsed_result(self._self_call, parsed)
        self._self_parsed[key] = result
        return result


class _RawResponseProxy(_Proxy):
    """``with_streaming_response`` (sync): the span ends when the body is parsed or closed."""

    def __init__(self, wrapped: Any, call: _Call) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_result: Any = None
        self._self_done = False

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        parsed = self.__wrapped__.parse(*args, **kwargs)
        if self._self_done:
            return self._self_result if self._self_result is not None else parsed
        self._self_done = True
        self._self_result = _parsed_result(self._self_call, parsed)
        return self._self_result

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            if not self._self_done:
                self._self_call.invocation.succeed(Outcome({}))


class _AsyncRawResponseProxy(_Proxy):
    """``with_streaming_response`` (async): the span ends when the body is parsed or closed."""

    def __init__(self, wrapped: Any, call: _Call) -> None:
        super().__init__(wrapped)
        self._self_call = call
        self._self_result: Any = None
        self._self_done = False

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        parsed = await self.__wrapped__.parse(*args, **kwargs)
        if self._self_done:
            return self._self_result if self._self_result is not None else parsed
        self._self_done = True
        self._self_result = _parsed_result(self._self_call, parsed)
        return self._self_result

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            if not self._self_done:
                self._self_call.invocation.succeed(Outcome({}))


def _begin(
    surface: _Surface, instance: Any, kwargs: dict[str, Any], is_async: bool
) -> Optional[_Call]:
    if _inside_call.get() is not None or _other_llm_span():
        return None
    try:
        request = surface.request(instance, kwargs)
    except Exception as exc:
        _guard.report("reading an OpenAI request", exc)
        return None
    content = surface.content
    invocation = start(request, (lambda: content(kwargs)) if content is not None else None)
    if invocation is None:
        return None
    sent: Mapping[str, Any] = kwargs
    if surface.stream_usage:
        try:
            injected = _with_stream_usage(instance, kwargs, request, invocation.active.stream_usage)
        except Exception as exc:
            _guard.report("requesting usage in a stream", exc)
            injected = None
        if injected is not None:
            sent = injected
        elif sent.get("stream") is True and request.model:
            # No usage will arrive: have the encoding loading (off this thread) while it streams.
            options = sent.get("stream_options")
            if not (isinstance(options, Mapping) and options.get("include_usage")):
                with _guard.contained("preloading a tokenizer"):
                    _tokens.preload(request.model)
    return _Call(surface, invocation, sent, sent is not kwargs, is_async)


def _finish(call: _Call, result: Any) -> Any:
    try:
        return _handle_result(call, result)
    except Exception as exc:
        _guard.report("reading an OpenAI response", exc)
        call.invocation.succeed(Outcome({}))
        return result


def _count_retries(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Wraps the client's ``_build_request``, called once per HTTP attempt with ``retries_taken``."""
    resends = _inside_call.get()
    if resends is not None:
        taken = kwargs.get("retries_taken")
        if isinstance(taken, int) and taken > resends[0]:
            resends[0] = taken
    return wrapped(*args, **kwargs)


def _record_resends(call: _Call, resends: list[int]) -> None:
    """``http.request.resend_count`` on the span when the client retried (semconv: only then)."""
    if resends[0] > 0:
        with _guard.contained("recording retries"):
            call.invocation.span.set_attribute(sc.HTTP_REQUEST_RESEND_COUNT, resends[0])


def _sync_wrapper(surface: _Surface) -> Callable[..., Any]:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = _begin(surface, instance, kwargs, False)
        if call is None:
            return wrapped(*args, **kwargs)
        resends = [0]
        token = _inside_call.set(resends)
        try:
            result = wrapped(*args, **call.kwargs)
        except BaseException as exc:
            _record_resends(call, resends)
            call.invocation.fail(exc)
            raise
        finally:
            _inside_call.reset(token)
        _record_resends(call, resends)
        return _finish(call, result)

    return wrapper


def _async_wrapper(surface: _Surface) -> Callable[..., Any]:
    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        call = _begin(surface, instance, kwargs, True)
        if call is None:
            return await wrapped(*args, **kwargs)
        resends = [0]
        token = _inside_call.set(resends)
        try:
            result = await wrapped(*args, **call.kwargs)
        except BaseException as exc:  # includes CancelledError
            _record_resends(call, resends)
            call.invocation.fail(exc)
            raise
        finally:
            _inside_call.reset(token)
        _record_resends(call, resends)
        return _finish(call, result)

    return wrapper


# (modules that may define the class, class, method, surface, async). Newer openai
# versions split resources into packages and load them lazily, so patching happens
# in a post-import hook: when the defining module is imported (or at once if it
# already is), never by importing resources the application does not use.
_CHAT_MODULES = (
    "openai.resources.chat.completions.completions",
    "openai.resources.chat.completions",
)
_BETA_MODULES = ("openai.resources.beta.chat.completions",)
_COMPLETIONS_MODULES = ("openai.resources.completions",)
_EMBEDDINGS_MODULES = ("openai.resources.embeddings",)
_RESPONSES_MODULES = ("openai.resources.responses.responses", "openai.resources.responses")
_TARGETS: tuple[tuple[tuple[str, ...], str, str, _Surface, bool], ...] = (
    (_CHAT_MODULES, "Completions", "create", CHAT, False),
    (_CHAT_MODULES, "AsyncCompletions", "create", CHAT, True),
    (_CHAT_MODULES, "Completions", "parse", CHAT, False),
    (_CHAT_MODULES, "AsyncCompletions", "parse", CHAT, True),
    (_BETA_MODULES, "Completions", "parse", CHAT, False),
    (_BETA_MODULES, "AsyncCompletions", "parse", CHAT, True),
    (_COMPLETIONS_MODULES, "Completions", "create", COMPLETIONS, False),
    (_COMPLETIONS_MODULES, "AsyncCompletions", "create", COMPLETIONS, True),
    (_EMBEDDINGS_MODULES, "Embeddings", "create", EMBEDDINGS, False),
    (_EMBEDDINGS_MODULES, "AsyncEmbeddings", "create", EMBEDDINGS, True),
    (_RESPONSES_MODULES, "Responses", "create", RESPONSES, False),
    (_RESPONSES_MODULES, "AsyncResponses", "create", RESPONSES, True),
    (_RESPONSES_MODULES, "Responses", "parse", RESPONSES, False),
    (_RESPONSES_MODULES, "AsyncResponses", "parse", RESPONSES, True),
)

# The HTTP attempts of a call: every openai version builds each attempt's request with
# BaseClient._build_request(options, retries_taken=n).
_BASE_CLIENT_MODULES = ("openai._base_client",)
_RETRY_TARGETS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (_BASE_CLIENT_MODULES, "BaseClient", "_build_request"),
)

_lock = threading.RLock()
_active = False
_patched: list[tuple[type, str, Any]] = []
_hooked: set[str] = set()


def _patch_module(module: Any) -> None:
    """Post-import hook: patch the targets this module defines (once each)."""
    with _lock, _guard.contained("patching openai"):
        if not _active:
            return
        name = module.__name__
        for modules, class_name, method, surface, is_async in _TARGETS:
            if name not in modules:
                continue
            cls = module.__dict__.get(class_name)
            if not isinstance(cls, type):
                continue
            original = cls.__dict__.get(method)
            if original is None:
                continue
            if isinstance(original, wrapt.FunctionWrapper):
                _step_back(original, f"{class_name}.{method}")
                continue
            wrapper = _async_wrapper(surface) if is_async else _sync_wrapper(surface)
            setattr(cls, method, wrapt.FunctionWrapper(original, wrapper))
            _patched.append((cls, method, original))
        for modules, class_name, method in _RETRY_TARGETS:
            cls = module.__dict__.get(class_name) if name in modules else None
            if not isinstance(cls, type):
                continue
            original = cls.__dict__.get(method)
            if original is None or isinstance(original, wrapt.FunctionWrapper):
                continue
            setattr(cls, method, wrapt.FunctionWrapper(original, _count_retries))
            _patched.append((cls, method, original))


# --- another OpenAI instrumentation (opentelemetry-instrumentation-openai-v2, ...) ---------
# Each call gets exactly one LLM span: where another instrumentation already covers a
# method, otelite steps back for it, whichever of the two instrumented first.

logger = logging.getLogger(__name__)
_warned_other = False
_CLIENT = _trace.SpanKind.CLIENT
_GENAI_MARKS = (sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_REQUEST_MODEL)


def _warn_other(who: str) -> None:
    global _warned_other
    if _warned_other:
        return
    _warned_other = True
    logger.warning(
        "otelite: another OpenAI instrumentation (%s) already records these calls, so otelite "
        "records no second span for them. To keep otelite's spans instead, turn the other off "
        "(for the official one: OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=openai, or pip uninstall "
        "opentelemetry-instrumentation-openai-v2); to keep the other's, turn otelite's off "
        "(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otelite-openai, or do not call "
        "instrument_openai()). See docs/zero-code.md.",
        who,
    )


def _step_back(existing: Any, where: str) -> None:
    """Patch time: ``where`` is already wrapped. Another instrumentation's wrapper wins."""
    wrapper = getattr(existing, "_self_wrapper", None)
    owner = str(getattr(wrapper, "__module__", None) or "unknown")
    if owner != __name__:
        _warn_other(f"{owner}, on {where}")


def _other_llm_span() -> bool:
    """Call time: another instrumentation, wrapped around ours, has begun this call's span."""
    span = _trace.get_current_span()
    if getattr(span, "kind", None) is not _CLIENT:
        return False
    try:
        if not span.is_recording():
            return False
        scope = str(getattr(getattr(span, "instrumentation_scope", None), "name", None) or "")
        if scope == sc.INSTRUMENTATION_SCOPE:
            return False
        attributes = getattr(span, "attributes", None) or {}
        marked = any(key in attributes for key in _GENAI_MARKS)
        if not (marked or "openai" in scope or "genai" in scope):
            return False
    except Exception as exc:
        _guard.report("looking for another OpenAI instrumentation's span", exc)
        return False
    _warn_other(scope or "unknown")
    return True


def instrument_openai() -> None:
    """Patch the ``openai`` client so every call becomes a GenAI span (idempotent).

    Covers clients created before and after the call; ``uninstrument_openai()``
    restores the original methods. Resource modules openai has not loaded yet
    are patched when they load, so instrumenting costs no extra imports.

    Raises:
        ConfigurationError: ``openai`` is not installed.

    Example:
        >>> import otelite
        >>> otelite.instrument_openai()
        >>> otelite.uninstrument_openai()
    """
    global _active
    if importlib.util.find_spec("openai") is None:
        raise ConfigurationError(
            'instrument_openai: the openai package is not installed; pip install "otelite[openai]"'
        )
    with _lock:
        if _active:
            return
        _active = True
        for modules in [t[0] for t in _TARGETS] + [t[0] for t in _RETRY_TARGETS]:
            for name in modules:
                if name in _hooked:
                    if name in sys.modules:
                        _patch_module(sys.modules[name])
                    continue
                _hooked.add(name)
                wrapt.register_post_import_hook(_patch_module, name)


def uninstrument_openai() -> None:
    """Restore the original ``openai`` methods (idempotent).

    Example:
        >>> import otelite
        >>> otelite.uninstrument_openai()
    """
    global _active, _warned_other
    with _lock:
        _active = False
        _warned_other = False
        while _patched:
            cls, method, original = _patched.pop()
            setattr(cls, method, original)


def is_instrumented() -> bool:
    """Whether ``instrument_openai()`` is in effect."""
    return _active
