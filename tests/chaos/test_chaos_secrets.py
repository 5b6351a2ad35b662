"""Secrets in error data: never recorded, in any capture mode, on any path.

Each planted secret below reaches otelite through an exception or an error body
(an application exception in ``@trace``, a chained cause, the real openai client
with a key read from a file with its newline, a 401 body echoing the key and the
``Authorization`` header, a judge endpoint's 500 body). The OTLP bytes a loopback
receiver got and the local store's files (database and WAL, read as raw bytes)
must not contain any of them.
"""

from __future__ import annotations

import asyncio
import builtins
import socket
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

import otelite
import otelite.store
from cassettes import http
from fakeopenai import chat_completion, client, json_response
from otelite import _content, _spans, evals
from otelite._export import LocalStoreExporter, SwappableProcessor, scrub_error_data
from otelite.evals import Score, checks
from otelite.testing import capture_spans
from otlp_receiver import http_receiver

# --- the planted secrets ----------------------------------------------------------------

APP_KEY = "sk-proj-Q7fK2mX9pL4vR8sT1wY6zB3nC5dE0gH2"  # in an application exception
NEWLINE_KEY = "sk-proj-Nw4lN3kE8yR2eAd5fR0mF1lE9wItH7nL"  # read from a file, "\n" kept
ECHO_KEY = "sk-proj-E1cH0bOdY6kEy2iN4aN8aUtH3eRr5oR7"  # echoed by a 401 body
AUTH_TOKEN = "ya29.a0AfH6SMBx7Q2kLm9Np4RsTuVw"  # echoed as "Authorization: Bearer ..."
JUDGE_KEY = "sk-proj-J5uD9gE3kEy7eChO2eD1iN6a5oOb0dY4"  # echoed by the judge's 500 body
AZURE_KEY = "3f9a1c7e5b2d4f608a1e9c3b7d5f2a4c"  # 32 hex, Azure OpenAI style
AZURE_HEADER_KEY = "9b2e4d6f8a0c1e3b5d7f9a1c3e5b7d90"  # in an illegal-header message, no name
BEARER = "gho16Tk3nB3aR3rXyZ0pQ9sW8vU7tR6"  # "Bearer <token>" in an exception
URL_PASSWORD = "hunter2-Ur1-pA55w0rd"  # https://admin:<password>@host
QUERY_KEY = "qk9d8c7b6a5f4e3d2c1b"  # ?api_key=<key>

SECRETS = {
    "APP_KEY": APP_KEY,
    "NEWLINE_KEY": NEWLINE_KEY,
    "ECHO_KEY": ECHO_KEY,
    "AUTH_TOKEN": AUTH_TOKEN,
    "JUDGE_KEY": JUDGE_KEY,
    "AZURE_KEY": AZURE_KEY,
    "AZURE_HEADER_KEY": AZURE_HEADER_KEY,
    "BEARER": BEARER,
    "URL_PASSWORD": URL_PASSWORD,
    "QUERY_KEY": QUERY_KEY,
}


class AppError(Exception):
    """An application's own exception."""


@otelite.trace
def sync_step() -> None:
    raise AppError(
        f"upstream refused key {APP_KEY} for https://admin:{URL_PASSWORD}@db.internal.example/q"
    )


@otelite.trace
async def async_step() -> None:
    raise AppError(
        f"azure said no: api-key={AZURE_KEY}; sent Authorization: Bearer {BEARER} to "
        f"https://api.example.com/v1/chat?api_key={QUERY_KEY}&x=1"
    )


@otelite.trace
def chained_step() -> None:
    try:
        {}["missing"]
    except KeyError:
        try:
            raise ValueError(f"lookup with {AZURE_KEY} failed")
        except ValueError as middle:
            raise RuntimeError("the step failed") from middle


