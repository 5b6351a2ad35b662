"""The README's main job: examples/quickstart.py leaves one well-formed trace in the local store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from otelite.store import LocalStore

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "quickstart.py"


def test_quickstart_trace_tree(tmp_path: Path) -> None:
    """Run as a user would: one trace, the pipeline tree, and an LLM span with tokens under `answer`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELITE_"))}
    env.pop("OPENAI_API_KEY", None)
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "stored in" in result.stdout
    with LocalStore(tmp_path / ".otelite") as store:
        (trace,) = store.traces()
        assert (trace.root_name, trace.span_count, trace.llm_calls) == (
            "invoke_workflow rag_pipeline",
            7,
            1,
        )
        (score,) = store.scores(trace_id=trace.trace_id)
        assert trace.user_id == "quickstart-user"
        (root,) = store.trace_tree(trace.trace_id)
    assert root.span.name == "invoke_workflow rag_pipeline"
    assert [c.span.name for c in root.children] == [
        "rewrite",
        "retrieval documents",
        "rerank",
        "answer",
        "evaluation mentions_otlp",
    ]
    # The answer was scored in code: the score targets the pipeline span.
    assert (score.name, score.value, score.label, score.passed, score.kind) == (
        "mentions_otlp",
        1.0,
        "pass",
        True,
        "heuristic",
    )
    assert score.span_id == root.span.span_id
    assert "score mentions_otlp: 1.0 (pass)" in result.stdout
    answer = root.children[3]
    (chat,) = answer.children
    assert chat.span.name == "chat gpt-4o-mini"
    assert chat.span.kind == "CLIENT"
    attrs = chat.span.attributes
    assert attrs["gen_ai.request.temperature"] == 0.0
    assert attrs["gen_ai.usage.input_tokens"] > 0
    assert attrs["gen_ai.usage.output_tokens"] > 0
    assert attrs["session.id"] == "quickstart-session"
    assert chat.span.resource["service.name"] == "quickstart-rag"
    assert "gen_ai.input.messages" not in attrs  # content capture is off by default
