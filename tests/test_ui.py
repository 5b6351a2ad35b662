"""otelite ui: pages, numbers equal to the CLI's, escaping, bad input, token, read-only server."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar, Optional

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, set_span_in_context

import otelite.ui
from otelite import cli
from otelite._export import LocalStoreExporter
from otelite.evals import EvalRun, Example, RowResult, Score
from otelite.prompts import PromptRegistry
from otelite.store import _schema as _sqlite
from otelite.testing import SequentialIdGenerator
from otelite.ui import App, UIServer, _queries
from otelite.ui._server import is_loopback
from storefixture import (
    CALLBACK_TRACE,
    LOCAL_RUN_TRACES,
    LOCAL_TRACE,
    MS,
    REMOTE_RUN_TRACES,
    REMOTE_TRACE,
    T0,
    TWO_ROOTS_TRACE,
    build_remote_parent_store,
    build_remote_run_store,
    build_store,
)

NOW = T0 + 3 * 3600 * 1000 * MS  # three hours after the fixture's first trace
TRACE_1 = f"{1:032x}"
TRACE_2 = f"{2:032x}"
TRACE_3 = f"{3:032x}"


class _Cells(HTMLParser):
    """The text of every table cell, row by row, and every element's classes."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.classes: list[str] = []
        self._cell: Optional[list[str]] = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        self.classes.extend((dict(attrs).get("class") or "").split())
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(body: str) -> _Cells:
    parser = _Cells()
    parser.feed(body)
    return parser


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """The CLI snapshot store: a RAG trace with content, a failed call, an estimated embedding."""
    return build_store(tmp_path / "store")


@pytest.fixture
def app(store: Path, tmp_path: Path) -> App:
    prompts = tmp_path / "prompts"
    registry = PromptRegistry(prompts)
    registry.push("qa", template="Answer: {{question}}", labels=["production"], message="first")
    registry.push("qa", template="Answer briefly: {{question}}", message="shorter")
    registry.set_label("qa", "production", 2)
    return App(store, prompts_dir=prompts, runs_dir=tmp_path / "runs", clock=lambda: NOW)


def run_cli(*argv: str) -> Any:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(list(argv))
    assert code == 0, out.getvalue()
    return json.loads(out.getvalue())


def test_trace_list_shows_every_trace_with_the_cli_totals(app: App, store: Path) -> None:
    """The trace list holds the traces of `otelite traces`, newest first, with the same totals."""
    response = app.handle("/traces")
    assert response.status == 200
    rows = parse(response.body).tables[0][1:]
    expected = run_cli("traces", "--store", str(store), "--json")
    assert [r[0] for r in rows] == [t["trace_id"][:12] for t in expected]
    assert rows == [
        [
            TRACE_3[:12],
            "2026-01-01 02:00:00",
            "embeddings text-embedding-3-small",
            "30.0ms",
            "1",
            "10*",
            "0*",
            "$0.0000002",
            "OK",
            "snap",
            "u1",
        ],
        [
            TRACE_2[:12],
            "2026-01-01 01:00:00",
            "chat gpt-4o",
            "200.0ms",
            "1",
            "0",
            "0",
            "-",
            "ERROR",
            "snap",
            "u2",
        ],
        [
            TRACE_1[:12],
            "2026-01-01 00:00:00",
            "invoke_workflow rag",
            "60.0ms",
            "1",
            "100",
            "20",
            "$0.000027",
            "OK",
            "snap",
            "u1",
        ],
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("user=u2", [TRACE_2]),
        ("model=gpt-4o-mini", [TRACE_1]),
        ("session=s1", [TRACE_1]),
        ("prompt=qa", [TRACE_1]),
        ("prompt=qa@2", [TRACE_1]),
        ("prompt=qa@1", []),
        ("status=ERROR", [TRACE_2]),
        ("status=OK", [TRACE_3, TRACE_1]),
        ("traffic=app", [TRACE_3, TRACE_2, TRACE_1]),
        ("traffic=evaluation", []),
        ("min_cost=0.00001", [TRACE_1]),
        ("min_ms=100", [TRACE_2]),
        ("since=2h", [TRACE_3, TRACE_2]),
        ("since=2026-01-01T01:00&until=2026-01-01T02:00", [TRACE_2]),
        ("sort=duration", [TRACE_2, TRACE_1, TRACE_3]),
        ("sort=cost&order=asc", [TRACE_2, TRACE_3, TRACE_1]),
        ("limit=1", [TRACE_3]),
        ("limit=1&page=2", [TRACE_2]),
        ("limit=2&page=3", []),
    ],
)
def test_trace_list_filters_sorts_and_pages(app: App, query: str, expected: list[str]) -> None:
    """Each filter, sort and page of the trace list keeps exactly the matching traces."""
    response = app.handle("/traces", query)
    assert response.status == 200
    tables = parse(response.body).tables
    shown = [r[0] for r in tables[0][1:]] if tables else []
    assert shown == [t[:12] for t in expected]
    if not expected:
        hint = "no traces on page 3" if "page=3" in query else "no traces match these filters"
        assert hint in response.body


