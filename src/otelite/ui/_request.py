"""The request side of the web view: a page's response, an error page, query parameters, and
what a page reads from the app (:class:`Site`, so that the page modules need not import it)."""

from __future__ import annotations

import datetime
import os
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Optional, Protocol, Union
from urllib.parse import parse_qs

from otelite.store import LocalStore

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d|w)$")
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Response:
    """A page: HTTP status, HTML body, and a ``Location`` for redirects."""

    status: int
    body: str
    location: Optional[str] = None


class HTTPError(Exception):
    """A request the view answers with an error page (400 bad parameter, 404 unknown id, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Params:
    """The query parameters of one request, validated on reading (a bad one is a 400)."""

    def __init__(self, query: str, now_ns: int) -> None:
        try:
            self._values = {
                k: v[-1].strip()
                for k, v in parse_qs(query, keep_blank_values=True, strict_parsing=False).items()
            }
        except ValueError as exc:  # pragma: no cover - parse_qs is lenient
            raise HTTPError(400, f"cannot read the query string ({exc})") from None
        self.now_ns = now_ns

    def text(self, name: str) -> Optional[str]:
        """The parameter, ``None`` when absent or empty."""
        return self._values.get(name) or None

    def raw(self) -> dict[str, str]:
        """Every non-empty parameter."""
        return {k: v for k, v in self._values.items() if v}

    def choice(
        self, name: str, choices: Sequence[str], default: Optional[str] = None
    ) -> Optional[str]:
        value = self.text(name)
        if value is None:
            return default
        if value not in choices:
            raise HTTPError(400, f"{name}={value!r}: must be one of {', '.join(choices)}")
        return value

    def number(self, name: str, *, minimum: float = 0.0) -> Optional[float]:
        value = self.text(name)
        if value is None:
            return None
        try:
            number = float(value)
        except ValueError:
            raise HTTPError(
                400, f"{name}={value!r}: not a number; write e.g. {name}=0.01"
            ) from None
        if not number >= minimum or number != number or number == float("inf"):
            raise HTTPError(400, f"{name}={value!r}: must be a number ≥ {minimum:g}")
        return number

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.text(name)
        if value is None:
            return default
        if not re.fullmatch(r"-?\d+", value) or not low <= int(value) <= high:
            raise HTTPError(400, f"{name}={value!r}: must be a whole number from {low} to {high}")
        return int(value)

    def time(self, name: str, default: Optional[str] = None) -> Optional[int]:
        """A time: a duration back from now (``24h``, ``7d``), a date or date-time (UTC), or ``all``."""
        value = self._values.get(name, default)
        if value is None or value in ("", "all"):
            return None
        match = _DURATION.match(value)
        if match:
            return self.now_ns - int(float(match.group(1)) * _UNITS_S[match.group(2)] * 1e9)
        try:
            when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise HTTPError(
                400,
                f"{name}={value!r}: not a time; write a duration back from now (30m, 24h, 7d), "
                "a UTC date (2026-01-31) or date-time (2026-01-31T12:00), or all",
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        return int(when.timestamp() * 1e9)


class Site(Protocol):
    """What a page function reads from :class:`otelite.ui.App`."""

    prompts_dir: Union[str, os.PathLike[str], None]
    runs_dir: Optional[Path]
    clock: Callable[[], int]

    def _store(self) -> ContextManager[tuple[LocalStore, sqlite3.Connection]]:
        """The store, read-only, for one request (an unusable one is an HTTPError 503)."""
        ...
