"""The common OpenAI call on the core's lean path (``otelite._llm._lean``).

``chat.completions.create`` (with or without streaming) and ``embeddings.create``,
when the call is the common one: not nested in another instrumented call, not
suppressed, no other LLM span around it, content capture off, no online checks,
no metric dimensions, and not an Azure client. The request is read (and a
stream's usage asked for) by the same functions as the general path's; the
response, or the stream's accumulated chunks, is read here only when it is one of
openai's own models with every field in its usual type and usage sent. Otherwise,
and for retries, errors, raw responses and streams that fail or are left early,
the call is handed over to the general path, which reads and ends it as before.
Every wrapper here is the general wrapper for any other call.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Callable, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace

from otelite import _guard, _registries, _state
from otelite import _semconv as sc
from otelite._integrations.openai import _stream_usage
from otelite._integrations.openai._chat import (
    ChatAccumulator,
    _chat_attributes,
    _embeddings_attributes,
)
from otelite._integrations.openai._fields import _is_stream, _server
from otelite._llm import (
    AsyncStreamProxy,
    Attributes,
    Request,
    StreamRecorder,
    SyncStreamProxy,
    _flow,
    _lean,
)
from otelite._llm._call import Clock
from otelite._llm._lean import Lean

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
# (lean call, result, when it ended, async) -> what the caller gets, or HANDOVER
Ender = Callable[[Lean, Any, Clock, bool], Any]

HANDOVER = object()
"""Returned by an :data:`Ender` for a result the general path must read."""

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
    if stream is not None and stream is not False and stream is not True:
        return None  # not a plain flag: the general path
    common = _common(instance, kwargs)
    if common is None:
        return None
    active, host, port, model = common
    provider = _registries.provider_for(host, port)
    attrs = _chat_attributes(kwargs, provider, sc.OP_CHAT)
    lean = _lean.begin(active, sc.OP_CHAT, provider, model, host, port, attrs)
    if lean is not None and stream is True:
        try:  # usage asked for, as the general path's prepare hook does
            changed = _stream_usage.prepare(
                instance, kwargs, Request(*lean.key, attrs), active.stream_usage
            )
        except Exception as exc:
            _guard.report("preparing an LLM request", exc)
            changed = None
        lean.sent = changed if changed is not None else kwargs
        lean.hides = changed is not None
    return lean


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


def _usage(usage: Any) -> tuple[int, int, Any, Any, Any, Any]:
    """(input, output, cached, audio in, reasoning, audio out) of a ``CompletionUsage`` whose
    counts the general reader records unchanged; raises ``TypeError`` (or a lookup error)
    for any other usage, ``None`` included (an estimate): the call is then handed over."""
    counts = usage.__dict__
    input_tokens, output_tokens = counts["prompt_tokens"], counts["completion_tokens"]
    if type(input_tokens) is not int or type(output_tokens) is not int:
        raise TypeError("an odd count")
    if input_tokens < 0 or output_tokens < 0:
        raise TypeError("an odd count")
    cached, audio_in = _details(counts["prompt_tokens_details"], "cached_tokens", "audio_tokens")
    reasoning, audio_out = _details(
        counts["completion_tokens_details"], "reasoning_tokens", "audio_tokens"
    )
    return input_tokens, output_tokens, cached, audio_in, reasoning, audio_out


def _end_chat(
    lean: Lean,
    attrs: Attributes,
    model: str,
    reasons: list[str],
    usage: tuple[int, int, Any, Any, Any, Any],
    tier: Optional[str],
    fingerprint: Optional[str],
    ended: Clock,
    first_chunk: Optional[float] = None,
    chunk_gaps: Optional[list[float]] = None,
) -> bool:
    """The attributes a chat outcome adds after its identity, then the lean end."""
    if lean.key[1] == _OPENAI:
        if tier:
            attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] = tier
        if fingerprint:
            attrs[sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fingerprint
    input_tokens, output_tokens, cached, audio_in, reasoning, audio_out = usage
    attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
    attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
    if cached is not None:
        attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = cached
    if reasoning is not None:
        attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = reasoning
    tokens = (input_tokens, output_tokens, cached or 0, audio_in or 0, audio_out or 0)
    return _lean.finish(
        lean, attrs, model, fingerprint, reasons, tokens, tier, ended, first_chunk, chunk_gaps
    )


def end_chat(lean: Lean, result: Any, ended: Clock, is_async: bool) -> Any:
    """What the caller gets: a ``ChatCompletion`` read and its call ended (as ``_chat_outcome``
    and ``Invocation.end`` would), a stream's proxy, or ``HANDOVER``."""
    if _kind(result) != "ChatCompletion":
        return _stream(lean, result, is_async) if _is_stream(result) else HANDOVER
    try:
        fields = result.__dict__
        response_id, model = fields["id"], fields["model"]
        if type(response_id) is not str or not response_id or type(model) is not str or not model:
            return HANDOVER
        reasons = []
        for choice in fields["choices"]:
            reason = choice.__dict__["finish_reason"]
            if type(reason) is not str or not reason:
                return HANDOVER  # recorded as "error" by the general reader
            reasons.append(reason)
        usage = _usage(fields["usage"])
        tier, fingerprint = fields["service_tier"], fields["system_fingerprint"]
    except (AttributeError, KeyError, TypeError):
        return HANDOVER
    if not (tier is None or type(tier) is str) or not (
        fingerprint is None or type(fingerprint) is str
    ):
        return HANDOVER
    attrs: Attributes = {
        sc.GEN_AI_RESPONSE_ID: response_id,
        sc.GEN_AI_RESPONSE_MODEL: model,
        sc.GEN_AI_RESPONSE_FINISH_REASONS: reasons,
    }
    done = _end_chat(lean, attrs, model, reasons, usage, tier or None, fingerprint or None, ended)
    return result if done else HANDOVER