@otelite.trace
def header_step() -> None:
    # What h11 says about an Azure key with a newline: the value, no header name.
    raise AppError(f"Illegal header value b'{AZURE_HEADER_KEY}\\n'")


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A socket on 127.0.0.1 that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def newline_key_call(port: int) -> None:
    """The real openai client with a key read from a file (trailing newline): httpx refuses it."""
    client = openai.OpenAI(
        api_key=NEWLINE_KEY + "\n", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
    )
    with pytest.raises(openai.APIConnectionError) as info:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    # The secret really is in what openai raised: otelite is what keeps it out.
    assert NEWLINE_KEY in "".join(traceback.format_exception(*_exc_info(info.value)))


def _exc_info(exc: BaseException) -> tuple[Any, BaseException, Any]:
    return type(exc), exc, exc.__traceback__


ERROR_BODY_401 = {
    "error": {
        "message": (
            f"Incorrect API key provided: {ECHO_KEY}. You sent the header "
            f"Authorization: Bearer {AUTH_TOKEN}"
        ),
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}


def echo_401_call() -> None:
    """A 401 whose body echoes the key and the Authorization header."""
    client = openai.OpenAI(
        api_key=ECHO_KEY,
        base_url="https://api.openai.com/v1",
        max_retries=0,
        http_client=http.Client(
            transport=http.MockTransport(lambda request: http.Response(401, json=ERROR_BODY_401))
        ),
    )
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert ECHO_KEY in str(info.value)


def judge_500() -> evals.LLMJudge:
    """A judge whose endpoint answers 500 with a body echoing its key and an Azure key."""
    body = {
        "error": {
            "message": f"backend failure for key {JUDGE_KEY} (azure key {AZURE_KEY})",
            "type": "server_error",
            "code": "internal",
        }
    }
    return evals.llm_judge(
        "correctness",
        model="judge-model",
        base_url="http://127.0.0.1:9/v1",
        api_key=JUDGE_KEY,
        transport=httpx.MockTransport(lambda request: httpx.Response(500, json=body)),
    )


QUESTION = {"input": "Capital of France?", "output": "Paris.", "expected": "Paris"}


def exercise(port: int) -> Score:
    """Every error path, once; returns the judge's score."""
    with pytest.raises(AppError):
        sync_step()
    with pytest.raises(AppError):
        asyncio.run(async_step())
    with pytest.raises(RuntimeError):
        chained_step()
    with pytest.raises(AppError):
        header_step()
    newline_key_call(port)
    echo_401_call()
    with otelite.span("answer"):
        score = judge_500()(**QUESTION)
        otelite.score(score)
    return score


def raw_store_bytes(store: Path) -> bytes:
    """Every byte of the store's files (database, WAL, shared memory)."""
    return b"".join(p.read_bytes() for p in sorted(store.iterdir()) if p.is_file())


def leaked(data: bytes) -> list[str]:
    """Names of the planted secrets found in ``data``."""
    return [name for name, secret in SECRETS.items() if secret.encode() in data]


@pytest.mark.parametrize("capture", [False, True], ids=["capture_off", "capture_on"])
def test_no_secret_reaches_otlp_or_the_store(
    capture: bool, store_dir: Path, listening_port: int, openai_instrumented: None
) -> None:
    """No planted secret is in the OTLP bytes or the store's db/WAL files, capture off or on."""
    with http_receiver() as (url, received):
        otelite.configure(
            service_name="secrets",
            endpoint=url,
            local_store=store_dir,
            capture_content=capture,
        )
        score = exercise(listening_port)
        assert otelite.force_flush()
        wal = [p for p in store_dir.iterdir() if p.name.endswith("-wal")]
        assert wal  # the spans are in the WAL: it is read too
        assert wal[0].stat().st_size > 0
        before_close = raw_store_bytes(store_dir)
        otelite.shutdown()
        after_close = raw_store_bytes(store_dir)
    wire = b"".join(request.SerializeToString() for request in received.traces)

    # What the spans carry got there: the test would prove nothing otherwise.
    spans = received.spans()
    failed = [s for s in spans if s["status_code"] == 2]
    names = sorted(s["name"] for s in failed)
    assert names == sorted(
        [
            "sync_step",
            "async_step",
            "chained_step",
            "header_step",
            "chat gpt-4o-mini",
            "chat gpt-4o-mini",
            "chat judge-model",
            "evaluation correctness",
        ]
    )
    for span in failed:
        if span["name"] != "evaluation correctness":
            (event,) = [e for e in span["events"] if e["name"] == "exception"]
            assert set(event["attributes"]) == {
                "exception.type",
                "exception.message",
                "exception.stacktrace",
                "exception.escaped",
            }
    assert leaked(wire) == []
    assert leaked(before_close) == []
    assert leaked(after_close) == []
    assert b"[REDACTED:" in wire
    assert b"[REDACTED:" in before_close + after_close
    assert b"AppError" in before_close + after_close
    # Nor in what otelite handed back to the caller.
    assert leaked(repr(score).encode()) == []
    with otelite.store.LocalStore(store_dir) as store:
        (stored,) = store.scores()
    assert stored.error is not None
    assert stored.error.startswith("EndpointError: ")
    assert leaked(stored.error.encode()) == []


def _event(cap: Any) -> dict[str, Any]:
    (span,) = cap.as_dicts(short_stacktraces=False)
    (event,) = span["events"]
    assert event["name"] == "exception"
    return {"status": span["status_description"], **event["attributes"]}


def test_app_exception_event_is_redacted_whole() -> None:
    """An app exception's event has type, redacted message and stacktrace, escaped, like OTel's."""
    with capture_spans() as cap, pytest.raises(AppError):
        sync_step()
    got = _event(cap)
    message = (
        "upstream refused key [REDACTED:api_key] for "
        "https://[REDACTED:credentials]@db.internal.example/q"
    )
    assert got["exception.type"] == f"{__name__}.AppError"
    assert got["exception.message"] == message
    assert got["exception.escaped"] == "False"
    assert got["status"] == f"AppError: {message}"
    trace_text = got["exception.stacktrace"]
    assert trace_text.startswith("Traceback (most recent call last):\n")
    assert trace_text.endswith(f"{__name__}.AppError: {message}\n")
    assert "raise AppError(" in trace_text
    assert leaked(str(got).encode()) == []


def test_chained_causes_are_redacted_and_kept() -> None:
    """Every exception of a chain stays in the stacktrace, each one redacted."""
    with capture_spans() as cap, pytest.raises(RuntimeError):
        chained_step()
    got = _event(cap)
    assert got["exception.message"] == "the step failed"
    trace_text = got["exception.stacktrace"]
    assert "KeyError: 'missing'" in trace_text
    assert "ValueError: lookup with [REDACTED:api_key] failed" in trace_text
    assert trace_text.count("The above exception was the direct cause") == 1
    assert "During handling of the above exception" in trace_text
    assert trace_text.endswith("RuntimeError: the step failed\n")
    assert AZURE_KEY not in str(got)


def test_bare_azure_key_in_error_text_is_redacted() -> None:
    """A bare 32-hex token (an Azure key in an illegal-header message) is masked in error data."""
    with capture_spans() as cap, pytest.raises(AppError):
        header_step()
    got = _event(cap)
    assert got["exception.message"] == "Illegal header value b'[REDACTED:api_key]\\n'"
    assert AZURE_HEADER_KEY not in str(got)


def test_newline_key_in_httpx_error_never_recorded(
    listening_port: int, openai_instrumented: None
) -> None:
    """httpx's 'Illegal header value' error (a key with a newline) is recorded without the key."""
    with capture_spans() as cap:
        newline_key_call(listening_port)
    got = _event(cap)
    assert got["exception.type"] == "openai.APIConnectionError"
    assert got["exception.message"] == "Connection error."
    assert (
        "LocalProtocolError: Illegal header value b'Bearer [REDACTED:api_key]\\n'"
        in (got["exception.stacktrace"])
    )
    assert NEWLINE_KEY not in str(got)


@pytest.mark.parametrize("capture", [False, True], ids=["capture_off", "capture_on"])
def test_http_error_body_reduced_to_status_and_code(
    capture: bool, openai_instrumented: None
) -> None:
    """Capture off: a 401 is recorded as status, type and code; capture on: the redacted body."""
    with capture_spans(capture_content=capture) as cap:
        echo_401_call()
    (span,) = cap.as_dicts(short_stacktraces=False)
    (event,) = span["events"]
    attrs = event["attributes"]
    message = attrs["exception.message"]
    if capture:
        # The body as openai quotes it (the whole error object, or its message: by version).
        assert message.startswith("Error code: 401 - ")
        assert (
            "Incorrect API key provided: [REDACTED:api_key]. You sent the header "
            "Authorization: [REDACTED:api_key]"
        ) in message
    else:
        assert message == "HTTP 401 (type: invalid_request_error, code: invalid_api_key)"
    assert span["status_description"] == f"AuthenticationError: {message}"
    assert attrs["exception.stacktrace"].endswith(f"openai.AuthenticationError: {message}\n")
    assert span["attributes"]["error.type"] == "openai.AuthenticationError"
    assert leaked(str(span).encode()) == []


def test_httpx_status_error_reduced_by_duck_typing() -> None:
    """An httpx.HTTPStatusError is reduced to its status when capture is off."""
    request = httpx.Request("GET", "https://api.example.com/v1/x")
    response = httpx.Response(403, text=f"forbidden for {APP_KEY}", request=request)
    error = httpx.HTTPStatusError(
        f"403 for {APP_KEY}: {response.text}", request=request, response=response
    )
    assert _spans.error_text(error) == "HTTPStatusError: HTTP 403"
    with capture_spans(capture_content=True):
        assert _spans.error_text(error) == (
            "HTTPStatusError: 403 for [REDACTED:api_key]: forbidden for [REDACTED:api_key]"
        )


@pytest.mark.parametrize("capture", [False, True], ids=["capture_off", "capture_on"])
def test_judge_endpoint_error_has_no_secret_and_no_body_when_capture_off(capture: bool) -> None:
    """A judge's 500: EndpointError, Score.error and the spans carry no key, and no body when off."""
    with capture_spans(capture_content=capture) as cap:
        with otelite.span("answer"):
            score = judge_500()(**QUESTION)
            otelite.score(score)
    assert score.value is None
    assert score.error is not None
    if capture:
        # The body is kept, redacted (its JSON spacing depends on the httpx version).
        assert score.error.startswith("EndpointError: http://127.0.0.1:9/v1 answered HTTP 500: ")
        assert "backend failure for key [REDACTED:api_key] (azure key [REDACTED:api_key])" in (
            score.error
        )
    else:
        assert score.error == (
            "EndpointError: http://127.0.0.1:9/v1 answered HTTP 500 "
            "(type: server_error, code: internal)"
        )
    by_name = {s["name"]: s for s in cap.as_dicts(short_stacktraces=False)}
    evaluation = by_name["evaluation correctness"]
    assert evaluation["attributes"]["otelite.evaluation.error"] == score.error
    assert evaluation["status_description"] == score.error
    judge_span = by_name["chat judge-model"]
    assert judge_span["events"][0]["attributes"]["exception.type"] == (
        "otelite.evals.EndpointError"
    )
    assert leaked(str(by_name).encode()) == []


def test_endpoint_error_from_transport_failure_is_redacted() -> None:
    """A transport error whose text holds a key becomes an EndpointError without it."""

    def refuse(request: Any) -> Any:
        raise httpx.ConnectError(f"cannot reach https://u:{URL_PASSWORD}@h/?key={QUERY_KEY}")

    judge = evals.llm_judge(
        "correctness",
        model="judge-model",
        base_url="http://127.0.0.1:9/v1",
        api_key=JUDGE_KEY,
        transport=httpx.MockTransport(refuse),
    )
    with capture_spans():
        score = judge(**QUESTION)
    assert score.error == (
        "EndpointError: ConnectError: cannot reach https://[REDACTED:credentials]@h/"
        "?key=[REDACTED:api_key]"
    )


def test_user_hook_applies_to_error_data() -> None:
    """The user's redact hook runs on exception text too, capture off."""

    def hook(text: str) -> str:
        return text.replace("db.internal.example", "[host]")

    with capture_spans(redact=hook) as cap, pytest.raises(AppError):
        sync_step()
    got = _event(cap)
    assert got["exception.message"] == (
        "upstream refused key [REDACTED:api_key] for https://[REDACTED:credentials]@[host]/q"
    )
    assert "db.internal.example" not in got["exception.stacktrace"]


def test_failing_user_hook_still_scrubs_error_data(contained_errors: None) -> None:
    """A redact hook that raises never lets raw error text through: the built-ins still run."""

    def hook(text: str) -> str:
        raise ValueError("hook broke")

    with capture_spans(redact=hook) as cap, pytest.raises(AppError):
        sync_step()
    got = _event(cap)
    assert got["exception.message"] == (
        "upstream refused key [REDACTED:api_key] for "
        "https://[REDACTED:credentials]@db.internal.example/q"
    )
    assert leaked(str(got).encode()) == []


def test_foreign_span_exception_scrubbed_before_export(store_dir: Path) -> None:
    """A span otelite did not create (record_exception by other code) is scrubbed before export."""
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    swappable = SwappableProcessor()
    swappable.replace(
        [
            SimpleSpanProcessor(memory),
            SimpleSpanProcessor(LocalStoreExporter(store_dir / "otelite.db")),
        ]
    )
    provider.add_span_processor(swappable)
    tracer = provider.get_tracer("someone-else")
    with tracer.start_as_current_span("http POST", record_exception=False) as span:
        span.set_attribute("http.request.method", "POST")
        span.record_exception(ValueError(f"Illegal header value b'Bearer {NEWLINE_KEY}\\n'"))
        span.set_status(Status(StatusCode.ERROR, f"api-key: {AZURE_KEY}"))
    provider.shutdown()
    (exported,) = memory.get_finished_spans()
    assert exported.status.status_code is StatusCode.ERROR
    assert exported.status.description == "api-key: [REDACTED:api_key]"
    (event,) = exported.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.message"] == (
        "Illegal header value b'Bearer [REDACTED:api_key]\\n'"
    )
    assert event.attributes["exception.type"] == "ValueError"
    assert leaked(str(dict(event.attributes)).encode()) == []
    # Everything else is the original span's.
    assert exported.name == "http POST"
    assert exported.context == span.get_span_context()
    assert dict(exported.attributes or {}) == {"http.request.method": "POST"}
    assert exported.instrumentation_scope is not None
    assert exported.instrumentation_scope.name == "someone-else"
    with otelite.store.LocalStore(store_dir) as store:
        (stored,) = store.all_spans()
    assert stored.status_message == "api-key: [REDACTED:api_key]"
    assert stored.events[0]["attributes"]["exception.type"] == "ValueError"
    assert leaked(raw_store_bytes(store_dir)) == []


