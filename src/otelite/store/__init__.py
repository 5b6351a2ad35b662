"""Reading the local store: the traces and spans that ``configure()`` recorded.

With no OTLP endpoint configured, otelite writes every span into a SQLite file
(``.otelite/otelite.db`` by default). :class:`LocalStore` opens that file
read-only and returns typed objects.

Example:
    >>> import otelite, tempfile
    >>> from otelite.store import LocalStore
    >>> home = tempfile.mkdtemp()
    >>> otelite.configure(local_store=home)
    >>> with otelite.span("hello"):
    ...     pass
    >>> otelite.force_flush()
    True
    >>> with LocalStore(home) as store:
    ...     [t.root_name for t in store.traces()]
    ['hello']
    >>> otelite.shutdown()

The package, by role (each file's docstring says more):

* ``_schema``: where the file is, its schema and migrations, opening it (WAL, busy timeout);
* ``_writer``: ``SpanWriter``, which the exporters write through, and its fork() safety;
* ``_prune``: deleting old traces (``otelite prune``, ``configure(retention=...)``);
* ``_records``: the types a read returns; ``_reader``: :class:`LocalStore` and its queries.

``_schema``, ``_writer`` and ``_prune`` sit in the utilities layer, below the runtime that
writes spans; this ``__init__`` loads the reader only when one of its names is used, so
importing the writer does not import the reader.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otelite.store._reader import LocalStore
    from otelite.store._records import (
        LLM_OPERATIONS,
        STATS_KEYS,
        ScoreStatsRow,
        SpanNode,
        StatsRow,
        StoredScore,
        StoredSpan,
        TraceSummary,
    )

__all__ = [
    "LLM_OPERATIONS",
    "STATS_KEYS",
    "LocalStore",
    "ScoreStatsRow",
    "SpanNode",
    "StatsRow",
    "StoredScore",
    "StoredSpan",
    "TraceSummary",
]

_HOME = dict.fromkeys(__all__, "_records")
_HOME["LocalStore"] = "_reader"


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'otelite.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"otelite.store.{home}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
