"""The LLM-call core: one owner for what every LLM span goes through.

* ``_call``: the lifecycle of one call (:class:`Request` in, :class:`Outcome`
  out, span, content, pricing, online checks, metrics), ended exactly once.
* ``_streams``: stream proxies and the recorder that times chunks.
* ``_flow``: the control flow of an instrumented method (re-entrancy guard,
  sync/async wrapper factories, results an adapter takes over), driven by an
  adapter's :class:`Surface` of hooks.
* ``_usage``: token usage as OpenAI-compatible servers report it.
* ``_changes``: API-change detection, a baseline per provider + operation +
  model that every ended call is compared with (``otelite changes`` lists them).

Adapters (``otelite._integrations.<library>``) only read their library's shapes;
otelite's judge client (``otelite.evals``) uses :func:`start` directly.
"""

from __future__ import annotations

from otelite._llm._call import (
    Accumulator,
    Attributes,
    Invocation,
    Outcome,
    Request,
    start,
    stop_clock,
)
from otelite._llm._flow import (
    NOT_MINE,
    Call,
    Surface,
    async_wrapper,
    inside_call,
    note_retry,
    other_llm_span,
    sync_wrapper,
)
from otelite._llm._streams import AsyncStreamProxy, StreamRecorder, SyncStreamProxy
from otelite._llm._usage import Usage, count, field, member

__all__ = [
    "NOT_MINE",
    "Accumulator",
    "AsyncStreamProxy",
    "Attributes",
    "Call",
    "Invocation",
    "Outcome",
    "Request",
    "StreamRecorder",
    "Surface",
    "SyncStreamProxy",
    "Usage",
    "async_wrapper",
    "count",
    "field",
    "inside_call",
    "member",
    "note_retry",
    "other_llm_span",
    "start",
    "stop_clock",
    "sync_wrapper",
]