def test_scrub_leaves_clean_spans_as_they_are() -> None:
    """Spans without error data, or with clean error data, are exported as the very same object."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("ok"):
        pass
    with tracer.start_as_current_span("failed", record_exception=False) as span:
        span.record_exception(ValueError("no secret here"))
        span.set_status(Status(StatusCode.ERROR, "ValueError: no secret here"))
    ok, failed = memory.get_finished_spans()
    assert scrub_error_data(ok) is ok
    assert scrub_error_data(failed) is failed


# --- the patterns, one by one -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # header values, whatever the quoting
        ("api-key: " + AZURE_KEY, "api-key: [REDACTED:api_key]"),
        ('{"api-key": "' + AZURE_KEY + '"}', '{"api-key": "[REDACTED:api_key]"}'),
        ("(b'x-api-key', b'abc123secretvalue')", "(b'x-api-key', b'[REDACTED:api_key]')"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: [REDACTED:api_key]"),
        ("{'authorization': 'Token abc'}", "{'authorization': '[REDACTED:api_key]'}"),
        ("AZURE_OPENAI_API_KEY=" + AZURE_KEY, "AZURE_OPENAI_API_KEY=[REDACTED:api_key]"),
        ("Ocp-Apim-Subscription-Key: k1k2k3k4", "Ocp-Apim-Subscription-Key: [REDACTED:api_key]"),
        ("password=hunter2", "password=[REDACTED:api_key]"),
        # bearer tokens
        ("Bearer " + BEARER, "[REDACTED:api_key]"),
        # URL credentials and secret query parameters
        (
            "https://admin:s3cret@db.example.com/x",
            "https://[REDACTED:credentials]@db.example.com/x",
        ),
        ("https://ghp_tok@github.com/a/b.git", "https://[REDACTED:credentials]@github.com/a/b.git"),
        ("https://h/v1?api_key=abc&x=1", "https://h/v1?api_key=[REDACTED:api_key]&x=1"),
        ("https://h/v1?x=1&key=abc#top", "https://h/v1?x=1&key=[REDACTED:api_key]#top"),
        ("https://h/v1?token=abc", "https://h/v1?token=[REDACTED:api_key]"),
        (
            "https://h/f?code=abc&sig=def",
            "https://h/f?code=[REDACTED:api_key]&sig=[REDACTED:api_key]",
        ),
        # more well-known key shapes
        ("gsk_" + "a1B2" * 12, "[REDACTED:api_key]"),
        ("hf_" + "aB3" * 12, "[REDACTED:api_key]"),
        ("github_pat_" + "11ABC" * 8, "[REDACTED:api_key]"),
        ("sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "[REDACTED:api_key]"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXZhbHVl",
            "[REDACTED:api_key]",
        ),
    ],
)
def test_credential_patterns(text: str, expected: str) -> None:
    """Each credential shape is masked, in content and in error data alike."""
    assert _content.redact_api_keys(text) == expected
    assert _content.redact_error_secrets(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "the api key is set",  # no value
        "max_tokens=100, completion_tokens: 3",  # usage fields are not tokens
        "https://example.com/path?page=2&q=paris",  # harmless query parameters
        "see http://example.com and write to ops",  # no userinfo
        "request id req_" + "0123456789abcdef" * 2,  # a request id, not a key
        "sha256 " + "ab12" * 16,  # a 64-hex digest
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "Bearer of bad news",  # prose
    ],
)
def test_credential_patterns_leave_ordinary_text(text: str) -> None:
    """Look-alikes that are not credentials are kept, in content and error data."""
    assert _content.redact_api_keys(text) == text
    assert _content.redact_error_secrets(text) == text


def test_bare_32_hex_only_masked_in_error_data() -> None:
    """A bare 32-hex token (trace id, MD5, Azure key) is masked in error data, kept in content."""
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert _content.redact_api_keys(f"trace {trace_id}") == f"trace {trace_id}"
    assert _content.redact_error_secrets(f"trace {trace_id}") == "trace [REDACTED:api_key]"
    # Only digits, or only letters, is not a key shape.
    assert _content.redact_error_secrets("n " + "1" * 32) == "n " + "1" * 32
    assert _content.redact_error_secrets("n " + "abcdef" * 5 + "ab") == "n " + "abcdef" * 5 + "ab"


def test_redaction_is_idempotent() -> None:
    """Redacting redacted text changes nothing (the exporter scrubs again safely)."""
    text = (
        f"Authorization: Bearer {BEARER} api-key={AZURE_KEY} "
        f"https://u:{URL_PASSWORD}@h/?api_key={QUERY_KEY} {APP_KEY}"
    )
    once = _content.redact_error_secrets(text)
    assert _content.redact_error_secrets(once) == once
    assert leaked(once.encode()) == []


# --- HTTP errors found by duck typing, wherever they sit ----------------------------------

BODY_SECRET = "body-only-text-7f3k9q"  # what an error body says besides a key


class GatewayStatusError(Exception):
    """An HTTP client's error answer, as any library might shape it."""

    status_code = 502
    type = "upstream_error"
    code = 1042


