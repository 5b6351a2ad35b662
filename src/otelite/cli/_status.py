"""``otelite status``: what otelite would do in this environment, and what it could not deliver.

Settings are resolved from the environment as ``configure()`` resolves them, without
wiring anything and without sending anything. Credentials are never printed: URLs
are masked, and of the OTLP headers only the names are shown. The local store adds
its pending outbox (when it has one), the spans and metric points running apps
could not deliver, and the last export error each destination gave.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, Optional

from otelite._exceptions import StoreError
from otelite._version import __version__
from otelite.cli._errors import EXIT_OK

_now: Callable[[], float] = time.time  # tests pin it


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def _when(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _store_bytes(path: Path) -> int:
    total = 0
    for suffix in ("", "-wal"):
        part = Path(str(path) + suffix)
        if part.exists():
            total += part.stat().st_size
    return total


def outbox_pending(conn: sqlite3.Connection) -> Optional[tuple[int, Optional[float]]]:
    """Spans in the store's outbox and the oldest one's time (``None``: the store has no outbox)."""
    from otelite import _delivery

    return _delivery.outbox_pending(conn)


def _settings(store: Optional[str]) -> Any:
    from otelite import _config

    return _config.resolve_settings(
        service_name=None,
        endpoint=None,
        protocol=None,
        headers=None,
        local_store=store,
        capture_content=None,
        redact=None,
        redact_builtin=None,
        max_content_length=None,
        sample_ratio=None,
        resource_attributes=None,
    )


def _exit_timeout() -> float:
    from otelite import _config, _env

    raw = _env.OTELITE_EXIT_TIMEOUT.read()
    if raw is None:
        return _config.EXIT_TIMEOUT_S
    return _config.parse_exit_timeout(_env.OTELITE_EXIT_TIMEOUT.name, raw)


def _read_store(path: Path) -> dict[str, Any]:
    """The store's size, pending outbox and delivery record; a StoreError if it is unreadable."""
    from otelite import _delivery
    from otelite.store._schema import open_for_reading

    conn = open_for_reading(path)
    try:
        try:
            pending = outbox_pending(conn)
            delivery = _delivery.read(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: not a readable otelite store ({exc})") from exc
    finally:
        conn.close()
    now = _now()
    outbox: Optional[dict[str, Any]] = None
    if pending is not None:
        count, oldest = pending
        outbox = {
            "pending": count,
            "oldest": _when(oldest) if oldest is not None else None,
            "oldest_age_s": round(now - oldest, 3) if oldest is not None else None,
        }
    for error in delivery["errors"]:
        error["age_s"] = round(now - error["at"], 3)
        error["at"] = _when(error["at"])
    for drop in delivery["drops"]:
        drop["updated_at"] = _when(drop["updated_at"])
    return {"bytes": _store_bytes(path), "outbox": outbox, **delivery}


def build_report(store: Optional[str]) -> dict[str, Any]:
    """Everything ``otelite status`` shows, as data (raises OteliteError on bad settings)."""
    from otelite import _config, _env

    settings = _settings(store)
    disabled = _env.OTEL_SDK_DISABLED.read_bool(False)
    report: dict[str, Any] = {
        "otelite": __version__,
        "sdk_disabled": disabled,
        "service_name": _env.OTEL_SERVICE_NAME.read(),
        "traces_endpoint": _config.safe_url(settings.traces_endpoint)
        if settings.traces_endpoint
        else None,
        "metrics_endpoint": _config.safe_url(settings.metrics_endpoint)
        if settings.metrics_endpoint
        else None,
        "protocol": settings.protocol,
        "headers": sorted(name for name, _ in settings.headers),
        "capture_content": settings.content.capture,
        "sample_ratio": settings.sample_ratio if settings.sample_ratio is not None else 1.0,
        "checks": [getattr(c, "name", type(c).__name__) for c in settings.checks],
        "exit_timeout_s": _exit_timeout(),
        "store": None,
    }
    path = settings.store_path
    if path is None:
        return report
    entry: dict[str, Any] = {"path": str(path), "exists": path.exists()}
    report["store"] = entry
    if not path.exists():
        if store is not None:
            raise StoreError(
                f"{path}: no local store here; give --store a directory or .db file that a "
                "configured app has recorded into"
            )
        return report
    entry.update(_read_store(path))
    return report


def render(report: dict[str, Any]) -> str:
    """The report as text, one setting a line."""
    lines = [f"otelite {report['otelite']}: what this environment configures (nothing was sent)"]

    def row(name: str, value: object) -> None:
        lines.append(f"  {name:<18}{value}")

    row("OTEL_SDK_DISABLED", "true: otelite records nothing" if report["sdk_disabled"] else "false")
    row("service name", report["service_name"] or "(not set)")
    row("traces", report["traces_endpoint"] or "not exported over OTLP")
    row("metrics", report["metrics_endpoint"] or "not exported over OTLP")
    if report["traces_endpoint"] or report["metrics_endpoint"]:
        row("protocol", report["protocol"])
        headers = report["headers"]
        row("headers", ", ".join(headers) + " (values hidden)" if headers else "none")
    row("capture content", "on" if report["capture_content"] else "off")
    row("sample ratio", report["sample_ratio"])
    row("checks", ", ".join(report["checks"]) or "none")
    row("exit timeout", f"{report['exit_timeout_s']:g} s")
    store = report["store"]
    if store is None:
        row("local store", "off (drops and export errors are not recorded)")
        return "\n".join(lines)
    if not store["exists"]:
        row("local store", f"{store['path']} (not created yet)")
        return "\n".join(lines)
    row("local store", f"{store['path']} ({_size(store['bytes'])})")
    outbox = store["outbox"]
    if outbox is None:
        row("outbox", "no outbox")
    elif not outbox["pending"]:
        row("outbox", "empty")
    else:
        oldest = (
            f", oldest {outbox['oldest']} ({_age(outbox['oldest_age_s'])} ago)"
            if outbox["oldest"]
            else ""
        )
        noun = "span" if outbox["pending"] == 1 else "spans"
        row("outbox", f"{outbox['pending']} {noun} pending{oldest}")
    if not store["drops"]:
        row("undelivered", "nothing recorded")
    else:
        by_destination: dict[tuple[str, str], list[str]] = {}
        for drop in store["drops"]:
            by_destination.setdefault((drop["destination"], drop["signal"]), []).append(
                f"{drop['reason'].replace('_', ' ')}: {drop['count']}"
            )
        first = True
        for (destination, signal), reasons in by_destination.items():
            total = sum(
                d["count"]
                for d in store["drops"]
                if d["destination"] == destination and d["signal"] == signal
            )
            noun = signal if total != 1 else signal.rstrip("s")
            row(
                "undelivered" if first else "",
                f"{total} {noun} to {destination} ({', '.join(reasons)})",
            )
            first = False
    if not store["errors"]:
        row("last export error", "none recorded")
    else:
        first = True
        for error in store["errors"]:
            row(
                "last export error" if first else "",
                f"{error['destination']} at {error['at']} ({_age(error['age_s'])} ago): "
                f"{error['error']}",
            )
            first = False
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    """Print what otelite would do here (a bad setting or store: main() reports it, exit 2)."""
    report = build_report(args.store)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(render(report))
    return EXIT_OK


def add_parser(commands: Any) -> None:
    """Register ``otelite status``."""
    status = commands.add_parser(
        "status",
        help="what otelite is configured to do here, its pending outbox and last export error",
    )
    status.add_argument(
        "--store", help="store directory or .db file (default $OTELITE_HOME or .otelite)"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_status)