def test_trace_list_pages_link_to_each_other(app: App) -> None:
    """A page says whether there is a next one, keeping the filters in its links."""
    first = app.handle("/traces", "limit=1&user=u1").body
    assert 'href="/traces?limit=1&amp;user=u1&amp;page=2"' in first
    assert "rel=prev" not in first
    second = app.handle("/traces", "limit=1&user=u1&page=2").body
    assert 'href="/traces?limit=1&amp;user=u1&amp;page=1"' in second
    assert "rel=next" not in second


@pytest.fixture
def remote_store(tmp_path: Path) -> Path:
    """Traces whose root's parent is a span of another service (see build_remote_parent_store)."""
    return build_remote_parent_store(tmp_path / "remote")


def test_trace_list_shows_traces_whose_root_has_a_remote_parent(remote_store: Path) -> None:
    """A trace that came in with a remote parent is listed, named by its top-most span in the
    store, with the totals of all its spans: the same rows as `otelite traces`. Two local roots
    under one remote parent make one row, named by the first; a local trace that a remote
    service called back into stays one row, named by its own root."""
    app = App(remote_store, clock=lambda: NOW)
    response = app.handle("/traces")
    assert response.status == 200
    rows = parse(response.body).tables[0][1:]
    expected = run_cli("traces", "--store", str(remote_store), "--json")
    assert [r[0] for r in rows] == [t["trace_id"][:12] for t in expected]
    assert [r[2] for r in rows] == [t["root"] for t in expected]
    assert rows == [
        [
            CALLBACK_TRACE[:12],
            "2026-01-01 00:00:03",
            "invoke_workflow callback",
            "50.0ms",
            "0",
            "-",
            "-",
            "-",
            "OK",
            "downstream",
            "-",
        ],
        [
            TWO_ROOTS_TRACE[:12],
            "2026-01-01 00:00:02",
            "consume orders",
            "90.0ms",
            "1",
            "20",
            "10",
            "$0.000005",
            "ERROR",
            "downstream",
            "-",
        ],
        [
            REMOTE_TRACE[:12],
            "2026-01-01 00:00:01",
            "POST /answer",
            "40.0ms",
            "1",
            "40",
            "10",
            "$0.00001",
            "OK",
            "downstream",
            "u-remote",
        ],
        [
            LOCAL_TRACE[:12],
            "2026-01-01 00:00:00",
            "invoke_workflow local",
            "20.0ms",
            "1",
            "100",
            "10",
            "$0.00002",
            "OK",
            "downstream",
            "-",
        ],
    ]
    # The trace page shows both roots of the trace that has two, the listed one first.
    waterfall = parse(app.handle(f"/trace/{TWO_ROOTS_TRACE}").body).tables[0]
    assert [row[:2] for row in waterfall if len(row) == 3] == [
        ["consume orders", "20.0ms"],
        ["chat gpt-4o-mini", "10.0ms"],
        ["consume orders retry", "40.0ms"],
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("traffic=app", [CALLBACK_TRACE, TWO_ROOTS_TRACE, REMOTE_TRACE, LOCAL_TRACE]),
        ("traffic=evaluation", []),
        ("status=ERROR", [TWO_ROOTS_TRACE]),
        ("status=OK", [CALLBACK_TRACE, REMOTE_TRACE, LOCAL_TRACE]),
        ("user=u-remote", [REMOTE_TRACE]),
        ("model=gpt-4o-mini", [TWO_ROOTS_TRACE, REMOTE_TRACE, LOCAL_TRACE]),
        ("min_ms=40", [CALLBACK_TRACE, TWO_ROOTS_TRACE, REMOTE_TRACE]),
        ("since=2026-01-01T00:00:01&until=2026-01-01T00:00:03", [TWO_ROOTS_TRACE, REMOTE_TRACE]),
        ("sort=start&order=asc", [LOCAL_TRACE, REMOTE_TRACE, TWO_ROOTS_TRACE, CALLBACK_TRACE]),
        ("sort=duration", [TWO_ROOTS_TRACE, CALLBACK_TRACE, REMOTE_TRACE, LOCAL_TRACE]),
        ("sort=spans&order=asc", [LOCAL_TRACE, REMOTE_TRACE, CALLBACK_TRACE, TWO_ROOTS_TRACE]),
        ("limit=1&page=2", [TWO_ROOTS_TRACE]),
        ("limit=3&page=2", [LOCAL_TRACE]),
    ],
)
def test_trace_list_filters_and_sorts_traces_with_remote_parents(
    remote_store: Path, query: str, expected: list[str]
) -> None:
    """Filters, sorts and pages keep each trace once, whichever of its spans has no local parent."""
    response = App(remote_store, clock=lambda: NOW).handle("/traces", query)
    assert response.status == 200
    tables = parse(response.body).tables
    assert ([r[0] for r in tables[0][1:]] if tables else []) == [t[:12] for t in expected]


