"""``otelite canary run``: run a canary file from cron or CI; the exit code says what happened.

    otelite canary run canaries.yaml --record          # store the answers as the baseline
    otelite canary run canaries.yaml                   # compare with it: exit 0 unchanged
    otelite canary run canaries.yaml --json --base-url http://127.0.0.1:8000/v1 --model m

Exit codes: 0 every canary unchanged (or recorded), 1 a canary changed or failed,
2 a usage error (malformed file, missing baseline, bad option).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from otelite.cli._errors import UsageError


def add_parser(subparsers: Any) -> None:
    """Register ``otelite canary run`` on the top-level subparsers."""
    canary = subparsers.add_parser(
        "canary", help="canary prompts: does the endpoint still answer the same? (exit 1 if not)"
    )
    actions = canary.add_subparsers(dest="canary_command", required=True)
    parser = actions.add_parser(
        "run", help="run a canary file; compare with its baseline, or --record it"
    )
    parser.add_argument("file", help="the canary file (.json, or .yaml/.yml with PyYAML)")
    parser.add_argument("--record", action="store_true", help="store the answers as the baseline")
    parser.add_argument(
        "--baseline", help="the baseline file (default NAME.baseline.json beside the file)"
    )
    parser.add_argument(
        "--base-url",
        "--endpoint",
        dest="base_url",
        help="the OpenAI-compatible endpoint (default the file's base_url, $OPENAI_BASE_URL, OpenAI)",
    )
    parser.add_argument("--model", help="call every canary with this model")
    parser.add_argument(
        "--prompts-dir",
        help="the prompt registry for prompt: references (default the file's prompts_dir, "
        "$OTELITE_PROMPTS_DIR or ./prompts)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for each answer (default 60)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run, error_prefix="otelite canary")


def run(args: argparse.Namespace) -> int:
    """Run ``otelite canary run``; returns the exit code (0, 1, or 2 for a usage error)."""
    from otelite import _config
    from otelite.canary import run as run_canaries

    if not args.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    if not _config.is_configured():
        _config.configure()
    try:  # a CanaryError (malformed file, missing baseline) is a usage error: see main()
        report = run_canaries(
            args.file,
            record=args.record,
            baseline=args.baseline,
            base_url=args.base_url,
            model=args.model,
            prompts_dir=args.prompts_dir,
            timeout=args.timeout,
        )
    finally:
        _config.force_flush()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        print(report.text())
    return report.exit_code
