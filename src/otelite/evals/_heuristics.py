"""Heuristic evaluators: fast, deterministic, dependency-free checks written in code.

Each public function is a factory: it validates its arguments once (a bad
threshold or pattern is refused here, with a message naming the argument) and
returns an evaluator to call as ``evaluator(input=..., output=..., expected=...)``.
Scores are 1.0 (pass) or 0.0 (fail), except the similarity measures, whose value
is the similarity itself.

Size: over 500 lines because it is a catalogue of small independent evaluators,
each a short function with its argument checks.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable, Optional, Protocol, Union

from otelite import _semconv as sc
from otelite._exceptions import ConfigurationError
from otelite._scores import Score

__all__ = [
    "Evaluator",
    "contains",
    "cost_below",
    "exact_match",
    "is_json",
    "latency_below",
    "length",
    "matches_schema",
    "not_contains",
    "regex",
    "similarity",
]


class Evaluator(Protocol):
    """Anything called as ``evaluator(*, input, output, expected=None, **metadata) -> Score``.

    A plain function with that signature qualifies; its ``__name__`` names its scores.
    """

    def __call__(
        self, *, input: Any, output: Any, expected: Any = None, **metadata: Any
    ) -> Score: ...


class _Heuristic:
    """Base of the built-in heuristics: a name and a ``check`` returning a Score."""

    kind = "heuristic"

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError("name: give a non-empty string")
        self.name = name
        self.__name__ = name

    def __call__(
        self, *, input: Any = None, output: Any, expected: Any = None, **metadata: Any
    ) -> Score:
        return self.check(input, output, expected, metadata)

    def check(self, input: Any, output: Any, expected: Any, metadata: Mapping[str, Any]) -> Score:
        raise NotImplementedError

    def _result(self, passed: bool, explanation: Optional[str] = None) -> Score:
        return Score(
            self.name,
            1.0 if passed else 0.0,
            label="pass" if passed else "fail",
            passed=passed,
            explanation=explanation,
        )

    def _unscored(self, reason: str) -> Score:
        return Score(self.name, explanation=reason)

    def __repr__(self) -> str:
        return f"<evaluator {self.name}>"


def _text(value: Any) -> str:
    """The text an evaluator reads: strings as they are, structures as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


# --- JSON ---------------------------------------------------------------------------


class _IsJson(_Heuristic):
    def check(self, input: Any, output: Any, expected: Any, metadata: Mapping[str, Any]) -> Score:
        if isinstance(output, (Mapping, list)):
            return self._result(True, "already a JSON structure")
        try:
            json.loads(_text(output))
        except ValueError as exc:
            return self._result(False, f"not valid JSON: {exc}")
        return self._result(True)


def is_json(*, name: str = "is_json") -> Evaluator:
    """Passes when the output parses as JSON.

    Example:
        >>> from otelite import evals
        >>> evals.is_json()(input="q", output='{"a": 1}').passed
        True
    """
    return _IsJson(name)


_SCHEMA_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "items",
        "enum",
        "const",
        "additionalProperties",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minItems",
        "maxItems",
        "pattern",
        "anyOf",
        "title",
        "description",
        "default",
        "examples",
        "$schema",
    }
)
_JSON_TYPES: Mapping[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _check_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, Mapping):
        raise ConfigurationError(f"schema{where}: expected a JSON schema object (a dict)")
    unknown = set(schema) - _SCHEMA_KEYWORDS
    if unknown:
        raise ConfigurationError(
            f"schema{where}: keyword {sorted(unknown)[0]!r} is not supported by the built-in "
            "validator; pass a pydantic model instead"
        )
    types = schema.get("type")
    for t in [types] if isinstance(types, str) else types or []:
        if t not in _JSON_TYPES:
            raise ConfigurationError(f"schema{where}: unknown type {t!r}")
    for key, sub in (schema.get("properties") or {}).items():
        _check_schema(sub, f"{where}.properties.{key}")
    if isinstance(schema.get("items"), Mapping):
        _check_schema(schema["items"], f"{where}.items")
    if isinstance(schema.get("additionalProperties"), Mapping):
        _check_schema(schema["additionalProperties"], f"{where}.additionalProperties")
    for i, sub in enumerate(schema.get("anyOf") or ()):
        _check_schema(sub, f"{where}.anyOf[{i}]")


