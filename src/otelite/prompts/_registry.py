"""The prompt registry: versions, labels, hot reload, and prompts that know where they came from.

Size: over 500 lines because the registry's read side (versions, labels, hot
reload) and write side (push, label, rollback) share one lock and one cache; file
formats live in ``_files`` and templates in ``_template``.
"""

from __future__ import annotations

import datetime
import difflib
import getpass
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, List, Optional, TypeVar, Union

from otelite import _env, _registries
from otelite._exceptions import (
    PromptError,
    PromptFileError,
    PromptNotFoundError,
)
from otelite._semconv import PROMPT_LINK
from otelite._template import Template, check_variables
from otelite.prompts import _files

DEFAULT_LABEL = "production"
RELOAD_INTERVAL_S = 0.25  # how stale a cached read may be: label moves show up well within 1 s
SETTLE_S = 0.1  # a file is used once unchanged this long (in-place writers write in pieces)
FIRST_LOAD_TIMEOUT_S = 2.0  # with no good state yet, how long get() waits for a file being written
_RETRY_S = 0.02

logger = logging.getLogger("otelite")


@dataclass(frozen=True)
class PromptLink:
    """Which prompt version (and label) an LLM input was compiled from."""

    name: str
    version: int
    label: Optional[str]
    variables: Mapping[str, str]


class CompiledPrompt(str):
    """The compiled text of a text prompt: a ``str`` that remembers its prompt version."""

    otelite_prompt: PromptLink


class PromptMessage(dict):  # type: ignore[type-arg]
    """One compiled chat message: a ``dict`` that remembers its prompt version."""

    otelite_prompt: PromptLink


class CompiledMessages(list):  # type: ignore[type-arg]
    """The compiled messages of a chat prompt: a ``list`` that remembers its prompt version."""

    otelite_prompt: PromptLink


_registries.prompt_links = True  # the LLM-call adapters now look for links (see there)


def _tag(obj: Any, link: PromptLink) -> Any:
    setattr(obj, PROMPT_LINK, link)
    return obj


@dataclass(frozen=True)
class PromptVersion:
    """One immutable version of a prompt.

    Attributes:
        name: the prompt's name.
        version: its number (1, 2, ...).
        kind: ``"text"`` or ``"chat"``.
        template: the text (text prompts), else ``None``.
        messages: the role/content messages (chat prompts), else ``None``.
        config: model parameters stored with the version (model, temperature, ...).
        labels: the labels pointing at this version when it was read.
        variables: the placeholder names, in order of first use.
        sha256: hash of the content; identical content is never stored twice in a row.
        created, author, message: when, by whom and why it was pushed.
        label: the label it was fetched by (``None`` when fetched by number or as latest).
    """

    name: str
    version: int
    kind: str
    template: Optional[str]
    messages: Optional[tuple[Mapping[str, str], ...]]
    config: Mapping[str, Any]
    labels: tuple[str, ...]
    sha256: str
    created: str
    author: str
    message: str
    label: Optional[str] = None
    _parsed: tuple[tuple[Optional[str], Template], ...] = field(
        default=(), repr=False, compare=False
    )

    @property
    def variables(self) -> tuple[str, ...]:
        names: list[str] = []
        for _, template in self._parsed:
            names.extend(v for v in template.variables if v not in names)
        return tuple(names)

    def compile(self, **variables: Any) -> Union[CompiledPrompt, CompiledMessages]:
        """Fill the placeholders; every variable must be given, and no other.

        Values are inserted as text (``str(value)``); nothing is evaluated. Returns a
        ``str`` (text prompts) or a ``list`` of message dicts (chat prompts) that an
        instrumented LLM call links back to this version.

        Raises:
            PromptVariableError: a variable is missing, or a value has no placeholder.
        """
        check_variables(self.variables, variables, f"prompt {self.name!r} v{self.version}")
        link = PromptLink(
            self.name, self.version, self.label, {k: str(v) for k, v in variables.items()}
        )
        if self.kind == "text":
            return _tag(CompiledPrompt(self._parsed[0][1].render(variables)), link)  # type: ignore[no-any-return]
        messages = CompiledMessages(
            _tag(PromptMessage(role=role or "", content=template.render(variables)), link)
            for role, template in self._parsed
        )
        return _tag(messages, link)  # type: ignore[no-any-return]


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _author(author: Optional[str]) -> str:
    if author:
        return author
    value = _env.OTELITE_AUTHOR.read()
    if value:
        return value
    for var in ("GIT_AUTHOR_NAME", "USER", "USERNAME"):
        value = os.environ.get(var)
        if value:
            return value
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _check_messages(messages: Any) -> list[dict[str, str]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Iterable):
        raise PromptError("messages must be a list of {'role': ..., 'content': ...} mappings")
    checked = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or set(message) != {"role", "content"}:
            raise PromptError(f"messages[{i}] must have exactly the keys 'role' and 'content'")
        role, content = message["role"], message["content"]
        if not isinstance(role, str) or not _files._ROLE_LINE.match(f"=== {role}"):
            raise PromptError(
                f"messages[{i}]: role {role!r} must be a word such as 'system' or 'user'"
            )
        if not isinstance(content, str):
            raise PromptError(f"messages[{i}]: content must be a string")
        checked.append({"role": role, "content": content})
    if not checked:
        raise PromptError("messages must not be empty")
    return checked


