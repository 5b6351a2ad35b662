"""Calling an OpenAI-compatible chat endpoint for judges and synthetic data.

Either an ``openai`` client the user already has (sync), or plain ``httpx`` with a
base URL, a model and a key. Each call is one ``chat {model}`` CLIENT span made
here, marked ``otelite.traffic=evaluation`` and priced like any LLM call, so the
judge's cost is reported apart from the application's. otelite's own OpenAI
instrumentation is suppressed for the call, so it is never recorded twice.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urlparse

from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind

from otelite import _config, _context, _guard, _pricing, _spans
from otelite import _semconv as sc
from otelite._exceptions import ConfigurationError, OteliteError
from otelite._metrics import instruments

DEFAULT_BASE_URL = "https://api.openai.com/v1"
OPENAI_COMPATIBLE = "openai_compatible"


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
    policy = _config.active().content
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


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _str_attr(obj: Any, name: str) -> Optional[str]:
    value = getattr(obj, name, None)
    return value if isinstance(value, str) else None


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
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigurationError(f"{who}: give model=, such as model='gpt-4o-mini'")
        self.model = model
        self.timeout = timeout
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
        self.provider = sc.PROVIDER_OPENAI if self.host == "api.openai.com" else OPENAI_COMPATIBLE
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
        return _config.active().content.clean_error(f"{self.base_url} {what}")

    def complete(
        self, messages: Sequence[Mapping[str, str]], *, temperature: float = 0.0
    ) -> Completion:
        """One chat call, traced as evaluation traffic; raises EndpointError when it fails."""
        active = _config.active()
        span = active.tracer.start_span(
            f"{sc.OP_CHAT} {self.model}",
            kind=SpanKind.CLIENT,
            attributes={
                sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
                sc.GEN_AI_PROVIDER_NAME: self.provider,
                sc.GEN_AI_REQUEST_MODEL: self.model,
                sc.GEN_AI_REQUEST_TEMPERATURE: temperature,
                sc.SERVER_ADDRESS: self.host,
                sc.SERVER_PORT: self.port,
                sc.OTELITE_TRAFFIC: sc.TRAFFIC_EVALUATION,
            },
        )
        content = active.content if active.content.capture and span.is_recording() else None
        if content is not None:
            system = [m["content"] for m in messages if m.get("role") == "system"]
            if system:
                span.set_attribute(
                    sc.GEN_AI_SYSTEM_INSTRUCTIONS,
                    content.render([{"type": "text", "content": text} for text in system]),
                )
            span.set_attribute(
                sc.GEN_AI_INPUT_MESSAGES,
                content.render(
                    [
                        {"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]}
                        for m in messages
                        if m.get("role") != "system"
                    ]
                ),
            )
        started = time.perf_counter()
        # The judge's own span stands for this call: instrumentation must not add another.
        token = otel_context.attach(otel_context.set_value(_spans.SUPPRESS_KEY, True))
        try:
            try:
                raw = self._request(messages, temperature)
            finally:
                otel_context.detach(token)
            latency = time.perf_counter() - started
            choices = _get(raw, "choices") or []
            if not choices:
                raise EndpointError(self._where("answered without choices"))
            message = _get(choices[0], "message")
            text = _get(message, "content") or _get(message, "refusal") or ""
            usage = _get(raw, "usage")
            input_tokens = _int(_get(usage, "prompt_tokens"))
            output_tokens = _int(_get(usage, "completion_tokens"))
            response_model = _get(raw, "model")
            cost = None
            if input_tokens is not None or output_tokens is not None:
                priced = _pricing.price_call(
                    self.provider,
                    (response_model if isinstance(response_model, str) else None, self.model),
                    _pricing.TokenUsage(input_tokens or 0, output_tokens or 0),
                    None,
                    active.prices,
                )
                cost = priced.usd if priced is not None else None
            attrs: dict[str, Any] = {
                sc.GEN_AI_RESPONSE_FINISH_REASONS: [
                    str(_get(choices[0], "finish_reason") or "error")
                ]
            }
            for key, value in (
                (sc.GEN_AI_RESPONSE_ID, _get(raw, "id")),
                (sc.GEN_AI_RESPONSE_MODEL, response_model),
                (sc.GEN_AI_USAGE_INPUT_TOKENS, input_tokens),
                (sc.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens),
                (sc.GEN_AI_USAGE_COST, cost),
            ):
                if value is not None:
                    attrs[key] = value
            if cost is None and (input_tokens is not None or output_tokens is not None):
                attrs[sc.OTELITE_COST_UNPRICED] = True
            if content is not None:
                attrs[sc.GEN_AI_OUTPUT_MESSAGES] = content.render(
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "text", "content": str(text)}],
                            "finish_reason": attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS][0],
                        }
                    ]
                )
            span.set_attributes(attrs)
            _context.count_call(input_tokens, output_tokens, cost)
            self._record_metrics(
                active, latency, response_model, None, input_tokens, output_tokens, cost
            )
            return Completion(
                str(text),
                input_tokens,
                output_tokens,
                cost,
                latency,
                response_model if isinstance(response_model, str) else None,
            )
        except Exception as exc:
            _spans.record_error(span, exc)
            self._record_metrics(
                active,
                time.perf_counter() - started,
                None,
                _spans.error_type(exc),
                None,
                None,
                None,
            )
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
        finally:
            span.end()

    def _record_metrics(
        self,
        active: _config.Active,
        duration: float,
        response_model: Any,
        error_type: Optional[str],
        input_tokens: Optional[int],
        output_tokens: Optional[int],
        cost: Optional[float],
    ) -> None:
        """The GenAI client metrics for one judge call, marked evaluation traffic."""
        with _guard.contained("recording judge call metrics"):
            made = instruments(active.meter)
            attrs: dict[str, Any] = {
                sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
                sc.GEN_AI_PROVIDER_NAME: self.provider,
                sc.GEN_AI_REQUEST_MODEL: self.model,
                sc.SERVER_ADDRESS: self.host,
                sc.SERVER_PORT: self.port,
                sc.OTELITE_TRAFFIC: sc.TRAFFIC_EVALUATION,
            }
            if isinstance(response_model, str) and response_model:
                attrs[sc.GEN_AI_RESPONSE_MODEL] = response_model
            if error_type:
                attrs[sc.ERROR_TYPE] = error_type
            made.duration.record(duration, attrs)
            for tokens, kind in (
                (input_tokens, sc.TOKEN_TYPE_INPUT),
                (output_tokens, sc.TOKEN_TYPE_OUTPUT),
            ):
                if tokens is not None:
                    made.tokens.record(tokens, {**attrs, sc.GEN_AI_TOKEN_TYPE: kind})
            if cost is not None:
                made.cost.add(cost, attrs)
