"""Calling an OpenAI-compatible chat endpoint for judges and synthetic data.

Either an ``openai`` client the user already has (sync), or plain ``httpx`` with a
base URL, a model and a key. Each call is one ``chat {model}`` CLIENT span made by
the LLM-call core (``otelite._llm``) like any instrumented call, marked
``otelite.traffic=evaluation``, so the judge's cost is reported apart from the
application's. otelite's own OpenAI instrumentation sees the core's re-entrancy
guard and records the call only once.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlparse

from otelite import _llm, _registries, _spans, _state
from otelite import _semconv as sc
from otelite._exceptions import ConfigurationError, OteliteError

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class EndpointError(OteliteError):
    """The judge endpoint could not be reached or answered with an error.

    Its message is redacted like any error text otelite records; with content
    capture off it carries no response body, only the status and the error's
    type and code. ``status_code`` (``type``, ``code``) are set for an HTTP error answer.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: Optional[int] = None,
        type: Optional[str] = None,
        code: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.type = type
        self.code = code


# How much of an error body is kept (redacted) when content capture is on.
_BODY_CHARS = 200


def _status_error(base_url: str, response: Any) -> EndpointError:
    """The EndpointError for an HTTP error answer: status, type, code; the body only when captured."""
    policy = _state.active().content
    status = int(response.status_code)
    error_type = code = None
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(error, Mapping):
        error_type = error.get("type") if isinstance(error.get("type"), str) else None
        code = error.get("code") if isinstance(error.get("code"), (str, int)) else None
    if policy.capture:
        head = f"{base_url} answered HTTP {status}: "
        message = policy.clean_error(head + str(response.text)[: 20 * _BODY_CHARS])
        limit = len(head) + _BODY_CHARS
        if len(message) > limit:
            message = message[:limit] + "…"
    else:
        summary = _spans.http_summary(status, error_type, code)
        message = policy.clean_error(f"{base_url} answered {summary}")
    return EndpointError(
        message,
        status_code=status,
        type=error_type,
        code=None if code is None else str(code),
    )


@dataclass(frozen=True)
class Completion:
    """One chat completion: its text and what it cost."""

    text: str
    input_tokens: Optional[int]
    output_tokens: Optional[int]
    cost: Optional[float]
    latency_s: float
    response_model: Optional[str] = None
    finish_reason: Optional[str] = None
    system_fingerprint: Optional[str] = None
    # The response as received (a dict from httpx, the client's object from openai),
    # for callers that read more than the text, such as canaries.
    raw: Any = field(default=None, repr=False, compare=False)


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _str_attr(obj: Any, name: str) -> Optional[str]:
    value = getattr(obj, name, None)
    return value if isinstance(value, str) else None


