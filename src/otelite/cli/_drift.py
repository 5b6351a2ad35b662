"""``otelite drift``: compare two windows of the local store and say what drifted.

    otelite drift [--baseline 7d] [--current 1d] [--by model] [--content] [--json]
    otelite drift --baseline-range 2026-01-01..2026-01-08 --current-range 2026-01-08..2026-01-09

Relative windows end now: the current window is the last ``--current``, the baseline
the ``--baseline`` just before it. Exit codes: 0 nothing drifted (stable, or not enough
data), 1 something drifted, 2 bad flags or no usable store.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import time
from typing import Any

from otelite import _drift
from otelite.cli._errors import UsageError
from otelite.store import STATS_KEYS

_PROMPT_NAME = (
    "CASE WHEN instr(s.prompt, '@') > 0 THEN substr(s.prompt, 1, instr(s.prompt, '@') - 1) "
    "ELSE s.prompt END"
)
# `--by` names and their SQL: the keys of `otelite stats --by`, plus a prompt's name alone
# (`prompt`, every version together) and with its version (`prompt_version`, as `stats` does).
DRIFT_KEYS = {
    "model": STATS_KEYS["model"],
    "provider": STATS_KEYS["provider"],
    "operation": STATS_KEYS["operation"],
    "prompt": _PROMPT_NAME,
    "prompt_version": STATS_KEYS["prompt"],
    "service": STATS_KEYS["service"],
    "service.version": STATS_KEYS["service.version"],
    "user": STATS_KEYS["user"],
    "geo": STATS_KEYS["geo"],
}

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _duration_ns(text: str) -> int:
    match = _DURATION.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a positive duration; write e.g. 30m, 24h, 7d or 2w"
        )
    return int(float(match.group(1)) * _UNITS_S[match.group(2)] * 1_000_000_000)


def _instant_ns(text: str) -> int:
    """An ISO date or date-time (UTC unless it says otherwise) as nanoseconds since the epoch."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date; write e.g. 2026-01-08 or 2026-01-08T12:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    delta = moment - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _range(text: str) -> _drift.Window:
    start, sep, end = text.partition("..")
    if not sep or not start.strip() or not end.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a range; write START..END, e.g. 2026-01-01..2026-01-08"
        )
    window = _drift.Window(_instant_ns(start), _instant_ns(end))
    if window.end_ns <= window.start_ns:
        raise argparse.ArgumentTypeError(f"{text!r}: END must come after START")
    return window


