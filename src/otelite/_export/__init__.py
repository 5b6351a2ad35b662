"""Building exporters and processors: the one package that imports exporter code.

OTLP exporter modules are imported only when an endpoint is configured, and
gRPC only when ``protocol="grpc"``, so ``import otelite`` stays light.

Delivery is bounded (decision D9): otelite batches spans with its own
:class:`BatchProcessor`, whose worker thread is the only one that ever waits on
a collector. ``force_flush`` and ``shutdown`` wait at most their timeout and
return ``False`` when that was not enough; what could not be delivered is
counted by reason (:data:`DROP_REASONS`) and summed up in one log line.

One file per role; this module re-exports them, so ``_export.NAME`` is the way in:

* ``_bounds``: the exit deadline and waits that end in time (``run_bounded``);
* ``_otlp``: OTLP exporter factories, :class:`MetricsEndpointGuard`, request encoding;
* ``_store``: :class:`LocalStoreExporter`, the local SQLite store's exporter;
* ``_sizes``: a span's size in a request and in memory (request split, queue cap);
* ``_batch``: :class:`BatchProcessor`;
* ``_spill``: its outbox path (a full queue spills to the outbox, in queue order);
* ``_pipeline``: the ``batch()`` factory, the swappable processor and metric
  exporter, context attributes, parallel flush and shutdown;
* ``_scrub``: credentials scrubbed from error data on the way out;
* ``_tally``: drop counts by reason, the summary line, self-observability metrics.
"""

from __future__ import annotations

import contextlib
import os
import time  # noqa: F401  (tests patch ``_export.time.sleep``, the store's back-off)

from otelite._export import _tally
from otelite._export._batch import BatchProcessor
from otelite._export._bounds import _forkables, run_bounded, set_exit_deadline
from otelite._export._otlp import (
    DEFAULT_EXPORT_TIMEOUT_S,
    MetricsEndpointGuard,
    _without_unlinked_exemplars,
    encode_spans_request,
    export_timeout_s,
    otlp_metric_exporter,
    otlp_span_exporter,
    prometheus_reader,
)
from otelite._export._pipeline import (
    DEFAULT_STORE_BATCH,
    ContextAttributesProcessor,
    SwappableMetricExporter,
    SwappableProcessor,
    _retiring,
    batch,
    flush_all,
    note_store,
    retire,
    retiring,
    shutdown_all,
)
from otelite._export._scrub import scrub_error_data
from otelite._export._sizes import (
    DEFAULT_MAX_QUEUE_MB,
    MAX_REQUEST_BYTES,
    max_queue_bytes,
    span_memory,
    span_size,
)
from otelite._export._store import STORE_WRITE_ATTEMPTS, LocalStoreExporter
from otelite._export._tally import (
    DROP_REASONS,
    destination,
    dropped_counts,
    metric_counts,
    observe,
    resend_command,
    undelivered_line,
)

__all__ = [
    "DEFAULT_EXPORT_TIMEOUT_S",
    "DEFAULT_MAX_QUEUE_MB",
    "DEFAULT_STORE_BATCH",
    "DROP_REASONS",
    "MAX_REQUEST_BYTES",
    "STORE_WRITE_ATTEMPTS",
    "BatchProcessor",
    "ContextAttributesProcessor",
    "LocalStoreExporter",
    "MetricsEndpointGuard",
    "SwappableMetricExporter",
    "SwappableProcessor",
    "_forkables",
    "_without_unlinked_exemplars",
    "batch",
    "destination",
    "dropped_counts",
    "encode_spans_request",
    "export_timeout_s",
    "flush_all",
    "max_queue_bytes",
    "metric_counts",
    "note_store",
    "observe",
    "otlp_metric_exporter",
    "prometheus_reader",
    "otlp_span_exporter",
    "resend_command",
    "retire",
    "retiring",
    "run_bounded",
    "scrub_error_data",
    "set_exit_deadline",
    "shutdown_all",
    "span_memory",
    "span_size",
    "undelivered_line",
]


def _after_fork_in_child() -> None:
    with contextlib.suppress(Exception):
        _tally.after_fork_in_child()
    for item in list(_forkables):
        with contextlib.suppress(Exception):  # never break a fork
            item._after_fork()
    _retiring.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