_Entry = tuple[
    PromptVersion, Optional[_files.Signature]
]  # a loaded version and its file's signature


class _Cached:
    """The last good state of one prompt: what get() serves until a newer good state is read."""

    __slots__ = ("checked", "dir_sig", "labels", "labels_sig", "loaded", "pending", "versions")

    def __init__(
        self,
        dir_sig: Optional[_files.Signature],
        labels: dict[str, int],
        labels_sig: Optional[_files.Signature],
        versions: list[int],
        loaded: dict[int, _Entry],
    ) -> None:
        self.dir_sig = dir_sig
        self.labels = labels
        self.labels_sig = labels_sig
        self.versions = versions
        self.loaded = loaded
        self.pending = False  # the last reload found a file not (yet) good: retry at the next
        self.checked = time.monotonic()


class _NotReady(Exception):
    """A file is not in a good state: being written (retry) or ``broken`` (settled but invalid)."""

    def __init__(self, message: str, broken: bool) -> None:
        super().__init__(message)
        self.message = message
        self.broken = broken


class PromptRegistry:
    """Prompts as versioned files in a directory (default ``prompts/``, or ``OTELITE_PROMPTS_DIR``).

    Files may be rewritten under a running app (``git pull``, ``cp``, an editor): a file is
    used only once it reads whole (its ``body_sha256`` matches) and has stopped changing for
    SETTLE_S; until then, and when a reload finds a broken file, the last good state is served.

    Example:
        >>> import tempfile
        >>> from otelite.prompts import PromptRegistry
        >>> registry = PromptRegistry(tempfile.mkdtemp())
        >>> v1 = registry.push("greet", template="Hello {{name}}!", labels=["production"])
        >>> registry.get("greet").compile(name="Ana")
        'Hello Ana!'
    """

    def __init__(self, path: Union[str, os.PathLike[str], None] = None) -> None:
        self.path = Path(path if path is not None else _env.OTELITE_PROMPTS_DIR.read() or "prompts")
        self._lock = threading.Lock()
        self._reloading = threading.Lock()
        self._state: dict[str, _Cached] = {}
        self._seen: dict[str, tuple[Optional[_files.Signature], float]] = {}
        self._warned: set[str] = set()

    # --- reading ------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self.path / _files.check_name("prompt", name)

    def _fresh(self, name: str) -> _Cached:
        """The prompt's last good state, checked for changes at most every RELOAD_INTERVAL_S."""
        cached = self._state.get(name)
        if cached is None:
            directory = self._dir(name)
            state = _wait(lambda: self._read(name, directory, None, trusted=False))
            with self._lock:
                self._state[name] = state
            return state
        if time.monotonic() - cached.checked < RELOAD_INTERVAL_S:
            return cached
        if not self._reloading.acquire(blocking=False):
            return cached  # another thread is reloading; serve the last good state meanwhile
        try:
            cached.checked = time.monotonic()
            if not cached.pending and not self._changed(self._dir(name), cached):
                return cached
            state = self._reload(name, cached)
            with self._lock:
                self._state[name] = state
            return state
        finally:
            self._reloading.release()

    @staticmethod
    def _changed(directory: Path, cached: _Cached) -> bool:
        if _files.signature(directory) != cached.dir_sig:
            return True
        if _files.signature(directory / _files.LABELS_FILE) != cached.labels_sig:
            return True
        return any(
            _files.signature(_files.version_path(directory, number)) != sig
            for number, (_, sig) in list(cached.loaded.items())
        )

    def _reload(self, name: str, cached: _Cached) -> _Cached:
        """A newer good state, or the last one kept (with one warning per broken file)."""
        directory = self._dir(name)
        faults: list[_NotReady] = []
        with self._lock:
            loaded = dict(cached.loaded)
        for number, (_, sig) in list(loaded.items()):
            path = _files.version_path(directory, number)
            if _files.signature(path) != sig:  # rewritten in place, or replaced
                try:
                    loaded[number] = self._attempt_version(name, number, trusted=False)
                except _NotReady as fault:
                    faults.append(fault)
        try:
            state = self._read(name, directory, loaded, trusted=False)
        except _NotReady as fault:
            faults.append(fault)
            state = _Cached(
                cached.dir_sig, cached.labels, cached.labels_sig, cached.versions, loaded
            )
        state.pending = bool(faults)
        if not faults:
            prefix = f"{directory}{os.sep}"
            self._warned = {w for w in self._warned if not w.startswith(prefix)}
        for problem in faults:
            if not problem.broken:
                logger.debug(
                    "otelite: %s; serving the last good state of %r", problem.message, name
                )
            elif problem.message not in self._warned:
                self._warned.add(problem.message)
                logger.warning(
                    "otelite: %s; serving the last good state of prompt %r until it is fixed",
                    problem.message,
                    name,
                )
        return state

    def _read(
        self,
        name: str,
        directory: Path,
        loaded: Optional[dict[int, _Entry]],
        trusted: bool,
        load: Sequence[int] = (),
    ) -> _Cached:
        """One attempt at a good state (listing, labels and the versions they need).

        ``loaded`` is the last good state's versions (None on a first load: a label pointing at
        a missing version then fails only the get() that uses it). ``trusted``: files this
        process has just written atomically under the lock, used without a settle time.
        """
        versions = _files.version_numbers(directory)
        if not versions:
            if loaded is None:
                raise PromptNotFoundError(
                    f"no prompt {name!r} in {self.path}; prompts there: {', '.join(self.list()) or 'none'}"
                )
            raise _NotReady(f"{directory}: no version files", broken=False)
        folder = self._attempt(directory, None, trusted)[1]
        if versions != _files.version_numbers(directory):
            raise _NotReady(f"{directory}: it changed while being read", broken=False)
        labels_path = directory / _files.LABELS_FILE
        labels, labels_sig = self._attempt(
            labels_path, _files.parse_labels, trusted, absent_ok=True
        )
        if _files.signature(directory) != folder:
            raise _NotReady(f"{directory}: it changed while being read", broken=False)
        entries = dict(loaded or {})
        wanted = set(load)
        if loaded is not None:  # a reload: what get() may serve must load before it is adopted
            if DEFAULT_LABEL not in labels:
                wanted.add(versions[-1])
            for label, number in labels.items():
                if number not in versions:
                    raise _NotReady(
                        f"{labels_path}: label {label!r} points at version {number}, which has no "
                        "file",
                        broken=True,
                    )
                wanted.add(number)
        for number in sorted(wanted - set(entries)):
            entries[number] = self._attempt_version(name, number, trusted)
        listed = set(versions)
        return _Cached(
            folder,
            labels,
            labels_sig,
            versions,
            {n: entry for n, entry in entries.items() if n in listed},
        )

    def _attempt(
        self,
        path: Path,
        parse: Optional[Callable[[Optional[bytes], Path], Any]],
        trusted: bool,
        absent_ok: bool = False,
    ) -> tuple[Any, Optional[_files.Signature]]:
        """One read of a file (or, with no ``parse``, a directory's signature) that is whole and
        settled: unchanged during the read, and for SETTLE_S (by its mtime, or as observed)."""
        try:
            snap = _files.snapshot(path, SETTLE_S)
        except _files.Torn as exc:
            raise _NotReady(f"{path}: {exc}", broken=False) from None
        # An absent file that may be absent (labels) is settled when its folder is (checked too).
        settled = (
            trusted
            or snap.old
            or (absent_ok and snap.signature is None)
            or self._observed_stable(path, snap.signature)
        )
        value = None
        if parse is not None:
            try:
                value = parse(snap.data, path)
            except PromptFileError as exc:
                raise _NotReady(str(exc), broken=settled) from None
        if not settled:
            raise _NotReady(f"{path}: it is still being written", broken=False)
        self._seen.pop(str(path), None)
        return value, snap.signature

    def _observed_stable(self, path: Path, sig: Optional[_files.Signature]) -> bool:
        """True once this signature has been seen unchanged for SETTLE_S."""
        now = time.monotonic()
        key = str(path)
        first = self._seen.get(key)
        if first is None or first[0] != sig:
            self._seen[key] = (sig, now)
            return False
        return now - first[1] >= SETTLE_S

    def _attempt_version(self, name: str, version: int, trusted: bool) -> _Entry:
        path = _files.version_path(self._dir(name), version)

        def parse(data: Optional[bytes], where: Path) -> PromptVersion:
            header, body = _files.parse_version(data, where)
            return _build(name, version, header, body, where)

        return self._attempt(path, parse, trusted)

    def _load(self, name: str, version: int, state: _Cached, label: Optional[str]) -> PromptVersion:
        entry = state.loaded.get(version)
        if entry is None:
            entry = _wait(lambda: self._attempt_version(name, version, trusted=False))
            with self._lock:
                state.loaded[version] = entry
        base = entry[0]
        labels = state.labels
        current = tuple(sorted(k for k, v in labels.items() if v == version))
        if base.labels == current and base.label == label:
            return base
        return PromptVersion(**{**base.__dict__, "labels": current, "label": label})

    def get(
        self, name: str, version: Optional[int] = None, label: Optional[str] = None
    ) -> PromptVersion:
        """A version by number, by label, or — by default — the ``production`` label.

        With neither a version nor a label, ``production`` is used when it is set,
        and the latest version otherwise. Unchanged reads come from memory; a label
        moved or a version added by another process is seen within a second.

        Raises:
            PromptNotFoundError: no such prompt, version or label (the message lists what exists).
        """
        if version is not None and label is not None:
            raise PromptError("give a version or a label, not both")
        state = self._fresh(name)
        if version is not None:
            if version not in state.versions:
                raise PromptNotFoundError(
                    f"prompt {name!r} has no version {version}; versions: {_ranges(state.versions)}"
                )
            return self._load(name, version, state, None)
        if label is not None:
            _files.check_name("label", label)
            if label not in state.labels:
                raise PromptNotFoundError(
                    f"prompt {name!r} has no label {label!r}; labels: {', '.join(sorted(state.labels)) or 'none'}"
                )
            return self._load(name, state.labels[label], state, label)
        if DEFAULT_LABEL in state.labels:
            return self._load(name, state.labels[DEFAULT_LABEL], state, DEFAULT_LABEL)
        return self._load(name, state.versions[-1], state, None)

    def versions(self, name: str) -> list[PromptVersion]:
        """Every version of a prompt, oldest first."""
        state = self._fresh(name)
        return [self._load(name, v, state, None) for v in state.versions]

    def list(self) -> list[str]:
        """The names of the prompts in the registry."""
        try:
            entries = sorted(os.listdir(self.path))
        except FileNotFoundError:
            return []
        return [
            e for e in entries if (self.path / e).is_dir() and _files.version_numbers(self.path / e)
        ]

    def history(self, name: str) -> List[dict[str, Any]]:  # `list` is a method of this class
        """Every label move of a prompt, oldest first (time, author, action, label, from, to)."""
        self._fresh(name)
        return _files.read_history(self._dir(name))

    def diff(self, name: str, a: int, b: int) -> str:
        """A unified diff between two versions (content and config)."""
        first, second = self.get(name, version=a), self.get(name, version=b)
        lines = difflib.unified_diff(
            _lines(_describe(first)),
            _lines(_describe(second)),
            fromfile=f"{name}@{a}",
            tofile=f"{name}@{b}",
        )
        # A last line without a newline gets one, and the marker diff and git print, so
        # that it is not joined to the next line of the diff.
        return "".join(
            line if line.endswith("\n") else f"{line}\n\\ No newline at end of file\n"
            for line in lines
        )

    # --- writing --------------------------------------------------------------------

    def push(
        self,
        name: str,
        template: Optional[str] = None,
        *,
        messages: Optional[Sequence[Mapping[str, str]]] = None,
        config: Optional[Mapping[str, Any]] = None,
        labels: Sequence[str] = (),
        message: str = "",
        author: Optional[str] = None,
    ) -> PromptVersion:
        """Store a new version (or return the latest, unchanged, when the content is identical).

        Exactly one of ``template`` (a text prompt) or ``messages`` (a chat prompt) is
        given. ``labels`` are pointed at the returned version.
        """
        directory = self._dir(name)
        if (template is None) == (messages is None):
            raise PromptError("push: give either template= (text) or messages= (chat)")
        if template is not None and not isinstance(template, str):
            raise PromptError("push: template must be a string")
        if config is not None and not isinstance(config, Mapping):
            raise PromptError(
                "push: config must be a mapping of model parameters, such as "
                f'{{"model": "gpt-4o-mini", "temperature": 0}}, got {type(config).__name__}'
            )
        config = dict(config or {})
        for label in labels:
            _files.check_name("label", label)
        kind = "text" if template is not None else "chat"
        body: Any = template if template is not None else _check_messages(messages)
        body_text = template if template is not None else _files.render_messages(body)
        try:
            body_text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise PromptError(
                f"push: prompt {name!r} contains text that cannot be stored as UTF-8 ({exc.reason} "
                f"at position {exc.start}); remove the lone surrogate characters"
            ) from None
        digest = _files.content_hash(kind, body, config)
        who = _author(author)
        with _files.locked(directory):
            existing = _files.version_numbers(directory)
            latest = existing[-1] if existing else 0
            reuse = False
            if latest:
                header, _ = _files.read_version(_files.version_path(directory, latest))
                reuse = header.get("sha256") == digest
            number = latest if reuse else latest + 1
            if not reuse:
                header = {
                    "version": number,
                    "kind": kind,
                    "sha256": digest,
                    "created": _now(),
                    "author": who,
                    "message": message,
                    "config": config,
                }
                _files.write_version(directory, header, body_text or "")
            if labels:
                self._move_labels(directory, name, dict.fromkeys(labels, number), who, "set")
            self._adopt_own_write(name, directory, number)
        return self.get(name, version=number)

    def set_label(
        self, name: str, label: str, version: int, *, author: Optional[str] = None
    ) -> PromptVersion:
        """Point ``label`` at ``version`` (promote); running apps see it within a second."""
        _files.check_name("label", label)
        directory = self._dir(name)
        with _files.locked(directory):
            numbers = _files.version_numbers(directory)
            if version not in numbers:
                raise PromptNotFoundError(
                    f"prompt {name!r} has no version {version}; versions: {_ranges(numbers) or 'none'}"
                )
            self._move_labels(directory, name, {label: version}, _author(author), "set")
            self._adopt_own_write(name, directory, version)
        return self.get(name, label=label)

    def rollback(self, name: str, label: str, *, author: Optional[str] = None) -> PromptVersion:
        """Move ``label`` back to the version it pointed at before its last move."""
        _files.check_name("label", label)
        directory = self._dir(name)
        with _files.locked(directory):
            labels = _files.read_labels(directory)
            if label not in labels:
                raise PromptNotFoundError(f"prompt {name!r} has no label {label!r}")
            # Replay the label's moves: each "set" remembers where it came from, each
            # rollback undoes one; what remains on top is where to return to.
            trail: list[Optional[int]] = []
            for entry in _files.read_history(directory):
                if entry.get("label") != label:
                    continue
                if entry.get("action") == "rollback":
                    if trail:
                        trail.pop()
                else:
                    trail.append(entry.get("from"))
            previous = trail[-1] if trail else None
            if previous is None:
                raise PromptError(
                    f"label {label!r} of prompt {name!r} has no earlier version to roll back to"
                )
            self._move_labels(directory, name, {label: previous}, _author(author), "rollback")
            self._adopt_own_write(name, directory, previous)
        return self.get(name, label=label)

    def _adopt_own_write(self, name: str, directory: Path, number: int) -> None:
        """Serve what this process has just written (atomically, under the lock) at once."""
        state = _wait(lambda: self._read(name, directory, None, trusted=True, load=(number,)))
        with self._lock:
            self._state[name] = state

    @staticmethod
    def _move_labels(
        directory: Path, name: str, moves: Mapping[str, int], author: str, action: str
    ) -> None:
        labels = _files.read_labels(directory)
        changed = {k: v for k, v in moves.items() if labels.get(k) != v}
        if not changed:
            return
        before = dict(labels)
        labels.update(changed)
        _files.write_labels(directory, labels)
        for label, version in changed.items():
            _files.append_history(
                directory,
                {
                    "time": _now(),
                    "author": author,
                    "action": action,
                    "label": label,
                    "from": before.get(label),
                    "to": version,
                },
            )


