"""Stream proxies: the caller keeps its stream object; the span ends exactly once.

A proxy stands in for the client library's stream (``isinstance`` still holds,
every attribute and method passes through). It reports each chunk to a
:class:`StreamRecorder` and ends the span when the stream is exhausted, raises,
is closed, is exited as a context manager, or is garbage-collected unfinished
(users break out of loops and drop streams; peers leak those spans forever).
"""

from __future__ import annotations

import time
import weakref
from types import TracebackType
from typing import TYPE_CHECKING, Any, Optional

import wrapt

from otelite import _guard
from otelite._llm._call import Accumulator, Invocation, Outcome, stop_clock

if TYPE_CHECKING:
    _Proxy = wrapt.ObjectProxy[Any]
else:
    _Proxy = wrapt.ObjectProxy


_now = time.perf_counter

# Chunks read in one batch: a stream's chunks are read in a loop every BATCH chunks (and
# when it ends), not one call per chunk; at most this many wait.
BATCH = 64


class StreamRecorder:
    """Timing and accumulation of one stream; finishes its invocation exactly once.

    An accumulator with ``add_many`` (and ``hidden``) reads the chunks in batches,
    after the caller got them; any other is given each chunk as it arrives.
    """

    __slots__ = ("_accumulator", "_arrivals", "_batched", "_hidden", "_pending", "invocation")

    def __init__(self, invocation: Invocation, accumulator: Accumulator) -> None:
        self.invocation = invocation
        self._accumulator = accumulator
        self._batched = hasattr(accumulator, "add_many")
        # Asked only when the accumulator may hide chunks (a usage chunk otelite asked for).
        self._hidden = (
            getattr(accumulator, "hidden", None) if getattr(accumulator, "hides", True) else None
        )
        self._pending: list[Any] = []
        # When each chunk arrived: the first chunk's time and the gaps are worked out once,
        # at the end, not per chunk.
        self._arrivals: list[float] = []

    def chunk(self, chunk: Any) -> bool:
        """Account for one chunk; ``True`` means the caller must not see it (see Accumulator.add)."""
        self._arrivals.append(_now())
        if not self._batched:
            try:
                return self._accumulator.add(chunk)
            except Exception as exc:
                _guard.report("reading a stream chunk", exc)
                return False
        pending = self._pending
        pending.append(chunk)
        if len(pending) >= BATCH:
            self._read_pending()
        hidden = self._hidden
        if hidden is None:
            return False
        try:
            return bool(hidden(chunk))
        except Exception as exc:
            _guard.report("reading a stream chunk", exc)
            return False

    def _read_pending(self) -> None:
        pending, self._pending = self._pending, []
        try:
            self._accumulator.add_many(pending)  # type: ignore[attr-defined]
        except Exception as exc:
            _guard.report("reading a stream chunk", exc)

    def finish(self, error: Optional[BaseException] = None) -> None:
        """End the span with what was seen so far (the stream ended, was closed, or failed).

        A stream left early (closed, exited, garbage-collected) is not an error:
        only ``error`` (the stream raised) makes it one.
        """
        ended = stop_clock()
        if self._pending:
            self._read_pending()
        try:
            outcome = self._accumulator.outcome(error is not None)
        except Exception as exc:
            _guard.report("summarising a stream", exc)
            outcome = Outcome({})
        arrivals = self._arrivals
        first = arrivals[0] if arrivals else None
        gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
        try:
            self.invocation.end(outcome, first, gaps, error, ended)
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
        self._self_chunk = recorder.chunk
        self._self_finalizer = weakref.finalize(self, _finish_abandoned, recorder)

    def __iter__(self) -> SyncStreamProxy:
        return self

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
            if not self._self_chunk(chunk):
                return chunk
            # A usage-only chunk otelite asked for: the caller never sees it.

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
        self._self_chunk = recorder.chunk
        self._self_finalizer = weakref.finalize(self, _finish_abandoned, recorder)

    def __aiter__(self) -> AsyncStreamProxy:
        return self

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
            if not self._self_chunk(chunk):
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
