"""Chat completions, legacy completions and embeddings: request, response, stream."""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from otelite import _semconv as sc
from otelite._integrations.openai._content import _json_or_text, _parts, _tool_call_parts
from otelite._integrations.openai._fields import (
    _common_params,
    _finish_reason,
    _get,
    _given,
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

# The fields a response (or a chunk) is read from. openai's models keep every field they
# declare (None when absent) in their __dict__: read there, one dict lookup each, rather
# than an attribute lookup per field. Any other shape is read field by field.
_RESPONSE_KEYS = frozenset(
    {"id", "model", "service_tier", "system_fingerprint", "choices", "usage"}
)


def _fields_of(response: Any) -> dict[str, Any]:
    """The response's fields (``_RESPONSE_KEYS``) as a dict."""
    try:
        fields = response if type(response) is dict else response.__dict__
        if type(fields) is dict and fields.keys() >= _RESPONSE_KEYS:
            return fields
    except AttributeError:
        pass
    return {key: _get(response, key) for key in _RESPONSE_KEYS}


def _chat_request(instance: Any, kwargs: Mapping[str, Any], operation: str = sc.OP_CHAT) -> Request:
    host, port, azure = _server(instance)
    provider = _provider(host, port, azure)
    attrs = _chat_attributes(kwargs, provider, operation)
    return Request(operation, provider, _model(instance, kwargs, azure), host, port, attrs)


def _chat_attributes(kwargs: Mapping[str, Any], provider: str, operation: str) -> Attributes:
    """The request's attributes of a chat or legacy completion call."""
    attrs: Attributes = {}
    _common_params(kwargs, attrs)
    max_tokens = kwargs.get("max_completion_tokens")
    if max_tokens is None or not _given(max_tokens):
        max_tokens = kwargs.get("max_tokens")
    if max_tokens is not None and _given(max_tokens) and _integer(max_tokens) is not None:
        attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    response_format = kwargs.get("response_format")
    if response_format is not None:
        output_type = _output_type(response_format)
        if output_type:
            attrs[sc.GEN_AI_OUTPUT_TYPE] = output_type
    api_type = "chat_completions" if operation == sc.OP_CHAT else None
    _openai_request(kwargs, provider, api_type, attrs)
    _prompt_attributes(kwargs, attrs)
    return attrs


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
    fields = _fields_of(response)
    response_id, model = fields["id"], fields["model"]
    if response_id and isinstance(response_id, str):  # as _identity, inline: every call
        attrs[sc.GEN_AI_RESPONSE_ID] = response_id
    if model and isinstance(model, str):
        attrs[sc.GEN_AI_RESPONSE_MODEL] = model
    else:
        model = None
    choices = fields["choices"] or []
    reasons = []
    refused = False
    for choice in choices:
        try:
            known = choice if type(choice) is dict else choice.__dict__
            reason, message = known["finish_reason"], known["message"]
        except (AttributeError, KeyError, TypeError):  # another shape: field by field
            reason, message = _get(choice, "finish_reason"), _get(choice, "message")
        reasons.append(reason if reason and isinstance(reason, str) else "error")
        if message is not None and not refused:
            refused = bool(_get(message, "refusal"))
    attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    raw_usage = fields["usage"]
    usage = (
        _Usage(raw_usage, "prompt_tokens", "completion_tokens") if raw_usage is not None else None
    )
    tier, fingerprint = fields["service_tier"], fields["system_fingerprint"]
    tier = tier if tier and isinstance(tier, str) else None
    fingerprint = fingerprint if fingerprint and isinstance(fingerprint, str) else None
    if request.provider == sc.PROVIDER_OPENAI:
        if tier:
            attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] = tier
        if fingerprint:
            attrs[sc.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fingerprint

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
        tier,
        refused=refused,
        response=response,
        fingerprint=fingerprint or "",  # read above: "" when the response has none
    )


class _Choice:
    __slots__ = ("finish_reason", "refusal", "text", "tool_calls")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: Optional[str] = None


# A chunk's identity fields and where the accumulator keeps the last real value of each.
_SLOTS = {"model": "_model", "service_tier": "_tier", "system_fingerprint": "_fingerprint"}
_IDENTITY = tuple(_SLOTS)
_GETTERS = {name: operator.itemgetter(name) for name in ("id", *_SLOTS)}
_NOWHERE = object()  # the index of no choice: the next choice is read in full