def _describe(version: PromptVersion) -> str:
    import json

    body = (
        version.template
        if version.kind == "text"
        else _files.render_messages(version.messages or ())
    )
    config = json.dumps(dict(version.config), indent=2, sort_keys=True)
    return f"config: {config}\n---\n{body}" if version.config else str(body)


def _lines(text: str) -> list[str]:
    """The lines of ``text`` as diff and git split them: at "\\n" only, each keeping it.

    (``str.splitlines`` also splits at "\\r", form feeds and other separators, which
    would end a diff line in the middle of a prompt's line.)
    """
    *lines, last = text.split("\n")
    return [f"{line}\n" for line in lines] + ([last] if last else [])


def _ranges(numbers: Sequence[int]) -> str:
    if not numbers:
        return ""
    return (
        f"1-{numbers[-1]}"
        if list(numbers) == list(range(1, numbers[-1] + 1))
        else ", ".join(map(str, numbers))
    )


_T = TypeVar("_T")


def _wait(attempt: Callable[[], _T]) -> _T:
    """Retry a first load while its file is being written, up to FIRST_LOAD_TIMEOUT_S.

    A file that has settled and is still invalid fails at once; PromptFileError names it.
    """
    deadline = time.monotonic() + FIRST_LOAD_TIMEOUT_S
    while True:
        try:
            return attempt()
        except _NotReady as fault:
            if fault.broken:
                raise PromptFileError(fault.message) from None
            if time.monotonic() >= deadline:
                raise PromptFileError(
                    f"{fault.message}, and still was after {FIRST_LOAD_TIMEOUT_S:g} s: something "
                    "keeps rewriting it in place; write prompt files atomically (otelite's own "
                    "writes are: a temporary file, then a rename)"
                ) from None
            time.sleep(_RETRY_S)


