"""Heuristic evaluators: pass, fail and edge cases, and arguments refused at construction."""

from __future__ import annotations

from typing import Any, Optional

import pydantic
import pytest

from otelite import evals
from otelite.evals import Score


def run(evaluator: Any, output: Any, expected: Any = None, **metadata: Any) -> Score:
    return evaluator(input="question", output=output, expected=expected, **metadata)


def verdict(score: Score) -> tuple[Optional[bool], Optional[float], Optional[str]]:
    return score.passed, score.value, score.label


@pytest.mark.parametrize(
    ("output", "passed"),
    [
        ('{"a": [1, 2]}', True),
        ("[]", True),
        ("null", True),
        ({"a": 1}, True),
        ("{'a': 1}", False),
        ("", False),
        ('{"a": 1', False),
    ],
)
def test_is_json(output: Any, passed: bool) -> None:
    """Valid JSON text (or an already-parsed structure) passes; anything else fails with the reason."""
    score = run(evals.is_json(), output)
    assert verdict(score) == (passed, 1.0 if passed else 0.0, "pass" if passed else "fail")
    assert score.name == "is_json"
    assert score.kind == "heuristic"
    if not passed:
        assert score.explanation is not None
        assert score.explanation.startswith("not valid JSON")


class City(pydantic.BaseModel):
    name: str
    population: int


SCHEMA = {
    "type": "object",
    "required": ["name", "population"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "population": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"enum": ["capital", "port"]}, "maxItems": 2},
    },
    "additionalProperties": False,
}


@pytest.mark.parametrize("schema", [City, SCHEMA], ids=["pydantic", "json-schema"])
@pytest.mark.parametrize(
    ("output", "passed"),
    [
        ('{"name": "Oslo", "population": 700000}', True),
        ({"name": "Oslo", "population": 700000}, True),
        ('{"name": "Oslo"}', False),
        ('{"name": "Oslo", "population": "many"}', False),
        ("not json", False),
    ],
)
def test_matches_schema(schema: Any, output: Any, passed: bool) -> None:
    """Pydantic models and JSON schemas accept conforming output and reject the rest."""
    assert run(evals.matches_schema(schema), output).passed is passed


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ('{"name": "", "population": 1}', "$.name: shorter than 1"),
        ('{"name": "Oslo", "population": -1}', "$.population: -1 is out of the schema's bounds"),
        ('{"name": "Oslo", "population": 1, "extra": 1}', "$: unexpected field 'extra'"),
        (
            '{"name": "Oslo", "population": 1, "tags": ["lake"]}',
            "$.tags[0]: 'lake' is not one of ['capital', 'port']",
        ),
        (
            '{"name": "Oslo", "population": 1, "tags": ["port", "port", "capital"]}',
            "$.tags: more than 2 items",
        ),
    ],
)
def test_json_schema_names_the_violation(output: str, problem: str) -> None:
    """The explanation gives the JSON path and the reason."""
    score = run(evals.matches_schema(SCHEMA), output)
    assert score.passed is False
    assert score.explanation == problem


def test_matches_schema_refuses_unsupported_keywords() -> None:
    """A schema using $ref is refused at construction, pointing at pydantic."""
    with pytest.raises(
        ValueError, match=r"schema\.properties\.a: keyword '\$ref' is not supported.*pydantic"
    ):
        evals.matches_schema({"type": "object", "properties": {"a": {"$ref": "#/x"}}})
    with pytest.raises(ValueError, match="unknown type 'text'"):
        evals.matches_schema({"type": "text"})


def test_regex() -> None:
    """search by default, fullmatch on request; a bad pattern is refused with its text."""
    assert run(evals.regex(r"\d{4}"), "in 1969").passed is True
    assert run(evals.regex(r"\d{4}", full=True), "in 1969").passed is False
    assert run(evals.regex(r"\d{4}", full=True), "1969").passed is True
    failed = run(evals.regex(r"^yes$"), "no")
    assert failed.explanation == "output does not contain a match for '^yes$'"
    with pytest.raises(ValueError, match=r"pattern '\(' is not a valid regular expression"):
        evals.regex("(")


@pytest.mark.parametrize(
    ("factory", "output", "passed"),
    [
        (lambda: evals.contains(["paris", "lyon"]), "PARIS is nice", True),
        (lambda: evals.contains(["paris", "lyon"], mode="all"), "Paris and Lyon", True),
        (lambda: evals.contains(["paris", "lyon"], mode="all"), "Paris only", False),
        (lambda: evals.contains("Paris", case_sensitive=True), "paris", False),
        (lambda: evals.contains(["x"]), "", False),
        (lambda: evals.not_contains(["as an ai"]), "As an AI, I cannot", False),
        (lambda: evals.not_contains(["as an ai", "sorry"]), "Here you go", True),
        (lambda: evals.not_contains(["a", "b"], mode="all"), "a only", True),
        (lambda: evals.not_contains(["a", "b"], mode="all"), "a and b", False),
    ],
)
def test_contains_and_not_contains(factory: Any, output: str, passed: bool) -> None:
    """any/all modes and case handling, both ways."""
    assert run(factory(), output).passed is passed


