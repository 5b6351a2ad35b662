"""The outbox: OTLP/HTTP requests that could not be delivered, kept on disk and resent.

When an OTLP/HTTP export fails (the collector is down, refuses, times out), the
batch processor's worker encodes the spans into the OTLP request they would have
been sent as and appends it here; so does the exit path for spans still queued when
the exit budget ran out. A background sender posts the stored requests oldest first,
with exponential backoff and jitter, honouring ``Retry-After`` (429/503); the next
process that configures the same endpoint drains what an earlier one left.

Storage: a SQLite file (``outbox.db``) beside the local store's database (the
store's directory; ``.otelite/`` by default, also when the store is off). Rows are
keyed by destination URL, so a changed endpoint never receives another's spans.
Request headers are not stored: the current process's headers are used to resend
(credentials never reach the disk). The file is shared by processes: one sender at a
time holds a lease per URL (a SQLite transaction takes it), and a row is deleted
only after the collector answered 2xx.

Exactly once, precisely: otelite never sends again a request that got a 2xx answer,
and never sends a span both directly and from the outbox. A request whose answer
never arrived (the collector received it, then the connection broke or the request
timed out; or the process died between the 2xx and the delete) is sent again, so a
backend may see it twice: span ids are the idempotent key to deduplicate on.

Order within a trace: rows are sent in id order, one at a time, and never while the
batch processor's worker has a direct attempt in flight (:meth:`Outbox.begin_direct`).
Rows put during such an attempt (spans that spilled from a full queue) are written
behind a gap of ids reserved for the attempt's requests, which fill the gap if the
attempt fails: the spans queued first are sent first either way.

Nothing here runs on the application's thread: ``put`` is called by the worker
thread, the spill thread and the exit path; the sender runs on its own daemon thread.

One module (over 500 lines) on purpose: the storage, the per-URL lease, the room
reserved for a direct attempt and the sender share one lock and one transaction
discipline; split apart, each half would have to know the other's invariants. Every failure is
contained; what cannot be kept is counted by the caller.

Size: over 500 lines because the on-disk queue, its eviction and the sender's
retry loop share one lock and one database connection; they are one state machine.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import random
import socket
import sqlite3
import threading
import time
import uuid
import weakref
import zlib
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Optional

from otelite import _env, _guard
from otelite._version import __version__

logger = logging.getLogger("otelite")

FILENAME = "outbox.db"
DEFAULT_MAX_MB = 100.0
"""Default cap on the outbox's stored requests (``OTELITE_OUTBOX_MAX_MB``)."""

# Backoff between resend attempts: BASE * 2**attempt, capped, times a jitter in [0.5, 1.5).
# Module constants so that tests can make them small.
_BACKOFF_BASE_S = 1.0
_BACKOFF_MAX_S = 60.0
_RETRY_AFTER_MAX_S = 300.0
_IDLE_POLL_S = 30.0  # how often an idle sender looks for rows other processes left
_LEASE_S = 30.0  # a sender's claim on a destination, renewed on every request
_BUSY_TIMEOUT_S = 5.0

_RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    spans INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_url ON outbox (url, id);
CREATE TABLE IF NOT EXISTS outbox_lease (
    url TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL,
    sending INTEGER
);
CREATE TABLE IF NOT EXISTS outbox_stats (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


def max_bytes() -> int:
    """The cap from ``OTELITE_OUTBOX_MAX_MB`` (default 100 MB)."""
    raw = _env.OTELITE_OUTBOX_MAX_MB.read()
    value = DEFAULT_MAX_MB
    if raw is not None:
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not (value > 0 and value == value):
            logger.warning(
                "otelite: %s=%r is not a positive number; using %s",
                _env.OTELITE_OUTBOX_MAX_MB.name,
                raw,
                DEFAULT_MAX_MB,
            )
            value = DEFAULT_MAX_MB
    return int(value * 1024 * 1024)


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    try:
        with contextlib.suppress(sqlite3.OperationalError):
            conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)
    except BaseException:
        conn.close()
        raise
    return conn


def _owner_alive(owner: str) -> bool:
    host, _, rest = owner.partition("|")
    pid_text = rest.partition("|")[0]
    if host != socket.gethostname():
        return True  # another machine's sender: trust its lease until it expires
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        # This process: alive while that outbox is open, or still posting after it closed
        # (taking over then could send its request a second time).
        return any(
            o._owner == owner and (not o._stop.is_set() or o._posting) for o in list(_instances)
        )
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def pending(path: Path) -> dict[str, tuple[int, int]]:
    """Per destination URL: (requests, spans) waiting in the outbox at ``path`` (read only)."""
    if not path.exists():
        return {}
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=_BUSY_TIMEOUT_S)
    try:
        rows = conn.execute(
            "SELECT url, COUNT(*), COALESCE(SUM(spans), 0) FROM outbox GROUP BY url"
        ).fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()
    return {str(url): (int(n), int(s)) for url, n, s in rows}


