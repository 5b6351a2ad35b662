"""otelite's batching span processor: bounded queue, export on its own thread, counted drops."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otelite import _delivery, _guard
from otelite import _semconv as sc
from otelite._content import redact_error_secrets
from otelite._export import _spill, _tally
from otelite._export._bounds import _forkables, _remaining, exiting, run_bounded
from otelite._export._otlp import _GRPC_EXPORTER_LOGGER
from otelite._export._sizes import (
    _REQUEST_MARGIN,
    _attributes_size,
    span_memory,
    span_size,
)
from otelite._export._store import LocalStoreExporter
from otelite._export._tally import DROP_REASONS, destination, undelivered_line

if TYPE_CHECKING:
    from otelite._outbox import Outbox


class _Once:
    """A lock taken now and released once, however many times ``release`` is called."""

    def __init__(self, lock: threading.Lock) -> None:
        lock.acquire()
        self._lock: Optional[threading.Lock] = lock

    def release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()


logger = logging.getLogger("otelite")


def _exporter_type(exporter: SpanExporter) -> str:
    if isinstance(exporter, LocalStoreExporter):
        return "otelite_local_store_exporter"
    module = type(exporter).__module__
    if module.startswith("opentelemetry.exporter.otlp"):
        return "otlp_grpc_span_exporter" if ".grpc" in module else "otlp_http_span_exporter"
    return type(exporter).__name__


class _ErrorCapture(logging.Filter):
    """Keeps the last warning an exporter logs on a processor's worker thread (its export error)."""

    def __init__(self, processor: BatchProcessor) -> None:
        super().__init__()
        self._processor = weakref.ref(processor)

    def filter(self, record: logging.LogRecord) -> bool:
        processor = self._processor()
        if (
            processor is not None
            and record.levelno >= logging.WARNING
            and record.thread == processor._worker_ident
        ):
            with contextlib.suppress(Exception):  # a log line must never fail
                processor._saw_error(record.getMessage())
        return True


