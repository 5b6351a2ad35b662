"""``otelite prompts``: the local prompt registry (list, show, push, label, rollback, diff, history)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from otelite.cli._errors import EXIT_OK
from otelite.cli._prompt_ref import split_prompt_ref


def _registry(args: argparse.Namespace) -> Any:
    from otelite.prompts import PromptRegistry

    return PromptRegistry(args.dir)


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


def cmd_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    names = registry.list()
    if not names:
        print(f"no prompts in {registry.path}; add one with: otelite prompts push NAME --file F")
    for name in names:
        latest = registry.versions(name)[-1]
        labels = {}
        for version in registry.versions(name):
            for label in version.labels:
                labels[label] = version.version
        tags = ", ".join(f"{k}=v{v}" for k, v in sorted(labels.items()))
        print(f"{name}  v{latest.version}  {tags}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    registry = _registry(args)
    name, number, label = split_prompt_ref(args.ref)
    print(_describe(registry.get(name, version=number, label=label)))
    return EXIT_OK


def cmd_push(args: argparse.Namespace) -> int:
    from otelite.prompts._files import parse_messages

    registry = _registry(args)
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
    return EXIT_OK


def cmd_label(args: argparse.Namespace) -> int:
    version = _registry(args).set_label(args.name, args.label, args.version)
    print(f"{args.name}: {args.label} -> v{version.version}")
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace) -> int:
    version = _registry(args).rollback(args.name, args.label)
    print(f"{args.name}: {args.label} rolled back to v{version.version}")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    print(_registry(args).diff(args.name, args.a, args.b), end="")
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    for entry in _registry(args).history(args.name):
        before = f"v{entry['from']}" if entry.get("from") else "(none)"
        print(
            f"{entry['time']}  {entry['author']}  {entry['action']:<8} {entry['label']}: "
            f"{before} -> v{entry['to']}"
        )
    return EXIT_OK


def add_parser(commands: Any) -> None:
    """Register ``prompts`` and its actions."""
    prompts = commands.add_parser("prompts", help="the local prompt registry")
    prompts.add_argument(
        "--dir", help="registry directory (default $OTELITE_PROMPTS_DIR or ./prompts)"
    )
    actions = prompts.add_subparsers(dest="prompts_command", required=True)
    actions.add_parser("list", help="list the prompts").set_defaults(handler=cmd_list)
    show = actions.add_parser("show", help="show NAME, NAME@VERSION or NAME:LABEL")
    show.add_argument("ref")
    show.set_defaults(handler=cmd_show)
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
    push.set_defaults(handler=cmd_push)
    label = actions.add_parser("label", help="point LABEL at VERSION (promote)")
    label.add_argument("name")
    label.add_argument("label")
    label.add_argument("version", type=int)
    label.set_defaults(handler=cmd_label)
    rollback = actions.add_parser("rollback", help="move LABEL back to its previous version")
    rollback.add_argument("name")
    rollback.add_argument("label")
    rollback.set_defaults(handler=cmd_rollback)
    diff = actions.add_parser("diff", help="unified diff between two versions")
    diff.add_argument("name")
    diff.add_argument("a", type=int)
    diff.add_argument("b", type=int)
    diff.set_defaults(handler=cmd_diff)
    history = actions.add_parser("history", help="every label move")
    history.add_argument("name")
    history.set_defaults(handler=cmd_history)
