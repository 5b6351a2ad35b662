"""Online checks: cheap tests run on every instrumented LLM response.

``configure(checks=[...])`` installs them; the generic LLM-call wrapper runs them
just before the call's span ends. A check that fails puts its name in the span's
``otelite.checks.failed``, adds a ``gen_ai.evaluation.result`` event (label
``fail``) to the span, and adds one to the ``otelite.client.check.failures``
counter with the check's name, so a dashboard can alert on "refused", "slow" or
"failing" responses (the failure rate is that counter over the call count of
``gen_ai.client.operation.duration``). Passing checks record nothing.

Checks never raise into the call (a check that raises is reported once and
skipped) and never wait on the network: a judge may be used online only through
:func:`judge`, which samples calls and scores them on a background thread.

Size: over 500 lines because it holds the built-in checks, their configuration
parsing and the sampled online judge together, one small function each; splitting
them would scatter one concept (a check) over several files.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, Union, runtime_checkable

from opentelemetry.metrics import Counter, Meter
from opentelemetry.trace import Span, SpanContext

from otelite import _content, _guard, _messages, _scores, _spans
from otelite import _semconv as sc
from otelite._exceptions import ConfigurationError

logger = logging.getLogger("otelite")

FAIL_LABEL = "fail"


class Call:
    """What a check sees of one finished LLM call. Text is built only when a check asks."""

    __slots__ = (
        "_input",
        "_input_text",
        "_output",
        "_output_text",
        "duration_s",
        "error_type",
        "finish_reasons",
        "operation",
        "output_type",
        "provider",
        "refused",
        "request_model",
        "response_id",
        "response_model",
        "span_context",
    )

    def __init__(
        self,
        *,
        operation: str,
        provider: str,
        request_model: Optional[str] = None,
        response_model: Optional[str] = None,
        finish_reasons: Sequence[str] = (),
        output_type: Optional[str] = None,
        duration_s: float = 0.0,
        error_type: Optional[str] = None,
        refused: bool = False,
        response_id: Optional[str] = None,
        output_text: Union[str, Callable[[], str], None] = None,
        input_text: Union[str, Callable[[], str], None] = None,
        span_context: Optional[SpanContext] = None,
    ) -> None:
        self.operation = operation
        self.provider = provider
        self.request_model = request_model
        self.response_model = response_model
        self.finish_reasons = tuple(finish_reasons)
        self.output_type = output_type
        self.duration_s = duration_s
        self.error_type = error_type
        self.refused = refused
        self.response_id = response_id
        self._output = output_text
        self._output_text: Optional[str] = None
        self._input = input_text
        self._input_text: Optional[str] = None
        self.span_context = span_context

    @property
    def output_text(self) -> str:
        """The response's text (all choices, refusals and tool calls), ``""`` if none."""
        if self._output_text is None:
            source = self._output
            self._output_text = (source() if callable(source) else source) or ""
        return self._output_text

    @property
    def input_text(self) -> str:
        """The request's messages as text (``role: text`` lines), ``""`` if unknown."""
        if self._input_text is None:
            source = self._input
            self._input_text = (source() if callable(source) else source) or ""
        return self._input_text


def messages_text(content: Mapping[str, Any]) -> str:
    """A request's captured content (system instructions, input messages) as plain text."""
    return _messages.messages_text(
        content.get(sc.GEN_AI_INPUT_MESSAGES), system=content.get(sc.GEN_AI_SYSTEM_INSTRUCTIONS)
    )


@runtime_checkable
class Check(Protocol):
    """An online check: a ``name`` and a call returning why ``call`` failed, or ``None``."""

    @property
    def name(self) -> str:
        """The check's name: the failure counter's attribute and the event's evaluation name."""
        ...

    def __call__(self, call: Call) -> Optional[str]: ...


# --- built-in checks -------------------------------------------------------------------

_TEXT_OPERATIONS = frozenset({sc.OP_CHAT, sc.OP_TEXT_COMPLETION, "generate_content"})


