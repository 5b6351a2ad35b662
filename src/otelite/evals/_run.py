"""Experiment runs: a task over every dataset row, scored by evaluators, traced, summarised.

Each row (and each repeat) is one trace: an ``evaluate {run}`` root span, the
task's span under it, and one ``evaluation {name}`` span per evaluator under the
task's span (the evaluated span). Every span of a run is marked
``otelite.traffic=evaluation``, so its LLM cost never mixes with production's.
A failing task or evaluator is recorded on its row and the run goes on.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Callable, Optional, TextIO, Union

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from otelite import _context, _scores, _spans, _state
from otelite import _semconv as sc
from otelite._exceptions import ConfigurationError
from otelite._scores import Score
from otelite.evals._dataset import Dataset, Example, as_dataset
from otelite.evals._heuristics import check_evaluators, evaluator_name
from otelite.evals._results import ROW_SPAN_KIND, EvalRun, RowResult


class _Progress:
    """``name: 37/200 rows, 2 errors`` on one terminal line, when stderr is a terminal."""

    def __init__(self, name: str, total: int, enabled: Optional[bool], stream: TextIO) -> None:
        self.name, self.total, self.stream = name, total, stream
        self.enabled = stream.isatty() if enabled is None else enabled
        self.done = self.errors = 0
        self._lock = threading.Lock()

    def step(self, error: bool) -> None:
        with self._lock:
            self.done += 1
            self.errors += error
            if self.enabled:
                self.stream.write(
                    f"\r{self.name}: {self.done}/{self.total} rows, {self.errors} errors"
                )
                if self.done == self.total:
                    self.stream.write("\n")
                self.stream.flush()


def _score_from(name: str, result: Any) -> Score:
    if isinstance(result, Score):
        return result
    if isinstance(result, bool):
        return Score(
            name, 1.0 if result else 0.0, label="pass" if result else "fail", passed=result
        )
    if isinstance(result, (int, float)):
        return Score(name, float(result))
    raise TypeError(
        f"the evaluator returned {type(result).__name__}; return a Score, a bool or a number"
    )


def _accepted_names(func: Callable[..., Any]) -> Optional[frozenset[str]]:
    """The keyword names ``func`` accepts; ``None`` when it takes ``**kwargs`` (or cannot tell)."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return frozenset(params)


def _error_text(exc: BaseException) -> str:
    return _spans.error_text(exc)  # redacted; an HTTP error's body only when content is captured


