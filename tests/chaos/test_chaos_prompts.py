"""Prompt registry under bad input: hostile names and hand-broken headers give clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otelite.prompts import PromptError, PromptFileError, PromptNameError, PromptRegistry

RULE = (
    "use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit, without '..', "
    "path separators or reserved names (aux, con, history, labels, latest, nul, prn)"
)


@pytest.fixture
def registry(tmp_path: Path) -> PromptRegistry:
    """An empty registry in a temporary directory."""
    return PromptRegistry(tmp_path / "prompts")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("qa\n", "it contains a control character (U+000A)"),
        ("qa\r\n", "it contains a control character (U+000D)"),
        ("q\ta", "it contains a control character (U+0009)"),
        ("qa\x00", "it contains a control character (U+0000)"),
        ("qa\x7f", "it contains a control character (U+007F)"),
        ("qa\x85", "it contains a control character (U+0085)"),
        ("a/b", "it contains a path separator ('/')"),
        ("a\\b", "it contains a path separator ('\\\\')"),
    ],
)
def test_names_with_control_characters_or_separators_refused(
    registry: PromptRegistry, name: str, why: str
) -> None:
    """Prompt and label names with control characters or path separators are refused, naming the rule."""
    expected = f"prompt name {name!r} is not allowed: {why}; {RULE}"
    with pytest.raises(PromptNameError) as caught:
        registry.push(name, "x")
    assert str(caught.value) == expected
    assert not registry.path.exists() or list(registry.path.iterdir()) == []
    with pytest.raises(PromptNameError) as caught:
        registry.get(name)
    assert str(caught.value) == expected
    with pytest.raises(PromptNameError) as caught:
        registry.push("qa", "x", labels=[name])
    assert str(caught.value) == f"label name {name!r} is not allowed: {why}; {RULE}"
    assert not registry.path.exists() or list(registry.path.iterdir()) == []


def test_trailing_newline_is_not_the_same_prompt(registry: PromptRegistry) -> None:
    """'qa' exists; 'qa\\n' is refused rather than silently read or written as 'qa'."""
    registry.push("qa", "x")
    with pytest.raises(PromptNameError, match="control character"):
        registry.push("qa\n", "y")
    assert [v.version for v in [registry.get("qa")]] == [1]
    assert registry.get("qa").template == "x"


@pytest.mark.parametrize("config", ["gpt-4o-mini", [["model", "x"]], 5, True])
def test_non_object_config_in_header_names_file_and_field(
    registry: PromptRegistry, config: object
) -> None:
    """A hand-edited header whose config is not a JSON object: PromptFileError naming the file, the field and the fix."""
    registry.push("qa", "x", config={"model": "gpt-4o-mini"})
    path = registry.path / "qa" / "v0001.prompt"
    text = path.read_text()
    header = json.loads(text.split("\n")[1])
    header["config"] = config
    path.write_text("---\n" + json.dumps(header) + "\n---\n" + text.split("\n---\n", 1)[1])
    with pytest.raises(PromptFileError) as caught:
        PromptRegistry(registry.path).get("qa")
    assert str(caught.value) == (
        f"{path}: the header field 'config' must be a JSON object of model parameters, such as "
        f'{{"model": "gpt-4o-mini", "temperature": 0}}, got {type(config).__name__} {config!r}; '
        "fix it in the file's header line (or write {} for none)"
    )


def test_null_config_in_header_means_none(registry: PromptRegistry) -> None:
    """A header with config null reads as no config, as before."""
    registry.push("qa", "x")
    path = registry.path / "qa" / "v0001.prompt"
    text = path.read_text()
    header = json.loads(text.split("\n")[1])
    header["config"] = None
    path.write_text("---\n" + json.dumps(header) + "\n---\n" + text.split("\n---\n", 1)[1])
    assert PromptRegistry(registry.path).get("qa").config == {}


@pytest.mark.parametrize("config", ["gpt-4o-mini", [("model", "x")], 5])
def test_push_non_mapping_config_refused(registry: PromptRegistry, config: object) -> None:
    """push(config=...) that is not a mapping: PromptError naming the argument, nothing written."""
    with pytest.raises(PromptError) as caught:
        registry.push("qa", "x", config=config)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "push: config must be a mapping of model parameters, such as "
        f'{{"model": "gpt-4o-mini", "temperature": 0}}, got {type(config).__name__}'
    )
    assert not registry.path.exists() or list(registry.path.iterdir()) == []