def test_trace_page_draws_the_waterfall_with_llm_figures_and_the_transcript(app: App) -> None:
    """The trace page: one bar per span to scale, model/tokens/cost/TTFC, prompt link, chat transcript."""
    body = app.handle(f"/trace/{TRACE_1}").body
    cells = parse(body)
    assert cells.classes.count("bar") == 3
    assert 'style="left:0.000%;width:100.000%"' in body  # root: 60 ms of 60
    assert 'style="left:1.667%;width:3.333%"' in body  # retrieval: 1-3 ms
    assert 'style="left:6.667%;width:83.333%"' in body  # chat: 4-54 ms
    assert "gpt-4o-mini-2024-07-18 · 100 in + 20 out tokens · $0.000027 · ttfc 12ms" in body
    assert 'prompt <a href="/prompts/qa?b=2">qa v2</a>' in body
    transcript = [
        ("system", "Answer briefly."),
        ("user", "Weather in Paris?"),
        ("assistant", 'calls tool weather({"city": "Paris"}) [id call_1]'),
        ("tool", "result of [id call_1]: sunny, 21C"),
        ("assistant (stop)", "Sunny and 21C."),
    ]
    for role, text in transcript:
        assert f"<span class=role>{role}</span>: {text.replace(chr(34), '&quot;')}</div>" in body
    assert cells.classes.count("msg") == 5
    assert "error" not in cells.classes


def test_trace_page_highlights_errors_and_marks_estimated_tokens(app: App) -> None:
    """A failed call's bar and row are marked as errors with the reason; estimated tokens say so."""
    failed = app.handle(f"/trace/{TRACE_2}").body
    assert parse(failed).classes.count("error") == 2  # the row and the bar
    assert "<div class=err>RateLimitError: slow down</div>" in failed
    assert "msg" not in parse(failed).classes  # nothing captured: nothing shown
    estimated = app.handle(f"/trace/{TRACE_3}").body
    assert "10 in + 0 out tokens (est.)" in estimated
    assert "(est.) tokens counted by otelite" in estimated