def _build(
    name: str, version: int, header: Mapping[str, Any], body: str, path: Path
) -> PromptVersion:
    """A PromptVersion from a parsed version file."""
    if header["version"] != version:
        raise PromptFileError(f"{path}: the header says version {header['version']}")
    parsed: tuple[tuple[Optional[str], Template], ...]
    config = dict(header.get("config") or {})
    content: Any
    if header["kind"] == "chat":
        messages = _files.parse_messages(body, str(path))
        parsed = tuple((m["role"], Template(m["content"])) for m in messages)
        template, message_tuple, content = None, tuple(messages), messages
    else:
        parsed = ((None, Template(body)),)
        template, message_tuple, content = body, None, body
    sha256 = header.get("sha256")
    return PromptVersion(
        name=name,
        version=version,
        kind=header["kind"],
        template=template,
        messages=message_tuple,
        config=config,
        labels=(),
        sha256=str(sha256) if sha256 else _files.content_hash(header["kind"], content, config),
        created=str(header.get("created", "")),
        author=str(header.get("author", "")),
        message=str(header.get("message", "")),
        _parsed=parsed,
    )


_default_lock = threading.Lock()
_default: Optional[PromptRegistry] = None


def default_registry() -> PromptRegistry:
    """The registry at ``OTELITE_PROMPTS_DIR`` (or ``./prompts``), created on first use."""
    global _default
    with _default_lock:
        wanted = Path(_env.OTELITE_PROMPTS_DIR.read() or "prompts")
        if _default is None or _default.path != wanted:
            _default = PromptRegistry(wanted)
        return _default


def reset_default_registry() -> None:
    """Forget the default registry and what it cached; the next use reads the directory anew.

    Example:
        >>> import otelite
        >>> otelite.prompts.reset_default_registry()
    """
    global _default
    with _default_lock:
        _default = None


def get_prompt(
    name: str, version: Optional[int] = None, label: Optional[str] = None
) -> PromptVersion:
    """``PromptRegistry.get`` on the default registry (``OTELITE_PROMPTS_DIR`` or ``./prompts``).

    Example:
        >>> import otelite, tempfile, os
        >>> os.environ["OTELITE_PROMPTS_DIR"] = tempfile.mkdtemp()
        >>> _ = otelite.prompts.default_registry().push("hi", template="Hi {{who}}")
        >>> otelite.get_prompt("hi").compile(who="there")
        'Hi there'
    """
    return default_registry().get(name, version=version, label=label)
