"""Reading OpenAI's request and response fields into GenAI attributes.

Servers, models and providers of a call, the request parameters every surface
shares, usage with the estimate when a server sends none, and the
OpenAI-specific attributes (service tier, system fingerprint, prompt link).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any, Callable, Optional

from otelite import _guard, _registries, _tokens
from otelite import _semconv as sc
from otelite._integrations.openai import _shape
from otelite._llm import Attributes, Outcome, Request, Usage, count, field, member
from otelite._tokens import count_any_tokens, count_message_tokens, count_tokens

_get = field
_count = count
_Usage = Usage

_SENTINELS = frozenset({"NotGiven", "Omit"})


# --- reading OpenAI's shapes ---------------------------------------------------------


def _given(value: Any) -> bool:
    return value is not None and type(value).__name__ not in _SENTINELS


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


Server = tuple[Optional[str], Optional[int], bool]
# id(client) -> (a weak reference to it, its base URL, what _read_server read). A plain dict
# (a WeakKeyDictionary lookup makes a reference per call); an entry counts only while its
# reference still points to the client, and the dict is cleared past MAX_SERVERS.
_servers: dict[int, tuple[weakref.ref[Any], Any, Server]] = {}
MAX_SERVERS = 1024


def _server(instance: Any) -> Server:
    """Host and port of the resource's client base URL, and whether it is an Azure client."""
    client = getattr(instance, "_client", None)
    # Every openai version keeps the URL in _base_url; the base_url property may do more.
    url = getattr(client, "_base_url", None) or getattr(client, "base_url", None)
    cached = _servers.get(id(client))
    if cached is not None and cached[0]() is client and cached[1] is url:
        return cached[2]
    result = _read_server(client, url)
    try:
        ref = weakref.ref(client)
    except TypeError:  # not weak-referenceable: read each time
        return result
    if len(_servers) >= MAX_SERVERS:
        _servers.clear()
    _servers[id(client)] = (ref, url, result)
    return result


def _read_server(client: Any, url: Any) -> Server:
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
    return sc.PROVIDER_AZURE_OPENAI if azure else _registries.provider_for(host, port)


def _output_type(response_format: Any) -> Optional[str]:
    if isinstance(response_format, type):
        return "json"  # a pydantic model given to .parse(): structured output
    kind = _get(response_format, "type")
    if kind in ("json_object", "json_schema"):
        return "json"
    if kind == "text":
        return "text"
    return None


_PARAMS: dict[str, tuple[str, Callable[[Any], Any]]] = {}  # filled below: key -> (attr, convert)


def _common_params(kwargs: Mapping[str, Any], attrs: Attributes) -> None:
    # One pass over the arguments given (a handful), not a lookup of every parameter.
    for key, value in kwargs.items():
        known = _PARAMS.get(key)
        if known is None or not _given(value):
            continue
        attr, convert = known
        converted = convert(value)
        if converted is not None:  # 0 and 0.0 are real values and are recorded
            attrs[attr] = converted


def _choice_count(value: Any) -> Optional[int]:
    n = _integer(value)
    return n if n is not None and n != 1 else None


def _stop_sequences(stop: Any) -> Optional[list[str]]:
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, (list, tuple)) and stop and all(isinstance(s, str) for s in stop):
        return list(stop)
    return None


_PARAMS.update(
    {
        "temperature": (sc.GEN_AI_REQUEST_TEMPERATURE, _number),
        "top_p": (sc.GEN_AI_REQUEST_TOP_P, _number),
        "frequency_penalty": (sc.GEN_AI_REQUEST_FREQUENCY_PENALTY, _number),
        "presence_penalty": (sc.GEN_AI_REQUEST_PRESENCE_PENALTY, _number),
        "seed": (sc.GEN_AI_REQUEST_SEED, _integer),
        "n": (sc.GEN_AI_REQUEST_CHOICE_COUNT, _choice_count),
        "stop": (sc.GEN_AI_REQUEST_STOP_SEQUENCES, _stop_sequences),
        "stream": (sc.GEN_AI_REQUEST_STREAM, lambda v: True if v is True else None),
    }
)


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
    response: Any = None,
    fingerprint: Optional[str] = None,
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
        # API-change detection: read only when it is on (see otelite._llm._changes).
        structure=(lambda: _shape.structure(response)) if response is not None else None,
        fingerprint=fingerprint
        if fingerprint is not None or response is None
        else _text(member(response, "system_fingerprint")),
        signals=(lambda: _shape.notices(response)) if response is not None else None,
    )


# Values that cannot carry a prompt link: only the registry's subclasses of str, list and
# dict do (checking the type first spares a failed attribute lookup per message).
_PLAIN = frozenset({str, list, dict, tuple, type(None)})


def _link_of(value: Any) -> Any:
    return None if type(value) in _PLAIN else getattr(value, sc.PROMPT_LINK, None)


def _prompt_link(kwargs: Mapping[str, Any]) -> Any:
    """The prompt version the call's input was compiled from (see otelite.prompts), if any."""
    if not _registries.prompt_links:  # no compiled prompt can exist: nothing to look through
        return None
    for key in ("messages", "prompt", "input", "instructions"):
        value = kwargs.get(key)
        if value is None:
            continue
        link = _link_of(value)
        if link is not None:
            return link
        if isinstance(value, list):
            for item in value:
                link = _link_of(item) or _link_of(_get(item, "content"))
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