@dataclass(frozen=True)
class Empty:
    """Fails a successful chat or completion whose response has no text and no tool calls."""

    name: str = "empty"

    def __call__(self, call: Call) -> Optional[str]:
        if call.error_type is not None or call.operation not in _TEXT_OPERATIONS:
            return None
        if call.output_text.strip():
            return None
        return "the response has no text and no tool calls"


DEFAULT_REFUSAL_PHRASES = (
    "i'm sorry, but i can't",
    "i'm sorry, but i cannot",
    "i am sorry, but i cannot",
    "i'm sorry, i can't",
    "sorry, i can't help",
    "i can't help with",
    "i cannot help with",
    "i can't assist with",
    "i cannot assist with",
    "i'm unable to help",
    "i am unable to help",
    "i'm not able to help",
    "i can't comply",
    "i cannot comply",
    "as an ai language model, i cannot",
)


@dataclass(frozen=True)
class Refusal:
    """Fails a response the model refused: OpenAI's ``refusal`` field, or a refusal phrase.

    Phrases are matched case-insensitively in the first 300 characters.
    """

    phrases: tuple[str, ...] = DEFAULT_REFUSAL_PHRASES
    name: str = "refusal"

    def __call__(self, call: Call) -> Optional[str]:
        if call.refused:
            return "the model refused (refusal field set)"
        if call.error_type is not None or call.operation not in _TEXT_OPERATIONS:
            return None
        head = call.output_text[:300].lower().replace("\u2019", "'")
        for phrase in self.phrases:
            if phrase in head:
                return f"the response reads as a refusal ({phrase!r})"
        return None


@dataclass(frozen=True)
class Truncated:
    """Fails a response cut at the token limit (``finish_reason == "length"``)."""

    name: str = "truncated"

    def __call__(self, call: Call) -> Optional[str]:
        if "length" in call.finish_reasons:
            return "finish_reason is 'length': the output was cut at the token limit"
        return None


@dataclass(frozen=True)
class Slow:
    """Fails a call that took longer than ``threshold_s`` seconds."""

    threshold_s: float
    name: str = "slow"

    def __post_init__(self) -> None:
        value = self.threshold_s
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ConfigurationError(
                f"checks.slow(threshold_s=...): give a number of seconds above 0, got {value!r}"
            )

    def __call__(self, call: Call) -> Optional[str]:
        if call.duration_s > self.threshold_s:
            return f"took {call.duration_s:.3f} s, over the {self.threshold_s:g} s threshold"
        return None


@dataclass(frozen=True)
class Failed:
    """Fails a call that ended in an error."""

    name: str = "error"

    def __call__(self, call: Call) -> Optional[str]:
        if call.error_type is not None:
            return f"the call failed ({call.error_type})"
        return None


@dataclass(frozen=True)
class InvalidJson:
    """Fails a response that is not valid JSON although JSON was requested (``response_format``).

    Refusals, tool calls and several choices are left to the other checks.
    """

    name: str = "invalid_json"

    def __call__(self, call: Call) -> Optional[str]:
        if call.output_type != "json" or call.error_type is not None or call.refused:
            return None
        if len(call.finish_reasons) > 1 or any(
            r in ("tool_calls", "function_call") for r in call.finish_reasons
        ):
            return None
        try:
            json.loads(call.output_text)
        except json.JSONDecodeError as exc:
            return f"JSON was requested but the output does not parse ({exc.msg} at char {exc.pos})"
        return None


# International numbers with a leading "+", or the North American (555) 123-4567 shape.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}(?:[ .\-]?\(?\d{1,4}\)?){2,5}|\(?\d{3}\)?[ .\-]\d{3}[ .\-]\d{4})(?![\w])"
)
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")


def find_personal_data(text: str) -> list[str]:
    """The kinds of personal data found in ``text``: ``email``, ``card``, ``phone``, ``ssn``.

    Example:
        >>> find_personal_data("write to ana@example.com or call +44 20 7946 0958")
        ['email', 'phone']
    """
    kinds = []
    if _content.EMAIL_PATTERN.search(text):
        kinds.append("email")
    if any(_content.is_card_number(m.group(0)) for m in _content.CARD_PATTERN.finditer(text)):
        kinds.append("card")
    if any(sum(c.isdigit() for c in m.group(0)) >= 8 for m in _PHONE.finditer(text)):
        kinds.append("phone")
    if _SSN.search(text):
        kinds.append("ssn")
    return kinds


