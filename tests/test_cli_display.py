"""The CLI's text output at a given terminal width: columns sized to COLUMNS, short ids,
readable captured messages, money for people, labelled and marked token counts."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from otelite._export import LocalStoreExporter
from otelite.cli import main
from otelite.cli._content import _part_text
from otelite.cli._format import Column, fmt_cost, fmt_money, layout
from storefixture import HEX_TRACE_IDS, MS, T0, FixedTraceIds, build_store, llm_attrs


@pytest.fixture
def hexstore(tmp_path: Path) -> str:
    """The fixed three-trace store with realistic trace ids (two share 8 characters)."""
    return str(build_store(tmp_path / "hex", HEX_TRACE_IDS))


def run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, width: int, *argv: str
) -> tuple[int, str]:
    monkeypatch.setenv("COLUMNS", str(width))
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, out


TRACES_80 = (
    "ID        START (UTC)    ROOT           DURATION LLM  IN OUT       COST ST  USER\n"
    "9e1f3c5a7 01-01 02:00:00 embeddings te…   30.0ms   1 10*  0* $0.0000002 OK  u1\n"
    "4b620522f 01-01 01:00:00 chat gpt-4o     200.0ms   1   0   0          - ERR u2\n"
    "4b6205221 01-01 00:00:00 invoke_workfl…   60.0ms   1 100  20  $0.000027 OK  u1\n"
    "3 traces; show one with: otelite trace <ID>\n"
    "* tokens (est.): counted by otelite, the provider reported none\n"
)
TRACES_160 = (
    "ID        START (UTC)    ROOT                              DURATION LLM  IN OUT       COST ST  USER\n"
    "9e1f3c5a7 01-01 02:00:00 embeddings text-embedding-3-small   30.0ms   1 10*  0* $0.0000002 OK  u1\n"
    "4b620522f 01-01 01:00:00 chat gpt-4o                        200.0ms   1   0   0          - ERR u2\n"
    "4b6205221 01-01 00:00:00 invoke_workflow rag                 60.0ms   1 100  20  $0.000027 OK  u1\n"
    "3 traces; show one with: otelite trace <ID>\n"
    "* tokens (est.): counted by otelite, the provider reported none\n"
)


@pytest.mark.parametrize(("width", "expected"), [(80, TRACES_80), (160, TRACES_160)])
def test_traces_snapshot_at_width(
    hexstore: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    width: int,
    expected: str,
) -> None:
    """`otelite traces` shows a short id and gives the root name the room COLUMNS leaves."""
    code, out = run(capsys, monkeypatch, width, "traces", "--store", hexstore)
    assert code == 0
    assert out == expected


def test_traces_short_ids_open_their_trace(
    hexstore: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each shown id is a unique prefix of at least 8 characters that `otelite trace` opens."""
    _, out = run(capsys, monkeypatch, 80, "traces", "--store", hexstore)
    shown = [line.split()[0] for line in out.splitlines()[1:4]]
    assert shown == ["9e1f3c5a7", "4b620522f", "4b6205221"]
    for short, full in zip(shown, reversed(HEX_TRACE_IDS)):
        code, tree = run(capsys, monkeypatch, 80, "trace", "--store", hexstore, short)
        assert code == 0
        assert tree.startswith(full)


