"""The store CLI: snapshots of every command's text output (fixed ids and clock), JSON, exports, errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from otelite.cli import main
from otlp_receiver import http_receiver
from storefixture import REMOTE_TRACE, build_remote_parent_store, build_store

TRACE1 = "00000000000000000000000000000001"


@pytest.fixture(autouse=True)
def _columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text output is laid out for an 80-column terminal unless a test says otherwise."""
    monkeypatch.setenv("COLUMNS", "80")


@pytest.fixture
def store(tmp_path: Path) -> str:
    """The fixed three-trace store."""
    return str(build_store(tmp_path / "store"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_traces_snapshot(
    store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`otelite traces`: one line per trace, newest first, within the terminal's width; ids
    as long as it takes to be unique (here all 32 characters: ids 1, 2, 3)."""
    monkeypatch.setenv("COLUMNS", "120")
    code, out, _ = run(capsys, "traces", "--store", store)
    assert code == 0
    assert out == (
        "ID                               START (UTC)    ROOT                            DURATION LLM  IN OUT       COST ST  USER\n"
        "00000000000000000000000000000003 01-01 02:00:00 embeddings text-embedding-3-sm…   30.0ms   1 10*  0* $0.0000002 OK  u1\n"
        "00000000000000000000000000000002 01-01 01:00:00 chat gpt-4o                      200.0ms   1   0   0          - ERR u2\n"
        "00000000000000000000000000000001 01-01 00:00:00 invoke_workflow rag               60.0ms   1 100  20  $0.000027 OK  u1\n"
        "3 traces; show one with: otelite trace <ID>\n"
        "* tokens (est.): counted by otelite, the provider reported none\n"
    )
    assert max(len(line) for line in out.splitlines()) <= 120


def test_traces_filters_and_json(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Filters narrow the listing; --json gives the same data as objects; no match exits 1."""
    code, out, _ = run(capsys, "traces", "--store", store, "--status", "ERROR", "--json")
    assert code == 0
    (only,) = json.loads(out)
    assert (only["root"], only["status"], only["user"]) == ("chat gpt-4o", "ERROR", "u2")
    code, out, _ = run(
        capsys, "traces", "--store", store, "--user", "u1", "--min-cost", "0.00001", "--json"
    )
    assert [t["root"] for t in json.loads(out)] == ["invoke_workflow rag"]
    code, out, _ = run(capsys, "traces", "--store", store, "--name", "retrieval", "--json")
    assert [t["trace_id"] for t in json.loads(out)] == [TRACE1]
    code, out, _ = run(capsys, "traces", "--store", store, "--model", "nope")
    assert code == 1
    assert out.startswith("no traces match")


def test_traces_with_a_remote_parent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A trace whose root's parent is another service's span is named by that root, and kept
    by --traffic app like any application trace."""
    store = str(build_remote_parent_store(tmp_path / "remote"))
    for extra in ([], ["--traffic", "app"]):
        code, out, _ = run(capsys, "traces", "--store", store, "--json", *extra)
        assert code == 0
        traces = json.loads(out)
        assert [t["root"] for t in traces] == [
            "invoke_workflow callback",
            "consume orders",
            "POST /answer",
            "invoke_workflow local",
        ]
        remote = traces[2]
        assert remote["trace_id"] == REMOTE_TRACE
        assert (remote["duration_ms"], remote["spans"], remote["llm_calls"]) == (40.0, 2, 1)
        assert (remote["input_tokens"], remote["output_tokens"], remote["cost_usd"]) == (
            40,
            10,
            0.00001,
        )
        assert (remote["status"], remote["service"], remote["user"]) == (
            "OK",
            "downstream",
            "u-remote",
        )
    code, out, _ = run(capsys, "traces", "--store", store, "--traffic", "evaluation")
    assert code == 1


def test_trace_tree_snapshot(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`otelite trace ID`: the span tree with bars scaled to the trace, LLM details, errors."""
    code, out, _ = run(capsys, "trace", "--store", store, TRACE1)
    assert code == 0
    assert out == (
        "00000000000000000000000000000001  snap\n"
        "60.0ms  3 spans  100 in + 20 out tokens  $0.000027\n"
        "invoke_workflow rag    60.0ms |████████████████████|\n"
        "  retrieval docs        2.0ms |█                   |\n"
        "  chat gpt-4o-mini     50.0ms | █████████████████  |\n"
        "    ↳ gpt-4o-mini-2024-07-18 · 100 in + 20 out tokens · $0.000027 · ttfc 12ms\n"
    )
    code, out, _ = run(capsys, "trace", "--store", store, "00000000000000000000000000000002")
    assert "chat gpt-4o" in out
    assert "  ↳ RateLimitError: slow down" in out


def test_trace_content_and_json(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--content shows captured messages by role; --json gives every span with offsets."""
    code, out, _ = run(capsys, "trace", "--store", store, TRACE1, "--content")
    assert code == 0
    assert "    ↳ user: Weather in Paris?\n" in out
    _, out, _ = run(capsys, "trace", "--store", store, TRACE1, "--json")
    spans = json.loads(out)
    assert [(s["depth"], s["name"], s["start_offset_ms"], s["duration_ms"]) for s in spans] == [
        (0, "invoke_workflow rag", 0.0, 60.0),
        (1, "retrieval docs", 1.0, 2.0),
        (1, "chat gpt-4o-mini", 4.0, 50.0),
    ]


def test_stats_snapshot(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`otelite stats --by model`: calls, errors, tokens, cost, percentiles, TTFC, estimated share."""
    code, out, _ = run(capsys, "stats", "--store", store, "--by", "model")
    assert code == 0
    assert out == (
        "MODEL                  CALLS  ERR%  IN OUT       COST     P50     P95 TTFC EST%\n"
        "gpt-4o                     1 100.0   0   0          - 200.0ms 200.0ms    -    0\n"
        "gpt-4o-mini                1   0.0 100  20  $0.000027  50.0ms  50.0ms 12ms    0\n"
        "text-embedding-3-small     1   0.0  10   0 $0.0000002  30.0ms  30.0ms    -  100\n"
        "3 LLM calls; EST% = share of calls with estimated tokens (est.)\n"
        "P99 left out at this width (widen the terminal, or use --json)\n"
    )
    assert max(len(line) for line in out.splitlines()) <= 80


def test_stats_several_keys_json_csv_where(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Several --by keys, --where filters, and JSON / CSV output."""
    code, out, _ = run(capsys, "stats", "--store", store, "--by", "user,day", "--json")
    rows = json.loads(out)
    assert [(r["user"], r["day"], r["calls"], r["errors"], r["input_tokens"]) for r in rows] == [
        ("u1", "2026-01-01", 2, 0, 110),
        ("u2", "2026-01-01", 1, 1, 0),
    ]
    assert rows[0]["estimated_share"] == 0.5
    assert rows[0]["p95_ms"] == 50.0
    code, out, _ = run(
        capsys, "stats", "--store", store, "--by", "geo,prompt,service.version", "--csv"
    )
    assert out.splitlines() == [
        "geo,prompt,service.version,calls,errors,error_rate,input_tokens,output_tokens,cost_usd,p50_ms,p95_ms,p99_ms,p50_ttfc_ms,estimated_share,unpriced",
        ",,1.2.0,2,1,0.5,10,0,2e-07,30.0,200.0,200.0,,0.5,0",
        "DE,qa@2,1.2.0,1,0,0.0,100,20,2.7e-05,50.0,50.0,50.0,12.0,0.0,0",
    ]
    code, out, _ = run(
        capsys, "stats", "--store", store, "--by", "provider", "--where", "user=u2", "--json"
    )
    assert code == 0
    assert [(r["provider"], r["calls"]) for r in json.loads(out)] == [("openai", 1)]


def test_bad_input_exit_codes(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unknown --by lists valid keys; a missing store says how to create one; exit code 2."""
    code, _, err = run(capsys, "stats", "--store", store, "--by", "colour")
    assert code == 2
    assert (
        "unknown key 'colour'; valid keys: model, provider, operation, user, session, service, service.version, prompt, geo, day, hour"
        in err
    )
    code, _, err = run(capsys, "traces", "--store", str(tmp_path / "none"))
    assert code == 2
    assert "no local store here yet; call otelite.configure()" in err
    code, _, err = run(capsys, "stats", "--store", store, "--since", "yesterday")
    assert (code, err.strip()) == (
        2,
        "otelite: --since: 'yesterday' is not a duration; write e.g. 30m, 24h or 7d",
    )
    code, _, err = run(capsys, "trace", "--store", store, "0000")
    assert (code, err.strip()) == (
        2,
        "otelite: trace id '0000': several traces start so; give more characters",
    )


def test_newer_schema_and_corrupt_store_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A newer or corrupt store is refused with exit code 2 and left unmodified."""
    import hashlib
    import sqlite3

    newer = tmp_path / "newer"
    newer.mkdir()
    conn = sqlite3.connect(newer / "otelite.db")
    conn.execute("CREATE TABLE otelite_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO otelite_meta VALUES ('schema_version', '7')")
    conn.commit()
    conn.close()
    before = hashlib.sha256((newer / "otelite.db").read_bytes()).hexdigest()
    for argv in (["traces"], ["stats"], ["prune", "--older-than", "1d"]):
        code, _, err = run(capsys, *argv, "--store", str(newer))
        assert code == 2
        assert "schema version 7" in err
    assert hashlib.sha256((newer / "otelite.db").read_bytes()).hexdigest() == before
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "otelite.db").write_bytes(b"garbage" * 100)
    code, _, err = run(capsys, "traces", "--store", str(corrupt))
    assert code == 2
    assert "not a readable otelite store" in err


def test_graph_snapshot(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`otelite graph ID`: a Mermaid flowchart of the trace."""
    code, out, _ = run(capsys, "graph", "--store", store, TRACE1)
    assert code == 0
    assert out == (
        "flowchart TD\n"
        '    s1["invoke_workflow rag<br/>60.0ms"]\n'
        '    s2["retrieval docs<br/>2.0ms"]\n'
        '    s3(["chat gpt-4o-mini<br/>50.0ms<br/>100 in + 20 out tokens"])\n'
        "    s1 --> s2\n"
        "    s1 --> s3\n"
    )


def test_export_finetune(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The export is valid chat fine-tuning JSONL; tool calls and results are kept; skips are explained."""
    out_file = tmp_path / "ft.jsonl"
    code, out, _ = run(capsys, "export", "finetune", str(out_file), "--store", store)
    assert code == 0
    assert out == f"wrote 1 example to {out_file} (skipped: 1 failed call, 1 non-chat call)\n"
    (line,) = out_file.read_text().splitlines()
    example = json.loads(line)
    assert example == {
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"},
            {"role": "assistant", "content": "Sunny and 21C."},
        ]
    }
    validate_finetune_line(example)
    code, out, _ = run(
        capsys,
        "export",
        "finetune",
        str(tmp_path / "p.jsonl"),
        "--store",
        store,
        "--prompt",
        "qa@2",
        "--label",
        "production",
        "--tag",
        "beta",
    )
    assert code == 0


def validate_finetune_line(example: dict[str, object]) -> None:
    """OpenAI's documented chat fine-tuning format: roles, content, well-formed tool calls."""
    messages = example["messages"]
    assert isinstance(messages, list)
    assert messages
    tool_ids: set[str] = set()
    for message in messages:
        assert message["role"] in ("system", "user", "assistant", "tool")
        if message["role"] == "tool":
            assert message["tool_call_id"] in tool_ids
            assert isinstance(message["content"], str)
        elif message.get("tool_calls"):
            for call in message["tool_calls"]:
                assert call["type"] == "function"
                assert isinstance(call["function"]["name"], str)
                json.loads(call["function"]["arguments"])
                tool_ids.add(call["id"])
        else:
            assert isinstance(message["content"], str)
    assert messages[-1]["role"] == "assistant"


def test_export_finetune_nothing_matches(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No matching spans: names the filter that removed them, writes nothing, exits 1."""
    out_file = tmp_path / "none.jsonl"
    code, _, err = run(
        capsys, "export", "finetune", str(out_file), "--store", store, "--prompt", "other"
    )
    assert code == 1
    assert err == "nothing written: 0 of 3 LLM calls kept: --prompt other removed 3\n"
    assert not out_file.exists()


def test_export_otlp_delivers_every_span_once(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Replaying the store to an OTLP receiver on 127.0.0.1 delivers each stored span exactly once."""
    with http_receiver() as (url, received):
        code, out, _ = run(
            capsys, "export", "otlp", "--endpoint", url, "--store", store, "--batch", "2"
        )
        spans = received.spans()
    assert code == 0
    assert out == f"sent 5 spans to {url}/v1/traces (span ids kept: re-sending is idempotent)\n"
    assert sorted((s["trace_id"][-1], s["span_id"][-1], s["name"]) for s in spans) == [
        ("1", "1", "invoke_workflow rag"),
        ("1", "2", "retrieval docs"),
        ("1", "3", "chat gpt-4o-mini"),
        ("2", "4", "chat gpt-4o"),
        ("3", "5", "embeddings text-embedding-3-small"),
    ]
    by_name = {s["name"]: s for s in spans}
    assert (
        by_name["chat gpt-4o-mini"]["parent_span_id"] == by_name["invoke_workflow rag"]["span_id"]
    )
    assert by_name["chat gpt-4o-mini"]["attributes"]["gen_ai.usage.input_tokens"] == 100
    assert by_name["chat gpt-4o"]["status_code"] == 2
    assert all(s["resource"]["service.name"] == "snap" for s in spans)


def test_prune(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    """prune --older-than removes old traces; --max-size shrinks the file."""
    copy = Path(store).parent / "copy"
    shutil.copytree(store, copy)
    code, out, _ = run(capsys, "prune", "--store", str(copy), "--older-than", "3650d", "--json")
    assert json.loads(out)["deleted_spans"] == 0
    code, out, _ = run(capsys, "prune", "--store", str(copy), "--older-than", "30d", "--json")
    assert json.loads(out)["deleted_spans"] == 5
    code, out, _ = run(capsys, "traces", "--store", str(copy))
    assert code == 1
    code, out, _ = run(capsys, "prune", "--store", store, "--max-size", "1KB", "--json")
    result = json.loads(out)
    assert result["deleted_spans"] > 0
    assert result["bytes_after"] <= result["bytes_before"]
    code, out, _ = run(capsys, "traces", "--store", store, "--json")
    assert len(json.loads(out)) < 3  # the oldest traces went first
    code, _, err = run(capsys, "prune", "--store", store)
    assert code == 2
    assert "give --older-than" in err


def test_every_command_after_quickstart(tmp_path: Path) -> None:
    """After examples/quickstart.py (with content capture), every command works on its store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELITE_"))}
    env.pop("OPENAI_API_KEY", None)
    env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"
    example = Path(__file__).resolve().parent.parent / "examples" / "quickstart.py"
    subprocess.run(
        [sys.executable, str(example)],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )

    def otelite(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "otelite", *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    listing = json.loads(otelite("traces", "--json").stdout)
    trace_id = listing[0]["trace_id"]
    assert listing[0]["root"] == "invoke_workflow rag_pipeline"
    assert "chat gpt-4o-mini" in otelite("trace", trace_id[:8]).stdout
    assert "gpt-4o-mini" in otelite("stats", "--by", "model").stdout
    assert otelite("stats", "--by", "user,day").returncode == 0
    assert "flowchart TD" in otelite("graph", trace_id).stdout
    exported = otelite("export", "finetune", "ft.jsonl")
    assert exported.returncode == 0, exported.stderr
    for line in (tmp_path / "ft.jsonl").read_text().splitlines():
        validate_finetune_line(json.loads(line))
    assert otelite("prune", "--older-than", "30d").returncode == 0