@dataclass(frozen=True)
class PersonalData:
    """Fails a response whose text contains an e-mail address, card number, phone number or SSN."""

    name: str = "pii"

    def __call__(self, call: Call) -> Optional[str]:
        if call.error_type is not None:
            return None
        found = find_personal_data(call.output_text)
        if found:
            return "personal data in the output: " + ", ".join(found)
        return None


# --- judge checks: sampled, off the request path ---------------------------------------

MAX_PENDING_JUDGES = 64

_pool_lock = threading.Lock()
_pool: Optional[ThreadPoolExecutor] = None
_pending: set[Future[None]] = set()
_dropped = 0


def _submit(job: Callable[[], None]) -> bool:
    global _pool, _dropped
    with _pool_lock:
        if len(_pending) >= MAX_PENDING_JUDGES:
            _dropped += 1
            if _dropped == 1:
                logger.warning(
                    "otelite: %d online judge checks are already waiting; further calls are not "
                    "judged until they finish (lower sample_rate or use a faster judge)",
                    MAX_PENDING_JUDGES,
                )
            return False
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="otelite-judge")
        future = _pool.submit(job)
        _pending.add(future)
    future.add_done_callback(_forget)
    return True


def _forget(future: Future[None]) -> None:
    with _pool_lock:
        _pending.discard(future)


def wait_for_judges(timeout: Optional[float] = None) -> bool:
    """Wait until the sampled judge checks already started have recorded their scores.

    Returns ``False`` if some were still running when ``timeout`` passed.

    Example:
        >>> from otelite.evals import checks
        >>> checks.wait_for_judges(timeout=1.0)
        True
    """
    from concurrent.futures import wait

    with _pool_lock:
        running = list(_pending)
    if not running:
        return True
    _, not_done = wait(running, timeout=timeout)
    return not not_done


@dataclass(frozen=True)
class Judge:
    """A judge (any evaluator) run on a sample of live calls, on a background thread."""

    evaluator: Callable[..., Any]
    sample_rate: float
    name: str = ""
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        rate = self.sample_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1:
            raise ConfigurationError(
                f"checks.judge(sample_rate=...): give a fraction in (0, 1], such as 0.05, got {rate!r}"
            )
        if not callable(self.evaluator):
            raise ConfigurationError("checks.judge(): the evaluator must be callable")
        if not self.name:
            object.__setattr__(self, "name", str(getattr(self.evaluator, "name", "judge")))

    def __call__(self, call: Call) -> Optional[str]:
        if call.error_type is not None or call.span_context is None:
            return None
        if call.operation not in _TEXT_OPERATIONS or self.rng.random() >= self.sample_rate:
            return None
        # The texts are read now: the background job must not touch the live response.
        question, answer = call.input_text, call.output_text
        target, response_id = call.span_context, call.response_id
        meter_attrs = _counter_attributes(call, self.name)

        def job() -> None:
            with _guard.contained(f"the online judge check {self.name!r}"):
                span = _scores.start_span(self.name, target)
                try:
                    result = self.evaluator(input=question, output=answer)
                    if not isinstance(result, _scores.Score):
                        raise TypeError(
                            f"the evaluator returned {type(result).__name__}, expected a Score"
                        )
                except Exception as exc:
                    result = _scores.Score(
                        self.name, kind="llm_judge", error=_spans.error_text(exc)
                    )
                # end_span drops the judge's explanation unless content capture is on.
                _scores.end_span(span, result, response_id)
                if result.passed is False:
                    counter = failure_counter(_active_meter())
                    counter.add(1, meter_attrs)

        _submit(job)
        return None


def _active_meter() -> Meter:
    from otelite import _state

    return _state.active().meter


# --- running checks ----------------------------------------------------------------------

_counters_lock = threading.Lock()
_counters: dict[int, tuple[Meter, Counter]] = {}