def test_contains_refuses_bad_arguments() -> None:
    """Empty value lists and unknown modes are refused at construction."""
    with pytest.raises(ValueError, match="non-empty list of non-empty strings"):
        evals.contains([])
    with pytest.raises(ValueError, match="mode: use 'any' or 'all'"):
        evals.contains(["a"], mode="most")


@pytest.mark.parametrize(
    ("output", "expected", "normalized", "passed"),
    [
        ("The Paris.", "paris", True, True),
        ("  paris  ", "Paris", True, True),
        ("Paris", "Paris, France", True, False),
        ("Paris", ["Lyon", "paris"], True, True),
        ("paris", "Paris", False, False),
        ("Paris", "Paris", False, True),
    ],
)
def test_exact_match(output: str, expected: Any, normalized: bool, passed: bool) -> None:
    """Normalisation drops case, punctuation, articles and spacing; a list means any answer."""
    assert run(evals.exact_match(normalized=normalized), output, expected).passed is passed


def test_reference_evaluators_without_expected_give_no_score() -> None:
    """No reference: value None and a reason, not an exception."""
    for evaluator in (evals.exact_match(), evals.similarity()):
        score = run(evaluator, "Paris")
        assert score.value is None
        assert score.passed is None
        assert score.explanation is not None
        assert "needs a reference answer" in score.explanation


def test_similarity_ratio_and_token_f1() -> None:
    """Both measures, the threshold boundary, and the best of several references."""
    ratio = evals.similarity(threshold=0.95)
    assert verdict(run(ratio, "colour", "color")) == (False, 0.909091, "fail")
    assert run(evals.similarity(threshold=0.909091), "colour", "color").passed is True
    assert verdict(run(ratio, "same text", "same text")) == (True, 1.0, "pass")
    f1 = evals.similarity(threshold=0.5, method="token_f1", name="f1")
    score = run(f1, "the cat sat on the mat", "a cat sat on a rug")
    # normalized tokens: [cat, sat, on, mat] vs [cat, sat, on, rug]: 3 common, P = R = 0.75
    assert verdict(score) == (True, 0.75, "pass")
    assert score.name == "f1"
    assert run(f1, "dog", ["cat", "dog"]).value == 1.0
    assert evals.token_f1("", "") == 1.0
    assert evals.char_ratio("", "") == 1.0


@pytest.mark.parametrize("threshold", [-0.1, 1.5, "0.9", True])
def test_similarity_refuses_bad_thresholds(threshold: Any) -> None:
    """A threshold outside [0, 1] (or not a number) is refused, naming the argument."""
    with pytest.raises(ValueError, match="threshold: give a number between 0 and 1"):
        evals.similarity(threshold=threshold)
    with pytest.raises(ValueError, match="method: use one of ratio, token_f1"):
        evals.similarity(method="bleu")


def test_length() -> None:
    """Bounds in characters or words, inclusive; inconsistent bounds are refused."""
    assert verdict(run(evals.length(min=2, max=5), "abcde")) == (True, 1.0, "pass")
    assert run(evals.length(max=4), "abcde").explanation == "5 chars, more than 4"
    assert (
        run(evals.length(min=3, unit="words"), "two words").explanation == "2 words, fewer than 3"
    )
    with pytest.raises(ValueError, match=r"min \(5\) is greater than max \(2\)"):
        evals.length(min=5, max=2)
    with pytest.raises(ValueError, match="give min=, max= or both"):
        evals.length()
    with pytest.raises(ValueError, match="min: give a whole number of chars"):
        evals.length(min=-1)


class _Span:
    def __init__(self, duration_ns: int, cost: Optional[float]) -> None:
        self.duration_ns = duration_ns
        self.attributes = {"gen_ai.usage.cost": cost} if cost is not None else {}


def test_latency_and_cost_thresholds_read_the_evaluated_call() -> None:
    """Figures come from keyword metadata or a recorded span; missing figures give no score."""
    latency = evals.latency_below(1.0)
    assert verdict(run(latency, "a", latency_s=0.25)) == (True, 0.25, "pass")
    assert verdict(run(latency, "a", span=_Span(1_500_000_000, None))) == (False, 1.5, "fail")
    cost = evals.cost_below(0.01)
    assert verdict(run(cost, "a", span=_Span(1, 0.02))) == (False, 0.02, "fail")
    assert run(cost, "a", cost=0.01).passed is True
    missing = run(cost, "a", span=_Span(1, None))
    assert missing.value is None
    assert missing.explanation is not None
    assert missing.explanation.startswith("no cost for this call")
    with pytest.raises(ValueError, match="give a positive limit in s"):
        evals.latency_below(0)


def test_score_validation() -> None:
    """Scores refuse values that are not finite numbers and unknown kinds."""
    with pytest.raises(TypeError, match="put text in label= instead"):
        Score("x", "high")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="value must be finite"):
        Score("x", float("nan"))
    with pytest.raises(ValueError, match="kind must be one of"):
        Score("x", 1, kind="robot")
    with pytest.raises(ValueError, match="non-empty string"):
        Score(" ", 1)
    assert Score.from_dict(Score("x", 1, label="a", passed=True).as_dict()) == Score(
        "x", 1.0, label="a", passed=True
    )
