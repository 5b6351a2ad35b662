"""The command line's dispatch: one family per module, one error policy, one exit-code table."""

from __future__ import annotations

import argparse
import types
from typing import Any, Callable

import pytest

from otelite import _exceptions, cli
from otelite.cli import _errors

BUILT_IN = cli.FAMILIES


def family(raise_or_return: Callable[[], int], **defaults: Any) -> types.ModuleType:
    """A command family with one command, ``demo``, whose handler calls ``raise_or_return``."""
    module = types.ModuleType("demo_family")

    def handler(args: argparse.Namespace) -> int:
        print(f"demo ran with --flag {args.flag}")
        return raise_or_return()

    def add_parser(commands: Any) -> None:
        demo = commands.add_parser("demo", help="a command added by one line")
        demo.add_argument("--flag", default="off")
        demo.set_defaults(handler=handler, **defaults)

    module.add_parser = add_parser  # type: ignore[attr-defined]
    return module


def run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: types.ModuleType,
    *argv: str,
) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "FAMILIES", (*BUILT_IN, extra))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_family_is_added_by_one_entry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A module with add_parser() in FAMILIES is a command; its handler's code is the exit code."""
    code, out, err = run(monkeypatch, capsys, family(lambda: 0), "demo", "--flag", "on")
    assert (code, out, err) == (0, "demo ran with --flag on\n", "")
    code, out, err = run(monkeypatch, capsys, family(lambda: 1), "demo")
    assert (code, out, err) == (_errors.EXIT_FAILED, "demo ran with --flag off\n", "")
    assert "a command added by one line" in cli.build_parser().format_help()


def test_every_command_is_registered_once() -> None:
    """The families register the commands otelite has always had, in their help order."""
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(action.choices) == [
        "tokenizers",
        "prompts",
        "traces",
        "trace",
        "stats",
        "graph",
        "export",
        "prune",
        "eval",
        "status",
        "changes",
        "drift",
        "canary",
        "dashboards",
        "ui",
    ]
    for module in cli.FAMILIES:
        assert callable(module.add_parser), module.__name__


@pytest.mark.parametrize(
    "error",
    [
        _errors.UsageError("--demo: 'x' is not a demo; write e.g. y"),
        _exceptions.StoreError("--demo: 'x' is not a demo; write e.g. y"),
        _exceptions.PromptNotFoundError("--demo: 'x' is not a demo; write e.g. y"),
        ValueError("--demo: 'x' is not a demo; write e.g. y"),
        FileNotFoundError("--demo: 'x' is not a demo; write e.g. y"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception
) -> None:
    """UsageError, otelite's errors, ValueError and OSError: the message on stderr, exit code 2."""

    def fail() -> int:
        raise error

    code, out, err = run(monkeypatch, capsys, family(fail), "demo")
    assert code == _errors.EXIT_USAGE == 2
    assert out == "demo ran with --flag off\n"
    assert err == "otelite: --demo: 'x' is not a demo; write e.g. y\n"


def test_a_family_names_itself_in_its_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command's error_prefix default (as `otelite eval` sets) leads its error lines."""

    def fail() -> int:
        raise _errors.UsageError("--min-pass-rate '2': the rate must be between 0 and 1")

    code, _, err = run(monkeypatch, capsys, family(fail, error_prefix="otelite demo"), "demo")
    assert (code, err) == (
        2,
        "otelite demo: --min-pass-rate '2': the rate must be between 0 and 1\n",
    )


def test_a_bug_is_not_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Anything else a handler raises is a bug: it propagates with its traceback."""

    def fail() -> int:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        run(monkeypatch, capsys, family(fail), "demo")


def test_a_closed_pipe_exits_141(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A BrokenPipeError (an OSError) is not a usage error: quiet exit 141, as with SIGPIPE."""

    def fail() -> int:
        raise BrokenPipeError

    code, _, err = run(monkeypatch, capsys, family(fail), "demo")
    assert (code, err) == (_errors.EXIT_BROKEN_PIPE, "")
    assert _errors.EXIT_BROKEN_PIPE == 141


def test_usage_error_is_an_otelite_error() -> None:
    """The CLI's one UsageError sits in otelite's exception tree."""
    assert issubclass(cli.UsageError, _exceptions.OteliteError)
    assert cli.UsageError is _errors.UsageError


def test_bad_arguments_exit_2_from_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    """A flag argparse refuses exits 2 too, with argparse's usage line."""
    with pytest.raises(SystemExit) as caught:
        cli.main(["traces", "--no-such-flag"])
    assert caught.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
