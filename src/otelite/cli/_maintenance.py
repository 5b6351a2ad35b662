"""``otelite prune``: keeping the local store bounded."""

from __future__ import annotations

import argparse
import time
from typing import Any

from otelite._plural import plural
from otelite.cli._errors import UsageError
from otelite.cli._format import print_json
from otelite.cli._options import add_store_options, duration, parse_size, store_location
from otelite.store import LocalStore
from otelite.store._prune import prune_older_than, prune_to_size
from otelite.store._schema import resolve_store_path


def cmd_prune(args: argparse.Namespace) -> int:
    if not args.older_than and not args.max_size:
        raise UsageError("prune: give --older-than (e.g. 30d) and/or --max-size (e.g. 1GB)")
    path = resolve_store_path(store_location(args))
    LocalStore(path).close()  # refuses missing, corrupt and newer stores with a clear message
    before = path.stat().st_size
    deleted = 0
    if args.older_than:
        cutoff = time.time_ns() - int(duration(args.older_than, "--older-than") * 1e9)
        deleted += prune_older_than(path, cutoff)
    if args.max_size:
        deleted += prune_to_size(path, parse_size(args.max_size, "--max-size"))
    after = path.stat().st_size
    if args.json:
        print_json({"deleted_spans": deleted, "bytes_before": before, "bytes_after": after})
    else:
        print(
            f"deleted {plural(deleted, 'span')}; store {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB"
        )
    return 0


def add_parser(commands: Any) -> None:
    """Register ``prune``."""
    prune = commands.add_parser("prune", help="delete old spans, or shrink the store")
    add_store_options(prune)
    prune.add_argument("--older-than", help="delete spans older than this (e.g. 30d)")
    prune.add_argument(
        "--max-size", help="delete the oldest traces until the store fits (e.g. 1GB)"
    )
    prune.set_defaults(handler=cmd_prune)
