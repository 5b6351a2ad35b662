"""``{{variable}}`` templates: parsed once, filled by plain string joining.

The one template engine of otelite: prompt registry versions and LLM-judge
prompts both use it, so both honour the same escape and report a missing
variable with the same error.

Nothing in a template or a value is ever evaluated: a placeholder is a name in
double braces, filled with ``str(value)``; there are no expressions, filters,
attribute lookups or includes. Write ``\\{{`` for a literal ``{{``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from otelite._exceptions import PromptVariableError

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

    def fill(self, values: Mapping[str, Any], owner: str, *, allow_unused: bool = False) -> str:
        """Check ``values`` against the placeholders, then fill them.

        ``owner`` names the template in errors (``"prompt 'qa' v3"``, ``"judge
        'correctness'"``).

        Raises:
            PromptVariableError: a variable is missing or, unless ``allow_unused``, a
                value was given for no placeholder.
        """
        check_variables(self.variables, values, owner, allow_unused=allow_unused)
        return self.render(values)


def check_variables(
    expected: tuple[str, ...],
    values: Mapping[str, Any],
    owner: str,
    *,
    allow_unused: bool = False,
) -> None:
    """Raise :class:`PromptVariableError` naming the first missing (or unexpected) variable."""
    missing = [v for v in expected if v not in values]
    if missing:
        raise PromptVariableError(
            f"variable {missing[0]!r} missing from {owner}"
            + (f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else "")
            + f"; it expects {', '.join(expected)}"
        )
    if allow_unused:
        return
    unexpected = [v for v in values if v not in expected]
    if unexpected:
        raise PromptVariableError(
            f"{owner} has no variable {unexpected[0]!r}"
            + (f" (expected: {', '.join(expected)})" if expected else " (it has no variables)")
        )


def escape(text: str) -> str:
    """Make ``{{`` in ``text`` literal, for writing text that must not be a placeholder."""
    return text.replace("{{", _ESCAPE)
