"""Without configure(): `opentelemetry-instrument` runs honour the variables configure() reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# A real openai client whose transport answers in-process; one chat call with a secret in it.
APP = """
import sys, openai
http = sys.modules[openai.DefaultHttpxClient.__mro__[1].__module__.split('.')[0]]
chat = {'id': 'c', 'object': 'chat.completion', 'created': 1, 'model': 'gpt-4o-mini',
        'choices': [{'index': 0, 'message': {'role': 'assistant', 'content': 'bonjour'},
                     'finish_reason': 'stop'}],
        'usage': {'prompt_tokens': 3, 'completion_tokens': 1, 'total_tokens': 4}}
client = openai.OpenAI(api_key='sk-test-0123456789abcdefghij', max_retries=0,
                       http_client=http.Client(transport=http.MockTransport(
                           lambda request: http.Response(200, json=chat))))
reply = client.chat.completions.create(
    model='gpt-4o-mini',
    messages=[{'role': 'user', 'content': 'say hi to ada@example.com, key sk-proj-AAAABBBBCCCCDDDDEEEEFFFF'}])
assert reply.choices[0].message.content == 'bonjour'
"""


def _llm_span(tmp_path: Path, **extra: str) -> dict[str, Any]:
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL", "OPENAI", "OTELITE"))}
    env.update(
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        # Only otelite's instrumentor (the official one may be installed in the same venv).
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="openai",
        **extra,
    )
    command = Path(sys.executable).parent / "opentelemetry-instrument"
    result = subprocess.run(
        [str(command), sys.executable, str(app)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    decoder = json.JSONDecoder()
    text, spans = result.stdout.strip(), []
    while text:
        span, end = decoder.raw_decode(text)
        spans.append(span)
        text = text[end:].strip()
    assert [s["name"] for s in spans] == ["chat gpt-4o-mini"], result.stdout
    assert spans[0]["attributes"]["gen_ai.provider.name"] == "openai"
    return spans[0]["attributes"]  # type: ignore[no-any-return]


def test_capture_variable_records_content_without_configure(tmp_path: Path) -> None:
    """OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true records messages, redacted."""
    attributes = _llm_span(tmp_path, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true")
    sent = json.loads(attributes["gen_ai.input.messages"])
    assert sent == [
        {
            "role": "user",
            "parts": [
                {"type": "text", "content": "say hi to [REDACTED:email], key [REDACTED:api_key]"}
            ],
        }
    ]
    answer = json.loads(attributes["gen_ai.output.messages"])
    assert answer[0]["parts"] == [{"type": "text", "content": "bonjour"}]


def test_content_stays_off_by_default_without_configure(tmp_path: Path) -> None:
    """Without the variable nothing of the conversation is recorded."""
    attributes = _llm_span(tmp_path)
    assert "gen_ai.input.messages" not in attributes
    assert "gen_ai.output.messages" not in attributes
    assert not any("bonjour" in str(v) or "ada@" in str(v) for v in attributes.values())


def test_other_variables_apply_without_configure(tmp_path: Path) -> None:
    """OTELITE_MAX_CONTENT_LENGTH and OTELITE_REDACT_BUILTIN=false are honoured as well."""
    attributes = _llm_span(
        tmp_path,
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true",
        OTELITE_REDACT_BUILTIN="false",
        OTELITE_MAX_CONTENT_LENGTH="4000",
    )
    text = json.loads(attributes["gen_ai.input.messages"])[0]["parts"][0]["content"]
    # The e-mail pattern is off; API keys are always removed.
    assert text == "say hi to ada@example.com, key [REDACTED:api_key]"


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_bad_variable_is_logged_and_the_default_used(tmp_path: Path, value: str) -> None:
    """A bad variable never breaks the app: one log line, and capture stays off."""
    attributes = _llm_span(tmp_path, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=value)
    assert "gen_ai.input.messages" not in attributes