def _validate(value: Any, schema: Mapping[str, Any], path: str) -> Optional[str]:
    """The first violation of ``schema`` by ``value`` (a JSON path and a reason), or None."""
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else list(types)
        if not any(_JSON_TYPES[t](value) for t in allowed):
            return f"{path}: expected {' or '.join(allowed)}, got {type(value).__name__}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{path}: {value!r} is not one of {schema['enum']!r}"
    if "const" in schema and value != schema["const"]:
        return f"{path}: expected {schema['const']!r}"
    if "anyOf" in schema and all(_validate(value, s, path) for s in schema["anyOf"]):
        return f"{path}: matches none of anyOf"
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            return f"{path}: shorter than {schema['minLength']}"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return f"{path}: longer than {schema['maxLength']}"
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return f"{path}: does not match {schema['pattern']!r}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        violated = (
            ("minimum" in schema and value < schema["minimum"])
            or ("maximum" in schema and value > schema["maximum"])
            or ("exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"])
            or ("exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"])
        )
        if violated:
            return f"{path}: {value} is out of the schema's bounds"
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            return f"{path}: fewer than {schema['minItems']} items"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"{path}: more than {schema['maxItems']} items"
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                found = _validate(item, items, f"{path}[{i}]")
                if found:
                    return found
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            if key not in value:
                return f"{path}: missing required field {key!r}"
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                found = _validate(item, properties[key], f"{path}.{key}")
                if found:
                    return found
            elif extra is False:
                return f"{path}: unexpected field {key!r}"
            elif isinstance(extra, Mapping):
                found = _validate(item, extra, f"{path}.{key}")
                if found:
                    return found
    return None


class _MatchesSchema(_Heuristic):
    def __init__(self, name: str, schema: Any) -> None:
        super().__init__(name)
        self.model: Any = None
        self.schema: Optional[Mapping[str, Any]] = None
        if isinstance(schema, type) and hasattr(schema, "model_validate"):
            self.model = schema
        else:
            _check_schema(schema, "")
            self.schema = schema

    def check(self, input: Any, output: Any, expected: Any, metadata: Mapping[str, Any]) -> Score:
        if self.model is not None:
            if isinstance(output, self.model):
                return self._result(True)
            try:
                if isinstance(output, (str, bytes)):
                    self.model.model_validate_json(output)
                else:
                    self.model.model_validate(output)
            except ValueError as exc:  # pydantic.ValidationError is a ValueError
                first = str(exc).splitlines()
                return self._result(False, " ".join(first[:3]))
            return self._result(True)
        value = output
        if isinstance(output, (str, bytes)):
            try:
                value = json.loads(output)
            except ValueError as exc:
                return self._result(False, f"not valid JSON: {exc}")
        assert self.schema is not None
        problem = _validate(value, self.schema, "$")
        return self._result(problem is None, problem)


def matches_schema(schema: Any, *, name: str = "matches_schema") -> Evaluator:
    """Passes when the output (JSON text or a parsed value) matches a pydantic model or a JSON schema.

    JSON schemas may use the common keywords (type, properties, required, items,
    enum, const, additionalProperties, lengths, bounds, pattern, anyOf); anything
    else (``$ref``, ``oneOf``, ...) is refused here: pass a pydantic model for those.

    Example:
        >>> from otelite import evals
        >>> schema = {"type": "object", "required": ["city"]}
        >>> evals.matches_schema(schema)(input="q", output='{"city": "Oslo"}').passed
        True
    """
    return _MatchesSchema(name, schema)


# --- text patterns ----------------------------------------------------------------------


class _Regex(_Heuristic):
    def __init__(self, name: str, pattern: str, flags: int, full: bool) -> None:
        super().__init__(name)
        if not isinstance(pattern, str):
            raise TypeError("pattern: give a regular expression string")
        try:
            self.pattern = re.compile(pattern, flags)
        except re.error as exc:
            raise ConfigurationError(
                f"pattern {pattern!r} is not a valid regular expression: {exc}"
            ) from None
        self.full = full

    def check(self, input: Any, output: Any, expected: Any, metadata: Mapping[str, Any]) -> Score:
        text = _text(output)
        found = self.pattern.fullmatch(text) if self.full else self.pattern.search(text)
        if found:
            return self._result(True)
        how = "match" if self.full else "contain a match for"
        return self._result(False, f"output does not {how} {self.pattern.pattern!r}")


