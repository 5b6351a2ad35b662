"""Counted nouns for messages people read: ``1 example``, ``2 examples``, ``1 trace``."""

from __future__ import annotations

from typing import Optional


def plural(count: int, singular: str, many: Optional[str] = None) -> str:
    """``count`` followed by ``singular`` or its plural (``many``, else ``singular + "s"``)."""
    if count == 1:
        return f"{count} {singular}"
    return f"{count} {many if many is not None else singular + 's'}"
