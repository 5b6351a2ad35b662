"""The registry on disk: readable, diffable files, written atomically under a lock.

Layout (one directory per prompt)::

    prompts/
      qa/
        v0001.prompt     immutable version files: a JSON header line, then the template
        v0002.prompt
        labels.json      {"production": 2, "staging": 2}
        history.jsonl    one line per label move: who, when, which label, from, to
        .lock            taken (flock) while a version number is allocated or labels change

A version file starts with ``---``, one line of JSON (version, hash, created,
author, message, kind, config), ``---``, then the template as plain text. A
chat prompt's body is its messages, each introduced by a ``=== role`` line, so
multi-line templates stay readable in a pull request.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from otelite._exceptions import PromptFileError, PromptNameError

VERSION_FILE = re.compile(r"^v(\d{4,})\.prompt$")
LABELS_FILE = "labels.json"
HISTORY_FILE = "history.jsonl"
LOCK_FILE = ".lock"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_RESERVED = frozenset(
    {"labels", "history", "latest", "con", "prn", "aux", "nul"}
    | {f"com{i}" for i in range(10)}
    | {f"lpt{i}" for i in range(10)}
)
_ROLE_LINE = re.compile(r"^=== ([A-Za-z_][A-Za-z0-9_-]*)\s*$")
ROLES_SEPARATOR = "=== "
_NEEDS_ESCAPE = re.compile(r"^\\*===")  # content lines that could read as a role line
_ESCAPED = re.compile(r"^\\+===")


def check_name(kind: str, name: object) -> str:
    """A valid prompt or label name, or PromptNameError saying what is allowed."""
    if not isinstance(name, str):
        raise PromptNameError(f"{kind} name must be a string, got {type(name).__name__}")
    # fullmatch: with match(), '$' also matches before a trailing newline ("qa\n" passed).
    if not _NAME.fullmatch(name) or ".." in name or name.lower().split(".")[0] in _RESERVED:
        raise PromptNameError(
            f"{kind} name {name!r} is not allowed: {_why(name)}use 1-100 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit, without '..', path separators or reserved "
            f"names ({', '.join(sorted(n for n in _RESERVED if not n[-1].isdigit()))})"
        )
    return name


def _why(name: str) -> str:
    """The first specific fault of a refused name, as a clause ending in '; ' (or nothing)."""
    for char in name:
        if unicodedata.category(char) == "Cc":
            return f"it contains a control character (U+{ord(char):04X}); "
        if char in "/\\":
            return f"it contains a path separator ({char!r}); "
    return ""


def version_path(directory: Path, version: int) -> Path:
    return directory / f"v{version:04d}.prompt"


def content_hash(kind: str, body: Any, config: Mapping[str, Any]) -> str:
    """SHA-256 of what makes a version distinct (kind, template or messages, config)."""
    text = json.dumps(
        {"kind": kind, "body": body, "config": config}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


def render_messages(messages: Sequence[Mapping[str, str]]) -> str:
    """Chat messages in the ``=== role`` text form (a content line that looks like a role
    line is written with a leading backslash)."""
    lines: list[str] = []
    for message in messages:
        lines.append(f"{ROLES_SEPARATOR}{message['role']}")
        for line in message["content"].split("\n"):
            lines.append("\\" + line if _NEEDS_ESCAPE.match(line) else line)
    return "\n".join(lines) + "\n"


def parse_messages(text: str, where: str) -> list[dict[str, str]]:
    """Parse the ``=== role`` form back into messages (exactly what render_messages wrote)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    messages: list[tuple[str, list[str]]] = []
    for number, line in enumerate(lines, start=1):
        match = _ROLE_LINE.match(line)
        if match:
            messages.append((match.group(1), []))
            continue
        if not messages:
            raise PromptFileError(
                f"{where}: line {number}: a chat prompt starts with a '=== role' line"
            )
        if _ESCAPED.match(line):
            line = line[1:]
        messages[-1][1].append(line)
    return [{"role": role, "content": "\n".join(body)} for role, body in messages]


