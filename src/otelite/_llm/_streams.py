"""Stream proxies: the caller keeps its stream object; the span ends exactly once.

A proxy stands in for the client library's stream (``isinstance`` still holds,
every attribute and method passes through). It reports each chunk to a
:class:`StreamRecorder` and ends the span when the stream is exhausted, raises,
is closed, is exited as a context manager, or is garbage-collected unfinished
(users break out of loops and drop streams; peers leak those spans forever).
"""

from __future__ import annotations

import operator
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional

import wrapt

from otelite import _guard
from otelite._llm._call import Accumulator, Clock, Invocation, Outcome, stop_clock

if TYPE_CHECKING:
    from otelite._llm._lean import Lean

    _Proxy = wrapt.ObjectProxy[Any]
else:
    _Proxy = wrapt.ObjectProxy

# (accumulator, lean call, first chunk's time, gaps, when it ended) -> whether it ended the call
LeanEnder = Callable[[Any, "Lean", Optional[float], list[float], Clock], bool]


_now = time.perf_counter

# Chunks read in one batch: a stream's chunks are read in a loop every BATCH chunks (and
# when it ends), not one call per chunk; at most this many wait.
BATCH = 64


class StreamRecorder:
    """Timing and accumulation of one stream; finishes its invocation exactly once.

    An accumulator with ``add_many`` (and ``hidden``) reads the chunks in batches,
    after the caller got them; any other is given each chunk as it arrives.
    """

    __slots__ = (
        "_accumulator",
        "_lean",
        "_open",
        "arrivals",
        "batched",
        "hidden",
        "invocation",
        "pending",
    )

    def __init__(
        self,
        invocation: Optional[Invocation],
        accumulator: Accumulator,
        lean: Optional[tuple[Lean, LeanEnder, Callable[[Lean], Invocation]]] = None,
    ) -> None:
        # A stream begun on the lean path (otelite._llm._lean) has no invocation: ``lean``
        # holds the call, what ends it from the accumulator, and what hands it over.
        self.invocation = invocation
        self._lean = lean
        self._open = [True]  # popped by the one finish: list.pop is atomic
        self._accumulator = accumulator
        self.batched = hasattr(accumulator, "add_many")
        # Asked only when the accumulator may hide chunks (a usage chunk otelite asked for).
        self.hidden: Optional[Callable[[Any], bool]] = (
            getattr(accumulator, "hidden", None) if getattr(accumulator, "hides", True) else None
        )
        # The chunks not read yet (batched accumulators); the proxies append to it and
        # call read_pending() when it holds BATCH chunks.
        self.pending: list[Any] = []
        # When each chunk arrived: the first chunk's time and the gaps are worked out once,
        # at the end, not per chunk.
        self.arrivals: list[float] = []

    def chunk(self, chunk: Any) -> bool:
        """Account for one chunk; ``True`` means the caller must not see it (see Accumulator.add)."""
        self.arrivals.append(_now())
        if not self.batched:
            try:
                return self._accumulator.add(chunk)
            except Exception as exc:
                _guard.report("reading a stream chunk", exc)
                return False
        pending = self.pending
        pending.append(chunk)
        if len(pending) >= BATCH:
            self.read_pending()
        return self.hidden is not None and self.hide(chunk)

    def hide(self, chunk: Any) -> bool:
        """Whether the caller must not see ``chunk`` (asked only when ``hidden`` is set)."""
        try:
            return bool(self.hidden(chunk))  # type: ignore[misc]
        except Exception as exc:
            _guard.report("reading a stream chunk", exc)
            return False

    def read_pending(self) -> None:
        """Read the chunks waiting in ``pending`` (emptied in place: the proxies hold it)."""
        pending = self.pending
        batch = pending[:]
        pending.clear()
        try:
            self._accumulator.add_many(batch)  # type: ignore[attr-defined]
        except Exception as exc:
            _guard.report("reading a stream chunk", exc)

    def finish(self, error: Optional[BaseException] = None) -> None:
        """End the span with what was seen so far (the stream ended, was closed, or failed).

        A stream left early (closed, exited, garbage-collected) is not an error:
        only ``error`` (the stream raised) makes it one.
        """
        ended = stop_clock()
        try:
            self._open.pop()
        except IndexError:
            return
        if self.pending:
            self.read_pending()
        arrivals = self.arrivals
        first = arrivals[0] if arrivals else None
        gaps = list(map(operator.sub, arrivals[1:], arrivals))  # each chunk's gap, in C
        invocation = self.invocation
        if self._lean is not None:
            lean, ender, handover = self._lean
            if error is None:
                try:
                    if ender(self._accumulator, lean, first, gaps, ended):
                        return
                except Exception as exc:
                    _guard.report("summarising a stream", exc)
            try:
                invocation = self.invocation = handover(lean)
            except Exception as exc:
                _guard.report("ending a stream span", exc)
                lean.span.end()
                return
        try:
            outcome = self._accumulator.outcome(error is not None)
        except Exception as exc:
            _guard.report("summarising a stream", exc)
            outcome = Outcome({})
        try:
            if invocation is not None:
                invocation.end(outcome, first, gaps, error, ended)
        except Exception as exc:
            _guard.report("ending a stream span", exc)


