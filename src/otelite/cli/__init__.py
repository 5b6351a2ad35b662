"""The ``otelite`` command line (also ``python -m otelite``).

Commands:
    otelite traces | trace ID | stats --by KEYS | graph ID     read the local store
    otelite export finetune OUT.jsonl [--prompt NAME[@V|:L]] | export otlp --endpoint URL [--since 24h] [--trace ID] [--headers K=V]
    otelite prune --older-than 30d | --max-size 1GB
    otelite tokenizers prefetch        download and cache tiktoken's encodings for offline machines
    otelite prompts list               the prompts in the registry
    otelite prompts show NAME[@V|:L]   one version (latest production by default)
    otelite prompts push NAME --file F [--label L] [-m MESSAGE]
    otelite prompts label NAME LABEL VERSION
    otelite prompts rollback NAME LABEL
    otelite prompts diff NAME A B
    otelite prompts history NAME
    otelite changes [--since 7d] [--json]   API changes seen in every call (exit 1 when any)
    otelite drift [--baseline 7d --current 1d] [--by model] [--content]   what drifted (exit 1)
    otelite canary run FILE [--record] [--json]   canary prompts: exit 1 when an answer changed
    otelite dashboards export DIR      Grafana dashboards, Prometheus alerts, Collector and compose files
    otelite ui [--host H --port P]     a local, read-only web view of the store
    otelite status                     settings, pending outbox, undelivered data, last export error
    otelite eval MODULE:TASK DATA.jsonl -e EVALUATOR --min-pass-rate 0.9   a dataset run (CI gate)

Exit codes, the same for every command: 0 done, 1 a gate or check failed (or nothing
matched), 2 a usage error (a bad argument, or a store, registry or setting that cannot be
used: one line on stderr, no traceback). Output piped into a reader that closes early
(``| head``) ends quietly with exit code 141, as a Unix tool stopped by SIGPIPE does.

Each command family lives in its own module exposing ``add_parser(subparsers)``; each
command's parser sets ``handler`` (taking the parsed arguments, returning the exit code).
A new family is one more entry in :data:`FAMILIES`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Optional

import otelite.ui as ui
from otelite._version import __version__
from otelite.cli import (
    _canary,
    _changes,
    _drift,
    _eval,
    _export,
    _graph,
    _maintenance,
    _prompts,
    _stats,
    _status,
    _tokenizers,
    _traces,
)
from otelite.cli._errors import EXIT_BROKEN_PIPE, EXIT_USAGE, USAGE_ERRORS, UsageError
from otelite.integrations import grafana

__all__ = ["EXIT_BROKEN_PIPE", "FAMILIES", "UsageError", "build_parser", "main"]

# The command families, in the order `otelite --help` lists their commands.
FAMILIES: tuple[ModuleType, ...] = (
    _tokenizers,
    _prompts,
    _traces,
    _stats,
    _graph,
    _export,
    _maintenance,
    _eval,
    _status,
    _changes,
    _drift,
    _canary,
    grafana,
    ui,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``otelite`` argument parser, with every family's commands."""
    parser = argparse.ArgumentParser(prog="otelite", description="otelite command line")
    parser.add_argument("--version", action="version", version=f"otelite {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for family in FAMILIES:
        family.add_parser(commands)
    return parser


def _silence_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's final flush of what is
    still buffered for the closed pipe cannot fail again (the Python docs' recipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no file descriptor (an in-memory stdout)
        pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (141 when the reader of stdout went away)."""
    try:
        args = build_parser().parse_args(argv)
        try:
            code = int(args.handler(args))
        except BrokenPipeError:
            raise
        except USAGE_ERRORS as exc:
            prefix = getattr(args, "error_prefix", "otelite")
            print(f"{prefix}: {exc}", file=sys.stderr)
            code = EXIT_USAGE
        if sys.stdout is not None:
            sys.stdout.flush()  # a closed pipe shows here, not as an error at interpreter exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
