"""Writing JSONL files atomically: a half-written file never appears under the final name."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Union


def write_jsonl(path: Union[str, os.PathLike[str]], records: Iterable[Mapping[str, Any]]) -> Path:
    """Write one JSON object per line through a temporary file renamed into place.

    Values JSON cannot hold are written as their ``str``. If writing fails, the
    temporary file is removed and an existing file at ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target