def _text_of(chunk: Any, name: str) -> Optional[str]:
    """A chunk's field as ``_text`` reads it: from an openai model's ``__dict__`` (one lookup),
    else field by field."""
    try:
        value = chunk.__dict__[name]
    except (AttributeError, KeyError, TypeError):
        value = _get(chunk, name)
    return value if value and isinstance(value, str) else None


class ChatAccumulator:
    """Rebuilds a chat (or legacy completion) response from its chunks."""

    __slots__ = (
        "_capture",
        "_choices",
        "_fingerprint",
        "_id",
        "_kwargs",
        "_model",
        "_openai",
        "_request",
        "_tier",
        "_usage",
        "hides",
    )

    def __init__(
        self, request: Request, kwargs: Mapping[str, Any], capture: bool, hide_usage: bool
    ) -> None:
        self._request = request
        self._kwargs = kwargs
        self._capture = capture
        self.hides = hide_usage  # whether any chunk may be hidden from the caller
        self._id: Optional[str] = None
        self._model: Optional[str] = None
        self._usage: Any = None
        self._tier: Optional[str] = None
        self._fingerprint: Optional[str] = None
        self._choices: dict[int, _Choice] = {}
        self._openai = request.provider == sc.PROVIDER_OPENAI

    def add(self, chunk: Any) -> bool:
        """Account for one chunk; ``True``: the caller must not see it (see ``hidden``)."""
        self.add_many((chunk,))
        return self.hidden(chunk)

    def hidden(self, chunk: Any) -> bool:
        """Whether ``chunk`` is the usage-only chunk otelite asked for (the caller never sees it)."""
        return self.hides and _get(chunk, "usage") is not None and not _get(chunk, "choices")

    def add_many(self, chunks: Sequence[Any]) -> None:
        """Account for chunks the caller has read, in order (the stream recorder batches them)."""
        # One loop reads what the span needs from each model's __dict__ (as _fields_of); the
        # id, model, tier and fingerprint are found once per batch, after it. Most chunks
        # carry a piece of text for the choice before them and nothing else: five lookups
        # tell them, and the text is appended. A chunk, or a choice, without the usual
        # fields (another shape) is read field by field.
        states = self._choices
        # The index of the choice whose text the loop appended last, and its text.append
        # (a choice's state, once made, is never replaced).
        here: Any = _NOWHERE
        text: Any = None
        seen: list[dict[str, Any]] = []  # each chunk's __dict__, used if all have one
        keep = seen.append
        shaped = True
        for chunk in chunks:
            try:
                fields = chunk.__dict__
                choices = fields["choices"]
                usage = fields["usage"]
            except (AttributeError, KeyError, TypeError):
                self._add_any(chunk)  # dicts, objects without the usual fields
                shaped = False
                continue
            keep(fields)
            for choice in choices or ():
                try:
                    known = choice.__dict__
                    delta = known["delta"].__dict__
                    if (
                        known["index"] == here
                        and not known["finish_reason"]
                        and not (delta["tool_calls"] or delta["function_call"] or delta["refusal"])
                    ):
                        content = delta["content"]
                        if content:
                            text(content)
                        continue
                    content = delta["content"]
                    refusal = delta["refusal"]
                    simple = not (delta["tool_calls"] or delta["function_call"])
                    index = known["index"] or 0
                    reason = known["finish_reason"]
                except (AttributeError, KeyError, TypeError):
                    simple = False
                if not simple:
                    self._add_choice(choice)  # tool calls, legacy completions, other shapes
                    continue
                state = states.get(index)
                if state is None:
                    state = states[index] = _Choice()
                text = state.text.append
                here = index
                if reason:
                    state.finish_reason = reason
                # Text is kept even without capture: it is what usage is estimated from.
                if content:
                    text(content)
                if refusal:
                    state.refusal.append(refusal)
            if usage is not None:
                self._usage = usage  # providers that repeat cumulative usage: the last one wins
        if chunks:
            self._identify(chunks, seen if shaped else None)

    def _identify(self, chunks: Sequence[Any], fields: Optional[list[dict[str, Any]]]) -> None:
        # The first id; the last real model (Azure's first chunk has model ""), tier and
        # fingerprint: each a non-empty str, as _text reads them in _add_any. With every
        # chunk's __dict__ at hand, the first truthy value is found by a C loop (most
        # chunks have no tier or fingerprint at all); any other value, chunk by chunk.
        if self._id is None:
            found = self._first(chunks, fields, "id")
            if found:
                self._id = found
        for name in _IDENTITY if self._openai else _IDENTITY[:2]:  # fingerprint: OpenAI only
            found = self._first(chunks, fields, name, True)
            if found:
                setattr(self, _SLOTS[name], found)

    @staticmethod
    def _first(
        chunks: Sequence[Any],
        fields: Optional[list[dict[str, Any]]],
        name: str,
        last: bool = False,
    ) -> Optional[str]:
        """The first (``last``: last) non-empty str ``name`` of the chunks."""
        if fields is not None:
            try:
                found = next(
                    filter(None, map(_GETTERS[name], reversed(fields) if last else fields)), None
                )
                if found is None or isinstance(found, str):
                    return found
            except KeyError:
                pass
        for chunk in reversed(chunks) if last else chunks:
            text = _text_of(chunk, name)
            if text:
                return text
        return None

    def _add_any(self, chunk: Any) -> None:
        # Any chunk shape (dicts, objects without the usual fields): every field read alike.
        if self._id is None:
            self._id = _text(_get(chunk, "id"))
        self._model = _text(_get(chunk, "model")) or self._model
        self._tier = _text(_get(chunk, "service_tier")) or self._tier
        if self._openai:
            self._fingerprint = _text(_get(chunk, "system_fingerprint")) or self._fingerprint
        for choice in _get(chunk, "choices") or ():
            self._add_choice(choice)
        usage = _get(chunk, "usage")
        if usage is not None:
            self._usage = usage

    def _add_choice(self, choice: Any) -> None:
        index = _get(choice, "index") or 0
        state = self._choices.get(index)
        if state is None:
            state = self._choices[index] = _Choice()
        reason = _get(choice, "finish_reason")
        if reason:
            state.finish_reason = reason
        self._add_content(state, choice)

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

    def lean_state(self) -> Optional[tuple[str, str, Optional[str], Optional[str], Any, list[str]]]:
        """(id, model, tier, fingerprint, usage, finish reasons) of a stream that ended with
        all of them (the lean path records it); ``None`` when one is missing."""
        if self._id is None or self._model is None or self._usage is None:
            return None
        reasons = []
        for index in sorted(self._choices):
            reason = self._choices[index].finish_reason
            if type(reason) is not str or not reason:
                return None
            reasons.append(reason)
        return self._id, self._model, self._tier, self._fingerprint, self._usage, reasons

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
        if self._openai:
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
    attrs = _embeddings_attributes(kwargs)
    return Request(sc.OP_EMBEDDINGS, provider, _model(instance, kwargs, azure), host, port, attrs)


def _embeddings_attributes(kwargs: Mapping[str, Any]) -> Attributes:
    """The request's attributes of an embeddings call."""
    attrs: Attributes = {}
    fmt = kwargs.get("encoding_format")
    if _given(fmt) and isinstance(fmt, str):
        attrs[sc.GEN_AI_REQUEST_ENCODING_FORMATS] = [fmt]
    dimensions = _integer(kwargs.get("dimensions"))
    if dimensions is not None:
        attrs[sc.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = dimensions
    return attrs


def _embeddings_outcome(response: Any, request: Request, kwargs: Mapping[str, Any]) -> Outcome:
    attrs: Attributes = {}
    model = _identity(attrs, None, _get(response, "model"))
    raw_usage = _get(response, "usage")
    usage = (
        _Usage(raw_usage, "prompt_tokens", "completion_tokens") if raw_usage is not None else None
    )
    outcome = _outcome(
        attrs,
        model,
        usage,
        request,
        kwargs,
        str,
        None,
        None,
        estimate_output=False,
        response=response,
    )
    outcome.output_tokens = None  # embeddings produce no output tokens
    return outcome
