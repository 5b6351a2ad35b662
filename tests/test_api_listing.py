"""The public API, listed: nothing public disappears or is renamed without this test failing.

``tests/public_api.txt`` is the checked-in list: every public name of ``otelite``,
``otelite.evals`` (and ``evals.checks``), ``otelite.prompts``, ``otelite.store``,
``otelite.tokens``, ``otelite.testing``, ``otelite.datasets`` and
``otelite.instrumentation``; the parameters of every public function and class;
the members public classes define; and every CLI command, argument and flag.
Additions are allowed (the test prints them, to be added to the list with
``python tests/test_api_listing.py > tests/public_api.txt``); a removal or a
rename fails.

The same module also checks the exception tree and the public ``__module__`` paths.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

import pytest

import otelite
from otelite import cli

EXPECTED = Path(__file__).with_name("public_api.txt")

PUBLIC_MODULES = (
    "otelite",
    "otelite.evals",
    "otelite.evals.checks",
    "otelite.prompts",
    "otelite.store",
    "otelite.tokens",
    "otelite.testing",
    "otelite.datasets",
    "otelite.instrumentation",
)


def _parameters(qualified: str, obj: Any) -> list[str]:
    """``name(param)`` for each named parameter of a callable (none for ``*args``/``**kw``)."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return []
    return [
        f"{qualified}({p.name})"
        for p in signature.parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in ("self", "cls")
    ]


def _members(cls: type) -> list[str]:
    """Public attributes a class of otelite's defines (inherited builtin ones left out)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("otelite"):
            continue
        names.update(n for n in vars(klass) if not n.startswith("_"))
        names.update(n for n in getattr(klass, "__annotations__", {}) if not n.startswith("_"))
    if dataclasses.is_dataclass(cls):
        names.update(f.name for f in dataclasses.fields(cls) if not f.name.startswith("_"))
    return sorted(names)


def python_surface() -> set[str]:
    """Every public module name, parameter and class member, one string each."""
    found: set[str] = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            qualified = f"{module_name}.{name}"
            found.add(qualified)
            if inspect.ismodule(obj):
                continue
            if inspect.isclass(obj):
                if issubclass(obj, BaseException):
                    continue
                if obj.__module__.startswith("otelite"):
                    found.update(_parameters(qualified, obj))
                for member in _members(obj):
                    found.add(f"{qualified}.{member}")
                    attribute = inspect.getattr_static(obj, member, None)
                    if isinstance(attribute, (staticmethod, classmethod)):
                        attribute = attribute.__func__
                    if inspect.isfunction(attribute):
                        found.update(_parameters(f"{qualified}.{member}", attribute))
            elif callable(obj):
                found.update(_parameters(qualified, obj))
    return found


def cli_surface() -> set[str]:
    """Every command path of ``otelite``'s CLI and each of its arguments and flags."""
    found: set[str] = set()

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        found.add(f"cli: {path}")
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif action.option_strings:
                found.add(f"cli: {path} {'/'.join(sorted(action.option_strings))}")
            else:
                found.add(f"cli: {path} <{action.dest}>")

    walk(cli.build_parser(), "otelite")
    return found


def current_surface() -> set[str]:
    """The public API as it is now."""
    return python_surface() | cli_surface()


def test_public_api_has_no_removals_or_renames(capsys: pytest.CaptureFixture[str]) -> None:
    """Every name, parameter, member, CLI command and flag in tests/public_api.txt still exists."""
    expected = {line for line in EXPECTED.read_text().splitlines() if line.strip()}
    current = current_surface()
    added = sorted(current - expected)
    removed = sorted(expected - current)
    if added:
        with capsys.disabled():
            print(
                f"\n{len(added)} public name(s) not yet in {EXPECTED.name} (additions are fine; "
                "regenerate with `python tests/test_api_listing.py > tests/public_api.txt`):\n  "
                + "\n  ".join(added)
            )
    assert removed == [], (
        "public API removed or renamed (restore it, or change tests/public_api.txt on purpose):\n  "
        + "\n  ".join(removed)
        + ("\nnew names that may be the renamed ones:\n  " + "\n  ".join(added) if added else "")
    )


def test_public_api_listing_covers_every_surface() -> None:
    """The listing walks every public module and every CLI command family (it cannot pass empty)."""
    current = current_surface()
    for module_name in PUBLIC_MODULES:
        assert any(entry.startswith(f"{module_name}.") for entry in current), module_name
    assert "otelite.configure(service_name)" in current
    assert "otelite.prompts.PromptRegistry.push(labels)" in current
    assert "otelite.store.LocalStore.llm_spans" in current
    commands = {
        e.split()[2] for e in current if e.startswith("cli: otelite ") and len(e.split()) > 2
    }
    assert {"prompts", "tokenizers", "export", "traces", "stats", "eval"} <= commands


# --- the exception tree -------------------------------------------------------------------


def public_exceptions() -> dict[str, type[BaseException]]:
    """Every exception class a public module exports, by public path."""
    found: dict[str, type[BaseException]] = {}
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                found[f"{module_name}.{name}"] = obj
    return found


