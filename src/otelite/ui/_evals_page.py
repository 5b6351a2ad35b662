"""Evaluations (``/evals``): run files and dataset runs in the store, one run, two runs compared."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from otelite.ui import _queries
from otelite.ui._html import esc, page, table, url, utc
from otelite.ui._request import HTTPError, Params, Site


def _run_files(app: Site) -> dict[str, Path]:
    if app.runs_dir is None or not app.runs_dir.is_dir():
        return {}
    files = sorted(app.runs_dir.glob("*.jsonl"), key=lambda p: (-p.stat().st_mtime, p.name))
    return {p.name: p for p in files[:200]}


def _load_run(app: Site, params: Params, key: str) -> Any:
    from otelite.evals import EvalRun

    name = params.text(key)
    if name is None:
        raise HTTPError(400, f"{key}: give a run file name (see /evals)")
    path = _run_files(app).get(name)
    if path is None:
        raise HTTPError(404, f"{key}={name!r}: no such run file in {app.runs_dir}")
    try:
        return EvalRun.from_jsonl(path)
    except ValueError as exc:
        raise HTTPError(503, str(exc)) from None


def evals(app: Site, params: Params) -> str:
    """/evals: the run files and the dataset runs recorded in the store."""
    body = ["<h2>Run files</h2>"]
    files = _run_files(app)
    if files:
        rows = []
        for file_name, path in files.items():
            header = _run_header(path)
            summary = header.get("summary") or {}
            rates = summary.get("evaluators") or {}
            rows.append(
                [
                    f'<a href="{url("/evals/run", {"file": file_name})}">{esc(file_name)}</a>',
                    esc(header.get("run", "")),
                    esc(summary.get("rows", "")),
                    esc(summary.get("task_errors", "")),
                    esc(
                        "; ".join(
                            f"{k} {_rate(v.get('pass_rate'))}"
                            for k, v in rates.items()
                            if isinstance(v, dict)
                        )
                    ),
                ]
            )
        names = list(files)
        options = "".join(f'<option value="{esc(n)}">{esc(n)}</option>' for n in names)
        body.append(table(["File", "Run", "Rows", "Task errors", "Pass rate per evaluator"], rows))
        body.append(
            "<h2>Compare two runs</h2><form class=filters method=get action=/evals/compare>"
            f"<label>baseline<select name=a>{options}</select></label>"
            f"<label>candidate<select name=b>{options}</select></label><button>compare</button></form>"
        )
    else:
        where = app.runs_dir or "(none given)"
        body.append(
            f"<p class=dim>no run files in {esc(where)}; write them with otelite eval ... --out DIR/run.jsonl "
            "and start the view with --runs DIR</p>"
        )
    body.append("<h2>Runs recorded in the store</h2>")
    try:
        with app._store() as (_, conn):
            runs = _queries.stored_runs(conn)
            figures = {r.run_id: _queries.run_scores(conn, r.trace_ids) for r in runs}
    except HTTPError as exc:
        body.append(f"<p class=note>{esc(exc.message)}</p>")
        return page("Evaluations", "".join(body), nav="/evals")
    if not runs:
        body.append("<p class=dim>no dataset runs recorded in the store</p>")
    else:
        rows = []
        for run in runs:
            rows.append(
                [
                    f'<a href="{url("/evals/run", {"id": run.run_id})}">{esc(run.name)}</a>',
                    esc(run.run_id),
                    esc(utc(run.start_time_ns)),
                    str(run.rows),
                    esc("; ".join(_score_text(f) for f in figures[run.run_id])),
                ]
            )
        body.append(table(["Run", "ID", "Started (UTC)", "Rows", "Pass rate per evaluator"], rows))
    return page("Evaluations", "".join(body), nav="/evals")


def eval_run(app: Site, params: Params) -> str:
    """/evals/run: one run file's rows (``file=``) or a stored run (``id=``)."""
    run_id = params.text("id")
    if run_id is not None:
        return _stored_run(app, run_id)
    run = _load_run(app, params, "file")
    summary = run.summary
    head = [
        [
            esc(name),
            esc(_rate(s.pass_rate)),
            esc(f"{s.mean:.3f}" if s.mean is not None else "-"),
            str(s.scored),
            str(s.errors),
        ]
        for name, s in summary.evaluators.items()
    ]
    rows = []
    for row in run.rows[:500]:
        cells = [
            str(row.index),
            esc(_short(row.example.input)),
            esc(_short(row.example.expected)),
            f"<span class=err>{esc(row.error)}</span>" if row.error else esc(_short(row.output)),
        ]
        for name in run.evaluator_names:
            score = row.scores.get(name)
            cells.append(esc(_score_cell(score)))
        cells.append(f'<a href="{url("/trace/" + row.trace_id)}">trace</a>' if row.trace_id else "")
        rows.append(cells)
    body = [
        f"<p>{esc(run.name)} · {summary.rows} rows · {summary.task_errors} task errors</p>",
        table(["Evaluator", "Pass rate", "Mean", "Scored", "Errors"], head),
        "<h2>Rows</h2>",
        table(["#", "Input", "Expected", "Output", *map(esc, run.evaluator_names), ""], rows),
    ]
    if len(run.rows) > 500:
        body.append(f"<p class=note>first 500 of {len(run.rows)} rows</p>")
    return page(f"Run {run.name}", "".join(body), nav="/evals")