def _store_with_payload(path: Path) -> Path:
    provider = TracerProvider(
        resource=Resource({"service.name": "<b>svc</b>"}),
        id_generator=SequentialIdGenerator(),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(LocalStoreExporter(path / "otelite.db")))
    tracer = provider.get_tracer("otelite")
    payload = "<script>alert(1)</script>"
    root = tracer.start_span(
        "evaluate <img src=x onerror=alert(2)>",
        start_time=T0,
        attributes={
            "otelite.span.kind": "evaluation_run",
            "otelite.eval.run.name": "<i>run</i>",
            "otelite.eval.run.id": "r1",
            "otelite.traffic": "evaluation",
            "user.id": '"><script>alert(3)</script>',
        },
    )
    root.add_event(
        "gen_ai.evaluation.result",
        {
            "gen_ai.evaluation.name": "exact_match",
            "gen_ai.evaluation.score.value": 1.0,
            "otelite.evaluation.passed": True,
            "gen_ai.evaluation.explanation": payload,
        },
        timestamp=T0 + 2 * MS,
    )
    chat = tracer.start_span(
        "chat gpt-4o-mini",
        context=set_span_in_context(root),
        kind=SpanKind.CLIENT,
        start_time=T0 + MS,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.prompt.name": 'x"><script>',
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": payload}]}]
            ),
        },
    )
    chat.end(end_time=T0 + 2 * MS)
    root.end(end_time=T0 + 3 * MS)
    provider.shutdown()
    return path


