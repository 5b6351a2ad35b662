"""Online checks for ``configure(checks=[...])``: cheap tests on every LLM response.

Example:
    >>> import otelite
    >>> from otelite.evals import checks
    >>> my_checks = [checks.refusal(), checks.truncated(), checks.slow(10.0)]
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from otelite._checks import (
    DEFAULT_REFUSAL_PHRASES,
    Call,
    Check,
    Empty,
    Failed,
    InvalidJson,
    Judge,
    PersonalData,
    Refusal,
    Slow,
    Truncated,
    find_personal_data,
    wait_for_judges,
)

__all__ = [
    "Call",
    "Check",
    "empty",
    "error",
    "find_personal_data",
    "invalid_json",
    "judge",
    "pii",
    "refusal",
    "slow",
    "truncated",
    "wait_for_judges",
]


def empty() -> Check:
    """Fails a successful chat or completion with no text and no tool calls.

    Example:
        >>> empty().name
        'empty'
    """
    return Empty()


def refusal(phrases: Optional[tuple[str, ...]] = None) -> Check:
    """Fails a refusal: OpenAI's ``refusal`` field, or a refusal phrase near the start.

    Example:
        >>> refusal().name
        'refusal'
    """
    return Refusal(tuple(p.lower() for p in phrases) if phrases else DEFAULT_REFUSAL_PHRASES)


def truncated() -> Check:
    """Fails a response cut at the token limit (``finish_reason == "length"``).

    Example:
        >>> truncated().name
        'truncated'
    """
    return Truncated()


def slow(threshold_s: float) -> Check:
    """Fails a call slower than ``threshold_s`` seconds.

    Example:
        >>> slow(5.0).threshold_s
        5.0
    """
    return Slow(threshold_s)


def error() -> Check:
    """Fails a call that ended in an error (counted by check name, for alerting).

    Example:
        >>> error().name
        'error'
    """
    return Failed()


def invalid_json() -> Check:
    """Fails a response that does not parse as JSON although ``response_format`` asked for JSON.

    Example:
        >>> invalid_json().name
        'invalid_json'
    """
    return InvalidJson()


def pii() -> Check:
    """Fails a response containing an e-mail address, card number, phone number or SSN.

    Example:
        >>> pii().name
        'pii'
    """
    return PersonalData()


def judge(
    evaluator: Callable[..., Any], sample_rate: float, *, name: Optional[str] = None
) -> Check:
    """Run a judge on a sample of calls, on a background thread (never on the request path).

    The score is recorded as an evaluation span under the LLM call's span; a
    failing verdict also counts in ``otelite.client.check.failures``. At most 64
    judge jobs wait at once; calls beyond that are not judged.

    Example:
        >>> from otelite import evals
        >>> j = evals.llm_judge("helpfulness", model="gpt-4o-mini", base_url="http://127.0.0.1:9/v1")
        >>> judge(j, sample_rate=0.05).name
        'helpfulness'
    """
    return Judge(evaluator, sample_rate, name or "")
