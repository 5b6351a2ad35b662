"""The CLI at its edges: output piped into a reader that closes early, prompt references in
export filters, the filter report, plurals, and `export otlp` selection and headers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelite._export import LocalStoreExporter
from otelite.cli import _options, main
from otelite.testing import SequentialIdGenerator
from otlp_receiver import http_receiver
from storefixture import MS, T0, build_store

TRACE1 = "00000000000000000000000000000001"
TRACE3 = "00000000000000000000000000000003"

EXIT_BROKEN_PIPE = 141  # what a shell reports for a Unix tool killed by SIGPIPE (128 + 13)
posix_pipes = pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipe semantics")


def build_big_store(path: Path, traces: int = 1000) -> Path:
    """A store of ``traces`` one-span traces: far more output than a pipe buffer holds."""
    provider = TracerProvider(
        resource=Resource({"service.name": "big"}),
        id_generator=SequentialIdGenerator(),
        shutdown_on_exit=False,
    )
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("otelite")
    for i in range(traces):
        span = tracer.start_span(
            f"invoke_workflow job-{i}", start_time=T0 + i * MS, attributes={"user.id": f"u{i}"}
        )
        span.end(end_time=T0 + i * MS + MS // 2)
    exporter = LocalStoreExporter(path / "otelite.db")
    exporter.export(memory.get_finished_spans())
    exporter.shutdown()
    provider.shutdown()
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELITE_"))}
    env.pop("PYTHONUNBUFFERED", None)
    return env


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One thousand traces."""
    return str(build_big_store(tmp_path_factory.mktemp("big")))


@posix_pipes
@pytest.mark.parametrize(
    "argv",
    [
        ["traces", "--json", "-n", "1000"],
        ["traces", "-n", "1000"],
    ],
    ids=["json", "text"],
)
def test_output_into_a_reader_that_closes_early_ends_quietly(
    big_store: str, argv: list[str]
) -> None:
    """Piped into a reader that reads one line and closes: no traceback, exit 141 like Unix tools."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "otelite", *argv, "--store", big_store],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    code = proc.wait(timeout=60)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert first.strip()
    assert err == ""
    assert code == EXIT_BROKEN_PIPE


@posix_pipes
def test_reader_closed_before_any_output_ends_quietly(big_store: str) -> None:
    """A reader gone before the first write (`otelite prompts list | true`): still no traceback."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "otelite", "traces", "-n", "5", "--store", big_store],
            stdout=write,
            stderr=subprocess.PIPE,
            env=_env(),
            timeout=60,
        )
    finally:
        os.close(write)
    assert proc.stderr.decode() == ""
    assert proc.returncode == EXIT_BROKEN_PIPE


