"""The registry on disk: readable, diffable files, written atomically under a lock.

Layout (one directory per prompt)::

    prompts/
      qa/
        v0001.prompt     immutable version files: a JSON header line, then the template
        v0002.prompt
        labels.json      {"production": 2, "staging": 2}
        history.jsonl    one line per label move: who, when, which label, from, to
      .locks/            inter-process locks, kept out of version control
        .gitignore       "*": git ignores the folder and everything in it
        qa.lock          taken (flock) while a version number is allocated or labels change

A version file starts with ``---``, one line of JSON (version, hashes, created,
author, message, kind, config), ``---``, then the template as plain text. A
chat prompt's body is its messages, each introduced by a ``=== role`` line, so
multi-line templates stay readable in a pull request. ``body_sha256`` in the
header is the SHA-256 of the body as stored: a reader that finds a body not
matching it has read a file that is still being written (or was edited by hand).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
import time
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from otelite._exceptions import PromptFileError, PromptNameError

VERSION_FILE = re.compile(r"^v(\d{4,})\.prompt$")
LABELS_FILE = "labels.json"
HISTORY_FILE = "history.jsonl"
LOCK_DIR = ".locks"
LOCK_DIR_GITIGNORE = "# otelite prompt registry locks: never commit them\n*\n"
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


def lock_path(directory: Path) -> Path:
    """The lock file of a prompt: ``<registry>/.locks/<name>.lock``, in a folder git ignores.

    Locks live outside the prompt's own folder so that the folder holds only files worth
    reviewing; the ``.locks`` folder carries its own ``.gitignore`` (``*``).
    """
    locks = directory.parent / LOCK_DIR
    ignore = locks / ".gitignore"
    if not ignore.exists():
        locks.mkdir(parents=True, exist_ok=True)
        write_atomic(ignore, LOCK_DIR_GITIGNORE)  # two processes at once: same content, whole
    return locks / f"{directory.name}.lock"


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the prompt's inter-process lock (version allocation, label changes)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(lock_path(directory), "a+b") as handle:
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


def body_hash(body_text: str) -> str:
    """SHA-256 of a version file's body exactly as stored (``body_sha256`` in its header)."""
    return hashlib.sha256(body_text.encode("utf-8")).hexdigest()


def write_version(directory: Path, header: Mapping[str, Any], body_text: str) -> Path:
    """Write a new version file; refuses to overwrite (versions are immutable)."""
    path = version_path(directory, int(header["version"]))
    if path.exists():
        raise PromptFileError(f"{path}: version already exists; versions are immutable")
    write_atomic(
        path,
        "---\n"
        + json.dumps(
            {**header, "body_sha256": body_hash(body_text)}, ensure_ascii=False, sort_keys=True
        )
        + "\n---\n"
        + body_text,
    )
    return path


def read_version(path: Path) -> tuple[dict[str, Any], str]:
    """The header and body of a version file; PromptFileError names the file and the fault."""
    try:
        with path.open("rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise PromptFileError(f"{path}: cannot read it ({exc})") from exc
    return parse_version(data, path)


def decode(data: bytes, path: Path) -> str:
    """A file's bytes as text; the template's own line endings (\\r, \\r\\n) are kept exactly."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PromptFileError(f"{path}: cannot read it ({exc})") from exc


def parse_version(data: Optional[bytes], path: Path) -> tuple[dict[str, Any], str]:
    """Parse a version file's bytes (``None``: the file does not exist)."""
    if data is None:
        raise PromptFileError(f"{path}: cannot read it (no such file)")
    text = decode(data, path)
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
    for key in ("version", "kind"):
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
    body = text[header_end + 5 :]
    expected = header.get("body_sha256")
    if expected is not None and expected != body_hash(body):
        raise PromptFileError(
            f"{path}: the template does not match the header's body_sha256 (the file is cut "
            "short or still being written; if its body was edited by hand, push the text as a "
            "new version instead, or delete body_sha256 from the header)"
        )
    return header, body


def parse_labels(data: Optional[bytes], path: Path) -> dict[str, int]:
    """Parse a labels file's bytes (``None``: no labels file, no labels)."""
    if data is None:
        return {}
    try:
        parsed = json.loads(decode(data, path))
    except ValueError as exc:
        raise PromptFileError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and type(v) is int for k, v in parsed.items()
    ):
        raise PromptFileError(f"{path}: expected an object of label names to version numbers")
    return parsed


def read_labels(directory: Path) -> dict[str, int]:
    path = directory / LABELS_FILE
    try:
        data: Optional[bytes] = path.read_bytes()
    except FileNotFoundError:
        data = None
    except OSError as exc:
        raise PromptFileError(f"{path}: cannot read it ({exc})") from exc
    return parse_labels(data, path)


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


Signature = tuple[int, int, int, int]


def signature(path: Path) -> Optional[Signature]:
    """What changes whenever a file is written or replaced (``None``: no such file)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return _signature(st)


def _signature(st: os.stat_result) -> Signature:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class Torn(Exception):
    """A file changed while it was being read."""


class Snapshot:
    """One consistent read of a file: its bytes (``None``: absent), signature and age."""

    __slots__ = ("data", "old", "signature")

    def __init__(self, data: Optional[bytes], sig: Optional[Signature], old: bool) -> None:
        self.data = data
        self.signature = sig
        self.old = old  # last modified at least the settle time ago (by its mtime)


def snapshot(path: Path, settle_s: float) -> Snapshot:
    """Read a whole file, checking that it did not change while it was read (else Torn).

    Works for directories too (``data`` is then ``b""``): their signature changes when a
    file is created, removed or renamed in them.
    """
    try:
        before = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return Snapshot(None, None, False)
    sig = _signature(before)
    data = b""
    try:
        if not os.path.isdir(path):
            with open(path, "rb") as handle:
                data = handle.read()
                during = _signature(os.fstat(handle.fileno()))
            if during != sig or len(data) != before.st_size:
                raise Torn("it changed while being read")
        after = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise Torn("it was removed while being read") from None
    if _signature(after) != sig:
        raise Torn("it changed while being read")
    old = time.time() - before.st_mtime_ns / 1e9 >= settle_s
    return Snapshot(data, sig, old)
