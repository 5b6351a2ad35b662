"""The ``otelite`` command line (also ``python -m otelite``).

Commands:
    otelite tokenizers prefetch   download and cache tiktoken's encodings for offline machines
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Optional

from otelite._version import __version__


def _prefetch(args: argparse.Namespace) -> int:
    from otelite._tokens import CL100K, O200K, prefetch

    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    where = cache or "tiktoken's default cache (set TIKTOKEN_CACHE_DIR to choose)"
    print(f"caching encodings in {where}")
    results = prefetch(args.encodings or (O200K, CL100K))
    for name, status in results.items():
        print(f"  {name}: {status}")
    failed = [n for n, s in results.items() if s != "ok"]
    if failed:
        print(
            "some encodings could not be fetched; run this on a machine with internet access "
            "and copy the cache directory, then set TIKTOKEN_CACHE_DIR to it",
            file=sys.stderr,
        )
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otelite", description="otelite command line")
    parser.add_argument("--version", action="version", version=f"otelite {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    tokenizers = commands.add_parser("tokenizers", help="manage tiktoken encodings")
    tokenizer_commands = tokenizers.add_subparsers(dest="tokenizers_command", required=True)
    fetch = tokenizer_commands.add_parser(
        "prefetch", help="download and cache the encodings (honours TIKTOKEN_CACHE_DIR)"
    )
    fetch.add_argument(
        "encodings", nargs="*", help="encodings to fetch (default: o200k_base cl100k_base)"
    )
    fetch.set_defaults(handler=_prefetch)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