def _stream(lean: Lean, result: Any, is_async: bool) -> Any:
    """The stream's proxy; its recorder ends the call on the lean path when it can."""
    if lean.sent is None:
        return HANDOVER  # a stream the caller did not ask for as one (extra_body)
    accumulator = ChatAccumulator(Request(*lean.key, lean.attributes), lean.sent, False, lean.hides)
    recorder = StreamRecorder(None, accumulator, (lean, _end_stream, _lean.handover))
    return AsyncStreamProxy(result, recorder) if is_async else SyncStreamProxy(result, recorder)


def _end_stream(
    accumulator: ChatAccumulator,
    lean: Lean,
    first_chunk: Optional[float],
    chunk_gaps: list[float],
    ended: Clock,
) -> bool:
    """End a finished chat stream from its accumulator, as its outcome and ``end`` would."""
    state = accumulator.lean_state()
    if state is None:
        return False
    response_id, model, tier, fingerprint, usage, reasons = state
    try:
        counts = _usage(usage)
    except (AttributeError, KeyError, TypeError):
        return False
    attrs: Attributes = {sc.GEN_AI_RESPONSE_ID: response_id, sc.GEN_AI_RESPONSE_MODEL: model}
    if reasons:
        attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    return _end_chat(
        lean, attrs, model, reasons, counts, tier, fingerprint, ended, first_chunk, chunk_gaps
    )


def end_embeddings(lean: Lean, result: Any, ended: Clock, is_async: bool) -> Any:
    """What the caller gets: a ``CreateEmbeddingResponse`` read and its call ended as the
    general path would, or ``HANDOVER``."""
    if _kind(result) != "CreateEmbeddingResponse":
        return HANDOVER
    try:
        model = result.__dict__["model"]
        usage = result.__dict__["usage"]
        input_tokens = usage.__dict__["prompt_tokens"]
        # Undeclared fields (a fingerprint, output counts, details) are read by the general path.
        if result.__pydantic_extra__ or usage.__pydantic_extra__:
            return HANDOVER
    except (AttributeError, KeyError, TypeError):
        return HANDOVER
    if type(model) is not str or not model or type(input_tokens) is not int or input_tokens < 0:
        return HANDOVER
    attrs: Attributes = {
        sc.GEN_AI_RESPONSE_MODEL: model,
        sc.GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
    }
    tokens = (input_tokens, None, 0, 0, 0)
    done = _lean.finish(lean, attrs, model, None, [], tokens, None, ended)
    return result if done else HANDOVER


def _handover(
    lean: Lean, surface: _flow.Surface, kwargs: Mapping[str, Any], is_async: bool
) -> Optional[_flow.Call]:
    try:
        invocation = _lean.handover(lean)
    except Exception as exc:  # never reached in practice; the span still ends
        _guard.report("handing an LLM call over", exc)
        lean.span.end()
        return None
    return _flow.Call(surface, invocation, kwargs, lean.hides, is_async)


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
        sent = kwargs if lean.sent is None else lean.sent
        resends = [0]
        token = _inside.set(resends)
        try:
            result = wrapped(*args, **sent)
        except BaseException as exc:
            _fail(_handover(lean, surface, sent, False), resends, exc)
            raise
        finally:
            _inside.reset(token)
        if not resends[0]:
            got = end(lean, result, (_perf_counter(), _time_ns()), False)
            if got is not HANDOVER:
                return got
        return _general_finish(_handover(lean, surface, sent, False), resends, result)

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
        sent = kwargs if lean.sent is None else lean.sent
        resends = [0]
        token = _inside.set(resends)
        try:
            result = await wrapped(*args, **sent)
        except BaseException as exc:  # includes CancelledError
            _fail(_handover(lean, surface, sent, True), resends, exc)
            raise
        finally:
            _inside.reset(token)
        if not resends[0]:
            got = end(lean, result, (_perf_counter(), _time_ns()), True)
            if got is not HANDOVER:
                return got
        return _general_finish(_handover(lean, surface, sent, True), resends, result)

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