def test_user_data_is_escaped_everywhere(tmp_path: Path) -> None:
    """A captured `<script>` and markup in names, ids and attributes render as text, never as markup."""
    app = App(_store_with_payload(tmp_path / "s"), runs_dir=tmp_path, clock=lambda: NOW)
    pages = [
        app.handle("/traces").body,
        app.handle(f"/trace/{TRACE_1}").body,
        app.handle("/evals").body,
        app.handle("/evals/run", "id=r1").body,
        app.handle("/stats", "since=all&by=user,prompt").body,
        app.handle("/traces", "user=%22%3E%3Cscript%3E").body,
    ]
    for body in pages:
        assert "<script" not in body
        assert "<img" not in body
        assert "<i>" not in body
        assert "<b>svc" not in body
    trace = pages[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in trace
    assert "evaluate &lt;img src=x onerror=alert(2)&gt;" in trace
    assert "score exact_match = 1.0 pass" in trace
    assert 'href="/prompts/x%22%3E%3Cscript%3E"' in trace
    assert "&lt;i&gt;run&lt;/i&gt;" in pages[2]
    assert 'value="&quot;&gt;&lt;script&gt;"' in pages[5]


def test_stats_page_shows_the_numbers_of_the_cli(app: App, store: Path) -> None:
    """Every cell of the stats table equals `otelite stats --by KEYS --json`, for several keys."""
    for by in ("model", "user", "prompt", "user,day", "traffic"):
        response = app.handle("/stats", f"by={by}&since=all")
        assert response.status == 200
        tables = parse(response.body).tables
        keys = by.split(",")
        expected = run_cli("stats", "--by", by, "--store", str(store), "--json")
        shown = tables[0][1:]
        assert len(shown) == len(expected)
        for cells, row in zip(shown, expected):
            ttfc = row["p50_ttfc_ms"]
            assert cells == [
                *("-" if row[k] is None else str(row[k]) for k in keys),
                str(row["calls"]),
                f"{row['error_rate'] * 100:.1f}",
                str(row["input_tokens"]),
                str(row["output_tokens"]),
                otelite.ui._html.money(row["cost_usd"], row["unpriced"]),
                otelite.ui._html.ms(row["p50_ms"] * 1e6),
                otelite.ui._html.ms(row["p95_ms"] * 1e6),
                otelite.ui._html.ms(row["p99_ms"] * 1e6),
                f"{ttfc:.0f}ms" if ttfc is not None else "-",
                f"{row['estimated_share'] * 100:.0f}",
            ]
    assert [r[:2] for r in parse(app.handle("/stats", "since=all").body).tables[0][1:]] == [
        ["gpt-4o", "1"],
        ["gpt-4o-mini", "1"],
        ["text-embedding-3-small", "1"],
    ]


def test_stats_page_charts_calls_cost_tokens_and_latency_over_time(app: App) -> None:
    """The last 24 hours by hour: one bar per hour with calls in the calls chart, and the other charts."""
    body = app.handle("/stats").body  # default: since 24h, per hour
    assert "<h2>Per hour (UTC)</h2>" in body
    for title in ("LLM calls", "Cost (USD, priced calls)", "Tokens", "Latency"):
        assert f'aria-label="{title}"' in body
    assert body.count("<title>2026-01-01 0") >= 3
    assert "<title>2026-01-01 01:00: 1</title>" in body
    assert "--since 24h" in body
    week = app.handle("/stats", "since=all").body
    assert "<h2>Per day (UTC)</h2>" in week
    assert "<title>2026-01-01: 3</title>" in week


def test_prompts_pages_show_versions_labels_history_diff_and_calls(app: App) -> None:
    """Prompt list and one prompt: labels, each version's calls and cost, history, and a diff."""
    listing = parse(app.handle("/prompts").body).tables[0]
    assert listing[1][:3] == ["qa", "v2", "production=v2"]
    body = app.handle("/prompts/qa", "since=all").body
    versions = parse(body).tables[0]
    assert versions[1][:9] == [
        "v2",
        "production",
        versions[1][2],
        versions[1][3],
        "shorter",
        "1",
        "$0.000027",
        "50.0ms",
        "50.0ms",
    ]
    assert versions[2][5:7] == ["0", "-"]
    assert '<span class="del">-Answer: {{question}}</span>' in body
    assert '<span class="add">+Answer briefly: {{question}}</span>' in body
    history = parse(body).tables[1]
    assert [row[2:] for row in history[1:]] == [
        ["set", "production", "(none)", "v1"],
        ["set", "production", "v1", "v2"],
    ]
    same = app.handle("/prompts/qa", "a=2&b=2").body
    assert "v2 and v2 are the same" in same


def test_prompt_diff_shows_a_change_of_the_final_newline_as_the_cli_does(app: App) -> None:
    """Versions that differ only in the final newline are not "the same": the page shows
    the CLI's diff, with the marker after the last line that lacks the newline."""
    registry = PromptRegistry(app.prompts_dir)
    registry.push("nl", template="one\ntwo")
    registry.push("nl", template="one\ntwo\n")
    body = app.handle("/prompts/nl", "a=1&b=2").body
    assert "are the same" not in body
    assert (
        '<pre class=diff>--- nl@1\n+++ nl@2\n<span class="hunk">@@ -1,2 +1,2 @@</span>\n one\n'
        '<span class="del">-two</span>\n\\ No newline at end of file\n'
        '<span class="add">+two</span></pre>'
    ) in body


def _run(name: str, verdicts: list[bool]) -> EvalRun:
    rows = [
        RowResult(
            index=i,
            repeat=0,
            example=Example(f"question {i}", "yes"),
            output="yes" if ok else "no",
            scores={"exact_match": Score("exact_match", 1.0 if ok else 0.0, passed=ok)},
        )
        for i, ok in enumerate(verdicts)
    ]
    return EvalRun(name, name + "-id", rows, ["exact_match"])


def test_evaluations_list_runs_show_rows_and_compare_with_regressions(
    app: App, tmp_path: Path
) -> None:
    """Run files are listed with pass rates; a run shows its rows; compare lists the regressed row."""
    runs = tmp_path / "runs"
    runs.mkdir()
    _run("base", [True, True, False]).to_jsonl(runs / "base.jsonl")
    _run("cand", [True, False, True]).to_jsonl(runs / "cand.jsonl")
    listing = parse(app.handle("/evals").body).tables[0]
    assert sorted(r[:5] for r in listing[1:]) == [
        ["base.jsonl", "base", "3", "0", "exact_match 66.7%"],
        ["cand.jsonl", "cand", "3", "0", "exact_match 66.7%"],
    ]
    run = parse(app.handle("/evals/run", "file=cand.jsonl").body).tables
    assert run[0][1] == ["exact_match", "66.7%", "0.667", "3", "0"]
    assert run[1][2][:5] == ["1", "question 1", "yes", "no", "fail 0"]
    compare = app.handle("/evals/compare", "a=base.jsonl&b=cand.jsonl").body
    tables = parse(compare).tables
    assert tables[0][1] == ["exact_match", "66.7%", "66.7%", "+0.0%", "0.667", "0.667"]
    assert [r[1:] for r in tables[1][1:]] == [["question 1", "exact_match", "pass 1", "fail 0"]]
    assert [r[1:] for r in tables[2][1:]] == [["question 2", "exact_match", "fail 0", "pass 1"]]
    assert "Regressed rows (1)" in compare


def test_stored_evaluation_runs_are_listed_with_pass_rates(tmp_path: Path) -> None:
    """Dataset runs recorded in the store are listed with each evaluator's pass rate and row traces."""
    app = App(_store_with_payload(tmp_path / "s"), clock=lambda: NOW)
    listing = parse(app.handle("/evals").body).tables[0]
    assert listing[1][1:] == ["r1", "2026-01-01 00:00:00", "1", "exact_match 100.0%"]
    run = app.handle("/evals/run", "id=r1")
    assert parse(run.body).tables[0][1] == ["exact_match", "1", "100.0%", "1.000"]
    assert f'href="/trace/{TRACE_1}"' in run.body


def test_a_stored_run_under_a_remote_parent_is_listed_like_a_local_one(tmp_path: Path) -> None:
    """A run whose rows' roots have a remote parent has the figures of a run without one."""
    app = App(build_remote_run_store(tmp_path / "s"), clock=lambda: NOW)
    listing = parse(app.handle("/evals").body).tables[0]
    assert listing[1:] == [
        ["remote", "remote-id", "2026-01-01 00:00:01", "2", "exact_match 50.0%"],
        ["local", "local-id", "2026-01-01 00:00:00", "2", "exact_match 50.0%"],
    ]
    for run_id, traces in (("local-id", LOCAL_RUN_TRACES), ("remote-id", REMOTE_RUN_TRACES)):
        run = app.handle("/evals/run", f"id={run_id}")
        assert parse(run.body).tables[0][1:] == [["exact_match", "2", "50.0%", "0.500"]]
        assert [t for t in traces if f'href="/trace/{t}"' in run.body] == list(traces)
    with contextlib.closing(sqlite3.connect(tmp_path / "s" / "otelite.db")) as conn:
        assert _queries.stored_runs(conn) == [
            _queries.StoredRun("remote-id", "remote", 2, T0 + 1000 * MS, REMOTE_RUN_TRACES),
            _queries.StoredRun("local-id", "local", 2, T0, LOCAL_RUN_TRACES),
        ]


@pytest.mark.parametrize(
    ("path", "query", "status", "message"),
    [
        ("/traces", "since=yesterday", 400, "since=&#x27;yesterday&#x27;: not a time"),
        ("/traces", "until=2026-13-01", 400, "until=&#x27;2026-13-01&#x27;: not a time"),
        ("/traces", "limit=-1", 400, "limit=&#x27;-1&#x27;: must be a whole number from 1 to 500"),
        ("/traces", "limit=0", 400, "limit=&#x27;0&#x27;: must be a whole number from 1 to 500"),
        ("/traces", "page=0", 400, "page=&#x27;0&#x27;: must be a whole number"),
        ("/traces", "min_cost=-1", 400, "min_cost=&#x27;-1&#x27;: must be a number ≥ 0"),
        ("/traces", "min_ms=nan", 400, "min_ms=&#x27;nan&#x27;: must be a number ≥ 0"),
        ("/traces", "min_cost=cheap", 400, "min_cost=&#x27;cheap&#x27;: not a number"),
        ("/traces", "status=maybe", 400, "status=&#x27;maybe&#x27;: must be one of OK, ERROR"),
        ("/traces", "sort=name", 400, "sort=&#x27;name&#x27;: must be one of start, duration"),
        ("/stats", "by=colour", 400, "unknown key &#x27;colour&#x27;; valid keys: model,"),
        ("/prompts/qa", "a=9", 404, "a=9: prompt &#x27;qa&#x27; has versions 1, 2"),
        ("/prompts/nope", "", 404, "prompt &#x27;nope&#x27;: not in the registry"),
        ("/trace/abcdef", "", 404, "trace id &#x27;abcdef&#x27;: no such trace"),
        ("/trace/xyz", "", 404, "trace &#x27;xyz&#x27;: not a trace id"),
        ("/evals/run", "file=../secret.jsonl", 404, "no such run file"),
        ("/evals/run", "id=nope", 404, "no dataset run with this id"),
        ("/evals/compare", "a=x.jsonl", 404, "a=&#x27;x.jsonl&#x27;: no such run file"),
        ("/nowhere", "", 404, "no page at /nowhere"),
    ],
)
def test_bad_parameters_and_unknown_ids_get_a_clear_error(
    app: App, path: str, query: str, status: int, message: str
) -> None:
    """A bad parameter is a 400 naming it and saying what to write; an unknown id or page is a 404."""
    response = app.handle(path, query)
    assert response.status == status
    assert message in response.body


def test_root_redirects_to_the_trace_list(app: App) -> None:
    """/ sends the browser to /traces."""
    assert app.handle("/") == otelite.ui.Response(302, "", location="/traces")


def test_unusable_stores_give_a_clear_page(tmp_path: Path) -> None:
    """Missing, foreign and newer-schema stores are a 503 page saying why; an empty store says so."""
    missing = App(tmp_path / "none").handle("/traces")
    assert missing.status == 503
    assert "no local store here yet" in missing.body
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).close()
    page = App(foreign).handle("/stats")
    assert page.status == 503
    assert "not an otelite store" in page.body
    newer = build_store(tmp_path / "newer")
    with contextlib.closing(sqlite3.connect(newer / "otelite.db")) as conn, conn:
        conn.execute("UPDATE otelite_meta SET value = '99' WHERE key = 'schema_version'")
    page = App(newer).handle("/traces")
    assert page.status == 503
    assert "schema version 99" in page.body
    empty = tmp_path / "empty"
    empty.mkdir()
    _sqlite.open_for_writing(empty / "otelite.db").close()
    for path, text in (
        ("/traces", "no traces yet"),
        ("/stats", "no LLM calls since 24h"),
        ("/evals", "no dataset runs"),
    ):
        response = App(empty, clock=lambda: NOW).handle(path)
        assert response.status == 200
        assert text in response.body