class _Runner:
    def __init__(
        self,
        name: str,
        run_id: str,
        task: Callable[..., Any],
        evaluators: Sequence[Any],
        progress: _Progress,
    ) -> None:
        self.name, self.run_id, self.task = name, run_id, task
        self.evaluators = evaluators
        self.names = [evaluator_name(e) for e in evaluators]
        # Read once per run, not once per row.
        self.accepts = {id(e): _accepted_names(e) for e in evaluators}
        self.progress = progress
        self.task_name = getattr(task, "__qualname__", None) or getattr(task, "__name__", "task")

    def _root(self, example: Example, index: int, repeat: int) -> Span:
        return _state.active().tracer.start_span(
            f"evaluate {self.name}",
            kind=SpanKind.INTERNAL,
            attributes={
                sc.OTELITE_SPAN_KIND: ROW_SPAN_KIND,
                sc.OTELITE_EVAL_RUN_NAME: self.name,
                sc.OTELITE_EVAL_RUN_ID: self.run_id,
                sc.OTELITE_EVAL_ROW: index,
                sc.OTELITE_EVAL_REPEAT: repeat,
                sc.OTELITE_TRAFFIC: sc.TRAFFIC_EVALUATION,
            },
            context=trace.set_span_in_context(trace.INVALID_SPAN),
        )

    def _task_span(self) -> Span:
        return _state.active().tracer.start_span(
            f"task {self.task_name}",
            kind=SpanKind.INTERNAL,
            attributes={sc.OTELITE_SPAN_KIND: "task", sc.OTELITE_TRAFFIC: sc.TRAFFIC_EVALUATION},
        )

    def _record_io(self, span: Span, key: str, value: Any) -> None:
        content = _state.active().content
        if content.capture and span.is_recording():
            span.set_attribute(key, content.render(value))

    def _evaluator_kwargs(self, evaluator: Any, row: RowResult, task_span: Span) -> dict[str, Any]:
        """What ``evaluator`` is called with: the row, its metadata and the task's figures.

        Evaluators without ``**kwargs`` get only the names they accept.
        """
        ctx = task_span.get_span_context()
        kwargs = {
            **dict(row.example.metadata),
            "input": row.example.input,
            "output": row.output,
            "expected": row.example.expected,
            "latency_s": row.latency_s,
            "cost": row.cost,
            "trace_id": format(ctx.trace_id, "032x"),
            "span_id": format(ctx.span_id, "016x"),
        }
        accepted = self.accepts[id(evaluator)]
        return kwargs if accepted is None else {k: v for k, v in kwargs.items() if k in accepted}

    def _finish_score(self, name: str, span: Span, result: Any, started: float) -> Score:
        try:
            score = _score_from(name, result)
        except Exception as exc:
            score = Score(
                name, error=_error_text(exc), explanation="the evaluator's result is not a score"
            )
        if score.name != name:
            score = score.with_updates(name=name)
        if score.latency_s is None:
            score = score.with_updates(latency_s=time.perf_counter() - started)
        _scores.end_span(span, score)
        return score

    @contextmanager
    def _row(self, example: Example, index: int, repeat: int) -> Iterator[RowResult]:
        """The row's trace: its root span, current inside the block, marked evaluation traffic."""
        row = RowResult(index, repeat, example)
        with _context.attributes({sc.OTELITE_TRAFFIC: sc.TRAFFIC_EVALUATION}):
            root = self._root(example, index, repeat)
            row.trace_id = format(root.get_span_context().trace_id, "032x")
            with trace.use_span(root, end_on_exit=True):
                yield row
                if row.error is not None:
                    _spans.record_error(root, RuntimeError(row.error))
        self.progress.step(row.error is not None)

    @contextmanager
    def _task(self, row: RowResult) -> Iterator[Span]:
        """The task's span and usage tally; an exception in the block becomes the row's error."""
        task_span = self._task_span()
        with trace.use_span(task_span, end_on_exit=True), _context.tally() as spent:
            self._record_io(task_span, sc.OTELITE_INPUT, row.example.input)
            started = time.perf_counter()
            try:
                yield task_span
            except Exception as exc:
                row.error = _error_text(exc)
                _spans.record_error(task_span, exc)
            else:
                self._record_io(task_span, sc.OTELITE_OUTPUT, row.output)
            row.latency_s = time.perf_counter() - started
        row.input_tokens, row.output_tokens = spent.input_tokens, spent.output_tokens
        row.cost = spent.cost if spent.calls > spent.unpriced else None
        row.llm_calls, row.unpriced_calls = spent.calls, spent.unpriced

    # -- sync --

    def run_row(self, example: Example, index: int, repeat: int) -> RowResult:
        with self._row(example, index, repeat) as row:
            with self._task(row) as task_span:
                result = self.task(example.input)
                row.output = _run_coroutine(result) if inspect.isawaitable(result) else result
            if row.error is None:
                for evaluator, name in zip(self.evaluators, self.names):
                    row.scores[name] = self._evaluate_sync(evaluator, name, row, task_span)
        return row

    def _evaluate_sync(self, evaluator: Any, name: str, row: RowResult, task_span: Span) -> Score:
        span = _scores.start_span(name, task_span.get_span_context())
        started = time.perf_counter()
        with trace.use_span(span, end_on_exit=False):
            try:
                result = evaluator(**self._evaluator_kwargs(evaluator, row, task_span))
                if inspect.isawaitable(result):
                    result = _run_coroutine(result)
            except Exception as exc:
                result = Score(name, error=_error_text(exc), explanation="the evaluator raised")
        return self._finish_score(name, span, result, started)

    # -- async --

    async def arun_row(self, example: Example, index: int, repeat: int) -> RowResult:
        with self._row(example, index, repeat) as row:
            with self._task(row) as task_span:
                result = self.task(example.input)
                row.output = await result if inspect.isawaitable(result) else result
            if row.error is None:
                for evaluator, name in zip(self.evaluators, self.names):
                    row.scores[name] = await self._evaluate_async(evaluator, name, row, task_span)
        return row

    async def _evaluate_async(
        self, evaluator: Any, name: str, row: RowResult, task_span: Span
    ) -> Score:
        span = _scores.start_span(name, task_span.get_span_context())
        started = time.perf_counter()
        kwargs = self._evaluator_kwargs(evaluator, row, task_span)
        with trace.use_span(span, end_on_exit=False):
            try:
                if _is_async(evaluator):
                    result = await evaluator(**kwargs)
                else:
                    # Sync evaluators (a judge waiting on HTTP) run on a thread, off the loop.
                    result = await _to_thread(evaluator, **kwargs)
                    if inspect.isawaitable(result):
                        result = await result
            except Exception as exc:
                result = Score(name, error=_error_text(exc), explanation="the evaluator raised")
        return self._finish_score(name, span, result, started)


def _is_async(func: Any) -> bool:
    method = type(func).__dict__.get("__call__")  # an object whose __call__ is async
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(method)


def _run_coroutine(awaitable: Any) -> Any:
    async def wrap() -> Any:
        return await awaitable

    return asyncio.run(wrap())