class Outbox:
    """The outbox for one destination URL, and its background sender."""

    def __init__(
        self,
        path: Path,
        url: str,
        headers: Mapping[str, str],
        timeout_s: float,
        max_bytes: int,
    ) -> None:
        self.path = path
        self.url = url
        self.headers = dict(headers)
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.kept = 0  # spans this process wrote here
        self.delivered = 0  # spans this process's sender delivered
        self.evicted = 0  # spans this process evicted to stay under the cap
        self.rejected = 0  # spans the collector refused for good (a 4xx other than 408/429)
        self.last_error: Optional[str] = None
        self._lock = threading.Lock()
        self._reset()
        _instances.add(self)

    def _reset(self) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sender: Optional[threading.Thread] = None
        self._pending: Optional[bool] = None  # unknown until first asked (needs the disk)
        self._owner = f"{socket.gethostname()}|{os.getpid()}|{uuid.uuid4().hex}"
        self._posting = False
        self._idle = threading.Event()  # clear while the sender sends a row and settles it
        self._idle.set()
        self._failed_open = False
        self._client: Any = None  # one httpx.Client (thread-safe) for the worker and sender
        self._in_flight = 0  # requests being posted by any thread
        self._not_before = 0.0  # time.monotonic() before which the collector asked not to retry
        self._direct = 0  # requests of the worker's direct attempt (0: none in flight)
        self._gap: Optional[int] = None  # first id reserved for them, once a put came meanwhile
        self._gap_used = 0

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._reset()

    # -- worker side --------------------------------------------------------------------

    def has_pending(self) -> bool:
        """Whether requests for this URL wait here (new spans then queue behind them)."""
        with self._lock:
            if self._pending is None:
                self._pending = False
                with contextlib.suppress(Exception):
                    if not self.path.exists():
                        return False
                    conn = _connect(self.path)
                    try:
                        row = conn.execute(
                            "SELECT 1 FROM outbox WHERE url = ? LIMIT 1", (self.url,)
                        ).fetchone()
                    finally:
                        conn.close()
                    self._pending = row is not None
            return self._pending

    def begin_direct(self, requests: int) -> None:
        """The worker is about to attempt ``requests`` requests directly, in order.

        Until :meth:`end_direct`, the sender sends nothing, and rows put by others are
        written behind room for those requests (``put(..., direct=True)`` fills it).
        """
        with self._lock:
            self._direct = max(requests, 1)
            self._gap = None
            self._gap_used = 0

    def end_direct(self) -> None:
        """The direct attempt is over (sent, or its failed requests were put)."""
        with self._lock:
            self._direct = 0
            self._gap = None
            self._gap_used = 0
        self._wake.set()

    def _insert(self, conn: sqlite3.Connection, body: bytes, spans: int, direct: bool) -> None:
        row: tuple[Any, ...] = (self.url, body, spans, len(body), time.time())
        explicit: Optional[int] = None
        if direct and self._gap is not None and self._gap_used < self._direct:
            explicit = self._gap + self._gap_used  # the room reserved before later rows
            self._gap_used += 1
        elif not direct and self._direct:
            if self._gap is None:  # the first row put during the attempt: leave room
                last = conn.execute(
                    "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'),"
                    " 0), COALESCE((SELECT MAX(id) FROM outbox), 0))"
                ).fetchone()[0]
                self._gap = int(last) + 1
            explicit = max(
                self._gap + self._direct,
                int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()[0]) + 1,
            )
        if explicit is None:
            conn.execute(
                "INSERT INTO outbox (url, body, spans, bytes, created) VALUES (?, ?, ?, ?, ?)", row
            )
        else:
            conn.execute(
                "INSERT INTO outbox (id, url, body, spans, bytes, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (explicit, *row),
            )

    def put(self, body: bytes, spans: int, direct: bool = False) -> bool:
        """Keep one encoded OTLP request of ``spans`` spans; ``False`` if that was impossible.

        ``direct``: a request of the worker's direct attempt that failed (it takes the
        room reserved before the rows put meanwhile).
        """
        with self._lock:
            try:
                conn = _connect(self.path)
            except (OSError, sqlite3.Error) as exc:
                if not self._failed_open:
                    self._failed_open = True
                    logger.warning(
                        "otelite: cannot keep undelivered spans in the outbox %s (%s); "
                        "they are counted as dropped",
                        self.path,
                        exc,
                    )
                return False
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._insert(conn, body, spans, direct)
                    evicted = self._evict(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                _guard.report(f"writing to the outbox {self.path}", exc)
                return False
            finally:
                conn.close()
            self._pending = True
            self.evicted += evicted
            self.kept += spans
        if evicted:
            logger.warning(
                "otelite: the outbox %s is full (%d MB); %d older span(s) were dropped",
                self.path,
                self.max_bytes // (1024 * 1024),
                evicted,
            )
        self.start()
        self._wake.set()
        return True

    def _evict(self, conn: sqlite3.Connection) -> int:
        total = conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM outbox").fetchone()[0]
        evicted = 0
        while total > self.max_bytes:
            # Never the request a sender has in hand: it may be delivered any moment.
            row = conn.execute(
                "SELECT id, spans, bytes FROM outbox WHERE id NOT IN "
                "(SELECT sending FROM outbox_lease WHERE sending IS NOT NULL) "
                "ORDER BY id LIMIT 1"
            ).fetchone()
            if row is None:
                break
            conn.execute("DELETE FROM outbox WHERE id = ?", (row[0],))
            evicted += int(row[1])
            total -= int(row[2])
        if evicted:
            conn.execute(
                "INSERT INTO outbox_stats (name, value) VALUES ('evicted_spans', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (evicted,),
            )
        return evicted

    def send_now(self, body: bytes) -> str:
        """One attempt to deliver ``body`` right away (the worker's direct export).

        Returns ``"sent"`` (2xx), ``"refused"`` (a 4xx other than 408/429: keeping it would
        not help) or ``"retry"`` (keep it in the outbox). No retries here: the outbox's
        sender does them, so the worker is never held by a collector that is down.
        """
        status, retry_after, error = self._post(body)
        if status is not None and 200 <= status < 300:
            return "sent"
        self.last_error = error
        if retry_after is not None:
            self._not_before = time.monotonic() + min(retry_after, _RETRY_AFTER_MAX_S)
        if status is not None and status not in _RETRYABLE:
            return "refused"
        return "retry"

    # -- sender -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background sender (it also drains what earlier processes left)."""
        with self._lock:
            if self._sender is not None or self._stop.is_set():
                return
            thread = threading.Thread(target=self._run, name="otelite outbox sender", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # at interpreter exit: the rows wait for the next process
                return
            self._sender = thread

    def stop_sending(self) -> None:
        """Start no new request from the outbox (the one in flight, if any, goes on)."""
        self._stop.set()
        self._wake.set()

    def close(self, wait_s: float = 0.0) -> None:
        """Stop the sender; what is left stays on disk for the next process.

        Waits up to ``wait_s`` for the request in flight, if any, to be answered and its
        row settled: a row deleted after its 2xx is not sent again by the next process.
        """
        self.stop_sending()
        if wait_s > 0:
            self._idle.wait(wait_s)
        client = self._client
        if client is not None and not self._in_flight:
            self._client = None
            with contextlib.suppress(Exception):
                client.close()
        if not self._posting and self.path.exists():
            with contextlib.suppress(Exception):
                conn = _connect(self.path)
                try:
                    conn.execute("DELETE FROM outbox_lease WHERE owner = ?", (self._owner,))
                finally:
                    conn.close()

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            delay: Optional[float]
            self._idle.clear()
            try:
                delay, attempt = self._step(attempt)
            except Exception as exc:
                _guard.report("sending spans from the outbox", exc)
                attempt += 1
                delay = self._backoff(attempt)
            finally:
                self._idle.set()
            if delay is None:
                continue
            if attempt:  # backing off: only stopping cuts the wait short, not new rows
                self._stop.wait(delay)
            else:  # idle: new rows wake the sender
                self._wake.wait(delay)
                self._wake.clear()

    def _backoff(self, attempt: int) -> float:
        base = min(_BACKOFF_MAX_S, _BACKOFF_BASE_S * (2 ** min(attempt - 1, 30)))
        return float(base * random.uniform(0.5, 1.5))

    def _take_lease(self, conn: sqlite3.Connection) -> bool:
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT owner, expires FROM outbox_lease WHERE url = ?", (self.url,)
            ).fetchone()
            held = row is not None and row[0] != self._owner and row[1] > now
            if held and _owner_alive(str(row[0])):
                conn.execute("COMMIT")
                return False
            conn.execute(
                "INSERT OR REPLACE INTO outbox_lease (url, owner, expires, sending) "
                "VALUES (?, ?, ?, NULL)",
                (self.url, self._owner, now + max(_LEASE_S, self.timeout_s + 5)),
            )
            conn.execute("COMMIT")
            return True
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _step(self, attempt: int) -> tuple[Optional[float], int]:
        """One send; returns (seconds to wait before the next, or None for at once; attempt)."""
        if not self.path.exists():  # only ``put`` creates the file
            return _IDLE_POLL_S, 0
        if self._direct:  # the worker's direct attempt holds older spans: they go first
            return 0.05, attempt
        conn = _connect(self.path)
        try:
            self._wake.clear()  # rows put from now on wake the next idle wait
            if not self._take_lease(conn):
                return max(_BACKOFF_BASE_S, 0.05), attempt
            with self._lock:
                row = conn.execute(
                    "SELECT id, body, spans FROM outbox WHERE url = ? ORDER BY id LIMIT 1",
                    (self.url,),
                ).fetchone()
                if row is None:
                    self._pending = False
                    conn.execute("DELETE FROM outbox_lease WHERE owner = ?", (self._owner,))
                    return _IDLE_POLL_S, 0
                row_id, body, spans = int(row[0]), bytes(row[1]), int(row[2])
                conn.execute(
                    "UPDATE outbox_lease SET sending = ? WHERE owner = ?", (row_id, self._owner)
                )
            if self._stop.is_set():
                return None, attempt
            wait = self._not_before - time.monotonic()
            if wait > 0:  # a Retry-After the worker's direct attempt was given
                conn.execute(
                    "UPDATE outbox_lease SET sending = NULL WHERE owner = ?", (self._owner,)
                )
                return wait, max(attempt, 1)
            self._posting = True
            try:
                status, retry_after, error = self._post(body)
            finally:
                self._posting = False
                conn.execute(
                    "UPDATE outbox_lease SET sending = NULL WHERE owner = ?", (self._owner,)
                )
            if status is not None and 200 <= status < 300:
                conn.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
                self.delivered += spans
                self.last_error = None
                return None, 0
            if status is not None and status not in _RETRYABLE:
                # The collector refuses this request for good: resending would block the rest.
                conn.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
                self.rejected += spans
                logger.warning(
                    "otelite: %s refused %d span(s) from the outbox with HTTP %d; they are dropped",
                    self.url,
                    spans,
                    status,
                )
                return None, 0
            self.last_error = error
            attempt += 1
            if retry_after is not None:
                return min(retry_after, _RETRY_AFTER_MAX_S), attempt
            return self._backoff(attempt), attempt
        finally:
            conn.close()

    def _post(self, body: bytes) -> tuple[Optional[int], Optional[float], str]:
        import httpx
        from opentelemetry import context

        headers = {
            "Content-Type": "application/x-protobuf",
            "User-Agent": f"otelite/{__version__}",
            **(self.headers or _env_headers()),
        }
        compression = _compression()
        if compression == "gzip":
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        elif compression == "deflate":
            body = zlib.compress(body)
            headers["Content-Encoding"] = "deflate"
        key = getattr(context, "_SUPPRESS_INSTRUMENTATION_KEY", "suppress_instrumentation")
        token = context.attach(context.set_value(key, True))
        with self._lock:
            self._in_flight += 1
        try:
            client = self._client
            if client is None:  # made once: an httpx.Client takes ~0.1 s to build
                verify = _ssl_context() if self.url.startswith("https:") else True
                client = self._client = httpx.Client(timeout=self.timeout_s, verify=verify)
            response = client.post(self.url, content=body, headers=headers)
        except Exception as exc:
            return None, None, f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self._in_flight -= 1
            context.detach(token)
        status = response.status_code
        return status, _retry_after(response.headers.get("Retry-After")), f"HTTP {status}"


def _env_headers() -> dict[str, str]:
    """Headers from ``OTEL_EXPORTER_OTLP_TRACES_HEADERS`` / ``OTEL_EXPORTER_OTLP_HEADERS``."""
    from urllib.parse import unquote

    for name in ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"):
        raw = os.environ.get(name, "").strip()
        if raw:
            headers = {}
            for item in raw.split(","):
                key, sep, value = item.partition("=")
                if sep and key.strip():
                    headers[unquote(key.strip()).lower()] = unquote(value.strip())
            return headers
    return {}


def _compression() -> Optional[str]:
    for name in ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"):
        value = os.environ.get(name, "").strip().lower()
        if value:
            return value
    return None


def _ssl_context() -> Any:
    import ssl

    def env(*names: str) -> Optional[str]:
        for name in names:
            value = os.environ.get(name, "").strip()
            if value:
                return value
        return None

    ctx = ssl.create_default_context(
        cafile=env("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE")
    )
    cert = env(
        "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"
    )
    if cert:
        ctx.load_cert_chain(
            cert, env("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "OTEL_EXPORTER_OTLP_CLIENT_KEY")
        )
    return ctx


def _retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


_instances: weakref.WeakSet[Outbox] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for outbox in list(_instances):
        with contextlib.suppress(Exception):  # never break a fork
            outbox._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