def _finish_abandoned(recorder: StreamRecorder) -> None:
    # Runs when the proxy is garbage-collected: the caller dropped the stream unfinished.
    recorder.finish()


class SyncStreamProxy(_Proxy):
    """Wraps a synchronous stream (iterator with ``close()`` and context manager)."""

    def __init__(self, wrapped: Any, recorder: StreamRecorder) -> None:
        super().__init__(wrapped)
        self._self_recorder = recorder
        self._self_finalizer = weakref.finalize(self, _finish_abandoned, recorder)

    def __iter__(self) -> Iterator[Any]:
        # A loop gets a generator: resuming it costs less than a call of __next__ per chunk.
        # next(stream) still works, through __next__; both read the same stream in turn.
        if self._self_recorder.batched:
            return self._self_batches()
        return self._self_each()

    def _self_batches(self) -> Iterator[Any]:
        # StreamRecorder.chunk, inline, for an accumulator that reads batches: per chunk a
        # timestamp and an append; whether the caller may see it is asked only of a chunk
        # with usage (the usage-only chunk otelite asked for is the one it hides).
        recorder = self._self_recorder
        step = self.__wrapped__.__next__
        pending, hides, hide = recorder.pending, recorder.hidden is not None, recorder.hide
        mark, keep, now, batch = recorder.arrivals.append, pending.append, _now, BATCH
        while True:
            try:
                chunk = step()
            except StopIteration:
                self._self_finalizer()
                return
            except BaseException as exc:
                recorder.finish(exc)
                self._self_finalizer.detach()
                raise
            mark(now())
            keep(chunk)
            if len(pending) >= batch:
                recorder.read_pending()
            if hides:
                try:
                    if chunk.__dict__["usage"] is not None and hide(chunk):
                        continue
                except (AttributeError, KeyError, TypeError):  # not an openai model
                    if hide(chunk):
                        continue
            yield chunk

    def _self_each(self) -> Iterator[Any]:
        recorder = self._self_recorder
        step = self.__wrapped__.__next__
        while True:
            try:
                chunk = step()
            except StopIteration:
                self._self_finalizer()
                return
            except BaseException as exc:
                recorder.finish(exc)
                self._self_finalizer.detach()
                raise
            if not recorder.chunk(chunk):
                yield chunk
            # else a usage-only chunk otelite asked for: the caller never sees it.

    def __next__(self) -> Any:
        while True:
            try:
                chunk = self.__wrapped__.__next__()
            except StopIteration:
                self._self_finalizer()
                raise
            except BaseException as exc:
                self._self_recorder.finish(exc)
                self._self_finalizer.detach()
                raise
            if not self._self_recorder.chunk(chunk):
                return chunk

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_finalizer()

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_finalizer()


class AsyncStreamProxy(_Proxy):
    """Wraps an asynchronous stream (async iterator with ``await close()``)."""

    def __init__(self, wrapped: Any, recorder: StreamRecorder) -> None:
        super().__init__(wrapped)
        self._self_recorder = recorder
        self._self_finalizer = weakref.finalize(self, _finish_abandoned, recorder)

    def __aiter__(self) -> AsyncIterator[Any]:
        # A loop gets an async generator: resuming it costs less than a coroutine of
        # __anext__ per chunk. anext(stream) still works, through __anext__.
        if self._self_recorder.batched:
            return self._self_batches()
        return self

    async def _self_batches(self) -> AsyncIterator[Any]:
        # As SyncStreamProxy._self_batches.
        recorder = self._self_recorder
        step = self.__wrapped__.__anext__
        pending, hides, hide = recorder.pending, recorder.hidden is not None, recorder.hide
        mark, keep, now, batch = recorder.arrivals.append, pending.append, _now, BATCH
        while True:
            try:
                chunk = await step()
            except StopAsyncIteration:
                self._self_finalizer()
                return
            except BaseException as exc:  # includes CancelledError: the task was cancelled
                recorder.finish(exc)
                self._self_finalizer.detach()
                raise
            mark(now())
            keep(chunk)
            if len(pending) >= batch:
                recorder.read_pending()
            if hides:
                try:
                    if chunk.__dict__["usage"] is not None and hide(chunk):
                        continue
                except (AttributeError, KeyError, TypeError):  # not an openai model
                    if hide(chunk):
                        continue
            yield chunk

    async def __anext__(self) -> Any:
        while True:
            try:
                chunk = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                self._self_finalizer()
                raise
            except (
                BaseException
            ) as exc:  # includes CancelledError: the task was cancelled mid-stream
                self._self_recorder.finish(exc)
                self._self_finalizer.detach()
                raise
            recorder = self._self_recorder
            if recorder.batched:  # StreamRecorder.chunk, inline: it runs for every chunk
                recorder.arrivals.append(_now())
                pending = recorder.pending
                pending.append(chunk)
                if len(pending) >= BATCH:
                    recorder.read_pending()
                if recorder.hidden is None or not recorder.hide(chunk):
                    return chunk
            elif not recorder.chunk(chunk):
                return chunk

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_finalizer()

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_finalizer()
