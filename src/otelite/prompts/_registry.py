"""The prompt registry: versions, labels, hot reload, and prompts that know where they came from."""

from __future__ import annotations

import datetime
import difflib
import getpass
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Union

from otelite import _env
from otelite._exceptions import (
    PromptError,
    PromptFileError,
    PromptNotFoundError,
    PromptVariableError,
)
from otelite._semconv import PROMPT_LINK
from otelite.prompts import _files
from otelite.prompts._template import Template

DEFAULT_LABEL = "production"
RELOAD_INTERVAL_S = 0.25  # how stale a cached read may be: label moves show up well within 1 s


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
        expected = self.variables
        missing = [v for v in expected if v not in variables]
        if missing:
            raise PromptVariableError(
                f"variable {missing[0]!r} missing from prompt {self.name!r} v{self.version}"
                + (f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else "")
                + f"; it expects {', '.join(expected)}"
            )
        unexpected = [v for v in variables if v not in expected]
        if unexpected:
            raise PromptVariableError(
                f"prompt {self.name!r} v{self.version} has no variable {unexpected[0]!r}"
                + (f" (expected: {', '.join(expected)})" if expected else " (it has no variables)")
            )
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


class _Cached:
    __slots__ = ("checked", "labels", "stamp", "versions")

    def __init__(self, stamp: Any, labels: dict[str, int], versions: list[int]) -> None:
        self.stamp = stamp
        self.labels = labels
        self.versions = versions
        self.checked = time.monotonic()


class PromptRegistry:
    """Prompts as versioned files in a directory (default ``prompts/``, or ``OTELITE_PROMPTS_DIR``).

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
        self._state: dict[str, _Cached] = {}
        self._versions: dict[tuple[str, int], PromptVersion] = {}

    # --- reading ------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        return self.path / _files.check_name("prompt", name)

    def _fresh(self, name: str) -> _Cached:
        """The prompt's labels and version list, re-read at most every RELOAD_INTERVAL_S."""
        cached = self._state.get(name)
        now = time.monotonic()
        if cached is not None and now - cached.checked < RELOAD_INTERVAL_S:
            return cached
        directory = self._dir(name)
        stamp = _files.stamp(directory)
        if cached is not None and cached.stamp == stamp:
            cached.checked = now
            return cached
        versions = _files.version_numbers(directory)
        if not versions:
            raise PromptNotFoundError(
                f"no prompt {name!r} in {self.path}; prompts there: {', '.join(self.list()) or 'none'}"
            )
        state = _Cached(stamp, _files.read_labels(directory), versions)
        with self._lock:
            self._state[name] = state
        return state

    def _load(
        self, name: str, version: int, labels: Mapping[str, int], label: Optional[str]
    ) -> PromptVersion:
        key = (name, version)
        base = self._versions.get(key)
        if base is None:
            path = _files.version_path(self._dir(name), version)
            header, body = _files.read_version(path)
            if header["version"] != version:
                raise PromptFileError(f"{path}: the header says version {header['version']}")
            parsed: tuple[tuple[Optional[str], Template], ...]
            if header["kind"] == "chat":
                messages = _files.parse_messages(body, str(path))
                parsed = tuple((m["role"], Template(m["content"])) for m in messages)
                template, message_tuple = None, tuple(messages)
            else:
                parsed = ((None, Template(body)),)
                template, message_tuple = body, None
            base = PromptVersion(
                name=name,
                version=version,
                kind=header["kind"],
                template=template,
                messages=message_tuple,
                config=dict(header.get("config") or {}),
                labels=(),
                sha256=header["sha256"],
                created=str(header.get("created", "")),
                author=str(header.get("author", "")),
                message=str(header.get("message", "")),
                _parsed=parsed,
            )
            with self._lock:
                self._versions[key] = base
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
            return self._load(name, version, state.labels, None)
        if label is not None:
            _files.check_name("label", label)
            if label not in state.labels:
                raise PromptNotFoundError(
                    f"prompt {name!r} has no label {label!r}; labels: {', '.join(sorted(state.labels)) or 'none'}"
                )
            return self._load(name, state.labels[label], state.labels, label)
        if DEFAULT_LABEL in state.labels:
            return self._load(name, state.labels[DEFAULT_LABEL], state.labels, DEFAULT_LABEL)
        return self._load(name, state.versions[-1], state.labels, None)

    def versions(self, name: str) -> list[PromptVersion]:
        """Every version of a prompt, oldest first."""
        state = self._fresh(name)
        return [self._load(name, v, state.labels, None) for v in state.versions]

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
        return "".join(
            difflib.unified_diff(
                _describe(first).splitlines(keepends=True),
                _describe(second).splitlines(keepends=True),
                fromfile=f"{name}@{a}",
                tofile=f"{name}@{b}",
            )
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
                reuse = header["sha256"] == digest
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
        with self._lock:
            self._state.pop(name, None)
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
        with self._lock:
            self._state.pop(name, None)
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
        with self._lock:
            self._state.pop(name, None)
        return self.get(name, label=label)

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


def _ranges(numbers: Sequence[int]) -> str:
    if not numbers:
        return ""
    return (
        f"1-{numbers[-1]}"
        if list(numbers) == list(range(1, numbers[-1] + 1))
        else ", ".join(map(str, numbers))
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
