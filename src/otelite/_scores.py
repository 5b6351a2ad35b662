"""Scores as OpenTelemetry data: the ``Score`` type, evaluation spans, ``otelite.score``.

Every score becomes a ``gen_ai.evaluation.result`` event (the GenAI conventions'
evaluation event). The conventions model it as a log record parented to the
evaluated span; trace backends (Tempo, Jaeger, Phoenix) and otelite's local store
keep spans, not logs, so otelite carries the event on a short ``evaluation {name}``
span whose parent *is* the evaluated span: the event's trace and span ids are the
evaluated span's, and it can be added after that span has ended (a feedback
button pressed minutes later). The same attributes are set on the evaluation
span itself, so backends that search span attributes find scores too.

"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Optional, Union

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from otelite import _guard, _metrics, _state
from otelite import _semconv as sc
from otelite._context import cap_text
from otelite._exceptions import ConfigurationError

KINDS = ("heuristic", "llm_judge", "human", "check")
EVALUATION_SPAN_KIND = "evaluation"  # otelite.span.kind of evaluation spans


@dataclass(frozen=True)
class Score:
    """One evaluation result: a value and/or a label, with pass/fail where a threshold applies.

    ``value`` is ``None`` when the evaluator could not score (an unparseable judge
    verdict, an endpoint that is down, an evaluator that raised); ``explanation``
    or ``error`` then says why. Judge scores also carry what the judge spent.

    Example:
        >>> from otelite.evals import Score
        >>> Score("exact_match", 1.0, label="match", passed=True).passed
        True
    """

    name: str
    value: Optional[float] = None
    label: Optional[str] = None
    passed: Optional[bool] = None
    explanation: Optional[str] = None
    kind: str = "heuristic"
    error: Optional[str] = None
    source: Optional[str] = None
    comment: Optional[str] = None
    agreement: Optional[float] = None
    samples: Optional[int] = None
    input_tokens: Optional[int] = None
    output_tokens: Optional[int] = None
    cost: Optional[float] = None
    latency_s: Optional[float] = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigurationError("Score name: give a non-empty string such as 'correctness'")
        if self.value is not None:
            if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
                raise TypeError(
                    f"Score {self.name!r}: value must be a number or None, got "
                    f"{type(self.value).__name__}; put text in label= instead"
                )
            if not math.isfinite(self.value):
                raise ConfigurationError(
                    f"Score {self.name!r}: value must be finite, got {self.value}"
                )
            object.__setattr__(self, "value", float(self.value))
        if self.label is not None and not isinstance(self.label, str):
            raise TypeError(
                f"Score {self.name!r}: label must be a str, got {type(self.label).__name__}"
            )
        if self.passed is not None and not isinstance(self.passed, bool):
            raise TypeError(f"Score {self.name!r}: passed must be True, False or None")
        if self.kind not in KINDS:
            raise ConfigurationError(f"Score {self.name!r}: kind must be one of {', '.join(KINDS)}")

    @property
    def scored(self) -> bool:
        """Whether there is a value or a label (``False`` for an error or an unparseable verdict)."""
        return self.value is not None or self.label is not None

    def with_updates(self, **changes: Any) -> Score:
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The fields that are set, as a plain dict (for JSONL)."""
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Score:
        """The inverse of :meth:`as_dict`."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def event_attributes(score: Score) -> dict[str, Any]:
    """The ``gen_ai.evaluation.result`` attributes of ``score`` (plus otelite's own)."""
    attrs: dict[str, Any] = {
        sc.GEN_AI_EVALUATION_NAME: score.name,
        sc.OTELITE_EVALUATION_KIND: score.kind,
    }
    optional: tuple[tuple[str, Any], ...] = (
        (sc.GEN_AI_EVALUATION_SCORE_VALUE, score.value),
        (sc.GEN_AI_EVALUATION_SCORE_LABEL, score.label),
        (sc.GEN_AI_EVALUATION_EXPLANATION, score.explanation),
        (sc.OTELITE_EVALUATION_PASSED, score.passed),
        (sc.OTELITE_EVALUATION_SOURCE, score.source),
        (sc.OTELITE_EVALUATION_COMMENT, score.comment),
        (sc.OTELITE_EVALUATION_ERROR, score.error),
        (sc.OTELITE_EVALUATION_AGREEMENT, score.agreement),
        (sc.OTELITE_EVALUATION_SAMPLES, score.samples),
    )
    for key, value in optional:
        if value is not None:
            attrs[key] = value
    if score.error is not None:
        attrs[sc.ERROR_TYPE] = score.error.split(":", 1)[0]
    return attrs


def _usage_attributes(score: Score) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for key, value in (
        (sc.OTELITE_EVALUATION_INPUT_TOKENS, score.input_tokens),
        (sc.OTELITE_EVALUATION_OUTPUT_TOKENS, score.output_tokens),
        (sc.OTELITE_EVALUATION_COST, score.cost),
    ):
        if value is not None:
            attrs[key] = value
    return attrs


def start_span(name: str, parent: Optional[SpanContext] = None) -> Span:
    """Start the ``evaluation {name}`` span, child of ``parent`` (else of the current span)."""
    context = None
    if parent is not None:
        context = trace.set_span_in_context(NonRecordingSpan(parent), otel_context.Context())
    return _state.active().tracer.start_span(
        f"evaluation {name}",
        context=context,
        kind=SpanKind.INTERNAL,
        attributes={
            sc.GEN_AI_EVALUATION_NAME: name,
            sc.OTELITE_SPAN_KIND: EVALUATION_SPAN_KIND,
            sc.OTELITE_TRAFFIC: sc.TRAFFIC_EVALUATION,
        },
    )


# Explanations of these kinds are written by otelite or by a person on purpose; those of
# heuristics and judges can quote the evaluated text, so they follow content capture.
_EXPLANATION_ALWAYS_KEPT = frozenset({"check", "human"})


def end_span(span: Span, score: Score, response_id: Optional[str] = None) -> None:
    """Put ``score`` on its evaluation span (attributes and the event) and end it.

    Explanations that may quote content are recorded (redacted and size-capped)
    only when content capture is on. The error text is always redacted.
    """
    try:
        if span.is_recording():
            content = _state.active().content
            if score.error is not None:
                score = score.with_updates(error=content.clean_error(score.error))
            if score.explanation is not None:
                if score.kind in _EXPLANATION_ALWAYS_KEPT or content.capture:
                    score = score.with_updates(explanation=content.clean(score.explanation))
                else:
                    score = score.with_updates(explanation=None)
            if score.comment is not None:
                score = score.with_updates(comment=cap_text(score.comment))
            attrs = event_attributes(score)
            if response_id:
                attrs[sc.GEN_AI_RESPONSE_ID] = response_id
            span.set_attributes({**attrs, **_usage_attributes(score)})
            span.add_event(sc.GEN_AI_EVALUATION_RESULT, attrs)
            if score.error is not None:
                span.set_status(Status(StatusCode.ERROR, score.error))
    finally:
        span.end()
    with _guard.contained("recording the score metric"):
        _metrics.record_score(
            _state.active().meter, score.name, score.value, score.kind, score.passed
        )


def _parse_id(argument: str, value: Union[str, int], width: int) -> int:
    if isinstance(value, bool):
        raise TypeError(f"otelite.score(): {argument} must be a hex string or an int")
    if isinstance(value, int):
        parsed = value
    elif isinstance(value, str):
        text = value.strip().lower()
        text = text[2:] if text.startswith("0x") else text
        try:
            parsed = int(text, 16)
        except ValueError:
            raise ConfigurationError(
                f"otelite.score(): {argument} {value!r} is not hexadecimal; pass the id as "
                f"shown by `otelite traces` ({width} hex digits)"
            ) from None
    else:
        raise TypeError(
            f"otelite.score(): {argument} must be a hex string or an int, got {type(value).__name__}"
        )
    if parsed <= 0 or parsed >= 1 << (width * 4):
        raise ConfigurationError(
            f"otelite.score(): {argument} {value!r} is not a valid {width}-digit id"
        )
    return parsed


def score(
    name: Union[str, Score],
    value: Optional[float] = None,
    *,
    label: Optional[str] = None,
    passed: Optional[bool] = None,
    trace_id: Union[str, int, None] = None,
    span_id: Union[str, int, None] = None,
    comment: Optional[str] = None,
    explanation: Optional[str] = None,
    source: str = "human",
) -> Score:
    """Attach a score to a recorded span (or the current one), even after it has ended.

    ``name`` may also be a :class:`Score` an evaluator returned, which is recorded
    as it is (``otelite.score(evals.is_json()(input=q, output=answer))``). Give
    ``trace_id`` and ``span_id`` (hex strings as ``otelite traces`` shows them,
    or ints) to score a span from an earlier request, e.g. from a feedback button;
    leave both out to score the current span. The score is exported like any span
    data and kept in the local store.

    Raises:
        ValueError: no span is current and no ids were given, or an argument is invalid.

    Example:
        >>> import otelite
        >>> with otelite.span("answer"):
        ...     s = otelite.score("thumbs_up", 1, comment="great answer")
        >>> s.kind
        'human'
    """
    if (trace_id is None) != (span_id is None):
        raise ConfigurationError("otelite.score(): give both trace_id and span_id, or neither")
    if trace_id is not None and span_id is not None:
        target = SpanContext(
            _parse_id("trace_id", trace_id, 32),
            _parse_id("span_id", span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    else:
        target = trace.get_current_span().get_span_context()
        if not target.is_valid:
            raise ConfigurationError(
                "otelite.score(): no span is current; pass trace_id= and span_id= of the span "
                "to score, or call it inside a traced function"
            )
    if isinstance(name, Score):
        if value is not None or label is not None or passed is not None:
            raise ConfigurationError(
                "otelite.score(): a Score carries its own value, label and passed"
            )
        result = name
        if comment is not None:
            result = result.with_updates(comment=comment)
    else:
        if comment is not None and not isinstance(comment, str):
            raise TypeError("otelite.score(): comment must be a str")
        if not isinstance(source, str) or not source:
            raise ConfigurationError(
                "otelite.score(): source must be a non-empty str such as 'human'"
            )
        kind = "human" if source == "human" else "heuristic"
        result = Score(
            name,
            value,
            label=label,
            passed=passed,
            explanation=explanation,
            kind=kind,
            source=source,
            comment=comment,
        )
    end_span(start_span(result.name, target), result)
    return result
