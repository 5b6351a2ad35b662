"""Reading a canary file (JSON always, YAML when PyYAML is installed) into checked canaries.

Every problem is a :class:`CanaryFileError` naming the file, the line where it can be
told (JSON syntax errors and every YAML problem), the canary and the field, and saying
how to fix it. Nothing is called here: evaluators are built and checked by the runner.
"""

from __future__ import annotations

import bisect
import importlib
import json
import json.decoder
import json.scanner
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from otelite._exceptions import OteliteError

# Evaluator kinds a canary may name, and whether each compares with the baseline answer.
EVALUATOR_KINDS = ("exact", "similarity", "is_json", "schema", "judge", "contains", "regex")
_TOP_KEYS = ("canaries", "defaults", "base_url", "prompts_dir")
_DEFAULT_KEYS = ("model", "temperature", "max_latency_s", "max_cost_usd", "evaluators")
_CANARY_KEYS = (
    "name",
    "model",
    "messages",
    "prompt",
    "variables",
    "temperature",
    "evaluators",
    "max_latency_s",
    "max_cost_usd",
)


class CanaryError(OteliteError, ValueError):
    """A canary run cannot start: a bad file, option, prompt reference or missing baseline.

    The command line prints it and exits with code 2.
    """


class CanaryFileError(CanaryError):
    """A canary file cannot be read or is malformed; the message names the line and the field.

    Example:
        >>> from otelite.canary import CanaryFileError, parse
        >>> try:
        ...     parse('{"canaries": [}', "canaries.json")
        ... except CanaryFileError as exc:
        ...     print(exc)
        canaries.json line 1 column 15: not valid JSON: Expecting value
    """


class _Located(dict):  # type: ignore[type-arg]
    """A mapping read from YAML that remembers the line it starts on."""

    line: Optional[int] = None


@dataclass(frozen=True)
class EvaluatorSpec:
    """One evaluator as the file names it: its kind and its options."""

    kind: str
    options: Any = None


@dataclass(frozen=True)
class Canary:
    """One canary prompt: what to send, how to compare its answer, and its budgets."""

    name: str
    model: Optional[str]
    messages: Optional[tuple[Mapping[str, str], ...]]
    prompt: Optional[str]
    variables: Mapping[str, Any]
    temperature: float
    evaluators: tuple[EvaluatorSpec, ...]
    max_latency_s: Optional[float]
    max_cost_usd: Optional[float]
    line: Optional[int] = None


@dataclass(frozen=True)
class CanaryFile:
    """A parsed canary file: its canaries, and the endpoint and prompt directory it names."""

    path: Path
    canaries: tuple[Canary, ...]
    base_url: Optional[str] = None
    prompts_dir: Optional[Path] = None
    format: str = "json"


def _yaml_load(text: str, where: str) -> Any:
    try:
        yaml: Any = importlib.import_module("yaml")
    except ImportError:
        raise CanaryFileError(
            f"{where}: reading YAML needs PyYAML: pip install 'otelite[yaml]', "
            "or write the canary file as JSON"
        ) from None

    # A SafeLoader whose mappings remember their line, so errors can name it.
    loader_class: Any = type("Loader", (yaml.SafeLoader,), {})

    def mapping(loader: Any, node: Any) -> _Located:
        loader.flatten_mapping(node)
        located = _Located(loader.construct_pairs(node, deep=True))
        located.line = node.start_mark.line + 1
        return located

    loader_class.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        return yaml.load(text, Loader=loader_class)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        if mark is not None:
            raise CanaryFileError(
                f"{where} line {mark.line + 1} column {mark.column + 1}: not valid YAML: {problem}"
            ) from None
        raise CanaryFileError(f"{where}: not valid YAML: {problem}") from None