def test_server_reads_a_store_pruned_or_replaced_while_it_runs(app: App, store: Path) -> None:
    """Each request opens the store afresh: deleted is a 503, rebuilt is read again; nothing is written."""
    db = store / "otelite.db"
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    for path in ("/traces", f"/trace/{TRACE_1}", "/stats", "/prompts", "/prompts/qa", "/evals"):
        assert app.handle(path).status == 200
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    wal = store / "otelite.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    db.unlink()
    assert app.handle("/traces").status == 503
    build_store(store)
    assert app.handle("/traces").status == 200


@contextlib.contextmanager
def serving(app: App, token: Optional[str] = None) -> Iterator[UIServer]:
    server = UIServer(app, "127.0.0.1", 0, token)
    thread = server.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def request(
    url: str, method: str = "GET", headers: Optional[dict[str, str]] = None
) -> tuple[int, dict[str, str], str]:
    req = urllib.request.Request(url, method=method, headers=headers or {})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def test_http_server_serves_pages_read_only(app: App) -> None:
    """Over HTTP: pages are 200 with a no-script policy, / redirects, every write method is a 405."""
    with serving(app) as server:
        base = server.url.rsplit("/", 1)[0]
        assert server.url == base + "/traces"
        status, headers, body = request(server.url + "?user=u2")
        assert status == 200
        assert f'/trace/{TRACE_2}"' in body
        assert f'/trace/{TRACE_1}"' not in body
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert request(base + "/")[0:2][0] == 302
        assert request(base + "/")[1]["Location"] == "/traces"
        assert request(base + "/traces?limit=x")[0] == 400
        assert request(base + "/trace/abc")[0] == 404
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            status, headers, _ = request(base + "/traces", method)
            assert (status, headers["Allow"]) == (405, "GET, HEAD")