def failure_counter(meter: Meter) -> Counter:
    """The ``otelite.client.check.failures`` counter on ``meter`` (created once per meter)."""
    found = _counters.get(id(meter))
    if found is not None and found[0] is meter:
        return found[1]
    with _counters_lock:
        counter = meter.create_counter(
            sc.METRIC_CHECK_FAILURES,
            unit="{response}",
            description="LLM responses that failed an online check, by check name",
        )
        _counters[id(meter)] = (meter, counter)
        return counter


def _counter_attributes(call: Call, name: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        sc.OTELITE_CHECK_NAME: name,
        sc.GEN_AI_OPERATION_NAME: call.operation,
        sc.GEN_AI_PROVIDER_NAME: call.provider,
    }
    if call.request_model:
        attrs[sc.GEN_AI_REQUEST_MODEL] = call.request_model
    return attrs


def run(checks: Sequence[Check], call: Call, span: Span, meter: Meter) -> list[str]:
    """Run ``checks`` on ``call``; record failures on ``span`` (still open) and the counter."""
    failed: list[tuple[str, str]] = []
    for check in checks:
        try:
            reason = check(call)
        except Exception as exc:
            _guard.report(f"the online check {getattr(check, 'name', check)!r}", exc)
            continue
        if reason:
            failed.append((check.name, str(reason)))
    if not failed:
        return []
    names = [name for name, _ in failed]
    with _guard.contained("recording online check failures"):
        if span.is_recording():
            span.set_attribute(sc.OTELITE_CHECKS_FAILED, names)
            for name, reason in failed:
                event = _scores.event_attributes(
                    _scores.Score(
                        name, label=FAIL_LABEL, passed=False, explanation=reason, kind="check"
                    )
                )
                if call.response_id:
                    event[sc.GEN_AI_RESPONSE_ID] = call.response_id
                span.add_event(sc.GEN_AI_EVALUATION_RESULT, event)
        counter = failure_counter(meter)
        for name in names:
            counter.add(1, _counter_attributes(call, name))
    return names


# --- configuration -----------------------------------------------------------------------

BUILTIN: Mapping[str, Callable[[], Check]] = {
    "empty": Empty,
    "refusal": Refusal,
    "truncated": Truncated,
    "error": Failed,
    "invalid_json": InvalidJson,
    "pii": PersonalData,
}


def parse_env(value: str, variable: str) -> tuple[Check, ...]:
    """``"empty,refusal,slow:5"``: built-in check names, ``slow`` with its threshold in seconds."""
    found: list[Check] = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, arg = item.partition(":")
        if name == "slow":
            try:
                found.append(Slow(float(arg)))
            except ValueError:
                raise ConfigurationError(
                    f"{variable}: write the slow check with its threshold in seconds, e.g. 'slow:5'"
                ) from None
        elif name in BUILTIN and not arg:
            found.append(BUILTIN[name]())
        else:
            raise ConfigurationError(
                f"{variable}: unknown check {item!r}; use {', '.join(BUILTIN)} or slow:SECONDS"
            )
    return tuple(found)


def validate(checks: Sequence[Any], argument: str = "checks") -> tuple[Check, ...]:
    """Refuse anything that is not a check, and judges that are not sampled."""
    if isinstance(checks, (str, bytes)) or not isinstance(checks, Sequence):
        raise ConfigurationError(
            f"{argument}: give a list of checks such as [evals.checks.refusal(), evals.checks.truncated()]"
        )
    out: list[Check] = []
    names: set[str] = set()
    for i, check in enumerate(checks):
        if getattr(check, "kind", None) == "llm_judge":
            raise ConfigurationError(
                f"{argument}[{i}]: an LLM judge cannot run on every call; sample it off the "
                "request path with evals.checks.judge(judge, sample_rate=0.05)"
            )
        name = getattr(check, "name", None)
        if not callable(check) or not isinstance(name, str) or not name:
            raise ConfigurationError(
                f"{argument}[{i}]: {check!r} is not a check; use one of evals.checks.* or an "
                "object with a `name` and a __call__(call) returning a failure reason or None"
            )
        if name in names:
            raise ConfigurationError(f"{argument}[{i}]: two checks are named {name!r}")
        names.add(name)
        out.append(check)
    return tuple(out)