def regex(pattern: str, *, full: bool = False, flags: int = 0, name: str = "regex") -> Evaluator:
    """Passes when the output contains a match for ``pattern`` (or matches it whole, ``full=True``).

    Example:
        >>> from otelite import evals
        >>> evals.regex(r"\\d{4}")(input="year?", output="It was 1969.").passed
        True
    """
    return _Regex(name, pattern, flags, full)


class _Contains(_Heuristic):
    def __init__(
        self, name: str, values: Iterable[str], mode: str, case_sensitive: bool, negate: bool
    ) -> None:
        super().__init__(name)
        if isinstance(values, str):
            values = [values]
        found = list(values) if isinstance(values, Iterable) else []
        if not found or not all(isinstance(v, str) and v for v in found):
            raise ConfigurationError("values: give a non-empty list of non-empty strings")
        if mode not in ("any", "all"):
            raise ConfigurationError(f"mode: use 'any' or 'all', not {mode!r}")
        self.values = found
        self.mode = mode
        self.case_sensitive = case_sensitive
        self.negate = negate

    def check(self, input: Any, output: Any, expected: Any, metadata: Mapping[str, Any]) -> Score:
        text = _text(output)
        if not self.case_sensitive:
            text = text.casefold()
        present = [v for v in self.values if (v if self.case_sensitive else v.casefold()) in text]
        missing = [v for v in self.values if v not in present]
        if self.negate:
            # "does not contain": any = none of them may appear; all = not all of them together.
            ok = not present if self.mode == "any" else bool(missing)
            return self._result(ok, None if ok else f"output contains {present!r}")
        ok = bool(present) if self.mode == "any" else not missing
        return self._result(ok, None if ok else f"output lacks {missing!r}")


def contains(
    values: Union[str, Iterable[str]],
    *,
    mode: str = "any",
    case_sensitive: bool = False,
    name: str = "contains",
) -> Evaluator:
    """Passes when the output contains any (``mode="any"``) or all (``"all"``) of ``values``.

    Example:
        >>> from otelite import evals
        >>> evals.contains(["paris"])(input="capital?", output="Paris.").passed
        True
    """
    return _Contains(name, values, mode, case_sensitive, negate=False)


def not_contains(
    values: Union[str, Iterable[str]],
    *,
    mode: str = "any",
    case_sensitive: bool = False,
    name: str = "not_contains",
) -> Evaluator:
    """Passes when none of ``values`` appear (``mode="any"``), or not all of them (``"all"``).

    Example:
        >>> from otelite import evals
        >>> evals.not_contains(["as an ai"])(input="q", output="Sure: 42").passed
        True
    """
    return _Contains(name, values, mode, case_sensitive, negate=True)


# --- comparison with a reference -------------------------------------------------------------