def gateway_error() -> GatewayStatusError:
    return GatewayStatusError(f"bad gateway: {BODY_SECRET} key={APP_KEY}")


@pytest.mark.parametrize("capture", [False, True], ids=["capture_off", "capture_on"])
def test_http_error_reduced_in_a_chained_cause(capture: bool) -> None:
    """An HTTP error deep in a chain loses its body in the message and the stacktrace (capture off)."""

    @otelite.trace
    def call() -> None:
        try:
            raise gateway_error()
        except GatewayStatusError as exc:
            raise RuntimeError("the call failed") from exc

    with capture_spans(capture_content=capture) as cap, pytest.raises(RuntimeError):
        call()
    got = _event(cap)
    name = f"{__name__}.GatewayStatusError"
    if capture:
        kept = f"bad gateway: {BODY_SECRET} key=[REDACTED:api_key]"
        assert f"{name}: {kept}\n" in got["exception.stacktrace"]
    else:
        assert (
            f"{name}: HTTP 502 (type: upstream_error, code: 1042)\n"
            in (got["exception.stacktrace"])
        )
        assert BODY_SECRET not in str(got)
    assert APP_KEY not in str(got)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups are Python 3.11+")
def test_http_error_reduced_inside_an_exception_group() -> None:
    """A member of an exception group is reduced like any other error (capture off)."""
    group_type: Any = getattr(builtins, "ExceptionGroup")  # noqa: B009 - 3.11+ only

    @otelite.trace
    def fan_out() -> None:
        raise group_type("two calls failed", [gateway_error(), ValueError(f"x {AZURE_KEY}")])

    with capture_spans() as cap, pytest.raises(group_type):
        fan_out()
    got = _event(cap)
    assert "HTTP 502 (type: upstream_error, code: 1042)" in got["exception.stacktrace"]
    assert "ValueError: x [REDACTED:api_key]" in got["exception.stacktrace"]
    assert BODY_SECRET not in str(got)
    assert leaked(str(got).encode()) == []


