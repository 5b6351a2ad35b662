"""Canary prompts: "does the model behind the API still answer the same?"

A canary file (JSON, or YAML with PyYAML installed) lists prompts with the
evaluators that compare their answers with a recorded baseline, and latency and
cost budgets. ``otelite canary run canaries.yaml --record`` stores the answers in
``canaries.baseline.json`` (a reviewable file for the repository); later runs
call the endpoint again and report each canary as unchanged, changed (with the
reasons) or failed, as a traced, priced and scored span tree. See
``docs/monitoring.md``.

Example:
    >>> from otelite import canary
    >>> file = canary.parse('''{"canaries": [{"name": "capital", "model": "gpt-4o-mini",
    ...     "messages": [{"role": "user", "content": "Capital of France? One word."}],
    ...     "evaluators": ["exact", {"similarity": {"threshold": 0.8}}],
    ...     "max_latency_s": 5}]}''', "canaries.json")
    >>> [(c.name, [e.kind for e in c.evaluators]) for c in file.canaries]
    [('capital', ['exact', 'similarity'])]
"""

from __future__ import annotations

from contextlib import suppress as _suppress

from otelite.canary._file import (
    EVALUATOR_KINDS,
    Canary,
    CanaryError,
    CanaryFile,
    CanaryFileError,
    EvaluatorSpec,
    load,
    parse,
)
from otelite.canary._run import CanaryReport, CanaryResult, response_fields, run

__all__ = [
    "EVALUATOR_KINDS",
    "Canary",
    "CanaryError",
    "CanaryFile",
    "CanaryFileError",
    "CanaryReport",
    "CanaryResult",
    "EvaluatorSpec",
    "load",
    "parse",
    "response_fields",
    "run",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("otelite.canary._"):
        with _suppress(AttributeError, TypeError):
            _obj.__module__ = __name__
del _name, _obj
