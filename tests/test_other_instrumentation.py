"""Another instrumentation's span around an OpenAI call: otelite steps back once, warns once."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

import otelite
from fakeopenai import chat_completion, client, json_response
from otelite.testing import capture_spans

MESSAGES = [{"role": "user", "content": "Capital of France?"}]
LOGGER = "otelite._integrations.openai"


def chat_handler(body: dict[str, Any]) -> Any:
    return lambda request: json_response(body)


pytestmark = pytest.mark.usefixtures("openai_instrumented")


def test_other_genai_client_span_means_no_second_span(caplog: pytest.LogCaptureFixture) -> None:
    """Inside another scope's CLIENT GenAI span for the call, otelite records nothing and warns once."""
    other = TracerProvider(shutdown_on_exit=False).get_tracer("vendor.instrumentation.llm")
    c = client(chat_handler(chat_completion()))
    with caplog.at_level(logging.WARNING, logger=LOGGER), capture_spans() as cap:
        for _ in range(3):
            with other.start_as_current_span(
                "chat gpt-4o-mini",
                kind=SpanKind.CLIENT,
                attributes={"gen_ai.operation.name": "chat"},
            ):
                reply = c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            assert reply.choices[0].message.content == "Paris."
    assert cap.spans == []
    warnings = [r for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    message = warnings[0].getMessage()
    assert "another OpenAI instrumentation (vendor.instrumentation.llm)" in message
    assert "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=openai" in message
    assert "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otelite-openai" in message


@pytest.mark.parametrize(
    ("scope", "kind", "attributes"),
    [
        ("opentelemetry.instrumentation.httpx", SpanKind.CLIENT, {"http.method": "POST"}),
        ("my.app", SpanKind.INTERNAL, {"gen_ai.operation.name": "chat"}),
    ],
)
def test_unrelated_current_span_does_not_hide_the_call(
    caplog: pytest.LogCaptureFixture, scope: str, kind: SpanKind, attributes: dict[str, str]
) -> None:
    """An HTTP client span or an app's own INTERNAL span around the call leaves otelite's span alone."""
    other = TracerProvider(shutdown_on_exit=False).get_tracer(scope)
    c = client(chat_handler(chat_completion()))
    with caplog.at_level(logging.WARNING, logger=LOGGER), capture_spans() as cap:
        with other.start_as_current_span("outer", kind=kind, attributes=attributes):
            c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert [(s.name, s.kind) for s in cap.spans] == [("chat gpt-4o-mini", SpanKind.CLIENT)]
    assert [r for r in caplog.records if r.name == LOGGER] == []


def test_another_wrapper_patched_first_is_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    """A method another library wrapped with wrapt before otelite is not wrapped twice; one warning."""
    import wrapt
    from openai.resources.chat.completions import Completions

    otelite.uninstrument_openai()
    original = Completions.__dict__["create"]
    calls: list[str] = []

    def theirs(wrapped, instance, args, kwargs):  # type: ignore[no-untyped-def]
        calls.append("theirs")
        return wrapped(*args, **kwargs)

    theirs.__module__ = "vendor.instrumentation.openai"
    Completions.create = wrapt.FunctionWrapper(original, theirs)  # type: ignore[method-assign]
    try:
        with caplog.at_level(logging.WARNING, logger=LOGGER), capture_spans() as cap:
            otelite.instrument_openai()
            otelite.instrument_openai()  # idempotent: still one warning
            c = client(chat_handler(chat_completion()))
            c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert Completions.__dict__["create"].__wrapped__ is original  # theirs only
        assert calls == ["theirs"]
        assert cap.spans == []
        warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER]
        assert len(warnings) == 1
        assert "(vendor.instrumentation.openai, on Completions.create)" in warnings[0]
    finally:
        otelite.uninstrument_openai()
        Completions.create = original  # type: ignore[method-assign]