def test_eval_run_errors_are_redacted() -> None:
    """evaluate(): a task's and an evaluator's error text (rows, scores, spans) hold no secret."""

    def task(question: str) -> str:
        if question == "boom":
            raise gateway_error()
        return question

    def picky(*, output: str) -> Score:
        raise ValueError(f"cannot judge with {AZURE_KEY}")

    with capture_spans() as cap:
        run = evals.evaluate(
            [{"input": "ok"}, {"input": "boom"}], task, [picky], name="secrets", progress=False
        )
    assert run.rows[1].error == "GatewayStatusError: HTTP 502 (type: upstream_error, code: 1042)"
    assert run.rows[0].scores["picky"].error == "ValueError: cannot judge with [REDACTED:api_key]"
    dumped = str(cap.as_dicts(short_stacktraces=False)) + repr(run.rows)
    assert BODY_SECRET not in dumped
    assert leaked(dumped.encode()) == []


def test_online_judge_check_error_is_redacted() -> None:
    """An online judge check that raises records its error without the secret or the body."""

    def judge(*, input: str, output: str) -> Score:
        raise gateway_error()

    llm = client(lambda request: json_response(chat_completion("Paris.")))
    with capture_spans(checks=[checks.judge(judge, sample_rate=1.0, name="j")]) as cap:
        otelite.instrument_openai()
        try:
            llm.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Capital?"}]
            )
        finally:
            otelite.uninstrument_openai()
        assert checks.wait_for_judges(timeout=5)
    evaluation = {s["name"]: s for s in cap.as_dicts()}["evaluation j"]
    error = "GatewayStatusError: HTTP 502 (type: upstream_error, code: 1042)"
    assert evaluation["attributes"]["otelite.evaluation.error"] == error
    assert evaluation["status_description"] == error
