"""An instrumented app for the Prometheus check: replays recorded OpenAI traffic, serves /metrics.

Run by tests/prometheus/check.py as its own process:
``python tests/prometheus/replay.py PORT``. otelite is configured with Prometheus pull on
127.0.0.1:PORT and every opt-in metric dimension; the real ``openai`` client is driven
through the recorded cassettes (tests/cassettes) and, for what no cassette has (HTTP 429,
a prompt-linked call, a judge), through the in-process fake server (tests/fakeopenai.py).
Nothing leaves the machine.

Commands, one per line on stdin; each answers ``done <command>`` on stdout:
``traffic`` (one round of every kind of call), ``ok N`` (N successful calls),
``burst N`` (N failing calls), ``quit``.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

import openai  # noqa: E402

import fakeopenai  # noqa: E402
import otelite  # noqa: E402
from cassettes import call_kwargs, load, make_client, method_for  # noqa: E402
from otelite import evals  # noqa: E402
from otelite.evals import checks  # noqa: E402
from otelite.prompts import PromptRegistry  # noqa: E402

# chat, cached and reasoning tokens, streams (chat, Responses, Azure), embeddings, errors, a refusal.
CASSETTES = [
    "opentelemetry-python-contrib/test_chat_completion_with_content.yaml",
    "openinference/openai/test_tool_calls/test_cached_tokens.yaml",
    "openllmetry/test_chat/test_chat_reasoning.yaml",
    "opentelemetry-python-contrib/test_chat_completion_streaming.yaml",
    "opentelemetry-python-contrib/test_responses_create_streaming[content_mode0].yaml",
    "opentelemetry-python-contrib/test_embeddings_with_content.yaml",
    "opentelemetry-python-contrib/test_chat_completion_404.yaml",
    "openllmetry/test_chat_parse/test_parsed_refused_completion.yaml",
    "openllmetry/test_azure/test_chat.yaml",
    "elastic-otel-python-instrumentations/test_chat_completions/"
    "test_stream_with_include_usage_option[azure_provider_chat_completions].yaml",
]
USERS = ["u-1", "u-2", "u-3"]
COUNTRIES = ["DE", "US", "FR"]
AZURE = "https://myresource.openai.azure.com/openai/deployments/gpt-4o/"


def _replay(name: str) -> None:
    interactions = load(name)
    client, _ = make_client(interactions)
    for interaction in interactions:
        method = method_for(client, interaction)
        try:
            result = method(**call_kwargs(method, interaction))
            if interaction.is_stream:
                for _chunk in result:
                    pass
        except openai.OpenAIError:
            pass


def _ok_client() -> Any:
    return fakeopenai.client(lambda request: fakeopenai.json_response(fakeopenai.chat_completion()))


def _failing_client(status: int, base_url: str = "https://api.openai.com/v1") -> Any:
    body = {"error": {"message": "recorded failure", "type": "server_error"}}
    return fakeopenai.client(
        lambda request: fakeopenai.json_response(body, status), base_url=base_url
    )


def _azure_failing_client() -> Any:
    body = {"error": {"message": "rate limited", "type": "rate_limit"}}
    transport = fakeopenai.http.MockTransport(lambda request: fakeopenai.json_response(body, 429))
    return openai.AzureOpenAI(
        api_key="test-key-not-real",
        azure_endpoint="https://myresource.openai.azure.com",
        api_version="2024-10-21",
        max_retries=0,
        http_client=fakeopenai.http.Client(transport=transport),
    )


def _call(client: Any, model: str = "gpt-4o-mini", messages: Any = None) -> None:
    with contextlib.suppress(openai.OpenAIError):
        client.chat.completions.create(
            model=model, messages=messages or [{"role": "user", "content": "Hi"}]
        )


class App:
    def __init__(self, port: int) -> None:
        judge_client = fakeopenai.client(
            lambda request: fakeopenai.json_response(
                fakeopenai.chat_completion("Looks fine.\nVERDICT: HARMLESS")
            )
        )
        judge = evals.llm_judge("harmlessness", model="gpt-4o-mini", client=judge_client)
        otelite.configure(
            service_name="otelite-replay",
            local_store=False,
            prometheus=f"127.0.0.1:{port}",
            metric_dimensions=["user", "prompt", "service.version", "geo"],
            resource_attributes={"service.version": "1.4.2"},
            checks=[checks.refusal(), checks.error(), checks.judge(judge, sample_rate=1.0)],
        )
        otelite.instrument_openai()
        self.prompts = PromptRegistry(tempfile.mkdtemp(prefix="otelite-prompts-"))
        self.prompts.push("qa", template="Answer briefly: {{question}}")
        self.round = 0

    def traffic(self) -> None:
        self.round += 1
        i = self.round
        with otelite.attributes(
            {"geo.country.iso_code": COUNTRIES[i % 3]}, user_id=USERS[i % len(USERS)]
        ):
            for name in CASSETTES:
                _replay(name)
            prompt = self.prompts.get("qa").compile(question="What is OTLP?")
            _call(_ok_client(), messages=[{"role": "user", "content": prompt}])
            _call(_failing_client(429))
            _call(_azure_failing_client(), model="gpt-4o")
            with otelite.span("feedback"):
                otelite.score("user_feedback", 1.0 if i % 2 else 0.5, source="replay")
        checks.wait_for_judges(timeout=10)

    def ok(self, n: int) -> None:
        client = _ok_client()
        for _ in range(n):
            _call(client)

    def burst(self, n: int) -> None:
        client = _failing_client(500)
        for _ in range(n):
            _call(client)


def main() -> int:
    app = App(int(sys.argv[1]))
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command:
            continue
        if command[0] == "quit":
            break
        if command[0] == "traffic":
            app.traffic()
        elif command[0] == "ok":
            app.ok(int(command[1]))
        elif command[0] == "burst":
            app.burst(int(command[1]))
        else:
            print("unknown command", line.strip(), flush=True)
            continue
        print("done", line.strip(), flush=True)
    otelite.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