async def _to_thread(func: Callable[..., Any], **kwargs: Any) -> Any:
    loop = asyncio.get_running_loop()
    call = _context.bind_context(lambda: func(**kwargs))
    return await loop.run_in_executor(None, call)


def _prepare(
    data: Any, task: Any, evaluators: Any, max_concurrency: Any, repeats: Any, name: Optional[str]
) -> tuple[Dataset, list[Any], str]:
    dataset = as_dataset(data)
    if not callable(task):
        raise TypeError("task: give the function to evaluate, called as task(input)")
    checked = check_evaluators(evaluators)
    for argument, value in (("max_concurrency", max_concurrency), ("repeats", repeats)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{argument}: give a whole number of 1 or more, got {value!r}")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ConfigurationError("name: give the run a non-empty name")
    return dataset, checked, name or f"{getattr(task, '__name__', 'task')}-{dataset.name}"


def evaluate(
    data: Union[Dataset, Sequence[Mapping[str, Any]]],
    task: Callable[..., Any],
    evaluators: Sequence[Any],
    *,
    max_concurrency: int = 8,
    repeats: int = 1,
    name: Optional[str] = None,
    progress: Optional[bool] = None,
) -> EvalRun:
    """Run ``task`` on every row concurrently, score each output, and summarise.

    ``task(input)`` may be sync or async. Each evaluator is called as
    ``evaluator(input=..., output=..., expected=..., **metadata)``, where the
    metadata holds the row's metadata plus ``latency_s``, ``cost``, ``trace_id``
    and ``span_id`` of the task (evaluators that do not take ``**kwargs`` get only
    the names they accept). ``repeats`` runs every row several times. Progress is
    shown on a terminal (``progress=False`` hides it). Call :func:`aevaluate`
    from async code.

    Example:
        >>> from otelite import evals
        >>> run = evals.evaluate(
        ...     [{"input": "2+2", "expected": "4"}], lambda q: str(eval(q)), [evals.exact_match()]
        ... )
        >>> run.summary.evaluators["exact_match"].pass_rate
        1.0
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "evaluate() was called inside a running event loop; use `await evals.aevaluate(...)`"
        )
    dataset, checked, run_name = _prepare(data, task, evaluators, max_concurrency, repeats, name)
    if inspect.iscoroutinefunction(task):
        return asyncio.run(
            aevaluate(
                dataset,
                task,
                checked,
                max_concurrency=max_concurrency,
                repeats=repeats,
                name=run_name,
                progress=progress,
            )
        )
    jobs = [(ex, i, r) for r in range(repeats) for i, ex in enumerate(dataset)]
    runner = _Runner(
        run_name,
        uuid.uuid4().hex[:12],
        task,
        checked,
        _Progress(run_name, len(jobs), progress, sys.stderr),
    )
    started = time.perf_counter()
    with _context.ContextThreadPoolExecutor(
        max_workers=max_concurrency, thread_name_prefix="otelite-eval"
    ) as pool:
        futures: list[Future[RowResult]] = [pool.submit(runner.run_row, *job) for job in jobs]
        rows = [f.result() for f in futures]
    return EvalRun(run_name, runner.run_id, rows, runner.names, time.perf_counter() - started)


async def aevaluate(
    data: Union[Dataset, Sequence[Mapping[str, Any]]],
    task: Callable[..., Any],
    evaluators: Sequence[Any],
    *,
    max_concurrency: int = 8,
    repeats: int = 1,
    name: Optional[str] = None,
    progress: Optional[bool] = None,
) -> EvalRun:
    """:func:`evaluate` for async code: rows run as tasks, at most ``max_concurrency`` at once.

    Example:
        >>> import asyncio
        >>> from otelite import evals
        >>> async def answer(q: str) -> str:
        ...     return "4"
        >>> run = asyncio.run(evals.aevaluate([{"input": "2+2", "expected": "4"}], answer, [evals.exact_match()]))
        >>> run.summary.rows
        1
    """
    dataset, checked, run_name = _prepare(data, task, evaluators, max_concurrency, repeats, name)
    jobs = [(ex, i, r) for r in range(repeats) for i, ex in enumerate(dataset)]
    runner = _Runner(
        run_name,
        uuid.uuid4().hex[:12],
        task,
        checked,
        _Progress(run_name, len(jobs), progress, sys.stderr),
    )
    limit = asyncio.Semaphore(max_concurrency)

    async def one(job: tuple[Example, int, int]) -> RowResult:
        async with limit:
            return await runner.arun_row(*job)

    started = time.perf_counter()
    rows = list(await asyncio.gather(*(one(job) for job in jobs)))
    return EvalRun(run_name, runner.run_id, rows, runner.names, time.perf_counter() - started)
