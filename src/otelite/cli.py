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
    otelite status                     settings, pending outbox, undelivered data, last export error
    otelite eval MODULE:TASK DATA.jsonl -e EVALUATOR --min-pass-rate 0.9   a dataset run (CI gate)
    otelite changes [--since 7d] [--json]   API changes seen in LLM calls (exit 1 when any)

Output piped into a reader that closes early (``| head``) ends quietly with exit code 141,
as a Unix tool stopped by SIGPIPE does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from otelite import _cli_changes, _cli_eval, _cli_status, _cli_store
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


def _registry(args: argparse.Namespace) -> Any:
    from otelite.prompts import PromptRegistry

    return PromptRegistry(args.dir)


@dataclass(frozen=True)
class PromptRef:
    """A prompt named on the command line, resolved: ``version`` None means every version."""

    text: str
    name: str
    version: Optional[int]
    label: Optional[str] = None

    @property
    def spec(self) -> str:
        """``name`` or ``name@version``: what the recorded spans are matched against."""
        return self.name if self.version is None else f"{self.name}@{self.version}"

    def describe(self) -> str:
        """As written, with the version a label stood for: ``support:production (= support v3)``."""
        if self.label is not None:
            return f"{self.text} (= {self.name} v{self.version})"
        return self.text


def split_prompt_ref(
    ref: str, argument: str = "", *, written: Optional[str] = None
) -> tuple[str, Optional[int], Optional[str]]:
    """``name``, ``name@3`` or ``name:staging`` -> (name, version, label); the forms
    ``otelite prompts show`` takes, accepted wherever the CLI names a prompt. Errors name
    ``argument`` and what was ``written`` there (default ``ref``)."""
    shown = repr(written if written is not None else ref)
    where = f"{argument} {shown}" if argument else shown
    text = ref.strip()
    name, version, label = text, None, None
    if "@" in text:
        name, _, number = text.partition("@")
        if not number.strip().isdigit():
            raise _cli_store.UsageError(
                f"{where}: the version after '@' must be a number, e.g. {name.strip() or 'qa'}@3"
            )
        version = int(number)
    elif ":" in text:
        name, _, label = text.partition(":")
        label = label.strip()
    name = name.strip()
    if not name or label == "":
        raise _cli_store.UsageError(
            f"{where}: give NAME, NAME@VERSION or NAME:LABEL, e.g. qa:production"
        )
    return name, version, label


def resolve_prompt_ref(
    ref: str,
    argument: str,
    directory: Union[str, os.PathLike[str], None] = None,
    *,
    written: Optional[str] = None,
) -> PromptRef:
    """A reference with its label turned into the version it points at in the registry
    (``directory``, default ``$OTELITE_PROMPTS_DIR`` or ``./prompts``)."""
    name, version, label = split_prompt_ref(ref, argument, written=written)
    if label is None:
        return PromptRef(ref.strip(), name, version)
    from otelite.prompts import PromptError, PromptNotFoundError, PromptRegistry

    registry = PromptRegistry(directory)
    try:
        found = registry.get(name, label=label)
    except PromptError as exc:
        hint = ""
        if isinstance(exc, PromptNotFoundError) and "no prompt" in str(exc):
            hint = (
                " (a label is read from the prompt registry: give --prompts-dir DIR, "
                "or NAME@VERSION)"
            )
        shown = repr(written if written is not None else ref)
        raise _cli_store.UsageError(f"{argument} {shown}: {exc}{hint}") from None
    return PromptRef(ref.strip(), name, found.version, label)


def _describe(version: Any) -> str:
    labels = f" [{', '.join(version.labels)}]" if version.labels else ""
    head = f"{version.name} v{version.version}{labels} — {version.kind}, {version.created} by {version.author}"
    if version.message:
        head += f": {version.message}"
    lines = [head]
    if version.config:
        lines.append("config: " + json.dumps(dict(version.config), sort_keys=True))
    if version.variables:
        lines.append("variables: " + ", ".join(version.variables))
    lines.append("")
    if version.kind == "text":
        lines.append(version.template)
    else:
        from otelite.prompts._files import render_messages

        lines.append(render_messages(version.messages).rstrip("\n"))
    return "\n".join(lines)