def _by(text: str) -> list[str]:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in keys if k not in DRIFT_KEYS]
    if not keys or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown key {unknown[0] if unknown else text!r}; valid keys: {', '.join(DRIFT_KEYS)}"
        )
    return keys


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _probability(text: str) -> float:
    value = _positive(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a significance level is between 0 and 1")
    return value


def _count(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 2:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 2")
    return int(text)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``otelite drift`` to the CLI's subparsers."""
    defaults = _drift.Thresholds()
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "drift",
        help="compare two windows of the local store (exit 1 when something drifted)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--store", help="store directory (default $OTELITE_HOME or ./.otelite)")
    parser.add_argument(
        "--baseline", type=_duration_ns, help="baseline length, ending where current starts (7d)"
    )
    parser.add_argument("--current", type=_duration_ns, help="current window, ending now (1d)")
    parser.add_argument("--baseline-range", type=_range, metavar="START..END")
    parser.add_argument("--current-range", type=_range, metavar="START..END")
    parser.add_argument(
        "--by", type=_by, default=[], help=f"group by KEY[,KEY]: {', '.join(DRIFT_KEYS)}"
    )
    parser.add_argument(
        "--content",
        action="store_true",
        help="also compare captured input text: script mix and token unigrams (reads content)",
    )
    parser.add_argument(
        "--psi-threshold", type=_positive, default=defaults.psi, help="PSI of a real shift (0.1)"
    )
    parser.add_argument(
        "--alpha", type=_probability, default=defaults.alpha, help="significance level (0.01)"
    )
    parser.add_argument(
        "--js-threshold",
        type=_positive,
        default=defaults.js,
        help="unigram JS above its chance level (0.1)",
    )
    parser.add_argument(
        "--min-calls", type=_count, default=defaults.min_calls, help="per window for a verdict (30)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--now", type=_instant_ns, help=argparse.SUPPRESS)  # tests pin "now"
    parser.set_defaults(handler=run, error_prefix="otelite drift")
    return parser


def windows(args: argparse.Namespace, now_ns: int) -> tuple[_drift.Window, _drift.Window]:
    """The baseline and current windows the flags describe."""
    for name in ("baseline", "current"):
        if getattr(args, name) is not None and getattr(args, f"{name}_range") is not None:
            raise UsageError(f"--{name} and --{name}-range: give one of them, not both")
    current: _drift.Window = args.current_range or _drift.Window(
        now_ns - (args.current or _duration_ns("1d")), now_ns
    )
    baseline: _drift.Window = args.baseline_range or _drift.Window(
        current.start_ns - (args.baseline or _duration_ns("7d")), current.start_ns
    )
    return baseline, current


def _iso(ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(ns // 1_000_000_000, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.3g}"


def _side(row: _drift.DriftRow, side: dict[str, Any]) -> str:
    if not side.get("n"):
        return "-"
    if row.kind == "rate":
        return f"{side['count']}/{side['n']} ({100 * side['rate']:.1f}%)"
    if row.kind == "mean":
        return f"n={side['n']} mean={_number(side['mean'])}"
    if row.kind == "categories":
        total = side["n"]
        top = list(side["scripts"].items())[:3]
        return ", ".join(f"{name} {100 * count / total:.0f}%" for name, count in top)
    if row.kind == "unigrams":
        return f"{side['n']} calls, {side['tokens']} tokens"
    return f"n={side['n']} p50={_number(side['p50'])} p95={_number(side['p95'])}"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def report_dict(report: _drift.DriftReport) -> dict[str, Any]:
    """The report as JSON-ready data (``--json``)."""

    def window(w: _drift.Window) -> dict[str, Any]:
        return {
            "start": _iso(w.start_ns),
            "end": _iso(w.end_ns),
            "start_ns": w.start_ns,
            "end_ns": w.end_ns,
        }

    return {
        "baseline": window(report.baseline),
        "current": window(report.current),
        "by": list(report.by),
        "thresholds": report.thresholds.as_dict(),
        "tokenizer": report.tokenizer,
        "drifted": len(report.drifted),
        "rows": [
            {
                "group": dict(zip(report.by, row.group)),
                "metric": row.metric,
                "kind": row.kind,
                "baseline": _finite(row.baseline),
                "current": _finite(row.current),
                "statistics": _finite(row.statistics),
                "verdict": row.verdict,
                "reason": row.reason,
            }
            for row in report.rows
        ],
    }


def report_lines(report: _drift.DriftReport) -> list[str]:
    """The report as a readable table with a verdict per row."""
    lines = [
        f"baseline {_iso(report.baseline.start_ns)} .. {_iso(report.baseline.end_ns)} UTC",
        f"current  {_iso(report.current.start_ns)} .. {_iso(report.current.end_ns)} UTC",
        "",
    ]
    if not report.rows:
        lines.append(
            "not enough data: no LLM calls in either window; widen the windows, or check "
            "--store (otelite records into the local store when configured without an endpoint)"
        )
        return lines
    header = ["group"] if report.by else []
    header += ["metric", "baseline", "current", "verdict"]
    table = [header]
    for row in report.rows:
        cells = [", ".join("-" if v is None else v for v in row.group)] if report.by else []
        verdict = (
            row.verdict if row.verdict == _drift.NOT_ENOUGH else f"{row.verdict}: {row.reason}"
        )
        table.append(
            [*cells, row.metric, _side(row, row.baseline), _side(row, row.current), verdict]
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for cells in table:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    drifted = report.drifted
    few = sum(1 for r in report.rows if r.verdict == _drift.NOT_ENOUGH)
    lines.append("")
    if drifted:
        lines.append(
            f"{len(drifted)} of {len(report.rows)} rows drifted: "
            + ", ".join(
                ("/".join("-" if v is None else v for v in r.group) + " " if r.group else "")
                + r.metric
                for r in drifted
            )
        )
    else:
        lines.append(f"no drift in {len(report.rows) - few} compared rows")
    if few:
        lines.append(
            f"{few} rows: not enough data (fewer than {report.thresholds.min_calls} values in a "
            "window; widen the windows or lower --min-calls)"
        )
    if report.tokenizer == "words":
        lines.append("input unigrams are words: the o200k_base encoding could not be loaded")
    return lines


def run(args: argparse.Namespace) -> int:
    """Run ``otelite drift``; 0 stable, 1 drifted, 2 bad flags or store."""
    now_ns = args.now if args.now is not None else time.time_ns()
    baseline, current = windows(args, now_ns)  # bad flags: UsageError, exit 2 (see main())
    thresholds = _drift.Thresholds(
        psi=args.psi_threshold,
        alpha=args.alpha,
        js=args.js_threshold,
        min_calls=args.min_calls,
    )
    report = _drift.compare(
        args.store or os.environ.get("OTELITE_HOME") or None,
        baseline,
        current,
        by=[(key, DRIFT_KEYS[key]) for key in args.by],
        thresholds=thresholds,
        content=args.content,
    )
    if args.json:
        print(json.dumps(report_dict(report), indent=2))
    else:
        print("\n".join(report_lines(report)))
    return 1 if report.drifted else 0
