"""``otelite changes``: the API changes instrumented calls have seen, from the local store.

Lists when each change was first seen, for which provider and requested model,
its kind and the old and new values (see docs/monitoring.md). Exit codes: 0
nothing changed in the window, 1 something changed, 2 a usage error (a bad
``--since``, no store).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import time
from typing import Any, Optional

from otelite._llm import _changes
from otelite.cli._options import duration
from otelite.store import _schema as _sqlite

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_COLUMNS = ("when", "provider", "model", "kind", "old", "new")
_CELL = 48  # longest cell shown in the table (fingerprints and notices are cut, --json has all)


def _since_ns(text: Optional[str], now_ns: int) -> Optional[int]:
    if not text:
        return None
    return now_ns - int(duration(text, "--since") * 1e9)


def add_parser(subparsers: Any) -> None:
    """Register ``otelite changes`` on the CLI's subparsers."""
    parser = subparsers.add_parser(
        "changes",
        help="API changes seen in LLM calls (model snapshot, fields, finish reasons, ...)",
        description="List the API changes instrumented calls have seen (exit 1 when any).",
    )
    parser.add_argument("--since", help="only changes newer than this (30m, 24h, 7d)")
    parser.add_argument(
        "--store", help="store directory or .db file (default $OTELITE_HOME or .otelite)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(handler=run)


def _when(at_ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(at_ns / 1e9, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _cut(text: str) -> str:
    return text if len(text) <= _CELL else text[: _CELL - 1] + "…"


def table(changes: list[_changes.Change]) -> str:
    """The changes as a plain-text table, one line each."""
    rows = [
        (
            _when(c.at_ns),
            c.provider,
            c.model or "-",
            c.kind,
            _cut(c.old) or "-",
            _cut(c.new) or "-",
        )
        for c in changes
    ]
    widths = [max(len(r[i]) for r in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    header = "  ".join(name.upper().ljust(w) for name, w in zip(_COLUMNS, widths)).rstrip()
    return "\n".join([header, *lines])


def run(args: argparse.Namespace, now_ns: Optional[int] = None) -> int:
    """List the changes; 0 none in the window, 1 some, 2 usage error."""
    # A bad --since or an unusable store is a usage error: one line, exit 2 (see main()).
    since = _since_ns(args.since, now_ns if now_ns is not None else time.time_ns())
    location = args.store or os.environ.get("OTELITE_HOME") or None
    conn = _sqlite.open_for_reading(_sqlite.resolve_store_path(location))
    try:
        changes = _changes.read_changes(conn, since)
    finally:
        conn.close()
    if args.json:
        for change in changes:
            print(json.dumps(change.as_dict(), sort_keys=True))
    elif changes:
        print(table(changes))
    else:
        window = f" in the last {args.since}" if args.since else ""
        print(f"No API changes seen{window}.")
    return 1 if changes else 0