def _prompts(args: argparse.Namespace) -> int:
    from otelite.prompts import PromptError
    from otelite.prompts._files import parse_messages

    registry = _registry(args)
    action = args.prompts_command
    try:
        if action == "list":
            names = registry.list()
            if not names:
                print(
                    f"no prompts in {registry.path}; add one with: otelite prompts push NAME --file F"
                )
            for name in names:
                latest = registry.versions(name)[-1]
                labels = {}
                for version in registry.versions(name):
                    for label in version.labels:
                        labels[label] = version.version
                tags = ", ".join(f"{k}=v{v}" for k, v in sorted(labels.items()))
                print(f"{name}  v{latest.version}  {tags}")
        elif action == "show":
            name, number, label = split_prompt_ref(args.ref)
            print(_describe(registry.get(name, version=number, label=label)))
        elif action == "push":
            text = Path(args.file).read_text(encoding="utf-8")
            chat = args.chat or text.startswith("=== ")
            version = registry.push(
                args.name,
                messages=parse_messages(text, args.file) if chat else None,
                template=None if chat else text,
                labels=args.label or [],
                message=args.message or "",
            )
            print(
                f"{version.name} v{version.version}"
                + (f" [{', '.join(version.labels)}]" if version.labels else "")
            )
        elif action == "label":
            version = registry.set_label(args.name, args.label, args.version)
            print(f"{args.name}: {args.label} -> v{version.version}")
        elif action == "rollback":
            version = registry.rollback(args.name, args.label)
            print(f"{args.name}: {args.label} rolled back to v{version.version}")
        elif action == "diff":
            print(registry.diff(args.name, args.a, args.b), end="")
        elif action == "history":
            for entry in registry.history(args.name):
                before = f"v{entry['from']}" if entry.get("from") else "(none)"
                print(
                    f"{entry['time']}  {entry['author']}  {entry['action']:<8} {entry['label']}: {before} -> v{entry['to']}"
                )
    except BrokenPipeError:
        raise  # stdout's reader went away: main() ends quietly
    except (PromptError, OSError, _cli_store.UsageError) as exc:
        print(f"otelite: {exc}", file=sys.stderr)
        return 2
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

    prompts = commands.add_parser("prompts", help="the local prompt registry")
    prompts.add_argument(
        "--dir", help="registry directory (default $OTELITE_PROMPTS_DIR or ./prompts)"
    )
    actions = prompts.add_subparsers(dest="prompts_command", required=True)
    actions.add_parser("list", help="list the prompts")
    show = actions.add_parser("show", help="show NAME, NAME@VERSION or NAME:LABEL")
    show.add_argument("ref")
    push = actions.add_parser("push", help="store a new version from a file")
    push.add_argument("name")
    push.add_argument(
        "--file", required=True, help="a text template, or a chat prompt in '=== role' form"
    )
    push.add_argument("--chat", action="store_true", help="read the file as a chat prompt")
    push.add_argument(
        "--label", action="append", help="point this label at the new version (repeatable)"
    )
    push.add_argument("-m", "--message", help="why this version exists")
    label = actions.add_parser("label", help="point LABEL at VERSION (promote)")
    label.add_argument("name")
    label.add_argument("label")
    label.add_argument("version", type=int)
    rollback = actions.add_parser("rollback", help="move LABEL back to its previous version")
    rollback.add_argument("name")
    rollback.add_argument("label")
    diff = actions.add_parser("diff", help="unified diff between two versions")
    diff.add_argument("name")
    diff.add_argument("a", type=int)
    diff.add_argument("b", type=int)
    history = actions.add_parser("history", help="every label move")
    history.add_argument("name")
    prompts.set_defaults(handler=_prompts)
    _cli_store.add_commands(commands)
    _cli_eval.add_command(commands)
    _cli_status.add_command(commands)
    _cli_changes.add_parser(commands)
    return parser


# A shell reports 128 + SIGPIPE (13) for a Unix tool killed by writing into a closed pipe
# (`otelite traces --json | head`); otelite exits with the same code, quietly.
EXIT_BROKEN_PIPE = 141


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
        if args.handler.__module__ == _cli_store.__name__:
            code = _cli_store.run(args.handler, args)
        else:
            code = int(args.handler(args))
        if sys.stdout is not None:
            sys.stdout.flush()  # a closed pipe shows here, not as an error at interpreter exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
