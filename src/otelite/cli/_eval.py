"""``otelite eval``: run a dataset evaluation from the command line, with a pass-rate gate for CI.

    otelite eval app.qa:answer data/qa.jsonl -e exact_match -e app.evals:JUDGES \\
        --min-pass-rate 0.9 --out run.jsonl --baseline baseline.jsonl --fail-on-regression

Exit codes: 0 all gates met, 1 a pass rate below its threshold (or a regression
with ``--fail-on-regression``), 2 a usage error (module, dataset, arguments).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from otelite._plural import plural
from otelite.cli._errors import EXIT_FAILED, EXIT_OK, UsageError

BUILTIN_EVALUATORS = ("exact_match", "is_json", "similarity")


def _load_object(spec: str, what: str) -> Any:
    """``package.module:name`` or ``path/to/file.py:name``."""
    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute:
        raise UsageError(
            f"{what} {spec!r}: write MODULE:NAME, e.g. app.qa:answer or app/qa.py:answer"
        )
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise UsageError(f"{what} {spec!r}: no file {path}")
            loader = importlib.util.spec_from_file_location(path.stem, path)
            if loader is None or loader.loader is None:
                raise UsageError(f"{what} {spec!r}: cannot load {path}")
            module = importlib.util.module_from_spec(loader)
            sys.modules[path.stem] = module
            loader.loader.exec_module(module)
        else:
            if "" not in sys.path:
                sys.path.insert(0, "")
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"{what} {spec!r}: cannot import {module_name} ({exc})") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise UsageError(f"{what} {spec!r}: {module_name} has no {attribute!r}") from None


def _evaluators(specs: Sequence[str]) -> list[Any]:
    import otelite.evals as evals

    found: list[Any] = []
    for spec in specs:
        if spec in BUILTIN_EVALUATORS:
            found.append(getattr(evals, spec)())
            continue
        if ":" not in spec:
            raise UsageError(
                f"--evaluator {spec!r}: use a built-in ({', '.join(BUILTIN_EVALUATORS)}) or MODULE:NAME"
            )
        value = _load_object(spec, "--evaluator")
        found.extend(value if isinstance(value, (list, tuple)) else [value])
    if not found:
        raise UsageError("give at least one --evaluator (-e exact_match, or MODULE:NAME)")
    return found


def _thresholds(specs: Sequence[str]) -> tuple[Optional[float], dict[str, float]]:
    default: Optional[float] = None
    named: dict[str, float] = {}
    for spec in specs:
        name, sep, value = spec.rpartition("=")
        try:
            rate = float(value)
        except ValueError:
            raise UsageError(
                f"--min-pass-rate {spec!r}: give a rate such as 0.9, or NAME=0.9"
            ) from None
        if not 0 <= rate <= 1:
            raise UsageError(f"--min-pass-rate {spec!r}: the rate must be between 0 and 1")
        if sep:
            named[name] = rate
        else:
            default = rate
    return default, named


def cmd_eval(args: argparse.Namespace) -> int:
    from otelite import _config
    from otelite.evals import Dataset, EvalRun, evaluate
    from otelite.evals._heuristics import evaluator_name

    default, named = _thresholds(args.min_pass_rate or ())
    task = _load_object(args.task, "task")
    evaluators = _evaluators(args.evaluator or ())
    data = Dataset.load(args.dataset)
    baseline = EvalRun.from_jsonl(args.baseline) if args.baseline else None
    names = {evaluator_name(e) for e in evaluators}
    unknown = sorted(set(named) - names)
    if unknown:
        raise UsageError(
            f"--min-pass-rate names no evaluator {unknown[0]!r}; evaluators: {', '.join(sorted(names))}"
        )
    if not _config.is_configured():
        _config.configure()
    try:
        run = evaluate(
            data,
            task,
            evaluators,
            max_concurrency=args.concurrency,
            repeats=args.repeats,
            name=args.name,
            progress=None,
        )
    except TypeError as exc:  # a task or evaluator evaluate() cannot call as given
        raise UsageError(str(exc)) from None
    finally:
        _config.force_flush()
    print(run.report())
    if args.out:
        print(f"run written to {run.to_jsonl(args.out)}")
    found = run.failures(default, per_evaluator=named)
    if baseline is not None:
        comparison = run.compare(baseline)
        print(comparison.report())
        if comparison.regressed and args.fail_on_regression:
            found.append(
                f"{plural(len(comparison.regressions), 'row')} regressed against {args.baseline}"
            )
    for reason in found:
        print(f"FAIL {reason}")
    return EXIT_FAILED if found else EXIT_OK


def add_parser(commands: Any) -> None:
    """Register ``otelite eval``."""
    parser = commands.add_parser(
        "eval",
        help="run a task over a dataset with evaluators; exit 1 below a pass rate (for CI)",
    )
    parser.add_argument("task", help="the function to evaluate: MODULE:NAME or FILE.py:NAME")
    parser.add_argument("dataset", help="a .jsonl or .csv file with an 'input' column")
    parser.add_argument(
        "-e",
        "--evaluator",
        action="append",
        help=f"a built-in ({', '.join(BUILTIN_EVALUATORS)}) or MODULE:NAME (an evaluator or a list); repeatable",
    )
    parser.add_argument(
        "--min-pass-rate",
        action="append",
        metavar="[NAME=]RATE",
        help="fail when an evaluator's pass rate is below RATE (0-1); NAME= for one evaluator",
    )
    parser.add_argument("--name", help="run name (default TASK-DATASET)")
    parser.add_argument("--concurrency", type=int, default=8, help="rows run at once (default 8)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per row (default 1)")
    parser.add_argument("--out", help="write the run as JSONL here (a baseline for later runs)")
    parser.add_argument("--baseline", help="a run JSONL to compare with")
    parser.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 1 when a row regressed against --baseline",
    )
    parser.set_defaults(handler=cmd_eval, error_prefix="otelite eval")