def test_http_server_with_a_token_refuses_requests_without_it(app: App) -> None:
    """With a token: none or a wrong one is a 401; in the URL it sets a cookie; cookie and bearer work."""
    with serving(app, token="s3cret") as server:
        assert server.url.endswith("/traces?token=s3cret")
        base = server.url.split("/traces")[0]
        assert request(base + "/traces")[0] == 401
        assert request(base + "/traces?token=wrong")[0] == 401
        assert request(base + "/trace/" + TRACE_1)[0] == 401
        assert request(base + "/traces", headers={"Cookie": "otelite_ui_token=nope"})[0] == 401
        status, headers, body = request(server.url + "&user=u2")
        assert status == 200
        assert f'/trace/{TRACE_2}"' in body
        assert f'/trace/{TRACE_1}"' not in body
        assert headers["Set-Cookie"] == "otelite_ui_token=s3cret; HttpOnly; SameSite=Strict; Path=/"
        assert "s3cret" not in body  # links do not carry it
        assert request(base + "/stats", headers={"Cookie": "otelite_ui_token=s3cret"})[0] == 200
        assert request(base + "/stats", headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert request(base + "/traces?token=s3cret", "POST")[0] == 405
        assert request(base + "/traces", "POST")[0] == 401
        assert request(base + "/traces", "HEAD")[0] == 401


def test_loopback_detection() -> None:
    """Only loopback addresses serve without a token."""
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "example.com"))