def test_traces_short_ids_unique_in_the_whole_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An id shown alone (-n 1) is still long enough to tell it from traces not shown."""
    store = str(build_store(tmp_path / "seq"))  # ids 1, 2, 3: 31 shared characters
    _, out = run(capsys, monkeypatch, 80, "traces", "--store", store, "-n", "1")
    short = out.splitlines()[1].split()[0]
    assert short == "00000000000000000000000000000003"
    code, tree = run(capsys, monkeypatch, 80, "trace", "--store", store, short)
    assert code == 0
    assert "embeddings text-embedding-3-small" in tree


STATS_80 = (
    "MODEL                  PROVIDER CALLS  ERR%  IN OUT       COST     P50     P95\n"
    "gpt-4o                 openai       1 100.0   0   0          - 200.0ms 200.0ms\n"
    "gpt-4o-mini            openai       1   0.0 100  20  $0.000027  50.0ms  50.0ms\n"
    "text-embedding-3-small openai       1   0.0  10   0 $0.0000002  30.0ms  30.0ms\n"
    "3 LLM calls\n"
    "P99, TTFC, EST% left out at this width (widen the terminal, or use --json)\n"
)
STATS_160 = (
    "MODEL                  PROVIDER CALLS  ERR%  IN OUT       COST     P50     P95     P99 TTFC EST%\n"
    "gpt-4o                 openai       1 100.0   0   0          - 200.0ms 200.0ms 200.0ms    -    0\n"
    "gpt-4o-mini            openai       1   0.0 100  20  $0.000027  50.0ms  50.0ms  50.0ms 12ms    0\n"
    "text-embedding-3-small openai       1   0.0  10   0 $0.0000002  30.0ms  30.0ms  30.0ms    -  100\n"
    "3 LLM calls; EST% = share of calls with estimated tokens (est.)\n"
)


@pytest.mark.parametrize(("width", "expected"), [(80, STATS_80), (160, STATS_160)])
def test_stats_by_two_keys_snapshot_at_width(
    hexstore: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    width: int,
    expected: str,
) -> None:
    """`stats --by model,provider`: one column per key, one line per row, money without
    scientific notation; columns that do not fit are left out and named."""
    code, out = run(
        capsys, monkeypatch, width, "stats", "--store", hexstore, "--by", "model,provider"
    )
    assert code == 0
    assert out == expected


def test_stats_json_and_csv_keep_full_precision(
    hexstore: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--json and --csv give the cost as the stored float, not the rounded display (and
    traces --json counts the calls with estimated tokens)."""
    _, out = run(capsys, monkeypatch, 80, "stats", "--store", hexstore, "--json")
    assert {r["model"]: r["cost_usd"] for r in json.loads(out)} == {
        "gpt-4o": None,
        "gpt-4o-mini": 0.000027,
        "text-embedding-3-small": 2e-07,
    }
    _, out = run(capsys, monkeypatch, 80, "traces", "--store", hexstore, "--json")
    assert [(t["cost_usd"], t["estimated_calls"]) for t in json.loads(out)] == [
        (2e-07, 1),
        (None, 0),
        (0.000027, 0),
    ]
    _, out = run(capsys, monkeypatch, 80, "stats", "--store", hexstore, "--csv")
    assert [line.split(",")[6] for line in out.splitlines()] == ["cost_usd", "", "2.7e-05", "2e-07"]


@pytest.mark.parametrize("width", [32, 40, 60, 80, 100, 120, 160, 200])
def test_rows_never_exceed_the_width(
    hexstore: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    width: int,
) -> None:
    """No line of traces, stats, score stats or trace is wider than COLUMNS."""
    commands: list[list[str]] = [
        ["traces"],
        ["stats", "--by", "model"],
        ["stats", "--by", "model,provider,user,day,prompt"],
        ["stats", "--by", "service.version,geo"],
    ]
    commands += [
        ["trace", HEX_TRACE_IDS[0]],
        ["trace", HEX_TRACE_IDS[1], "--content"],
        ["trace", HEX_TRACE_IDS[0], "--content"],
        ["trace", HEX_TRACE_IDS[2], "--content"],
    ]
    for argv in commands:
        _, out = run(capsys, monkeypatch, width, *argv, "--store", hexstore)
        assert out
        assert max(len(line) for line in out.splitlines()) <= width, (argv, out)


CONTENT_80 = (
    "4b62052210e2a9c47f3d9e0b1a2c3d4e  snap\n"
    "60.0ms  3 spans  100 in + 20 out tokens  $0.000027\n"
    "invoke_workflow rag    60.0ms |████████████████████|\n"
    "  retrieval docs        2.0ms |█                   |\n"
    "  chat gpt-4o-mini     50.0ms | █████████████████  |\n"
    "    ↳ gpt-4o-mini-2024-07-18 · 100 in + 20 out tokens · $0.000027 · ttfc 12ms\n"
    "    ↳ system: Answer briefly.\n"
    "    ↳ user: Weather in Paris?\n"
    '    ↳ assistant: calls tool weather({"city": "Paris"}) [id call_1]\n'
    "    ↳ tool: result of [id call_1]: sunny, 21C\n"
    "    ↳ assistant (stop): Sunny and 21C.\n"
)