# --- export otlp: --since, --trace, --headers --------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> str:
    """The fixed three-trace store (traces 1, 2, 3 start at T0, T0+1h, T0+2h)."""
    return str(build_store(tmp_path / "store"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _pin_now(monkeypatch: pytest.MonkeyPatch, now_ns: int) -> None:
    monkeypatch.setattr(_options, "time", SimpleNamespace(time_ns=lambda: now_ns))


def _arrived(received: Any) -> list[tuple[str, str]]:
    return sorted((s["trace_id"][-1], s["name"]) for s in received.spans())


def test_export_otlp_since_and_trace_select_whole_traces(
    store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--since sends only the traces recorded in the window, --trace only the named ones (prefixes)."""
    _pin_now(monkeypatch, T0 + 150 * 60 * 1000 * MS)  # T0 + 2h30m
    with http_receiver() as (url, received):
        code, out, err = run(
            capsys, "export", "otlp", "--endpoint", url, "--store", store, "--since", "2h"
        )
        assert (code, err) == (0, "")
        assert (
            out
            == f"sent 2 spans of 2 traces to {url}/v1/traces (span ids kept: re-sending is idempotent)\n"
        )
        assert _arrived(received) == [
            ("2", "chat gpt-4o"),
            ("3", "embeddings text-embedding-3-small"),
        ]
    with http_receiver() as (url, received):
        code, out, _ = run(
            capsys, "export", "otlp", "--endpoint", url, "--store", store, "--trace", TRACE1
        )
        assert code == 0
        assert out.startswith("sent 3 spans of 1 trace to ")
        assert _arrived(received) == [
            ("1", "chat gpt-4o-mini"),
            ("1", "invoke_workflow rag"),
            ("1", "retrieval docs"),
        ]
    with http_receiver() as (url, received):
        code, out, _ = run(
            capsys,
            "export",
            "otlp",
            "--endpoint",
            url,
            "--store",
            store,
            "--trace",
            TRACE1,
            "--trace",
            TRACE3,
            "--since",
            "2h",
            "--json",
        )
        assert code == 0
        assert json.loads(out) == {"sent": 1, "traces": 1, "endpoint": f"{url}/v1/traces"}
        assert _arrived(received) == [("3", "embeddings text-embedding-3-small")]
    with http_receiver() as (url, received):
        code, out, err = run(
            capsys, "export", "otlp", "--endpoint", url, "--store", store, "--since", "1m"
        )
        assert code == 1
        assert err == "otelite: nothing to send: no trace has a span newer than --since 1m\n"
        assert received.spans() == []
    code, _, err = run(
        capsys, "export", "otlp", "--endpoint", url, "--store", store, "--trace", "ffff"
    )
    assert code == 2
    assert "trace id 'ffff': no such trace" in err
    code, _, err = run(
        capsys, "export", "otlp", "--endpoint", url, "--store", store, "--since", "yesterday"
    )
    assert code == 2
    assert "--since: 'yesterday' is not a duration" in err


def test_export_otlp_headers_from_option_and_environment(
    store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_EXPORTER_OTLP_HEADERS and --headers (URL-encoded key=value pairs) arrive with every request."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-from=env")
    with http_receiver() as (url, received):
        code, _, _ = run(
            capsys,
            "export",
            "otlp",
            "--endpoint",
            url,
            "--store",
            store,
            "--batch",
            "2",
            "--headers",
            "authorization=Bearer%20s3cret,x-team=ai",
        )
        assert code == 0
        assert len(received.headers) == 3
        for headers in received.headers:
            assert headers["authorization"] == "Bearer s3cret"
            assert headers["x-team"] == "ai"
            assert headers["x-from"] == "env"
    with http_receiver() as (url, received):
        assert run(capsys, "export", "otlp", "--endpoint", url, "--store", store)[0] == 0
        assert [h["x-from"] for h in received.headers] == ["env"]


@pytest.mark.parametrize("source", ["option", "environment"])
def test_export_otlp_bad_header_is_a_clear_error_without_the_secret(
    store: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    """A header value with a line break is refused before anything is sent, naming where it came
    from and never echoing the value."""
    bad = "authorization=Bearer%20s3cret%0A"
    argv = ["--headers", bad] if source == "option" else []
    if source == "environment":
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", bad)
    with http_receiver() as (url, received):
        code, out, err = run(capsys, "export", "otlp", "--endpoint", url, "--store", store, *argv)
        assert received.paths == []
    where = "--headers" if source == "option" else "OTEL_EXPORTER_OTLP_HEADERS"
    assert code == 2
    assert out == ""
    assert err == (
        f"otelite: {where}: the value of header 'authorization' contains a line break or control "
        "character; remove it (a key read from a file often ends with a newline)\n"
    )
    assert "s3cret" not in err
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_HEADERS", raising=False)
    code, _, err = run(
        capsys,
        "export",
        "otlp",
        "--endpoint",
        "http://127.0.0.1:9",
        "--store",
        store,
        "--headers",
        "Bearer s3cret-token",
    )
    assert code == 2
    assert err.startswith("otelite: --headers: ")
    assert "s3cret" not in err


# --- prompt references: name, name@version, name:label ------------------------------------------


@pytest.fixture
def registry(tmp_path: Path) -> Any:
    """A registry where `qa` has versions 1 and 2, `production` pointing at 2."""
    from otelite.prompts import PromptRegistry

    reg = PromptRegistry(tmp_path / "prompts")
    reg.push("qa", template="Answer: {{question}}", author="t")
    reg.push("qa", template="Answer briefly: {{question}}", labels=["production"], author="t")
    return reg


def test_export_finetune_accepts_every_prompt_reference(
    store: str, registry: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--prompt takes NAME, NAME@VERSION and NAME:LABEL (the label read from the registry); a label
    pointing elsewhere matches nothing and the report names the filter and what it removed."""
    out_file = tmp_path / "ft.jsonl"
    base = ["export", "finetune", str(out_file), "--store", store]
    base += ["--prompts-dir", str(registry.path)]
    for ref, shown in [
        ("qa:production", "qa:production (= qa v2)"),
        ("qa@2", "qa@2"),
        ("qa", "qa"),
    ]:
        code, out, err = run(capsys, *base, "--prompt", ref)
        assert (code, err) == (0, "")
        assert out == f"wrote 1 example to {out_file} (--prompt {shown} removed 2)\n"
        assert len(out_file.read_text().splitlines()) == 1
        out_file.unlink()
    registry.set_label("qa", "production", 1, author="t")
    code, out, err = run(capsys, *base, "--prompt", "qa:production")
    assert (code, out) == (1, "")
    assert (
        err
        == "nothing written: 0 of 3 LLM calls kept: --prompt qa:production (= qa v1) removed 3\n"
    )
    assert not out_file.exists()
    code, out, _ = run(capsys, *base, "--prompt", "qa:production", "--json")
    assert code == 1
    assert json.loads(out) == {
        "written": 0,
        "out": str(out_file),
        "skipped": {"not matching the filters": 3},
        "removed_by": {"--prompt": 3},
        "reason": "0 of 3 LLM calls kept: --prompt qa:production (= qa v1) removed 3",
    }


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (
            "qa:staging",
            "otelite: --prompt 'qa:staging': prompt 'qa' has no label 'staging'; labels: production\n",
        ),
        (
            "qa@two",
            "otelite: --prompt 'qa@two': the version after '@' must be a number, e.g. qa@3\n",
        ),
        (
            "@3",
            "otelite: --prompt '@3': give NAME, NAME@VERSION or NAME:LABEL, e.g. qa:production\n",
        ),
    ],
)
def test_export_finetune_bad_prompt_reference_is_a_usage_error(
    store: str,
    registry: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    ref: str,
    message: str,
) -> None:
    """A reference the registry cannot resolve, or a malformed one, exits 2 and says why."""
    code, out, err = run(
        capsys,
        "export",
        "finetune",
        str(tmp_path / "x.jsonl"),
        "--store",
        store,
        "--prompts-dir",
        str(registry.path),
        "--prompt",
        ref,
    )
    assert (code, out, err) == (2, "", message)


def test_export_finetune_label_without_a_registry_names_the_directory(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """NAME:LABEL with no such prompt in the registry says where it looked and how to point elsewhere."""
    missing = tmp_path / "nowhere"
    code, _, err = run(
        capsys,
        "export",
        "finetune",
        str(tmp_path / "x.jsonl"),
        "--store",
        store,
        "--prompts-dir",
        str(missing),
        "--prompt",
        "qa:production",
    )
    assert code == 2
    assert err == (
        f"otelite: --prompt 'qa:production': no prompt 'qa' in {missing}; prompts there: none "
        "(a label is read from the prompt registry: give --prompts-dir DIR, or NAME@VERSION)\n"
    )


def test_export_finetune_report_names_each_filter(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When nothing is left, each filter is named with how many calls it removed, in order."""
    _pin_now(monkeypatch, T0 + 130 * 60 * 1000 * MS)  # T0 + 2h10m: --since 1h keeps the last call
    code, out, err = run(
        capsys,
        "export",
        "finetune",
        str(tmp_path / "x.jsonl"),
        "--store",
        store,
        "--since",
        "1h",
        "--model",
        "gpt-4o-mini",
    )
    assert (code, out) == (1, "")
    assert err == (
        "nothing written: 0 of 3 LLM calls kept: --since 1h removed 2, --model gpt-4o-mini removed 1\n"
    )
    code, _, err = run(
        capsys,
        "export",
        "finetune",
        str(tmp_path / "x.jsonl"),
        "--store",
        store,
        "--tag",
        "alpha",
        "--label",
        "production",
    )
    assert code == 1
    assert err == (
        "nothing written: 0 of 3 LLM calls kept: --label production removed 2, --tag alpha removed 1\n"
    )


def test_stats_where_prompt_accepts_every_reference(
    store: str, registry: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """stats --where prompt= takes NAME (every version), NAME@VERSION and NAME:LABEL."""
    monkeypatch.setenv("OTELITE_PROMPTS_DIR", str(registry.path))
    for ref in ("qa", "qa@2", "qa:production"):
        code, out, _ = run(
            capsys,
            "stats",
            "--by",
            "prompt",
            "--where",
            f"prompt={ref}",
            "--json",
            "--store",
            store,
        )
        assert code == 0
        assert [(r["prompt"], r["calls"]) for r in json.loads(out)] == [("qa@2", 1)]
    code, out, _ = run(
        capsys, "stats", "--by", "prompt", "--where", "prompt=qa@1", "--json", "--store", store
    )
    assert (code, json.loads(out)) == (1, [])
    code, _, err = run(capsys, "stats", "--where", "prompt=qa:staging", "--store", store)
    assert code == 2
    assert err == (
        "otelite: --where 'prompt=qa:staging': prompt 'qa' has no label 'staging'; labels: production\n"
    )


def test_prompts_show_bad_version_is_a_clean_error(
    registry: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """`otelite prompts show NAME@x` exits 2 with the same message as every other prompt reference."""
    code, out, err = run(capsys, "prompts", "--dir", str(registry.path), "show", "qa@x")
    assert (code, out) == (2, "")
    assert err == "otelite: 'qa@x': the version after '@' must be a number, e.g. qa@3\n"
    code, out, _ = run(capsys, "prompts", "--dir", str(registry.path), "show", "qa:production")
    assert code == 0
    assert out.startswith("qa v2 [production]")


def test_counts_in_messages_agree_with_their_nouns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One span is `1 span` in prune's and export otlp's messages, never `1 spans`."""
    one = str(build_big_store(tmp_path / "one", traces=1))
    with http_receiver() as (url, _):
        code, out, _ = run(capsys, "export", "otlp", "--endpoint", url, "--store", one)
    assert (code, out) == (
        0,
        f"sent 1 span to {url}/v1/traces (span ids kept: re-sending is idempotent)\n",
    )
    code, out, _ = run(capsys, "prune", "--store", one, "--older-than", "30d")
    assert code == 0
    assert out.startswith("deleted 1 span; store ")


def test_finetune_records_counts_what_each_filter_removed(store: str) -> None:
    """The library call: NAME / NAME@VERSION match recorded calls, each filter's removals are
    counted in order, and a label reference (unresolved) or a bad version is a ValueError."""
    from otelite.datasets import finetune_records
    from otelite.store import LocalStore

    with LocalStore(store) as local:
        kept = finetune_records(local.llm_spans(), prompt="qa@2", tags=["beta"])
        assert (len(kept.records), dict(kept.removed)) == (1, {"prompt": 2})
        none = finetune_records(local.llm_spans(), prompt="qa", label="staging")
        assert (none.records, dict(none.removed)) == ([], {"label": 1, "prompt": 2})
        for bad in ("qa:production", "qa@two", "@2"):
            with pytest.raises(ValueError, match="give NAME or NAME@VERSION"):
                finetune_records(local.llm_spans(), prompt=bad)