def test_every_public_exception_is_an_otelite_error() -> None:
    """Every public exception subclasses OteliteError, except EvalGateError (an AssertionError)."""
    exceptions = public_exceptions()
    assert "otelite.evals.DatasetError" in exceptions
    assert "otelite.evals.EndpointError" in exceptions
    outside = sorted(p for p, e in exceptions.items() if not issubclass(e, otelite.OteliteError))
    assert outside == ["otelite.evals.EvalGateError"]
    assert issubclass(otelite.evals.EvalGateError, AssertionError)


def test_exceptions_keep_the_builtin_they_were() -> None:
    """Joining the tree changed no builtin base: `except ValueError` and friends still catch."""
    from otelite import evals, prompts

    assert issubclass(evals.DatasetError, ValueError)
    assert issubclass(otelite.ConfigurationError, ValueError)
    assert issubclass(prompts.PromptNameError, ValueError)
    assert issubclass(prompts.PromptNotFoundError, LookupError)
    assert issubclass(prompts.PromptVariableError, KeyError)
    assert issubclass(evals.EndpointError, Exception)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: otelite.register_provider("api.example.com/v1", "vllm"), "host"),
        (lambda: otelite.register_provider("api.example.com", ""), "provider"),
        (lambda: otelite.enable_stream_usage(""), "provider"),
    ],
    ids=["register_provider-host", "register_provider-provider", "enable_stream_usage"],
)
def test_registry_functions_raise_configuration_error(call: Any, argument: str) -> None:
    """register_provider/enable_stream_usage reject bad input with a ConfigurationError (a ValueError) naming the argument."""
    with pytest.raises(otelite.ConfigurationError, match=f": {argument} must be") as caught:
        call()
    assert isinstance(caught.value, ValueError)


def test_exception_tree_is_documented() -> None:
    """docs/api.md and _exceptions' docstring draw every public exception, and say why EvalGateError is outside."""
    from otelite import _exceptions

    docs = (Path(__file__).parent.parent / "docs" / "api.md").read_text()
    for path in public_exceptions():
        name = path.rsplit(".", 1)[1]
        assert name in docs, f"{name} missing from docs/api.md"
        assert name in (_exceptions.__doc__ or ""), f"{name} missing from the tree in _exceptions"
    assert "EvalGateError" in docs
    assert "AssertionError" in docs


# --- public module paths ------------------------------------------------------------------


@pytest.mark.parametrize("module_name", ["otelite", "otelite.evals", "otelite.prompts"])
def test_public_objects_show_their_public_module(module_name: str) -> None:
    """Classes and functions exported by otelite, evals and prompts name that public module, not a private one."""
    module = importlib.import_module(module_name)
    if module_name == "otelite":
        names = [n for n in module.__all__ if n not in ("get_prompt", "score")]  # lazily loaded
    else:
        names = list(module.__all__)
    shown = {
        name: getattr(module, name).__module__
        for name in names
        if inspect.isclass(getattr(module, name)) or inspect.isfunction(getattr(module, name))
    }
    assert shown
    # A name the top-level package also exports (score) shows the top-level path.
    top = set(otelite.__all__)
    assert {
        n: m for n, m in shown.items() if m != module_name and not (n in top and m == "otelite")
    } == {}


def test_prompts_objects_show_otelite_prompts() -> None:
    """A prompt registry and its errors show otelite.prompts in reprs and tracebacks."""
    from otelite import prompts

    assert prompts.PromptRegistry.__module__ == "otelite.prompts"
    assert prompts.PromptVersion.__module__ == "otelite.prompts"
    assert prompts.PromptVariableError.__module__ == "otelite.prompts"
    assert prompts.get_prompt.__module__ == "otelite.prompts"


if __name__ == "__main__":  # regenerate the checked-in list
    sys.stdout.write("".join(f"{line}\n" for line in sorted(current_surface())))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: otelite.evals.length(), r"length\(\): give min=, max= or both"),
        (lambda: otelite.evals.llm_judge("correctness", n=0), "n: give the number of judge runs"),
        (lambda: otelite.evals.Score(""), "Score name: give a non-empty string"),
        (lambda: otelite.score("x", 1.0, trace_id="ab"), r"otelite.score\(\): give both"),
        (lambda: otelite.evals.synthesize(["seed"], n=-1), "n: give the number of inputs"),
    ],
    ids=["heuristic", "judge", "Score", "score", "synthesize"],
)
def test_bad_arguments_raise_configuration_error(call: Any, message: str) -> None:
    """Evaluation and score arguments are checked with a ConfigurationError (still a ValueError) naming the argument."""
    with pytest.raises(otelite.ConfigurationError, match=message) as caught:
        call()
    assert isinstance(caught.value, ValueError)


def test_unreadable_saved_run_is_a_dataset_error(tmp_path: Path) -> None:
    """EvalRun.from_jsonl on a missing or foreign file raises DatasetError naming the file."""
    with pytest.raises(otelite.evals.DatasetError, match="cannot read the run"):
        otelite.evals.EvalRun.from_jsonl(tmp_path / "missing.jsonl")
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text("id,input\n1,hello\n")
    with pytest.raises(otelite.evals.DatasetError, match=r"not a run written by EvalRun\.to_jsonl"):
        otelite.evals.EvalRun.from_jsonl(foreign)
