"""The common OpenAI call on the core's lean path (``otelite._llm._lean``).

``chat.completions.create`` and ``embeddings.create`` without streaming, when
the call is the common one: not nested in another instrumented call, not
suppressed, no other LLM span around it, content capture off, no online checks,
no metric dimensions, and not an Azure client. The
request is read by the same functions as the general path's; the response is
read only when it is one of openai's own models with every field in its usual
type (otherwise, and for retries, errors and raw responses, the call is handed
over to the general path, which reads and ends it as before). Every wrapper here
is the general wrapper for any other call.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Callable, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace

from otelite import _guard, _registries, _state
from otelite import _semconv as sc
from otelite._integrations.openai._chat import _chat_attributes, _embeddings_attributes
from otelite._integrations.openai._fields import _server
from otelite._llm import Attributes, _flow, _lean
from otelite._llm._lean import Lean

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
# (lean call, result, when it ended) -> whether the lean path ended it
Ender = Callable[[Lean, Any, tuple[float, int]], bool]

_SUPPRESS = otel_context._SUPPRESS_INSTRUMENTATION_KEY  # what _spans.is_suppressed reads
_get_value = otel_context.get_value
_get_span = trace.get_current_span
_CLIENT = trace.SpanKind.CLIENT
_inside = _flow.inside_call
_perf_counter = time.perf_counter
_time_ns = time.time_ns
_OPENAI = sc.PROVIDER_OPENAI


def _common(instance: Any, kwargs: Mapping[str, Any]) -> Optional[tuple[Any, ...]]:
    """The active state and server of a call the lean path can take, else ``None``."""
    if _inside.get() is not None or _get_value(_SUPPRESS):
        return None  # nested or suppressed: the general wrapper calls through
    if getattr(_get_span(), "kind", None) is _CLIENT:
        return None  # maybe another instrumentation's span: the general wrapper looks
    active = _state.active()
    if active.content.capture or active.checks or active.dimensions is not None:
        return None
    host, port, azure = _server(instance)
    if azure:
        return None  # the model is the client's deployment
    model = kwargs.get("model")
    return active, host, port, model if isinstance(model, str) else None


def begin_chat(instance: Any, kwargs: Mapping[str, Any]) -> Optional[Lean]:
    stream = kwargs.get("stream")
    if stream is not None and stream is not False:
        return None  # a stream: the general path (it may ask for usage)
    common = _common(instance, kwargs)
    if common is None:
        return None
    active, host, port, model = common
    provider = _registries.provider_for(host, port)
    attrs = _chat_attributes(kwargs, provider, sc.OP_CHAT)
    return _lean.begin(active, sc.OP_CHAT, provider, model, host, port, attrs)


def begin_embeddings(instance: Any, kwargs: Mapping[str, Any]) -> Optional[Lean]:
    common = _common(instance, kwargs)
    if common is None:
        return None
    active, host, port, model = common
    provider = _registries.provider_for(host, port)
    attrs = _embeddings_attributes(kwargs)
    return _lean.begin(active, sc.OP_EMBEDDINGS, provider, model, host, port, attrs)


_types: dict[type, str] = {}  # response class -> its name when it is openai's, else ""


def _kind(result: Any) -> str:
    cls = type(result)
    found = _types.get(cls)
    if found is None:
        found = cls.__name__ if cls.__module__.startswith("openai.types.") else ""
        if len(_types) < 256:
            _types[cls] = found
    return found


def _count(value: Any) -> bool:
    """Whether ``value`` is a token count as the general reader records it unchanged."""
    return value is None or (type(value) is int and value >= 0)


def _details(details: Any, first: str, second: str) -> tuple[Any, Any]:
    if details is None:
        return None, None
    known = details.__dict__
    one, two = known[first], known[second]
    if not (_count(one) and _count(two)):
        raise TypeError("an odd count")
    return one, two


def end_chat(lean: Lean, result: Any, ended: tuple[float, int]) -> bool:
    """Read a ``ChatCompletion`` and end the call, as ``_chat_outcome`` and ``end`` would."""
    if _kind(result) != "ChatCompletion":
        return False
    try:
        fields = result.__dict__
        response_id, model = fields["id"], fields["model"]
        if type(response_id) is not str or not response_id or type(model) is not str or not model:
            return False
        reasons = []
        for choice in fields["choices"]:
            reason = choice.__dict__["finish_reason"]
            if type(reason) is not str or not reason:
                return False  # recorded as "error" by the general reader
            reasons.append(reason)
        counts = fields["usage"].__dict__  # None (no usage: estimated) raises: handed over
        input_tokens, output_tokens = counts["prompt_tokens"], counts["completion_tokens"]
        if type(input_tokens) is not int or type(output_tokens) is not int:
            return False
        if input_tokens < 0 or output_tokens < 0:
            return False
        cached, audio_in = _details(
            counts["prompt_tokens_details"], "cached_tokens", "audio_tokens"
        )
        reasoning, audio_out = _details(
            counts["completion_tokens_details"], "reasoning_tokens", "audio_tokens"
        )
        tier, fingerprint = fields["service_tier"], fields["system_fingerprint"]
    except (AttributeError, KeyError, TypeError):
        return False
    if not (tier is None or type(tier) is str) or not (
        fingerprint is None or type(fingerprint) is str
    ):
        return False
    attrs: Attributes = {
        sc.GEN_AI_RESPONSE_ID: response_id,
        sc.GEN_AI_RESPONSE_MODEL: model,
        sc.GEN_AI_RESPONSE_FINISH_REASONS: reasons,
    }
    tier = tier or None
    fingerprint = fingerprint or None
    if lean.key[1] == _OPENAI:
        if tier:
            attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] = tier
        if fingerprint:
            attrs[sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fingerprint
    attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
    attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
    if cached is not None:
        attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = cached
    if reasoning is not None:
        attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = reasoning
    tokens = (input_tokens, output_tokens, cached or 0, audio_in or 0, audio_out or 0)
    return _lean.finish(lean, attrs, model, fingerprint, reasons, tokens, tier, ended)


def end_embeddings(lean: Lean, result: Any, ended: tuple[float, int]) -> bool:
    """Read a ``CreateEmbeddingResponse`` and end the call, as the general path would."""
    if _kind(result) != "CreateEmbeddingResponse":
        return False
    try:
        model = result.__dict__["model"]
        usage = result.__dict__["usage"]
        input_tokens = usage.__dict__["prompt_tokens"]
        # Undeclared fields (a fingerprint, output counts, details) are read by the general path.
        if result.__pydantic_extra__ or usage.__pydantic_extra__:
            return False
    except (AttributeError, KeyError, TypeError):
        return False
    if type(model) is not str or not model or type(input_tokens) is not int or input_tokens < 0:
        return False
    attrs: Attributes = {
        sc.GEN_AI_RESPONSE_MODEL: model,
        sc.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
    }
    return _lean.finish(lean, attrs, model, None, [], (input_tokens, None, 0, 0, 0), None, ended)


def _handover(
    lean: Lean, surface: _flow.Surface, kwargs: Mapping[str, Any], is_async: bool
) -> Optional[_flow.Call]:
    content = surface.content
    try:
        invocation = _lean.handover(
            lean, (lambda: content(kwargs)) if content is not None else None
        )
    except Exception as exc:  # never reached in practice; the span still ends
        _guard.report("handing an LLM call over", exc)
        lean.span.end()
        return None
    return _flow.Call(surface, invocation, kwargs, False, is_async)


def sync_wrapper(
    surface: _flow.Surface,
    begin: Callable[[Any, Mapping[str, Any]], Optional[Lean]],
    end: Ender,
    general: Wrapper,
) -> Wrapper:
    """A ``wrapt`` wrapper: the lean path for the common call, ``general`` for any other."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        lean = begin(instance, kwargs)
        if lean is None:
            return general(wrapped, instance, args, kwargs)
        resends = [0]
        token = _inside.set(resends)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            _fail(_handover(lean, surface, kwargs, False), resends, exc)
            raise
        finally:
            _inside.reset(token)
        ended = (_perf_counter(), _time_ns())
        if not resends[0] and end(lean, result, ended):
            return result
        return _general_finish(_handover(lean, surface, kwargs, False), resends, result)

    return wrapper


def async_wrapper(
    surface: _flow.Surface,
    begin: Callable[[Any, Mapping[str, Any]], Optional[Lean]],
    end: Ender,
    general: Wrapper,
) -> Wrapper:
    """The async form of :func:`sync_wrapper`."""

    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        lean = begin(instance, kwargs)
        if lean is None:
            return await general(wrapped, instance, args, kwargs)
        resends = [0]
        token = _inside.set(resends)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:  # includes CancelledError
            _fail(_handover(lean, surface, kwargs, True), resends, exc)
            raise
        finally:
            _inside.reset(token)
        ended = (_perf_counter(), _time_ns())
        if not resends[0] and end(lean, result, ended):
            return result
        return _general_finish(_handover(lean, surface, kwargs, True), resends, result)

    return wrapper


def _fail(call: Optional[_flow.Call], resends: list[int], exc: BaseException) -> None:
    if call is not None:
        _flow._record_resends(call, resends)
        call.invocation.fail(exc)


def _general_finish(call: Optional[_flow.Call], resends: list[int], result: Any) -> Any:
    if call is None:
        return result
    if resends[0] > 0:
        _flow._record_resends(call, resends)
    return call.finish(result)
