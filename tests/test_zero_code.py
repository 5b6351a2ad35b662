"""Zero-code use next to the official OpenAI instrumentation: one LLM span per call, one warning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "opentelemetry.instrumentation.openai_v2",
    reason="opentelemetry-instrumentation-openai-v2 (dev extra, Python 3.10+) is not installed",
)

OFFICIAL_SCOPES = {"opentelemetry.instrumentation.openai_v2", "opentelemetry.util.genai.handler"}
WARNING = "another OpenAI instrumentation"

# A real openai client whose transport answers in-process; two chat calls and one embeddings call.
APP = """
import sys, openai
http = sys.modules[openai.DefaultHttpxClient.__mro__[1].__module__.split('.')[0]]
chat = {'id': 'c', 'object': 'chat.completion', 'created': 1, 'model': 'gpt-4o-mini',
        'choices': [{'index': 0, 'message': {'role': 'assistant', 'content': 'hi'},
                     'finish_reason': 'stop'}],
        'usage': {'prompt_tokens': 3, 'completion_tokens': 1, 'total_tokens': 4}}
embedding = {'object': 'list', 'model': 'text-embedding-3-small',
             'data': [{'object': 'embedding', 'index': 0, 'embedding': [0.5, 0.25]}],
             'usage': {'prompt_tokens': 2, 'total_tokens': 2}}
def handle(request):
    return http.Response(200, json=embedding if request.url.path.endswith('/embeddings') else chat)
client = openai.OpenAI(api_key='sk-test-0123456789abcdefghij', max_retries=0,
                       http_client=http.Client(transport=http.MockTransport(handle)))
for _ in range(2):
    reply = client.chat.completions.create(
        model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'hi'}])
    assert reply.choices[0].message.content == 'hi'
vector = client.embeddings.create(model='text-embedding-3-small', input='hi')
assert vector.data[0].embedding == [0.5, 0.25]
"""

# Both instrumentations in a chosen order, spans into one in-memory exporter, printed as JSON.
ORDERED = """
import json, logging, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
import otelite
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
if sys.argv[1] == 'otelite-first':
    otelite.instrument_openai()
    OpenAIInstrumentor().instrument()
else:
    OpenAIInstrumentor().instrument()
    otelite.instrument_openai()
APP
spans = [
    {'name': s.name, 'kind': s.kind.name, 'scope': s.instrumentation_scope.name}
    for s in exporter.get_finished_spans()
]
print(json.dumps(spans))
""".replace("APP", APP)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL", "OPENAI"))}
    env.update(extra)
    return env


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize(
    ("order", "semconv"),
    [
        ("otelite-first", "default"),
        ("official-first", "default"),
        # The official one's newer path (opentelemetry-util-genai) starts its span differently.
        ("otelite-first", "gen_ai_latest_experimental"),
    ],
)
def test_official_instrumentation_wins_with_one_warning(
    tmp_path: Path, order: str, semconv: str
) -> None:
    """Whichever instruments first, each call has exactly one LLM span and otelite warns once."""
    script = tmp_path / "both.py"
    script.write_text(ORDERED)
    env = _env()
    if semconv != "default":
        env["OTEL_SEMCONV_STABILITY_OPT_IN"] = semconv
    result = _run([sys.executable, str(script), order], env, tmp_path)
    spans = json.loads(result.stdout)
    names = [span["name"] for span in spans]
    assert names == ["chat gpt-4o-mini", "chat gpt-4o-mini", "embeddings text-embedding-3-small"]
    assert all(span["kind"] == "CLIENT" for span in spans)
    # The official instrumentation records them (some versions through opentelemetry-util-genai).
    assert {span["scope"] for span in spans} <= OFFICIAL_SCOPES, spans
    warnings = [line for line in result.stderr.splitlines() if WARNING in line]
    assert len(warnings) == 1, result.stderr
    (warning,) = warnings
    assert warning.startswith("WARNING otelite._integrations.openai: otelite: another OpenAI")
    assert "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=openai" in warning
    assert "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otelite-openai" in warning
    assert "opentelemetry" in warning.split("(", 1)[1].split(")")[0]  # names the other one


def test_otelite_alone_records_its_spans_without_warning(tmp_path: Path) -> None:
    """Without the other instrumentation active, otelite records every call itself and says nothing."""
    script = tmp_path / "alone.py"
    script.write_text(ORDERED.replace("    OpenAIInstrumentor().instrument()\n", "    pass\n"))
    result = _run([sys.executable, str(script), "otelite-first"], _env(), tmp_path)
    spans = json.loads(result.stdout)
    assert spans == [
        {"name": "chat gpt-4o-mini", "kind": "CLIENT", "scope": "otelite"},
        {"name": "chat gpt-4o-mini", "kind": "CLIENT", "scope": "otelite"},
        {"name": "embeddings text-embedding-3-small", "kind": "CLIENT", "scope": "otelite"},
    ]
    assert WARNING not in result.stderr


def _instrument_command(
    tmp_path: Path, **extra: str
) -> tuple[list[dict[str, Any]], subprocess.CompletedProcess[str]]:
    app = tmp_path / "app.py"
    app.write_text(APP)
    command = Path(sys.executable).parent / "opentelemetry-instrument"
    env = _env(
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        **extra,
    )
    result = _run([str(command), sys.executable, str(app)], env, tmp_path)
    decoder = json.JSONDecoder()
    text, spans = result.stdout.strip(), []
    while text:
        span, end = decoder.raw_decode(text)
        spans.append(span)
        text = text[end:].strip()
    return spans, result


def test_opentelemetry_instrument_with_both_installed(tmp_path: Path) -> None:
    """`opentelemetry-instrument` with both installed: one span per call and one warning."""
    spans, result = _instrument_command(tmp_path)
    assert [span["name"] for span in spans] == [
        "chat gpt-4o-mini",
        "chat gpt-4o-mini",
        "embeddings text-embedding-3-small",
    ]
    assert len([line for line in result.stderr.splitlines() if WARNING in line]) == 1


@pytest.mark.parametrize(
    ("disabled", "keeps_otelite"), [("openai", True), ("otelite-openai", False)]
)
def test_disabled_instrumentations_chooses_one(
    tmp_path: Path, disabled: str, keeps_otelite: bool
) -> None:
    """OTEL_PYTHON_DISABLED_INSTRUMENTATIONS picks which one records, and nothing is warned."""
    spans, result = _instrument_command(tmp_path, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=disabled)
    assert [span["name"] for span in spans] == [
        "chat gpt-4o-mini",
        "chat gpt-4o-mini",
        "embeddings text-embedding-3-small",
    ]
    # otelite's spans carry its cost attribute; the official ones never do.
    assert all(("gen_ai.usage.cost" in span["attributes"]) is keeps_otelite for span in spans[:2])
    assert WARNING not in result.stderr