def _str_or_none(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class ChatEndpoint:
    """A sync OpenAI-compatible chat endpoint (an ``openai`` client, or httpx with a base URL)."""

    def __init__(
        self,
        *,
        client: Any = None,
        model: Optional[str] = None,
        base_url: Optional[str] = None,
        api_key: Optional[str] = None,
        timeout: float = 60.0,
        transport: Any = None,
        who: str = "llm_judge",
        traffic: str = sc.TRAFFIC_EVALUATION,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigurationError(f"{who}: give model=, such as model='gpt-4o-mini'")
        self.model = model
        self.timeout = timeout
        self.traffic = traffic  # the otelite.traffic value of its spans
        self._openai: Any = None
        self._http: Any = None
        if client is not None:
            create = getattr(
                getattr(getattr(client, "chat", None), "completions", None), "create", None
            )
            if create is not None:
                if inspect.iscoroutinefunction(inspect.unwrap(create)) or type(
                    client
                ).__name__.startswith("Async"):
                    raise ConfigurationError(
                        f"{who}: client= is an async client; give a sync one (openai.OpenAI) — "
                        "evaluate() runs sync evaluators on worker threads"
                    )
                self._openai = client
                url = str(getattr(client, "base_url", "") or DEFAULT_BASE_URL)
            elif callable(getattr(client, "post", None)):
                self._http = client
                url = base_url or str(getattr(client, "base_url", "") or "")
                if not url:
                    raise ConfigurationError(f"{who}: give base_url= with an httpx client")
            else:
                raise ConfigurationError(
                    f"{who}: client= must be an openai.OpenAI client or an httpx.Client, "
                    f"got {type(client).__name__}"
                )
        else:
            url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigurationError(f"{who}: base_url {url!r} is not an http(s) URL")
        self.base_url = url.rstrip("/")
        self.host = parsed.hostname
        self.port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.provider = _registries.provider_for(self.host, parsed.port)
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if self._openai is None and self._http is None:
            if not self.api_key and self.provider == sc.PROVIDER_OPENAI:
                raise ConfigurationError(
                    f"{who}: no API key for {self.base_url}; pass api_key=, set OPENAI_API_KEY, "
                    "or pass client="
                )
            self._transport = transport

    def _httpx_client(self) -> Any:
        if self._http is None:
            import httpx

            kwargs: dict[str, Any] = {"timeout": self.timeout}
            if self._transport is not None:
                kwargs["transport"] = self._transport
            self._http = httpx.Client(**kwargs)
        return self._http

    def _request(self, messages: Sequence[Mapping[str, str]], temperature: float) -> Any:
        if self._openai is not None:
            return self._openai.chat.completions.create(
                model=self.model, messages=list(messages), temperature=temperature
            )
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = {"model": self.model, "messages": list(messages), "temperature": temperature}
        response = self._httpx_client().post(
            f"{self.base_url}/chat/completions", json=body, headers=headers
        )
        if response.status_code >= 400:
            raise _status_error(self.base_url, response)
        try:
            return response.json()
        except ValueError:
            raise EndpointError(self._where("did not answer with JSON")) from None

    def _where(self, what: str) -> str:
        """``"{base_url} {what}"``, redacted (a base URL can carry credentials)."""
        return _state.active().content.clean_error(f"{self.base_url} {what}")

    def _content(self, messages: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        """The request's content attributes (read only when capture is on)."""
        content: dict[str, Any] = {}
        system = [m["content"] for m in messages if m.get("role") == "system"]
        if system:
            content[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = [
                {"type": "text", "content": text} for text in system
            ]
        content[sc.GEN_AI_INPUT_MESSAGES] = [
            {"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]}
            for m in messages
            if m.get("role") != "system"
        ]
        return content

    def complete(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        temperature: float = 0.0,
        attributes: Optional[Mapping[str, Any]] = None,
    ) -> Completion:
        """One chat call, traced as evaluation traffic; raises EndpointError when it fails.

        The call goes through the same LLM-call core as instrumented clients: its
        span has the same provider name, usage and cost provenance attributes, and
        its metrics the same instruments, marked ``otelite.traffic=evaluation``
        (or the endpoint's ``traffic``). ``attributes`` are added to the span when
        it starts (a prompt version's link, for instance).
        """
        request = _llm.Request(
            sc.OP_CHAT,
            self.provider,
            self.model,
            self.host,
            self.port,
            {
                **(attributes or {}),
                sc.GEN_AI_REQUEST_TEMPERATURE: temperature,
                sc.OTELITE_TRAFFIC: self.traffic,
            },
        )
        invocation = _llm.start(request, lambda: self._content(messages), checks=False)
        started = time.perf_counter()
        # The judge's own span stands for this call: an instrumented client used for it
        # sees the core's re-entrancy guard and records nothing more.
        token = _llm.inside_call.set([0])
        try:
            try:
                raw = self._request(messages, temperature)
            finally:
                _llm.inside_call.reset(token)
            ended = _llm.stop_clock()
            latency = time.perf_counter() - started
            choices = _get(raw, "choices") or []
            if not choices:
                raise EndpointError(self._where("answered without choices"))
            message = _get(choices[0], "message")
            text = str(_get(message, "content") or _get(message, "refusal") or "")
            outcome = self._outcome(raw, choices[0], text)
        except Exception as exc:
            if invocation is not None:
                invocation.fail(exc)
            if isinstance(exc, EndpointError):
                raise
            # The error's text, redacted; an HTTP error's body only when content is captured.
            status = _spans.http_status(exc)
            raise EndpointError(
                _spans.error_text(exc),
                status_code=status,
                type=_str_attr(exc, "type") if status is not None else None,
                code=_str_attr(exc, "code") if status is not None else None,
            ) from exc
        except BaseException as exc:  # interrupted: the span still ends
            if invocation is not None:
                invocation.fail(exc)
            raise
        cost = invocation.end(outcome, ended=ended) if invocation is not None else None
        return Completion(
            text,
            outcome.input_tokens,
            outcome.output_tokens,
            cost.usd if cost is not None else None,
            latency,
            outcome.response_model,
            finish_reason=_str_or_none(_get(choices[0], "finish_reason")),
            system_fingerprint=_str_or_none(_get(raw, "system_fingerprint")),
            raw=raw,
        )

    def _outcome(self, raw: Any, choice: Any, text: str) -> _llm.Outcome:
        """The response's attributes, usage (cached and audio tokens included) and output."""
        finish = str(_get(choice, "finish_reason") or "error")
        attrs: dict[str, Any] = {sc.GEN_AI_RESPONSE_FINISH_REASONS: [finish]}
        response_id = _get(raw, "id")
        if isinstance(response_id, str) and response_id:
            attrs[sc.GEN_AI_RESPONSE_ID] = response_id
        model = _get(raw, "model")
        response_model = model if isinstance(model, str) and model else None
        if response_model:
            attrs[sc.GEN_AI_RESPONSE_MODEL] = response_model
        usage = _get(raw, "usage")
        read = _llm.Usage(usage, "prompt_tokens", "completion_tokens") if usage else None
        if read is not None:
            read.apply(attrs)
        return _llm.Outcome(
            attrs,
            response_model,
            read.input if read is not None else None,
            read.output if read is not None else None,
            lambda: [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": text}],
                    "finish_reason": finish,
                }
            ],
            cache_read_tokens=(read.cached or 0) if read is not None else 0,
            audio_input_tokens=(read.audio_in or 0) if read is not None else 0,
            audio_output_tokens=(read.audio_out or 0) if read is not None else 0,
            text=lambda: text,
        )
