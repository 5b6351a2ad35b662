"""One template engine for prompts and judges: same placeholders, same escape, same errors."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from otelite import evals
from otelite._template import Template
from otelite.prompts import PromptRegistry, PromptVariableError, escape


def judge(template: str) -> evals.LLMJudge:
    """A custom judge whose endpoint is never called (only its messages are built)."""
    return evals.llm_judge(
        "tone",
        template=template,
        choices={"POLITE": 1.0, "RUDE": 0.0},
        model="judge-model",
        base_url="http://127.0.0.1:9/v1",
        api_key="sk-judge",
        transport=httpx.MockTransport(lambda request: httpx.Response(500)),
    )


def test_template_parts_variables_and_escape() -> None:
    """A template keeps literal text, names its variables once in order, and reads \\{{ as literal braces."""
    template = Template(r"Hi {{ name }}, \{{not}} {{name}} and {{other}}")
    assert template.variables == ("name", "other")
    assert template.parts == (
        (False, "Hi "),
        (True, "name"),
        (False, ", "),
        (False, "{{"),
        (False, "not}} "),
        (True, "name"),
        (False, " and "),
        (True, "other"),
    )
    assert template.fill({"name": "Ana", "other": 3}, "test") == "Hi Ana, {{not}} Ana and 3"
    assert Template(escape("{{x}}")).variables == ()


def test_fill_names_missing_and_unexpected_variables() -> None:
    """fill() names the first missing variable (and the others), or an unexpected one unless allowed."""
    template = Template("{{a}} {{b}} {{c}}")
    with pytest.raises(PromptVariableError) as missing:
        template.fill({"b": 1}, "prompt 'p' v2")
    assert str(missing.value) == (
        "variable 'a' missing from prompt 'p' v2 (also missing: c); it expects a, b, c"
    )
    assert isinstance(missing.value, KeyError)
    with pytest.raises(PromptVariableError) as unexpected:
        template.fill({"a": 1, "b": 2, "c": 3, "d": 4}, "prompt 'p' v2")
    assert str(unexpected.value) == "prompt 'p' v2 has no variable 'd' (expected: a, b, c)"
    assert template.fill({"a": 1, "b": 2, "c": 3, "d": 4}, "x", allow_unused=True) == "1 2 3"
    with pytest.raises(PromptVariableError) as none_expected:
        Template("plain").fill({"a": 1}, "prompt 'p' v1")
    assert str(none_expected.value) == "prompt 'p' v1 has no variable 'a' (it has no variables)"


def test_judge_prompt_honours_the_escape() -> None:
    """A judge template's \\{{ is sent as literal {{ and is not a placeholder."""
    tone = judge(r"Reply JSON like \{{\"polite\": true}} for: {{output}}")
    assert tone.template.fields == ("output",)
    assert tone.messages({"output": "Thanks!", "input": None})[1] == {
        "role": "user",
        "content": 'Reply JSON like {{\\"polite\\": true}} for: Thanks!\n\n'
        "Allowed labels: POLITE, RUDE.",
    }


def test_escaped_placeholder_is_not_a_judge_field() -> None:
    """An escaped \\{{output}} does not count as the judged text's placeholder."""
    with pytest.raises(ValueError, match=r"it must contain \{\{output\}\}"):
        judge(r"Literal \{{output}} only")


def test_missing_variable_is_the_same_error_for_prompts_and_judges(tmp_path: Path) -> None:
    """A prompt and a judge missing a variable raise the same PromptVariableError, naming it and the template."""
    version = PromptRegistry(tmp_path).push("qa", "Q: {{input}}\nA: {{output}}")
    with pytest.raises(PromptVariableError) as from_prompt:
        version.compile(output="Paris")
    correctness = judge("Q: {{input}}\nA: {{output}}")
    with pytest.raises(PromptVariableError) as from_judge:
        correctness.messages({"output": "Paris", "input": None})
    assert str(from_prompt.value) == (
        "variable 'input' missing from prompt 'qa' v1; it expects input, output"
    )
    assert str(from_judge.value) == (
        "variable 'input' missing from judge 'tone'; it expects input, output"
    )


def test_judge_call_with_missing_field_scores_none_instead_of_raising() -> None:
    """Calling a judge without a field its template needs gives an unscored Score, never an exception."""
    score = judge("Q: {{input}}\nA: {{output}}")(output="Paris")
    assert (score.name, score.value, score.passed, score.explanation) == (
        "tone",
        None,
        None,
        "tone needs input= for its template",
    )
