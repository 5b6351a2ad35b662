"""A prompt named on the command line: ``NAME``, ``NAME@VERSION`` or ``NAME:LABEL``.

``otelite prompts show``, ``export finetune --prompt`` and ``stats --where prompt=`` all
read a prompt reference through here; a label is resolved against the registry.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Optional, Union

from otelite.cli._errors import UsageError


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
            raise UsageError(
                f"{where}: the version after '@' must be a number, e.g. {name.strip() or 'qa'}@3"
            )
        version = int(number)
    elif ":" in text:
        name, _, label = text.partition(":")
        label = label.strip()
    name = name.strip()
    if not name or label == "":
        raise UsageError(f"{where}: give NAME, NAME@VERSION or NAME:LABEL, e.g. qa:production")
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
        raise UsageError(f"{argument} {shown}: {exc}{hint}") from None
    return PromptRef(ref.strip(), name, found.version, label)


def where_prompt(item: str, args: argparse.Namespace) -> str:
    """``--where prompt=REF`` with REF in every form a prompt is named (NAME, NAME@VERSION,
    NAME:LABEL): a label becomes the version it points at; a bare NAME matches every version."""
    key, sep, value = item.partition("=")
    if not sep or key.strip() != "prompt":
        return item
    directory = getattr(args, "prompts_dir", None)
    return f"prompt={resolve_prompt_ref(value, '--where', directory, written=item).spec}"