class BatchProcessor(SpanProcessor):
    """Batches finished spans and exports them on its own daemon thread, within bounds.

    * The queue is bounded by a span count (``max_queue``, ``None`` for no count)
      and by memory (``max_queue_bytes``, estimated with :func:`span_memory`); a
      span that does not fit is dropped and counted (``queue_full``). The caller
      never waits for room.
    * With an ``outbox`` (and a memory cap), the span count is no drop limit: the
      spans beyond it spill to the outbox, written by a spill thread, oldest first
      (see :mod:`otelite._export._spill`); only the memory cap drops.
    * A span that ends once shutdown has begun is counted (``shutdown_timeout``).
    * ``force_flush(timeout_millis)`` and ``shutdown`` wait at most their timeout:
      a collector that hangs, refuses or retries only ever holds the worker thread.
      They return ``False`` when the spans were not all delivered in time.
    * With ``max_request_bytes``, a batch is split so that no request exceeds it;
      a single span larger than that is dropped and counted (``too_large``).
    * Spans that could not be delivered are counted by reason in :attr:`dropped`
      and summed up in one log line at shutdown.
    * After ``fork()`` the child gets a fresh lock, queue and worker thread.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue: Optional[int] = 2048,
        max_queue_bytes: Optional[int] = None,
        max_batch: int = 512,
        schedule_delay_s: float = 1.0,
        max_request_bytes: Optional[int] = None,
        shutdown_timeout_s: float = 2.0,
        outbox: Optional[Outbox] = None,
    ) -> None:
        self.exporter = exporter
        self.outbox = outbox
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.max_batch = max_batch
        self.schedule_delay_s = schedule_delay_s
        self.max_request_bytes = max_request_bytes
        self.shutdown_timeout_s = shutdown_timeout_s
        self.destination = destination(exporter)
        self.record_in: Optional[Path] = None  # the store db where drops and errors are kept
        self.kept_in: Optional[Path] = None  # the store that also holds this processor's spans
        self.resend: Optional[str] = None  # the command that sends them again
        self._reset()
        self._capture = _ErrorCapture(self)
        self._capture_loggers = {type(exporter).__module__, _GRPC_EXPORTER_LOGGER}
        for name in self._capture_loggers:
            logging.getLogger(name).addFilter(self._capture)
        _forkables.add(self)

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[ReadableSpan] = deque()
        self._sizes: deque[int] = deque()  # memory estimates, with max_queue_bytes
        self._queued_bytes = 0
        self._worker: Optional[threading.Thread] = None
        self._pid = os.getpid()
        self._accepted = 0  # spans ever put in the queue
        self._settled = 0  # of those, exported or dropped
        self._in_flight = 0
        self._order = threading.Lock()  # outbox rows are written in the order spans queued
        self._spiller: Optional[threading.Thread] = None
        self._spilling = 0  # spans the spill thread took from the queue, not yet written
        self._urgent = False
        self._stopping = False
        self._stopped = False
        self._summarised = False
        self._worker_ident: Optional[int] = None
        self._reported = 0  # drops already reported by a flush returning False
        self._last_error: Optional[str] = None  # not yet recorded in the store
        self._tally = _tally.register(self, _exporter_type(self.exporter))
        self.dropped = self._tally.dropped
        self._recorded: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.outboxed = 0  # spans kept in the outbox for later delivery (not dropped)
        self._attempt: Optional[_spill.DirectAttempt] = None  # the worker's, while it sends

    @property
    def exported(self) -> int:
        """Spans the exporter accepted."""
        return self._tally.exported

    def _saw_error(self, text: str) -> None:
        self._last_error = redact_error_secrets(" ".join(text.split()))[:1000]

    def _record(self) -> None:
        """Add the drops and the last error not yet recorded to the store (if one is known)."""
        db = self.record_in
        if db is None:
            return
        with self._cond:
            deltas = {r: n - self._recorded.get(r, 0) for r, n in self.dropped.items()}
            error, self._last_error = self._last_error, None
            if not any(deltas.values()) and error is None:
                return
            self._recorded = dict(self.dropped)
        try:
            _delivery.record(db, self.destination, sc.SIGNAL_SPANS, deltas, error, time.time())
        except Exception as exc:  # busy or unwritable: retried with the next change
            logger.debug("otelite: could not record undelivered spans in %s", db, exc_info=exc)
            with self._cond:
                for reason, n in deltas.items():
                    self._recorded[reason] = self._recorded.get(reason, 0) - n
                if self._last_error is None:
                    self._last_error = error

    def _after_fork(self) -> None:
        # The parent's thread does not exist here and its lock may be held forever;
        # the parent still delivers the spans queued before the fork.
        stopping = self._stopping
        self._reset()
        self._stopping = self._stopped = stopping

    # -- SpanProcessor ------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Optional[Context] = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if self._pid != os.getpid():  # forked without the at-fork hook (should not happen)
            self._after_fork()
        if not span.context or not span.context.trace_flags.sampled:
            return
        max_bytes = self.max_queue_bytes
        size = span_memory(span) if max_bytes is not None else 0
        with self._cond:
            if self._stopping:  # too late to be exported: counted, never discarded silently
                self.dropped["shutdown_timeout"] += 1
                return
            max_queue = self.max_queue
            full = max_queue is not None and len(self._queue) >= max_queue
            if (full and not self._spills()) or (
                max_bytes is not None and self._queued_bytes + size > max_bytes
            ):
                self.dropped["queue_full"] += 1
                return
            if full and len(self._queue) == max_queue:  # the first span past the count
                self._wake_spiller()
            self._queue.append(span)
            if max_bytes is not None:
                self._sizes.append(size)
                self._queued_bytes += size
            self._accepted += 1
            if self._worker is None:
                self._start_worker()
            if len(self._queue) >= self.max_batch:
                self._urgent = True
                self._cond.notify_all()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        token = self.begin_flush()
        return self.wait_flush(token, time.monotonic() + max(timeout_millis, 0) / 1000)

    def shutdown(self) -> None:
        self.shutdown_within(time.monotonic() + self.shutdown_timeout_s)

    # -- two-phase flush and shutdown (so that several processors drain in parallel) -----

    def begin_flush(self) -> tuple[int, int]:
        """Ask the worker to export what is queued now; returns what to wait for."""
        with self._cond:
            self._urgent = True
            self._cond.notify_all()
            return self._accepted, self._reported

    def wait_flush(self, token: tuple[int, int], deadline: float) -> bool:
        """Wait until the spans of ``token`` are settled; ``False`` on timeout or failure.

        A drop is reported by the first flush that ends after it (including drops of
        spans that never got into the queue), then not again.
        """
        target, reported = token
        with self._cond:
            while self._settled < target and self._worker is not None:
                remaining = _remaining(deadline)
                if remaining <= 0:
                    self._reported = max(self._reported, self._failures())
                    return False
                self._cond.wait(min(remaining, 0.05))
            failures = self._failures()
            self._reported = max(self._reported, failures)
            return self._settled >= target and failures == reported

    def begin_shutdown(self) -> None:
        """Stop taking spans and tell the worker to export what is queued, then stop."""
        with self._cond:
            self._stopping = True
            self._urgent = True
            self._cond.notify_all()
        if self.outbox is not None:
            # A request started now would still be in flight at exit, unanswered, and
            # sent again by the next process: the sender starts none from here on.
            self.outbox.stop_sending()

    def shutdown_within(self, deadline: float) -> bool:
        """Drain and stop before ``deadline``; count what is left. ``True`` if all was delivered."""
        self.begin_shutdown()
        with self._cond:
            if self._stopped:
                return True
            while (self._worker is not None and self._worker.is_alive()) or (
                self._spiller is not None and self._spiller.is_alive()
            ):
                remaining = _remaining(deadline)
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.05))
            queued = list(self._queue) if self.outbox is not None else []
            # At exit, a request the collector has not answered is kept with the queue
            # (the process will not see its answer); elsewhere the worker still may.
            taken: list[tuple[bytes, int]] = []
            attempt = self._attempt
            if attempt is not None and self.outbox is not None and exiting():
                taken = attempt.take()
                if taken:  # what the attempt settled before: as the worker would have
                    self._tally.exported += attempt.exported
                    self._tally.attempted += attempt.exported + attempt.refused
                    self.dropped["export_failed"] += attempt.refused
                    self._settled += attempt.exported + attempt.refused
                    self._in_flight -= attempt.exported + attempt.refused
            left = len(self._queue) + self._in_flight + self._spilling
            if left:
                self.dropped["shutdown_timeout"] += left
                self._settled += left
                self._queue.clear()
                self._sizes.clear()
                self._queued_bytes = 0
                self._in_flight = 0
                self._spilling = 0
            self._stopped = True
            self._cond.notify_all()
        # The exit path may write to disk: the requests taken from the worker, then the
        # spans still queued, go to the outbox (a batch in flight elsewhere than at exit
        # may still reach the collector: it stays counted as dropped).
        kept = 0
        if queued or taken:  # behind the rows the worker or the spill thread may be writing
            ordered = self._order.acquire(timeout=max(_remaining(deadline), 0.001))
            try:
                if taken:
                    kept = _spill.keep_taken(self, taken)
                if queued:
                    kept += self._keep(queued)
            finally:
                if ordered:
                    self._order.release()
        with self._cond:
            self.dropped["shutdown_timeout"] -= kept
            self.outboxed += kept
            failures = self._failures()
        if self.outbox is not None:
            self.outbox.close(wait_s=_remaining(deadline))
        # Unless an export is stuck, the exporter's shutdown does not block: run it even
        # when Python refuses new threads at exit (it closes the local store cleanly).
        run_bounded(
            self.exporter.shutdown,
            _remaining(deadline),
            "shutting down an exporter",
            inline_fallback=not left,
        )
        with _guard.contained("recording undelivered spans"):
            self._record()
        for name in self._capture_loggers:
            logging.getLogger(name).removeFilter(self._capture)
        self._summarise()
        return failures == 0

    # -- worker ---------------------------------------------------------------------------

    def _gave_up(self) -> bool:
        return self._stopped

    def _failures(self) -> int:
        # Spans kept in the outbox are not lost, but not delivered either: flush says False.
        return sum(self.dropped.values()) + self.outboxed

    def _keep(self, spans: list[ReadableSpan]) -> int:
        """Put ``spans`` in the outbox (one request per chunk); how many were kept."""
        return _spill.keep(self, spans)

    def _start_worker(self) -> None:
        worker = threading.Thread(target=self._run, name="otelite batch export", daemon=True)
        try:
            worker.start()
        except RuntimeError:  # at interpreter exit: the span stays queued and is counted
            return
        self._worker = worker

    def _pop(self, most: int) -> list[ReadableSpan]:
        """Take up to ``most`` spans from the head of the queue (``self._cond`` held)."""
        batch = [self._queue.popleft() for _ in range(min(most, len(self._queue)))]
        if self._sizes:
            sizes = self._sizes
            self._queued_bytes -= sum(sizes.popleft() for _ in range(len(batch)))
        return batch

    def _run(self) -> None:
        cond = self._cond
        self._worker_ident = threading.get_ident()
        while True:
            with cond:
                if not self._urgent and not self._stopping:
                    cond.wait(self.schedule_delay_s)
                if self._stopped or (self._stopping and not self._queue):
                    self._worker = None
                    cond.notify_all()
                    return
            # With an outbox, the worker and the spill thread take spans and write rows
            # under one lock, so that rows are in the order the spans were queued.
            order = _Once(self._order) if self.outbox is not None else None
            try:
                with cond:
                    batch = self._pop(self.max_batch)
                    self._in_flight = len(batch)
                    if not self._queue:
                        self._urgent = False
                if batch:
                    try:
                        exported, failed, too_large = self._export(batch, order)
                    except Exception as exc:  # a bug here must not kill the worker
                        _guard.report("exporting a batch of spans", exc)
                        exported, failed, too_large = 0, len(batch), 0
            finally:
                if order is not None:
                    order.release()
            if batch:
                with cond:
                    if self._gave_up():  # shutdown gave up on this batch and counted it already
                        self._worker = None
                        cond.notify_all()
                        return
                    self._tally.exported += exported
                    self._tally.attempted += exported + failed
                    self.dropped["export_failed"] += failed
                    self.dropped["too_large"] += too_large
                    self._settled += len(batch)
                    self._in_flight = 0
                    cond.notify_all()
                    changed = self._last_error is not None or self.dropped != self._recorded
                if changed and self.record_in is not None:
                    with _guard.contained("recording undelivered spans"):
                        self._record()

    def _chunks(self, batch: list[ReadableSpan]) -> tuple[list[list[ReadableSpan]], int]:
        limit = self.max_request_bytes
        if limit is None:
            return [batch], 0
        resource = batch[0].resource
        budget = (
            limit - _REQUEST_MARGIN - _attributes_size(resource.attributes if resource else None)
        )
        chunks: list[list[ReadableSpan]] = []
        current: list[ReadableSpan] = []
        used = too_large = 0
        for span in batch:
            size = span_size(span)
            if size > budget:
                too_large += 1
                continue
            if current and used + size > budget:
                chunks.append(current)
                current, used = [], 0
            current.append(span)
            used += size
        if current:
            chunks.append(current)
        return chunks, too_large

    def _export(self, batch: list[ReadableSpan], order: Optional[_Once]) -> tuple[int, int, int]:
        """Export ``batch``: (exported, failed, too large) span counts.

        With an outbox, ``order`` is held on entry and released before any wait on the
        collector (see :func:`otelite._export._spill.export_via_outbox`).
        """
        if self.outbox is not None and order is not None:
            return _spill.export_via_outbox(self, self.outbox, batch, order.release)
        exported = failed = 0
        chunks, too_large = self._chunks(batch)
        for chunk in chunks:
            if self._stopped:
                break
            try:
                result = self.exporter.export(chunk)
            except Exception as exc:
                logger.debug("otelite: exporting to %s failed", self.destination, exc_info=exc)
                self._saw_error(f"{type(exc).__name__}: {exc}")
                result = SpanExportResult.FAILURE
            if result == SpanExportResult.SUCCESS:
                exported += len(chunk)
            else:
                failed += len(chunk)
                if self._last_error is None:
                    self._last_error = f"the exporter reported a failure ({len(chunk)} spans)"
        return exported, failed, too_large

    # -- spilling to the outbox -----------------------------------------------------------

    def _spills(self) -> bool:
        """Whether spans past ``max_queue`` spill to the outbox (rather than being dropped)."""
        return self.outbox is not None and self.max_queue_bytes is not None

    def _wake_spiller(self) -> None:
        """Start the spill thread, or wake it (``self._cond`` held)."""
        if self._spiller is None:
            spiller = threading.Thread(
                target=_spill.spill_loop, args=(self,), name="otelite outbox spill", daemon=True
            )
            try:
                spiller.start()
            except RuntimeError:  # at interpreter exit: the spans stay queued and are counted
                return
            self._spiller = spiller
        self._cond.notify_all()

    def _count_kept(self, n: int) -> None:
        with self._cond:
            self.outboxed += n

    def _summarise(self) -> None:
        with self._cond:
            if self._summarised:
                return
            self._summarised = True
            dropped = {reason: n for reason, n in self.dropped.items() if n}
        outbox = self.outbox
        waiting = outbox.kept - outbox.delivered - outbox.evicted if outbox is not None else 0
        if outbox is not None and waiting > 0:
            logger.warning(
                "otelite: %d span(s) could not be delivered to %s yet: kept in the outbox %s, "
                "sent when otelite next runs with this endpoint",
                waiting,
                self.destination,
                outbox.path,
            )
        if dropped:
            logger.warning(
                "%s",
                undelivered_line(
                    sum(dropped.values()), self.destination, dropped, self.kept_in, self.resend
                ),
            )
