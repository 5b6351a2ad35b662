"""otelite quick start: a small RAG pipeline, traced into the local store.

    python examples/quickstart.py

Four steps (rewrite -> retrieve -> rerank -> answer) become nested spans; the
answer step calls an OpenAI chat model, recorded as a GenAI span with tokens and
latency. With OPENAI_API_KEY set the real API is called; without it an
in-process fake server answers, so the example runs anywhere. With no OTLP
endpoint configured, spans go to the local store (.otelite/otelite.db); set
OTEL_EXPORTER_OTLP_ENDPOINT to send them to a collector, Jaeger, Tempo or Phoenix.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

import openai

import otelite
from otelite import evals
from otelite.evals import checks

DOCUMENTS = {
    "otel": "OpenTelemetry is a vendor-neutral standard for traces, metrics and logs.",
    "otlp": "OTLP is the OpenTelemetry protocol; collectors accept it over HTTP and gRPC.",
    "genai": "The GenAI semantic conventions name LLM spans like 'chat gpt-4o-mini'.",
    "store": "otelite keeps spans in a local SQLite store when no endpoint is configured.",
    "tempo": "Grafana Tempo stores traces and is queried with TraceQL.",
}
MODEL = os.environ.get("OTELITE_QUICKSTART_MODEL", "gpt-4o-mini")


def fake_openai_client() -> openai.OpenAI:
    """An OpenAI client whose HTTP transport answers in-process, like the real API would."""
    # openai 3.x is built on httpx2, older versions on httpx: use the one it uses.
    http = sys.modules[openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0]]

    def handle(request: Any) -> Any:
        body = json.loads(request.content)
        prompt_words = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        answer = "OTLP is the OpenTelemetry protocol, accepted by collectors over HTTP and gRPC."
        completion = {
            "id": "chatcmpl-quickstart",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": f"{body['model']}-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_words * 4 // 3,
                "completion_tokens": len(answer.split()) * 4 // 3,
                "total_tokens": (prompt_words + len(answer.split())) * 4 // 3,
            },
        }
        return http.Response(200, json=completion)

    return openai.OpenAI(
        api_key="fake-key-for-the-quickstart",
        http_client=http.Client(transport=http.MockTransport(handle)),
        max_retries=0,
    )


@otelite.trace(kind="task")
def rewrite(question: str) -> str:
    """Normalise the question into a search query."""
    return re.sub(r"[^a-z0-9 ]", "", question.lower()).strip()


@otelite.trace(kind="retriever", name="documents")
def retrieve(query: str, k: int = 3) -> list[str]:
    """Keyword search over the in-memory documents."""
    words = set(query.split())
    scored = sorted(DOCUMENTS.values(), key=lambda d: -len(words & set(d.lower().split())))
    return scored[:k]


@otelite.trace(kind="rerank")
def rerank(query: str, passages: list[str]) -> list[str]:
    """Keep the passages that share the most words with the query."""
    words = set(query.split())
    return sorted(passages, key=lambda p: -len(words & set(p.lower().split())))[:2]


@otelite.trace(kind="task")
def answer(client: openai.OpenAI, question: str, passages: list[str]) -> str:
    """Ask the model, grounded in the passages."""
    response = client.chat.completions.create(
        model=MODEL,
        temperature=0,
        messages=[
            {"role": "system", "content": "Answer from the context only.\n" + "\n".join(passages)},
            {"role": "user", "content": question},
        ],
    )
    return response.choices[0].message.content or ""


MENTIONS_OTLP = evals.contains(["OTLP"], name="mentions_otlp")


@otelite.trace(kind="workflow", name="rag_pipeline")
def rag_pipeline(client: openai.OpenAI, question: str) -> str:
    """rewrite -> retrieve -> rerank -> answer."""
    query = rewrite(question)
    passages = rerank(query, retrieve(query))
    reply = answer(client, question, passages)
    # Score the answer in code; the score is recorded under this span, next to the call.
    otelite.score(MENTIONS_OTLP(input=question, output=reply))
    return reply


def main() -> None:
    # Online checks mark refused, truncated, empty or failed LLM responses on their span.
    otelite.configure(
        service_name="quickstart-rag",
        checks=[checks.refusal(), checks.truncated(), checks.empty(), checks.error()],
    )
    otelite.instrument_openai()
    client = openai.OpenAI() if os.environ.get("OPENAI_API_KEY") else fake_openai_client()
    with otelite.attributes(user_id="quickstart-user", session_id="quickstart-session"):
        reply = rag_pipeline(client, "What is OTLP, and how do collectors accept it?")
    otelite.force_flush()
    print("answer:", reply)
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint:
        print(f"spans were sent over OTLP to {endpoint}")
        return
    from otelite.store import LocalStore

    with LocalStore() as store:
        trace = store.traces(limit=1)[0]
        cost = f"${trace.cost_usd:.6f}" if trace.cost_usd is not None else "no price"
        calls = "LLM call" if trace.llm_calls == 1 else "LLM calls"
        print(
            f"trace {trace.trace_id}: {trace.span_count} spans, {trace.llm_calls} {calls}, "
            f"{trace.input_tokens} in + {trace.output_tokens} out tokens, {cost}"
        )

        def show(nodes: list[Any], depth: int = 0) -> None:
            for node in nodes:
                ms = node.span.duration_ns / 1e6
                print(f"  {'  ' * depth}{node.span.name}  ({ms:.1f} ms)")
                show(node.children, depth + 1)

        show(store.trace_tree(trace.trace_id))
        for item in store.scores(trace_id=trace.trace_id):
            print(f"score {item.name}: {item.value} ({item.label})")
        print(f"stored in {store.path}")
        print_next_steps(trace.trace_id, store.path)


def print_next_steps(trace_id: str, store_path: Any) -> None:
    """What to run next; the CLI finds .otelite in this directory, any other store is named."""
    default = os.path.abspath(".otelite")
    here = os.path.abspath(str(store_path))
    store = "" if here in (default, os.path.join(default, "otelite.db")) else f" --store {here}"
    steps = [
        (f"otelite traces{store}", "the recorded traces, newest first"),
        (f"otelite trace {trace_id[:8]}{store}", "this trace, span by span"),
        (f"otelite stats --by model{store}", "calls, tokens, cost and latency per model"),
    ]
    width = max(len(command) for command, _ in steps)
    print("\nnext, try:")
    for command, what in steps:
        print(f"  {command.ljust(width)}  # {what}")


if __name__ == "__main__":
    main()