_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}\u2018\u2019\u201c\u201d]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, collapse whitespace.

    Example:
        >>> normalize("  The Eiffel   Tower! ")
        'eiffel tower'
    """
    text = _PUNCTUATION.sub(" ", text.casefold())
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _references(expected: Any) -> list[str]:
    if isinstance(expected, (list, tuple)):
        return [_text(e) for e in expected]
    return [_text(expected)]


class _ExactMatch(_Heuristic):
    def __init__(self, name: str, normalized: bool) -> None:
        super().__init__(name)
        self.normalized = normalized

    def check(self, input: Any, output: Any, expected: Any, metadata: Mapping[str, Any]) -> Score:
        if expected is None:
            return self._unscored(f"{self.name} needs a reference answer: give expected=")
        prep = normalize if self.normalized else (lambda t: t)
        got = prep(_text(output))
        ok = any(got == prep(ref) for ref in _references(expected))
        return self._result(ok, None if ok else "output differs from the expected answer")


def exact_match(*, normalized: bool = True, name: str = "exact_match") -> Evaluator:
    """Passes when the output equals ``expected`` (or one of a list of answers).

    With ``normalized`` (the default) both sides are lower-cased and stripped of
    punctuation, articles and extra whitespace first.

    Example:
        >>> from otelite import evals
        >>> evals.exact_match()(input="q", output="The Paris.", expected="paris").passed
        True
    """
    return _ExactMatch(name, normalized)


def char_ratio(a: str, b: str) -> float:
    """Character-level similarity in [0, 1] (difflib's ratio of matching characters)."""
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def token_f1(a: str, b: str) -> float:
    """Token-overlap F1 in [0, 1] of the normalized texts (as in SQuAD scoring)."""
    got, ref = normalize(a).split(), normalize(b).split()
    if not got and not ref:
        return 1.0
    common = sum((Counter(got) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(got), common / len(ref)
    return 2 * precision * recall / (precision + recall)


_METHODS: Mapping[str, Callable[[str, str], float]] = {"ratio": char_ratio, "token_f1": token_f1}


def _fraction(argument: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigurationError(
            f"{argument}: give a number between 0 and 1, such as 0.95, got {value!r}"
        )
    return float(value)


class _Similarity(_Heuristic):
    def __init__(self, name: str, threshold: float, method: str) -> None:
        super().__init__(name)
        self.threshold = _fraction("threshold", threshold)
        if method not in _METHODS:
            raise ConfigurationError(f"method: use one of {', '.join(_METHODS)}, not {method!r}")
        self.method = method

    def check(self, input: Any, output: Any, expected: Any, metadata: Mapping[str, Any]) -> Score:
        if expected is None:
            return self._unscored(f"{self.name} needs a reference answer: give expected=")
        measure = _METHODS[self.method]
        got = _text(output)
        # Judged on the reported (rounded) value, so the pass/fail matches what is shown.
        value = round(max(measure(got, ref) for ref in _references(expected)), 6)
        passed = value >= self.threshold
        return Score(
            self.name,
            value,
            label="pass" if passed else "fail",
            passed=passed,
            explanation=f"{self.method} {value:.3f} vs threshold {self.threshold:g}",
        )


def similarity(
    *, threshold: float = 0.95, method: str = "ratio", name: str = "similarity"
) -> Evaluator:
    """Similarity to ``expected`` as the value; passes at ``value >= threshold``.

    ``method="ratio"`` compares characters (difflib), ``"token_f1"`` the overlap
    of normalized words. With a list of references the best one counts.

    Example:
        >>> from otelite import evals
        >>> s = evals.similarity(threshold=0.8)(input="q", output="colour", expected="color")
        >>> s.passed, s.value
        (True, 0.909091)
    """
    return _Similarity(name, threshold, method)


class _Length(_Heuristic):
    def __init__(self, name: str, min: Optional[int], max: Optional[int], unit: str) -> None:
        super().__init__(name)
        for argument, value in (("min", min), ("max", max)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ConfigurationError(
                    f"{argument}: give a whole number of {unit} (0 or more), got {value!r}"
                )
        if min is None and max is None:
            raise ConfigurationError("length(): give min=, max= or both")
        if min is not None and max is not None and min > max:
            raise ConfigurationError(f"length(): min ({min}) is greater than max ({max})")
        if unit not in ("chars", "words"):
            raise ConfigurationError(f"unit: use 'chars' or 'words', not {unit!r}")
        self.min, self.max, self.unit = min, max, unit

    def check(self, input: Any, output: Any, expected: Any, metadata: Mapping[str, Any]) -> Score:
        text = _text(output)
        size = len(text) if self.unit == "chars" else len(text.split())
        if self.min is not None and size < self.min:
            return self._result(False, f"{size} {self.unit}, fewer than {self.min}")
        if self.max is not None and size > self.max:
            return self._result(False, f"{size} {self.unit}, more than {self.max}")
        return self._result(True, f"{size} {self.unit}")


def length(
    *,
    min: Optional[int] = None,
    max: Optional[int] = None,
    unit: str = "chars",
    name: str = "length",
) -> Evaluator:
    """Passes when the output's length (``chars`` or ``words``) is within the bounds.

    Example:
        >>> from otelite import evals
        >>> evals.length(max=5, unit="words")(input="q", output="one two three").passed
        True
    """
    return _Length(name, min, max, unit)


# --- what the evaluated call spent ------------------------------------------------------------


def _span_reading(metadata: Mapping[str, Any], key: str) -> Optional[float]:
    """A figure of the evaluated call: from ``evaluate()`` metadata, or from a ``span=`` object."""
    value = metadata.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    span = metadata.get("span")
    if span is None:
        return None
    if key == "latency_s":
        duration = getattr(span, "duration_ns", None)
        if (
            duration is None
            and getattr(span, "end_time", None)
            and getattr(span, "start_time", None)
        ):
            duration = span.end_time - span.start_time
        return duration / 1e9 if isinstance(duration, (int, float)) else None
    attributes = getattr(span, "attributes", None) or {}
    cost = attributes.get(sc.GEN_AI_USAGE_COST) if key == "cost" else None
    return float(cost) if isinstance(cost, (int, float)) else None


class _Below(_Heuristic):
    def __init__(self, name: str, key: str, limit: float, unit: str) -> None:
        super().__init__(name)
        if (
            isinstance(limit, bool)
            or not isinstance(limit, (int, float))
            or not limit > 0
            or not math.isfinite(limit)
        ):
            raise ConfigurationError(f"{name}: give a positive limit in {unit}, got {limit!r}")
        self.key, self.limit, self.unit = key, float(limit), unit

    def check(self, input: Any, output: Any, expected: Any, metadata: Mapping[str, Any]) -> Score:
        value = _span_reading(metadata, self.key)
        if value is None:
            return self._unscored(
                f"no {self.key} for this call: run the evaluator in evaluate(), or pass "
                f"{self.key}= or span= (a recorded span)"
            )
        ok = value <= self.limit
        return Score(
            self.name,
            value,
            label="pass" if ok else "fail",
            passed=ok,
            explanation=f"{value:g} {self.unit} (limit {self.limit:g})",
        )


def latency_below(max_s: float, *, name: str = "latency") -> Evaluator:
    """Passes when the evaluated call took at most ``max_s`` seconds; the value is the latency.

    Inside ``evaluate()`` the task's latency is used; elsewhere pass ``latency_s=``
    or ``span=`` (an ``otelite.store.StoredSpan`` or an SDK span).

    Example:
        >>> from otelite import evals
        >>> evals.latency_below(2.0)(input="q", output="a", latency_s=0.4).passed
        True
    """
    return _Below(name, "latency_s", max_s, "s")


def cost_below(max_usd: float, *, name: str = "cost") -> Evaluator:
    """Passes when the evaluated call cost at most ``max_usd``; the value is the cost in USD.

    Inside ``evaluate()`` the task's LLM cost is used; elsewhere pass ``cost=`` or ``span=``.

    Example:
        >>> from otelite import evals
        >>> evals.cost_below(0.01)(input="q", output="a", cost=0.002).passed
        True
    """
    return _Below(name, "cost", max_usd, "USD")


def evaluator_name(evaluator: Any) -> str:
    """The name an evaluator's scores carry: its ``name``, else its ``__name__``."""
    name = getattr(evaluator, "name", None) or getattr(evaluator, "__name__", None)
    return str(name) if name else type(evaluator).__name__


def check_evaluators(evaluators: Sequence[Any]) -> list[Any]:
    """Refuse a non-callable evaluator or two evaluators with the same name."""
    if callable(evaluators):
        evaluators = [evaluators]
    if isinstance(evaluators, (str, bytes)) or not isinstance(evaluators, Sequence):
        raise TypeError("evaluators: give a list of evaluators, such as [evals.exact_match()]")
    seen: dict[str, int] = {}
    for i, evaluator in enumerate(evaluators):
        if not callable(evaluator):
            raise TypeError(f"evaluators[{i}]: {evaluator!r} is not callable")
        name = evaluator_name(evaluator)
        if name in seen:
            raise ConfigurationError(
                f"evaluators[{i}]: the name {name!r} is already used by evaluators[{seen[name]}]; "
                "give one of them name=..."
            )
        seen[name] = i
    return list(evaluators)
