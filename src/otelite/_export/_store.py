"""The local store's exporter: writes batches of spans into the SQLite store."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otelite import _guard
from otelite._export._tally import _set_destination
from otelite.store._writer import SpanWriter

STORE_WRITE_ATTEMPTS = 4
"""Times a batch is written when SQLite answers "database is locked" (after its busy timeout)."""


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class LocalStoreExporter(SpanExporter):
    """Writes spans into the local SQLite store (used behind a BatchProcessor)."""

    def __init__(self, path: Path, retention_s: Optional[float] = None) -> None:
        self._writer = SpanWriter(path, retention_s)
        self.path = path
        _set_destination(self, f"the local store {path}")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        # Runs on the batch worker thread, never the caller's: SQLite's busy timeout
        # (30 s) waits there for other processes' writes; a batch still refused as
        # locked is retried a few times (each write is one transaction, rolled back on
        # failure, and a span already stored is ignored), then counted as failed.
        for attempt in range(STORE_WRITE_ATTEMPTS):
            try:
                self._writer.write(spans)
            except sqlite3.OperationalError as exc:
                if attempt + 1 < STORE_WRITE_ATTEMPTS and _is_busy(exc):
                    time.sleep(0.05 * (attempt + 1))
                    continue
                _guard.report(f"writing spans to the local store {self.path}", exc)
                return SpanExportResult.FAILURE
            except Exception as exc:
                _guard.report(f"writing spans to the local store {self.path}", exc)
                return SpanExportResult.FAILURE
            return SpanExportResult.SUCCESS
        return SpanExportResult.FAILURE  # pragma: no cover - the loop always returns

    def shutdown(self) -> None:
        self._writer.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
