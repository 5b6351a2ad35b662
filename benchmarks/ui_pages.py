"""The web view on a big store: server-side time of every page on 1,000,000 spans.

Run with `nox -s bench-ui` (`--spans N` to change the size, `--store DIR` to reuse a store
built by an earlier run). Builds the store of `nox -s bench-store` (same synthetic traces),
then renders each page through `otelite.ui.App` (what the HTTP server calls) and reports
the median of 5 renders in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from store_scale import DAY_NS, make_trace

from otelite._export import LocalStoreExporter
from otelite.prompts import PromptRegistry
from otelite.store import LocalStore
from otelite.ui import App

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 300


def build(path: Path, spans: int, now: int) -> None:
    rng = random.Random(7)
    exporter = LocalStoreExporter(path / "otelite.db")
    traces = spans // 4
    for first in range(0, traces, 128):
        batch = []
        for i in range(first, min(first + 128, traces)):
            batch.extend(make_trace(i, rng, now - rng.randrange(30 * DAY_NS)))
        exporter.export(batch)
        if first % (128 * 200) == 0:
            print(f"\r{first * 4}/{spans} spans", end="", file=sys.stderr)
    exporter.shutdown()
    print(file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--store", help="reuse (or keep) the store in this directory")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    now = time.time_ns()
    work = Path(args.store) if args.store else Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "otelite.db").exists():
        build(work, args.spans, now)
    with LocalStore(work) as store:
        spans = store.count()
        user_trace = store.traces(user="user-42", limit=1)[0].trace_id
    prompts = Path(tempfile.mkdtemp())
    registry = PromptRegistry(prompts)
    registry.push("qa", template="Answer: {{question}}", labels=["production"])
    registry.push("qa", template="Answer briefly: {{question}}", labels=["production"])
    app = App(work, prompts_dir=prompts, clock=lambda: now)
    pages = [
        ("/traces", ""),
        ("/traces", "page=100"),
        ("/traces", "user=user-42"),
        ("/traces", "model=o3-mini&status=ERROR"),
        ("/traces", "since=24h&sort=cost"),
        ("/traces", "since=24h&min_ms=2500"),
        (f"/trace/{user_trace}", ""),
        ("/stats", ""),
        ("/stats", "by=user,day"),
        ("/stats", "since=7d"),
        ("/stats", "since=all"),
        ("/prompts", ""),
        ("/prompts/qa", ""),
        ("/evals", ""),
    ]
    results = []
    for path, query in pages:
        times, cpu = [], []
        for _ in range(5):
            started, started_cpu = time.perf_counter(), time.process_time()
            response = app.handle(path, query)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            assert response.status == 200, (path, query, response.body[-400:])
        shown = path + (f"?{query}" if query else "")
        results.append((shown, statistics.median(times), statistics.median(cpu)))
        print(f"{shown:40} {results[-1][1]:8.1f} ms  cpu {results[-1][2]:8.1f} ms", file=sys.stderr)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "",
        "## Web view (otelite ui)",
        "",
        f"`nox -s bench-ui`: the store of `nox -s bench-store` ({spans:,} spans, 30 days), each page rendered "
        "server-side through `otelite.ui.App` (what the HTTP server calls); median of 5 renders. "
        f"Target: ≤ {TARGET_MS} ms for the pages as they open (defaults: the newest traces, the last 24 h of stats). "
        f"*time* is wall-clock, *CPU* the process's CPU time (what the render costs on an idle machine); "
        f"load average during the run: {load:.1f} on {os.cpu_count()} CPUs "
        f"(run on {time.strftime('%Y-%m-%d', time.gmtime())}).",
        "",
        "| page | time | CPU | target |",
        "|---|---:|---:|---:|",
    ]
    for shown, ms, cpu_ms in results:
        verdict = (
            "met" if ms <= TARGET_MS else ("met on CPU time" if cpu_ms <= TARGET_MS else "over")
        )
        lines.append(f"| `{shown}` | {ms:,.0f} ms | {cpu_ms:,.0f} ms | {verdict} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if not args.no_report:
        path = ROOT / "docs" / "performance.md"
        path.write_text(place(path.read_text(), report))


def place(text: str, report: str) -> str:
    """``text`` with its web-view section replaced by ``report``, at the end of the file: after
    the store section (which `nox -s bench-store` rewrites in place, keeping what follows it),
    and so kept by `nox -s bench` (which keeps everything from the store section on)."""
    marker = "\n## Web view (otelite ui)\n"
    if marker in text:
        start = text.index(marker)
        following = text.find("\n## ", start + len(marker))
        text = text[:start] + (text[following:] if following != -1 else "\n")
    return text.rstrip("\n") + "\n" + report


if __name__ == "__main__":
    main()
