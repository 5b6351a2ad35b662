"""The baseline file: what each canary answered when it was recorded, reviewable in the repo.

A JSON file beside the canary file (``canaries.baseline.json`` for ``canaries.yaml``),
written with sorted keys and two-space indentation so a re-record shows as a small
diff, through a temporary file renamed into place: a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from otelite.canary._file import CanaryFileError

FORMAT = 1
_KEY = "otelite_canary_baseline"


def default_path(canary_file: Path) -> Path:
    """``canaries.baseline.json`` beside ``canaries.yaml`` (or ``.json``/``.yml``)."""
    return canary_file.with_name(f"{canary_file.stem}.baseline.json")


def read(path: Path) -> Optional[dict[str, Mapping[str, Any]]]:
    """The recorded entries by canary name, or ``None`` when the file does not exist.

    Raises:
        CanaryFileError: the file is not a baseline otelite wrote (names the line for bad JSON).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CanaryFileError(f"{path}: cannot read the baseline: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CanaryFileError(
            f"{path} line {exc.lineno} column {exc.colno}: the baseline is not valid JSON: "
            f"{exc.msg}; record it again with --record"
        ) from None
    entries = data.get("canaries") if isinstance(data, Mapping) else None
    if (
        not isinstance(data, Mapping)
        or data.get(_KEY) != FORMAT
        or not isinstance(entries, Mapping)
    ):
        raise CanaryFileError(
            f"{path}: not a canary baseline (format {FORMAT}); record it again with --record"
        )
    return {str(k): v for k, v in entries.items() if isinstance(v, Mapping)}


def write(path: Path, entries: Mapping[str, Mapping[str, Any]], recorded: str) -> Path:
    """Write the baseline atomically, keys sorted; an existing file is replaced whole or kept."""
    document = {_KEY: FORMAT, "recorded": recorded, "canaries": dict(entries)}
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
