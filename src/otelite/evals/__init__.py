"""Evaluation: heuristics, LLM-as-judge, human scores, dataset runs and online checks.

Every score is a :class:`Score` and is reported as OpenTelemetry data (a
``gen_ai.evaluation.result`` event on an evaluation span under the evaluated span).

Example:
    >>> from otelite import evals
    >>> evals.exact_match()(input="capital of France?", output="Paris", expected="paris").passed
    True
"""

from __future__ import annotations

from contextlib import suppress as _suppress

from otelite._exceptions import DatasetError
from otelite._scores import Score, score
from otelite.evals import checks
from otelite.evals._client import EndpointError
from otelite.evals._dataset import Dataset, Example
from otelite.evals._heuristics import (
    Evaluator,
    char_ratio,
    contains,
    cost_below,
    exact_match,
    is_json,
    latency_below,
    length,
    matches_schema,
    normalize,
    not_contains,
    regex,
    similarity,
    token_f1,
)
from otelite.evals._judge import TEMPLATES, JudgeTemplate, LLMJudge, llm_judge, parse_verdict
from otelite.evals._results import (
    Change,
    Comparison,
    EvalGateError,
    EvalRun,
    EvaluatorSummary,
    Regression,
    RowResult,
    Summary,
)
from otelite.evals._run import aevaluate, evaluate
from otelite.evals._synth import synthesize

__all__ = [
    "TEMPLATES",
    "Change",
    "Comparison",
    "Dataset",
    "DatasetError",
    "EndpointError",
    "EvalGateError",
    "EvalRun",
    "Evaluator",
    "EvaluatorSummary",
    "Example",
    "JudgeTemplate",
    "LLMJudge",
    "Regression",
    "RowResult",
    "Score",
    "Summary",
    "aevaluate",
    "char_ratio",
    "checks",
    "contains",
    "cost_below",
    "evaluate",
    "exact_match",
    "is_json",
    "latency_below",
    "length",
    "llm_judge",
    "matches_schema",
    "normalize",
    "not_contains",
    "parse_verdict",
    "regex",
    "score",
    "similarity",
    "synthesize",
    "token_f1",
]

# Users see public paths (otelite.evals.Score, not otelite._scores.Score).
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith(("otelite.evals._", "otelite._")):
        with _suppress(AttributeError, TypeError):
            _obj.__module__ = __name__
del _name, _obj
