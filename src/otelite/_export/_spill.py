"""The batch processor's outbox path: spilling a full queue, and exporting in queue order.

With an outbox behind an OTLP processor, a slow collector no longer costs spans:

* the worker makes one direct attempt per batch while the outbox holds nothing for its
  URL; a failed attempt is kept in the outbox. While rows wait there, new batches are
  written behind them (no direct attempt), so the sender delivers in order;
* spans past the queue's span count (``OTEL_BSP_MAX_QUEUE_SIZE``) are not dropped: a
  spill thread takes the oldest spans from the queue and writes them to the outbox as
  OTLP requests. The caller never blocks (it only appends to the queue and, once,
  wakes the thread); memory stays bounded by the queue's memory cap, past which spans
  are dropped and counted (``queue_full``), as are spans the outbox could not keep.

Order within a trace: spans are taken from the head of the queue, and rows written,
under one lock (the worker's batch and the spill thread's chunks never interleave on
disk). A direct attempt releases that lock while it waits on the collector: rows the
spill thread writes meanwhile go behind room reserved for the attempt's requests
(:meth:`otelite._outbox.Outbox.begin_direct`), and the outbox's sender waits until the
attempt is over, so the older spans are delivered first whatever the answer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Optional

from otelite import _guard
from otelite._export._otlp import encode_spans_request

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

    from otelite._export._batch import BatchProcessor
    from otelite._outbox import Outbox

logger = logging.getLogger("otelite")


def _encode(
    processor: BatchProcessor, spans: list[ReadableSpan]
) -> tuple[list[tuple[bytes, int]], int, int]:
    """``spans`` as OTLP requests under the size limit: (requests, spans not encodable, too large)."""
    chunks, too_large = processor._chunks(spans) if spans else ([], 0)
    requests: list[tuple[bytes, int]] = []
    failed = 0
    for chunk in chunks:
        try:
            requests.append((encode_spans_request(chunk), len(chunk)))
        except Exception as exc:
            _guard.report("encoding spans for export", exc)
            failed += len(chunk)
    return requests, failed, too_large


def keep(processor: BatchProcessor, spans: list[ReadableSpan]) -> int:
    """Put ``spans`` in the processor's outbox as OTLP requests; how many were kept."""
    outbox = processor.outbox
    if outbox is None:
        return 0
    requests, _, _ = _encode(processor, spans)
    return sum(n for body, n in requests if outbox.put(body, n))


def keep_taken(processor: BatchProcessor, taken: list[tuple[bytes, int]]) -> int:
    """Put the requests taken from the worker's direct attempt in the outbox, in order, in
    the room reserved for them; how many spans were kept."""
    outbox = processor.outbox
    if outbox is None:
        return 0
    return sum(n for body, n in taken if outbox.put(body, n, direct=True))


def export_via_outbox(
    processor: BatchProcessor,
    outbox: Outbox,
    batch: list[ReadableSpan],
    release_order: Callable[[], None],
) -> tuple[int, int, int]:
    """Export ``batch`` with an outbox behind: (exported, failed, too large) span counts.

    Called with the processor's order lock held (``release_order`` releases it).
    """
    requests, failed, too_large = _encode(processor, batch)
    kept = 0
    if outbox.has_pending():  # behind the rows already waiting: written now, in order
        for body, n in requests:
            if outbox.put(body, n):
                kept += n
            else:
                failed += n
        release_order()
        processor._count_kept(kept)
        return 0, failed, too_large
    outbox.begin_direct(len(requests))
    attempt = DirectAttempt(requests)
    cond = processor._cond
    with cond:
        processor._attempt = attempt
    release_order()  # the spill thread may write while the collector is waited on
    exported = 0
    keeping = False
    try:
        for index, (body, n) in enumerate(requests):
            if processor._stopped:  # shutdown gave up on this batch and counted it
                failed += n
                continue
            if not keeping:
                with cond:
                    if attempt.taken:
                        break
                    attempt.sending = index
                outcome = outbox.send_now(body)
                with cond:
                    if not attempt.settle(outcome, n):
                        break  # the exit kept this request and the rest
                if outcome == "sent":
                    exported += n
                    continue
                if outbox.last_error:  # not sent: `otelite status` shows why
                    processor._saw_error(outbox.last_error)
                if outcome == "refused":
                    logger.debug(
                        "otelite: %s refused a request: %s",
                        processor.destination,
                        outbox.last_error,
                    )
                    failed += n
                    continue
                keeping = True  # this request and the rest of the batch wait in the outbox
            if outbox.put(body, n, direct=True):
                kept += n
            else:
                failed += n
    finally:
        with cond:
            if processor._attempt is attempt:
                processor._attempt = None
        outbox.end_direct()
    processor._count_kept(kept)
    return exported, failed, too_large


class DirectAttempt:
    """The worker's direct attempt at one batch's requests, as the exit path may take it over.

    Guarded by the processor's condition. While a request is being sent (``sending``: its
    index), an exit whose budget runs out keeps it and the requests after it in the outbox
    (``taken``); the worker then settles nothing more of the batch. The collector may still
    get that request: the next process sends it again, as any request whose answer never
    arrived (span ids deduplicate).
    """

    __slots__ = ("exported", "refused", "requests", "sending", "taken")

    def __init__(self, requests: list[tuple[bytes, int]]) -> None:
        self.requests = requests
        self.sending: Optional[int] = None
        self.taken = False
        self.exported = 0  # spans of the requests answered 2xx so far
        self.refused = 0  # spans of the requests refused so far

    def settle(self, outcome: str, spans: int) -> bool:
        """The request being sent was answered (``cond`` held); ``False`` if the exit took it."""
        self.sending = None
        if self.taken:
            return False
        if outcome == "sent":
            self.exported += spans
        elif outcome == "refused":
            self.refused += spans
        return True

    def take(self) -> list[tuple[bytes, int]]:
        """The request being sent and the ones after it, no longer the worker's (``cond`` held)."""
        if self.sending is None or self.taken:
            return []
        self.taken = True
        return self.requests[self.sending :]


def spill_loop(processor: BatchProcessor) -> None:
    """The spill thread: moves the oldest spans past the queue's span count to the outbox."""
    cond = processor._cond
    outbox = processor.outbox
    limit = processor.max_queue
    if outbox is None or limit is None:
        return
    keep_in_memory = limit // 4  # spill down to this: rows of many spans, not one each

    def excess() -> int:
        return len(processor._queue) - limit

    while True:
        with cond:
            while not processor._stopped and not processor._stopping and excess() <= 0:
                cond.wait(1.0)
            if processor._stopped or excess() <= 0:
                processor._spiller = None
                cond.notify_all()
                return
        with processor._order:
            with cond:
                if processor._gave_up():
                    continue
                spans = processor._pop(len(processor._queue) - keep_in_memory)
                processor._spilling = len(spans)
            requests, failed, too_large = _encode(processor, spans)
            kept = 0
            for body, n in requests:
                if outbox.put(body, n):
                    kept += n
                else:
                    failed += n
        with cond:
            if processor._gave_up():  # shutdown counted them already
                continue
            processor._spilling = 0
            processor.outboxed += kept
            processor.dropped["queue_full"] += failed  # no room in memory, none on disk
            processor.dropped["too_large"] += too_large
            processor._settled += len(spans)
            cond.notify_all()