def _stored_run(app: Site, run_id: str) -> str:
    with app._store() as (_, conn):
        runs = [r for r in _queries.stored_runs(conn, limit=10**6) if r.run_id == run_id]
        if not runs:
            raise HTTPError(404, f"id={run_id!r}: no dataset run with this id in the store")
        run = runs[0]
        figures = _queries.run_scores(conn, run.trace_ids)
    head = [
        [
            esc(f[0]),
            str(f[1]),
            esc(_rate(f[2] / (f[2] + f[3]) if (f[2] or 0) + (f[3] or 0) else None)),
            esc(f"{f[4]:.3f}" if f[4] is not None else "-"),
        ]
        for f in figures
    ]
    links = "".join(
        f'<li><a href="{url("/trace/" + t)}">{esc(t)}</a></li>' for t in run.trace_ids[:500]
    )
    body = (
        f"<p>{esc(run.name)} · {run.rows} rows · started {esc(utc(run.start_time_ns))} UTC</p>"
        + table(["Evaluator", "Scores", "Pass rate", "Mean"], head)
        + f"<h2>Row traces</h2><ul>{links}</ul>"
    )
    return page(f"Run {run.name}", body, nav="/evals")


def eval_compare(app: Site, params: Params) -> str:
    """/evals/compare: run file ``b`` against baseline ``a``."""
    baseline = _load_run(app, params, "a")
    candidate = _load_run(app, params, "b")
    comparison = candidate.compare(baseline)
    changes = [
        [
            esc(c.name),
            esc(_rate(c.pass_rate_before)),
            esc(_rate(c.pass_rate_after)),
            esc(f"{c.pass_rate_delta:+.1%}" if c.pass_rate_delta is not None else "-"),
            esc(f"{c.mean_before:.3f}" if c.mean_before is not None else "-"),
            esc(f"{c.mean_after:.3f}" if c.mean_after is not None else "-"),
        ]
        for c in comparison.changes.values()
    ]

    def items(found: Sequence[Any]) -> str:
        if not found:
            return "<p class=dim>none</p>"
        return table(
            ["Example", "Input", "Evaluator", "Before", "After"],
            [
                [
                    esc(r.example_id[:12]),
                    esc(_short(r.input)),
                    esc(r.evaluator),
                    esc(r.before),
                    esc(r.after),
                ]
                for r in found[:500]
            ],
        )

    body = (
        f"<p>candidate <b>{esc(params.text('b'))}</b> ({esc(candidate.name)}) vs baseline "
        f"<b>{esc(params.text('a'))}</b> ({esc(baseline.name)})</p>"
        + table(["Evaluator", "Pass rate before", "after", "Δ", "Mean before", "after"], changes)
        + f"<h2 class=regressed>Regressed rows ({len(comparison.regressions)})</h2>"
        + items(comparison.regressions)
        + f"<h2>Improved rows ({len(comparison.improvements)})</h2>"
        + items(comparison.improvements)
    )
    return page("Compare runs", body, nav="/evals")


def _run_header(path: Path) -> dict[str, Any]:
    """The first line of a run file (its summary), without reading the rows."""
    try:
        with path.open(encoding="utf-8") as f:
            data = json.loads(f.readline() or "{}")
    except (OSError, ValueError):
        return {"run": "(unreadable)"}
    return data if isinstance(data, dict) else {"run": "(unreadable)"}


def _rate(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1%}"


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _score_cell(score: Any) -> str:
    if score is None:
        return "-"
    bits = []
    if score.passed is not None:
        bits.append("pass" if score.passed else "fail")
    if score.value is not None:
        bits.append(f"{score.value:g}")
    if score.error:
        bits.append(f"error: {score.error}")
    return " ".join(bits) or "unscored"


def _score_text(figures: Sequence[Any]) -> str:
    name, _, passed, failed, mean = figures
    decided = (passed or 0) + (failed or 0)
    if decided:
        return f"{name} {_rate((passed or 0) / decided)}"
    return f"{name} mean {mean:.3f}" if mean is not None else str(name)
