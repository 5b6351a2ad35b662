"""``otelite tokenizers prefetch``: cache tiktoken's encodings for offline machines."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from otelite.cli._errors import EXIT_FAILED, EXIT_OK


def cmd_prefetch(args: argparse.Namespace) -> int:
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
        return EXIT_FAILED
    return EXIT_OK


def add_parser(commands: Any) -> None:
    """Register ``tokenizers prefetch``."""
    tokenizers = commands.add_parser("tokenizers", help="manage tiktoken encodings")
    tokenizer_commands = tokenizers.add_subparsers(dest="tokenizers_command", required=True)
    fetch = tokenizer_commands.add_parser(
        "prefetch", help="download and cache the encodings (honours TIKTOKEN_CACHE_DIR)"
    )
    fetch.add_argument(
        "encodings", nargs="*", help="encodings to fetch (default: o200k_base cl100k_base)"
    )
    fetch.set_defaults(handler=cmd_prefetch)
