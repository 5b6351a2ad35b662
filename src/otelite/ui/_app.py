"""The pages of the web view, as a function of a request path and its query parameters.

:class:`App` knows nothing of HTTP: ``handle(path, query)`` returns a status and an HTML
document, so that tests and the benchmark call it directly. Each request opens the store
afresh (read-only), so that a store pruned, replaced or written by another process while
the server runs is simply read as it now is.

Each page family is a module of its own (``_traces_page``, ``_trace_page``, ``_stats_page``,
``_prompts_page``, ``_evals_page``): a function of the app and the request's parameters.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union
from urllib.parse import unquote

from otelite._exceptions import StoreError, StoreSchemaError
from otelite.store import LocalStore
from otelite.store import _schema as _sqlite
from otelite.ui import _evals_page, _prompts_page, _stats_page, _trace_page, _traces_page
from otelite.ui._html import esc, page
from otelite.ui._request import HTTPError, Params, Response

__all__ = ["App", "HTTPError", "Params", "Response"]


_POOL = 4  # read connections kept between requests


@dataclass(frozen=True)
class _Opened:
    store: LocalStore
    conn: sqlite3.Connection
    identity: Optional[tuple[int, int, int]]

    def close(self) -> None:
        self.conn.close()
        self.store.close()


class App:
    """The read-only web view over one store, prompt registry and directory of run files.

    Args:
        store: the store directory or ``.db`` file (as ``otelite traces --store``).
        prompts_dir: the prompt registry (default ``$OTELITE_PROMPTS_DIR`` or ``./prompts``).
        runs_dir: where ``otelite eval --out`` files are kept (``*.jsonl``); ``None``: none.
        clock: nanoseconds since the epoch, for durations like ``24h`` (tests pin it).
    """

    def __init__(
        self,
        store: Union[str, os.PathLike[str], None] = None,
        *,
        prompts_dir: Union[str, os.PathLike[str], None] = None,
        runs_dir: Union[str, os.PathLike[str], None] = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store_path = _sqlite.resolve_store_path(store)
        self.prompts_dir = prompts_dir
        self.runs_dir = Path(runs_dir) if runs_dir is not None else None
        self.clock = clock
        self._lock = threading.Lock()
        self._idle: list[_Opened] = []

    # --- dispatch -------------------------------------------------------------------

    def handle(self, path: str, query: str = "") -> Response:
        """The page for ``path`` (without the query string) and ``query``."""
        routes: list[tuple[str, Callable[..., str]]] = [
            (r"/traces", self.traces),
            (r"/trace/([^/]+)", self.trace),
            (r"/stats", self.stats),
            (r"/prompts", self.prompts),
            (r"/prompts/([^/]+)", self.prompt),
            (r"/evals", self.evals),
            (r"/evals/run", self.eval_run),
            (r"/evals/compare", self.eval_compare),
        ]
        path = unquote(path)
        if path in ("", "/"):
            return Response(302, "", location="/traces")
        try:
            params = Params(query, self.clock())
            for pattern, view in routes:
                match = re.fullmatch(pattern, path)
                if match:
                    return Response(200, view(params, *match.groups()))
            raise HTTPError(404, f"no page at {path}; start at /traces")
        except HTTPError as exc:
            titles = {400: "Bad request", 404: "Not found", 503: "Store unavailable"}
            return Response(
                exc.status,
                page(titles.get(exc.status, "Error"), f"<p class=err>{esc(exc.message)}</p>"),
            )

    def _identity(self) -> Optional[tuple[int, int, int]]:
        """What tells the store file apart from one put in its place (or its absence)."""
        try:
            st = os.stat(self.store_path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_ctime_ns)

    def _open(self) -> _Opened:
        try:
            store = LocalStore(self.store_path)
        except StoreSchemaError as exc:
            raise HTTPError(503, str(exc)) from None
        except StoreError as exc:
            raise HTTPError(
                503, f"{exc}. Start the view with --store PATH to read another store."
            ) from None
        try:
            conn = _sqlite.open_for_reading(self.store_path)
        except StoreError as exc:
            store.close()
            raise HTTPError(503, str(exc)) from None
        return _Opened(store, conn, self._identity())

    @contextmanager
    def _store(self) -> Iterator[tuple[LocalStore, sqlite3.Connection]]:
        """The store, read-only, for one request; an unusable one is a clear 503 page.

        Connections are kept between requests (SQLite's page cache makes the next page
        several times faster) as long as the file is the same one: a store deleted,
        replaced or checkpointed since is opened afresh.
        """
        identity = self._identity()
        with self._lock:
            opened = self._idle.pop() if self._idle else None
        if opened is not None and (identity is None or opened.identity != identity):
            opened.close()
            opened = None
        if opened is None:
            opened = self._open()
        try:
            yield opened.store, opened.conn
        except (sqlite3.Error, StoreError) as exc:
            # Locked past the busy timeout, or pruned/replaced under a running query.
            opened.close()
            raise HTTPError(
                503, f"{self.store_path}: cannot read the store now ({exc}); reload the page"
            ) from None
        except BaseException:
            opened.close()
            raise
        with self._lock:
            if len(self._idle) < _POOL:
                self._idle.append(opened)
                return
        opened.close()

    def close(self) -> None:
        """Close the connections kept between requests."""
        with self._lock:
            idle, self._idle = self._idle, []
        for opened in idle:
            opened.close()

    # --- pages (one module per page family) ------------------------------------------

    def traces(self, params: Params) -> str:
        return _traces_page.traces(self, params)

    def trace(self, params: Params, trace_id: str) -> str:
        return _trace_page.trace(self, params, trace_id)

    def stats(self, params: Params) -> str:
        return _stats_page.stats(self, params)

    def prompts(self, params: Params) -> str:
        return _prompts_page.prompts(self, params)

    def prompt(self, params: Params, name: str) -> str:
        return _prompts_page.prompt(self, params, name)

    def evals(self, params: Params) -> str:
        return _evals_page.evals(self, params)

    def eval_run(self, params: Params) -> str:
        return _evals_page.eval_run(self, params)

    def eval_compare(self, params: Params) -> str:
        return _evals_page.eval_compare(self, params)
