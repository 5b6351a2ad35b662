"""``{{variable}}`` templates: parsed once, filled by plain string joining.

Nothing in a template or a value is ever evaluated: a placeholder is a name in
double braces, filled with ``str(value)``; there are no expressions, filters,
attribute lookups or includes. Write ``\\{{`` for a literal ``{{``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# {{ name }} with optional spaces; a preceding backslash makes the braces literal.
_TOKEN = re.compile(r"\\\{\{|\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ESCAPE = "\\{{"


class Template:
    """A parsed template: literal text and placeholder names, in order."""

    __slots__ = ("parts", "source", "variables")

    def __init__(self, source: str) -> None:
        self.source = source
        parts: list[tuple[bool, str]] = []  # (is_variable, text or name)
        position = 0
        for match in _TOKEN.finditer(source):
            if match.start() > position:
                parts.append((False, source[position : match.start()]))
            if match.group(1) is None:
                parts.append((False, "{{"))  # the escape
            else:
                parts.append((True, match.group(1)))
            position = match.end()
        if position < len(source):
            parts.append((False, source[position:]))
        self.parts: tuple[tuple[bool, str], ...] = tuple(parts)
        names: list[str] = []
        for is_variable, text in parts:
            if is_variable and text not in names:
                names.append(text)
        self.variables: tuple[str, ...] = tuple(names)

    def render(self, values: Mapping[str, Any]) -> str:
        """Fill the placeholders (the caller has checked that ``values`` matches)."""
        return "".join(
            str(values[text]) if is_variable else text for is_variable, text in self.parts
        )


def escape(text: str) -> str:
    """Make ``{{`` in ``text`` literal, for writing text that must not be a placeholder."""
    return text.replace("{{", _ESCAPE)