def _json_load(text: str, where: str) -> Any:
    # Objects remember the line they start on, as YAML mappings do: the decoder's
    # pure-Python scanner is given an object parser that records it.
    newlines = [i for i, char in enumerate(text) if char == "\n"]
    decoder = json.JSONDecoder()

    def parse_object(s_and_end: tuple[str, int], *args: Any) -> tuple[_Located, int]:
        found, end = json.decoder.JSONObject(s_and_end, *args)  # type: ignore[attr-defined]
        located = _Located(found)
        located.line = bisect.bisect_left(newlines, s_and_end[1]) + 1
        return located, int(end)

    decoder.parse_object = parse_object  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    try:
        return decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise CanaryFileError(
            f"{where} line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}"
        ) from None


class _Reader:
    """Checks the parsed structure; errors name the file, the line (when known) and the path."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, node: Any, path: str, problem: str) -> CanaryFileError:
        line = getattr(node, "line", None)
        at = f"{self.where} line {line}" if line else self.where
        return CanaryFileError(f"{at}: {path}: {problem}")

    def mapping(self, node: Any, path: str, keys: Sequence[str]) -> Mapping[str, Any]:
        if not isinstance(node, Mapping):
            raise self.fail(node, path, f"expected a mapping, got {_kind(node)}")
        for key in node:
            if key not in keys:
                raise self.fail(node, path, f"unknown field {key!r}; fields: {', '.join(keys)}")
        return node

    def text(self, node: Any, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(node, path, f"give a non-empty string, got {_kind(value)}")
        return value

    def number(self, node: Any, value: Any, path: str, unit: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise self.fail(node, path, f"give a positive number of {unit}, got {value!r}")
        return float(value)

    def temperature(self, node: Any, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 2:
            raise self.fail(node, path, f"give a number from 0 to 2, got {value!r}")
        return float(value)

    def messages(self, node: Any, value: Any, path: str) -> tuple[Mapping[str, str], ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(
                node, path, "give a list of messages such as [{role: user, content: '...'}]"
            )
        found = []
        for i, message in enumerate(value):
            where = f"{path}[{i}]"
            held = message if isinstance(message, Mapping) else node
            self.mapping(message, where, ("role", "content"))
            role = message.get("role")
            if role not in ("system", "developer", "user", "assistant"):
                raise self.fail(
                    held, f"{where}.role", f"use system, developer, user or assistant, not {role!r}"
                )
            content = message.get("content")
            if not isinstance(content, str):
                raise self.fail(held, f"{where}.content", f"give the text, got {_kind(content)}")
            found.append({"role": role, "content": content})
        return tuple(found)

    def evaluators(self, node: Any, value: Any, path: str) -> tuple[EvaluatorSpec, ...]:
        if not isinstance(value, list):
            raise self.fail(
                node, path, "give a list such as [exact, {similarity: {threshold: 0.9}}]"
            )
        found = []
        for i, item in enumerate(value):
            where = f"{path}[{i}]"
            if isinstance(item, str):
                kind, options = item, None
            elif isinstance(item, Mapping) and len(item) == 1:
                kind, options = next(iter(item.items()))
                node = item if getattr(item, "line", None) else node
            else:
                raise self.fail(
                    node,
                    where,
                    "name an evaluator (exact) or give one name with its options "
                    "({similarity: {threshold: 0.9}})",
                )
            if kind not in EVALUATOR_KINDS:
                raise self.fail(
                    node,
                    where,
                    f"unknown evaluator {kind!r}; use one of {', '.join(EVALUATOR_KINDS)}",
                )
            if kind == "schema" and not isinstance(options, Mapping):
                raise self.fail(node, where, "schema: give the JSON schema as a mapping")
            if kind in ("contains", "regex") and options is None:
                raise self.fail(node, where, f"{kind}: give what to look for")
            found.append(EvaluatorSpec(kind, options))
        return tuple(found)

    def canary(self, node: Any, index: int, defaults: Mapping[str, Any], seen: set[str]) -> Canary:
        path = f"canaries[{index}]"
        self.mapping(node, path, _CANARY_KEYS)
        name = self.text(node, node.get("name"), f"{path}.name")
        if name in seen:
            raise self.fail(node, f"{path}.name", f"{name!r} is used by another canary")
        seen.add(name)
        path = f"{path} {name!r}"
        messages = prompt = None
        if "messages" in node and "prompt" in node:
            raise self.fail(node, path, "give messages or prompt, not both")
        if "messages" in node:
            messages = self.messages(node, node["messages"], f"{path}.messages")
        elif "prompt" in node:
            prompt = self.text(node, node["prompt"], f"{path}.prompt")
        else:
            raise self.fail(
                node, path, "give messages (a list) or prompt (a registry reference such as qa@3)"
            )
        variables = node.get("variables", {})
        if not isinstance(variables, Mapping):
            raise self.fail(node, f"{path}.variables", "give a mapping of name to value")
        if variables and prompt is None:
            raise self.fail(node, f"{path}.variables", "variables go with prompt, not messages")
        model = node.get("model", defaults.get("model"))
        if model is not None:
            model = self.text(node, model, f"{path}.model")
        temperature = self.temperature(
            node, node.get("temperature", defaults.get("temperature", 0.0)), f"{path}.temperature"
        )
        evaluators = self.evaluators(
            node,
            node.get("evaluators", defaults.get("evaluators", ["exact"])),
            f"{path}.evaluators",
        )
        budgets: dict[str, Optional[float]] = {}
        for key, unit in (("max_latency_s", "seconds"), ("max_cost_usd", "USD")):
            value = node.get(key, defaults.get(key))
            budgets[key] = (
                None if value is None else self.number(node, value, f"{path}.{key}", unit)
            )
        return Canary(
            name,
            model,
            messages,
            prompt,
            dict(variables),
            temperature,
            evaluators,
            budgets["max_latency_s"],
            budgets["max_cost_usd"],
            getattr(node, "line", None),
        )


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def parse(text: str, where: str = "canaries.json", *, path: Optional[Path] = None) -> CanaryFile:
    """Parse a canary file's text; ``where`` names it in errors (``.yaml``/``.yml`` read as YAML).

    Raises:
        CanaryFileError: the text is not valid JSON/YAML, or a field is missing or wrong.
    """
    is_yaml = where.lower().endswith((".yaml", ".yml"))
    data = _yaml_load(text, where) if is_yaml else _json_load(text, where)
    reader = _Reader(where)
    if isinstance(data, list):
        data = {"canaries": data}
    top = reader.mapping(data, "the file", _TOP_KEYS)
    canaries = top.get("canaries")
    if not isinstance(canaries, list) or not canaries:
        raise reader.fail(top, "canaries", "give a non-empty list of canaries")
    defaults = reader.mapping(top.get("defaults", {}), "defaults", _DEFAULT_KEYS)
    seen: set[str] = set()
    found = tuple(reader.canary(node, i, defaults, seen) for i, node in enumerate(canaries))
    base_url = top.get("base_url")
    if base_url is not None:
        base_url = reader.text(top, base_url, "base_url")
    prompts_dir = top.get("prompts_dir")
    if prompts_dir is not None:
        prompts_dir = reader.text(top, prompts_dir, "prompts_dir")
    source = path or Path(where)
    return CanaryFile(
        source,
        found,
        base_url,
        None if prompts_dir is None else (source.parent / prompts_dir),
        "yaml" if is_yaml else "json",
    )


def load(path: Union[str, Path]) -> CanaryFile:
    """Read and check a canary file (``.json``, or ``.yaml``/``.yml`` with PyYAML installed).

    Raises:
        CanaryFileError: the file is missing, unreadable or malformed (the message names the line).

    Example:
        >>> import pathlib, tempfile
        >>> from otelite import canary
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "canaries.json"
        >>> _ = path.write_text('[{"name": "capital", "model": "gpt-4o-mini", '
        ...     '"messages": [{"role": "user", "content": "Capital of France?"}]}]')
        >>> [c.name for c in canary.load(path).canaries]
        ['capital']
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CanaryFileError(f"{source}: no such canary file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CanaryFileError(f"{source}: cannot read it: {exc}") from None
    return parse(text, str(source), path=source)
