"""The README's main job: examples/quickstart.py leaves one well-formed trace in the local store."""

from __future__ import annotations

import os
import re
import shlex
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


def test_quickstart_ends_with_next_commands(tmp_path: Path) -> None:
    """The quick start labels token counts and ends with the next CLI commands, which then work."""
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
    with LocalStore(tmp_path / ".otelite") as store:
        (trace,) = store.traces()
    summary = (
        f"trace {trace.trace_id}: 7 spans, 1 LLM call, "
        f"{trace.input_tokens} in + {trace.output_tokens} out tokens, "
    )
    assert summary in result.stdout
    assert not re.search(r"\d\+\d", result.stdout)  # no unlabelled "48+16"
    lines = result.stdout.splitlines()
    start = lines.index("next, try:")
    assert lines[start - 2] == f"stored in {tmp_path / '.otelite' / 'otelite.db'}"
    assert lines[start:] == [
        "next, try:",
        "  otelite traces            # the recorded traces, newest first",
        f"  otelite trace {trace.trace_id[:8]}    # this trace, span by span",
        "  otelite stats --by model  # calls, tokens, cost and latency per model",
    ]
    # Each suggested command runs as printed, from the same directory, and succeeds.
    for line in lines[start + 1 :]:
        argv = shlex.split(line.split("#")[0])
        assert argv[0] == "otelite"
        ran = subprocess.run(
            [sys.executable, "-m", "otelite", *argv[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert ran.returncode == 0, (line, ran.stderr)
        assert ran.stdout.strip(), line
    shown = subprocess.run(
        [sys.executable, "-m", "otelite", "trace", trace.trace_id[:8]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert trace.trace_id in shown.stdout


def test_quickstart_next_commands_name_a_custom_store(tmp_path: Path) -> None:
    """With the store elsewhere ($OTELITE_HOME), the next commands carry --store so they still find it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELITE_"))}
    env.pop("OPENAI_API_KEY", None)
    work = tmp_path / "work"
    work.mkdir()
    home = tmp_path / "elsewhere"
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=work,
        env={**env, "OTELITE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index("next, try:")
    commands = [shlex.split(line.split("#")[0]) for line in lines[start + 1 :]]
    assert len(commands) == 3
    for argv in commands:
        assert argv[-2:] == ["--store", str(home / "otelite.db")]
        ran = subprocess.run(
            [sys.executable, "-m", "otelite", *argv[1:]],
            cwd=work,
            env=env,  # without OTELITE_HOME: the printed --store alone finds the store
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert ran.returncode == 0, (argv, ran.stderr)
