"""What several commands share: ``--store`` and ``--json``, durations, sizes, the store.

Every command that reads the local store takes ``--store`` (default ``$OTELITE_HOME`` or
``.otelite``) and ``--json``; ``--since``, ``--older-than`` take a duration (``30m``,
``24h``, ``7d``), ``--max-size`` a size (``500MB``, ``1GB``).
"""

from __future__ import annotations

import argparse
import os
import re
import time
from typing import Optional

from otelite._units import DurationError, parse_duration
from otelite.cli._errors import UsageError
from otelite.store import LocalStore

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$", re.IGNORECASE)
_SIZES = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--store`` and ``--json``, which every command reading the store takes."""
    parser.add_argument(
        "--store", help="store directory or .db file (default $OTELITE_HOME or .otelite)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def duration(text: str, argument: str) -> float:
    """``30m``, ``24h``, ``7d`` -> seconds (a UsageError naming ``argument`` otherwise)."""
    try:
        return parse_duration(text, argument)
    except DurationError as exc:
        raise UsageError(str(exc)) from None


def parse_size(text: str, argument: str) -> int:
    """``500MB``, ``1GB``, ``2GiB`` -> bytes."""
    match = _SIZE.match(text.strip())
    if not match:
        raise UsageError(f"{argument}: {text!r} is not a size; write e.g. 500MB or 1GB")
    return int(float(match.group(1)) * _SIZES[(match.group(2) or "b").lower()])


def since_start_ns(args: argparse.Namespace) -> Optional[int]:
    """The start of the ``--since`` window, in nanoseconds (None without ``--since``)."""
    since = getattr(args, "since", None)
    if not since:
        return None
    return time.time_ns() - int(duration(since, "--since") * 1e9)


def store_location(args: argparse.Namespace) -> Optional[str]:
    """``--store``, else ``$OTELITE_HOME``, else None (the default store)."""
    return args.store or os.environ.get("OTELITE_HOME") or None


def open_store(args: argparse.Namespace) -> LocalStore:
    """The store ``--store`` names, read-only."""
    return LocalStore(store_location(args))