class _FakeServer:
    made: ClassVar[list[_FakeServer]] = []

    def __init__(self, app: App, host: str, port: int, token: Optional[str]) -> None:
        self.app, self.host, self.port, self.token = app, host, port, token
        self.url = f"http://{host}:{port}/traces" + (f"?token={token}" if token else "")
        self.closed = False
        _FakeServer.made.append(self)

    def serve_forever(self) -> None:
        raise KeyboardInterrupt

    def server_close(self) -> None:
        self.closed = True


def test_cli_generates_a_token_off_loopback_and_prints_the_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    """`otelite ui --host 0.0.0.0` makes a token and prints the URL with it; loopback needs none."""
    monkeypatch.setattr(otelite.ui, "UIServer", _FakeServer)
    _FakeServer.made.clear()
    assert cli.main(["ui", "--store", str(store), "--host", "0.0.0.0", "--port", "8123"]) == 0
    server = _FakeServer.made[-1]
    assert server.token is not None
    assert len(server.token) >= 32
    assert server.closed
    out = capsys.readouterr().out
    assert f"at http://0.0.0.0:8123/traces?token={server.token}\n" in out
    assert "anyone with this URL" in out
    assert cli.main(["ui", "--store", str(store)]) == 0
    assert _FakeServer.made[-1].token is None
    assert (
        _FakeServer.made[-1].host,
        _FakeServer.made[-1].port,
    ) == ("127.0.0.1", 0)
    assert cli.main(["ui", "--store", str(store), "--token", "given"]) == 0
    assert _FakeServer.made[-1].token == "given"
    assert _FakeServer.made[-1].app.store_path == store / "otelite.db"


def test_cli_rejects_a_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    """A port outside 0-65535 is exit code 2 with a message naming --port."""
    assert otelite.ui.run(argparse.Namespace(port=70000, host="127.0.0.1", token=None)) == 2
    assert "--port 70000: give 0 (any free port) to 65535" in capsys.readouterr().err