def test_trace_content_as_role_labelled_messages(
    hexstore: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--content prints system instructions, messages, tool calls and results by role."""
    code, out = run(capsys, monkeypatch, 80, "trace", "--store", hexstore, "4b6205221", "--content")
    assert code == 0
    assert out == CONTENT_80


def test_trace_content_max_chars(
    hexstore: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--max-chars N cuts each captured text (not the labels) and says how much is left out."""
    _, out = run(
        capsys,
        monkeypatch,
        80,
        "trace",
        "--store",
        hexstore,
        "4b6205221",
        "--content",
        "--max-chars",
        "5",
    )
    assert out.splitlines()[6:] == [
        "    ↳ system: Answe… (10 more characters)",
        "    ↳ user: Weath… (12 more characters)",
        '    ↳ assistant: calls tool weather({"cit… (12 more characters)) [id call_1]',
        "    ↳ tool: result of [id call_1]: sunny… (5 more characters)",
        "    ↳ assistant (stop): Sunny… (9 more characters)",
    ]


def test_trace_content_says_when_capture_was_off(
    hexstore: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chat call recorded without content says so under --content instead of printing nothing."""
    _, out = run(capsys, monkeypatch, 80, "trace", "--store", hexstore, "4b620522f", "--content")
    assert out == (
        "4b620522f1a04c7e9d8b7a6f5e4d3c2b  snap  200.0ms  1 span\n"
        "chat gpt-4o   200.0ms |████████████████████| ERROR\n"
        "  ↳ gpt-4o\n"
        "  ↳ RateLimitError: slow down\n"
        "  ↳ content not captured (capture was off: configure(capture_content=True) or\n"
        "    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true)\n"
    )


LONG = (
    "Summarise the attached incident report for the on-call channel. Keep every number "
    "exactly as written.\nThen list the three follow-up actions."
)


def long_content_store(path: Path) -> str:
    provider = TracerProvider(
        resource=Resource({"service.name": "snap"}),
        id_generator=FixedTraceIds(["c0ffee00c0ffee00c0ffee00c0ffee00"]),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(LocalStoreExporter(path / "otelite.db")))
    messages: list[dict[str, Any]] = [
        {"role": "user", "parts": [{"type": "text", "content": LONG}]},
    ]
    output: list[dict[str, Any]] = [
        {
            "role": "assistant",
            "parts": [
                {"type": "reasoning", "content": "The report has two outages."},
                {"type": "text", "content": "Two outages, 14 and 23 minutes."},
                {
                    "type": "uri",
                    "modality": "image",
                    "mime_type": "image/png",
                    "uri": "https://x/y.png",
                },
            ],
            "finish_reason": "stop",
        }
    ]
    span = provider.get_tracer("otelite").start_span(
        "chat gpt-4o-mini",
        kind=SpanKind.CLIENT,
        start_time=T0,
        attributes=llm_attrs(
            "gpt-4o-mini",
            "gpt-4o-mini",
            48,
            16,
            0.0000024,
            **{
                "gen_ai.input.messages": json.dumps(messages),
                "gen_ai.output.messages": json.dumps(output),
                "otelite.usage.estimated": True,
            },
        ),
    )
    span.end(end_time=T0 + 5 * MS)
    provider.shutdown()
    return str(path)


def test_trace_content_wrapped_in_full(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Long messages are wrapped to the width, kept whole, with their own line breaks; every
    part of a message (reasoning, text, a URI) is shown under its role."""
    store = long_content_store(tmp_path / "long")
    _, out = run(capsys, monkeypatch, 60, "trace", "--store", store, "c0ffee", "--content")
    assert out == (
        "c0ffee00c0ffee00c0ffee00c0ffee00  snap\n"
        "5.0ms  1 span  48 in + 16 out tokens (est.)  $0.0000024\n"
        "chat gpt-4o-mini     5.0ms |████████████████████|\n"
        "  ↳ gpt-4o-mini · 48 in + 16 out tokens (est.) · $0.0000024\n"
        "  ↳ user: Summarise the attached incident report for the\n"
        "          on-call channel. Keep every number exactly as\n"
        "          written.\n"
        "          Then list the three follow-up actions.\n"
        "  ↳ assistant (stop): (reasoning) The report has two\n"
        "                      outages.\n"
        "                      Two outages, 14 and 23 minutes.\n"
        "                      [image image/png] https://x/y.png\n"
    )


def test_message_parts_render_readably() -> None:
    """Every part type of the GenAI conventions renders as text; unknown parts as JSON."""
    assert _part_text({"type": "text", "content": "hi"}, None) == "hi"
    assert _part_text({"type": "reasoning", "content": "think"}, None) == "(reasoning) think"
    assert (
        _part_text({"type": "tool_call", "id": "c1", "name": "f", "arguments": {"a": 1}}, None)
        == 'calls tool f({"a": 1}) [id c1]'
    )
    assert (
        _part_text({"type": "tool_call_response", "id": "c1", "response": {"ok": True}}, None)
        == 'result of [id c1]: {"ok": true}'
    )
    assert (
        _part_text(
            {"type": "blob", "modality": "audio", "mime_type": "audio/wav", "content": "QUJD"}, None
        )
        == "[audio audio/wav] 4 base64 characters"
    )
    assert (
        _part_text({"type": "file", "modality": "image", "file_id": "f-1"}, None)
        == "[image] file id f-1"
    )
    assert _part_text({"type": "future", "x": 1}, None) == '{"type": "future", "x": 1}'


def test_graph_marks_estimated_tokens_and_labels_them(
    hexstore: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`otelite graph` labels token counts `N in + M out tokens` and marks estimates (est.)."""
    _, out = run(capsys, monkeypatch, 80, "graph", "--store", hexstore, "9e1f3c5a7")
    assert out == (
        "flowchart TD\n"
        '    s1(["embeddings text-embedding-3-small<br/>30.0ms<br/>10 in + 0 out tokens (est.)"])\n'
    )


@pytest.mark.parametrize(
    ("usd", "text"),
    [
        (0, "$0"),
        (2.4e-06, "$0.0000024"),
        (2e-07, "$0.0000002"),
        (0.000027, "$0.000027"),
        (0.0123, "$0.012"),
        (0.5, "$0.50"),
        (0.123456, "$0.12"),
        (1, "$1.00"),
        (1234.5, "$1,234.50"),
        (3e-10, "<$0.00000001"),
        (-0.5, "-$0.50"),
    ],
)
def test_money_for_people(usd: float, text: str) -> None:
    """Costs print as plain dollars with two significant digits, never in scientific notation."""
    assert fmt_money(usd) == text
    assert "e" not in fmt_cost(usd, 1)
    assert fmt_cost(usd, 1) == text + "+"


def test_layout_shrinks_every_flexible_column_to_its_floor() -> None:
    """When the width is short, every flexible column gives up room, not only the widest."""
    columns = [Column("A", flex=True, min_width=8), Column("B", flex=True, min_width=4)]
    rows = [["a" * 8, "b" * 8]]
    assert layout(columns, rows, 13) == ([0, 1], [8, 4])
    assert layout(columns, rows, 40) == ([0, 1], [8, 8])


def doc_examples() -> list[tuple[list[str], str]]:
    """The ```text blocks of docs/cli.md that start with `$ otelite ...`: (argv, output)."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text("utf-8")
    examples = []
    for block in re.findall(r"```text\n(.*?)```", text, re.DOTALL):
        command, _, output = block.partition("\n")
        if command.startswith("$ otelite "):
            examples.append((shlex.split(command)[2:], output))
    return examples


def test_docs_cli_examples_match_the_output(
    hexstore: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every `$ otelite ...` example in docs/cli.md prints exactly what the docs show (80 columns)."""
    examples = doc_examples()
    assert [argv[0] for argv, _ in examples] == ["traces", "trace", "graph", "stats"]
    for argv, expected in examples:
        _, out = run(capsys, monkeypatch, 80, *argv, "--store", hexstore)
        assert out == expected, argv