def write_atomic(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never half of it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; prompt files are meant to be shared and reviewed
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # The rename itself must reach the disk; not possible on every platform.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the prompt's inter-process lock (version allocation, label changes)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK_FILE, "a+b") as handle:
        if sys.platform == "win32":  # pragma: no cover
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
            try:
                yield
            finally:
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write_version(directory: Path, header: Mapping[str, Any], body_text: str) -> Path:
    """Write a new version file; refuses to overwrite (versions are immutable)."""
    path = version_path(directory, int(header["version"]))
    if path.exists():
        raise PromptFileError(f"{path}: version already exists; versions are immutable")
    write_atomic(
        path,
        "---\n"
        + json.dumps(dict(header), ensure_ascii=False, sort_keys=True)
        + "\n---\n"
        + body_text,
    )
    return path


def read_version(path: Path) -> tuple[dict[str, Any], str]:
    """The header and body of a version file; PromptFileError names the file and the fault."""
    try:
        # newline="": the template's own line endings (\r, \r\n) come back exactly as written.
        with path.open(encoding="utf-8", newline="") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptFileError(f"{path}: cannot read it ({exc})") from exc
    if not text.startswith("---\n"):
        raise PromptFileError(f"{path}: a version file starts with a '---' line")
    header_end = text.find("\n---\n", 4)
    if header_end < 0:
        raise PromptFileError(f"{path}: the header is not closed by a '---' line")
    try:
        header = json.loads(text[4:header_end])
    except ValueError as exc:
        raise PromptFileError(f"{path}: the header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise PromptFileError(f"{path}: the header must be a JSON object")
    for key in ("version", "kind", "sha256"):
        if key not in header:
            raise PromptFileError(f"{path}: the header has no {key!r}")
    if header["kind"] not in ("text", "chat"):
        raise PromptFileError(f"{path}: kind must be 'text' or 'chat', not {header['kind']!r}")
    config = header.get("config")
    if config is not None and not isinstance(config, dict):
        raise PromptFileError(
            f"{path}: the header field 'config' must be a JSON object of model parameters, such as "
            f'{{"model": "gpt-4o-mini", "temperature": 0}}, got {type(config).__name__} {config!r}; '
            "fix it in the file's header line (or write {} for none)"
        )
    return header, text[header_end + 5 :]


def read_labels(directory: Path) -> dict[str, int]:
    path = directory / LABELS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise PromptFileError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and type(v) is int for k, v in data.items()
    ):
        raise PromptFileError(f"{path}: expected an object of label names to version numbers")
    return data


def write_labels(directory: Path, labels: Mapping[str, int]) -> None:
    write_atomic(directory / LABELS_FILE, json.dumps(dict(sorted(labels.items())), indent=2) + "\n")


def append_history(directory: Path, entry: Mapping[str, Any]) -> None:
    """Append one label move (under the lock: lines never interleave)."""
    with open(directory / HISTORY_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(dict(entry), ensure_ascii=False, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_history(directory: Path) -> list[dict[str, Any]]:
    path = directory / HISTORY_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except ValueError as exc:
            raise PromptFileError(f"{path}: line {number} is not valid JSON ({exc})") from exc
    return entries


def version_numbers(directory: Path) -> list[int]:
    """The version numbers present, ascending."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    numbers = []
    for name in names:
        match = VERSION_FILE.match(name)
        if match:
            numbers.append(int(match.group(1)))
    return sorted(numbers)


def stamp(directory: Path) -> tuple[Optional[int], Optional[int]]:
    """A cheap fingerprint of a prompt directory: changes when a version or label is written."""
    try:
        dir_mtime: Optional[int] = os.stat(directory).st_mtime_ns
    except FileNotFoundError:
        dir_mtime = None
    try:
        labels_mtime: Optional[int] = os.stat(directory / LABELS_FILE).st_mtime_ns
    except FileNotFoundError:
        labels_mtime = None
    return dir_mtime, labels_mtime
