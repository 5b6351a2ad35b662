"""Text output of the command line: tables that fit the terminal, colour, numbers.

Text output fits the terminal's width (``COLUMNS``, else 80 when not a terminal) and
uses colour only on a terminal (and never with ``NO_COLOR``).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable, Optional

from otelite._pricing import fmt_money
from otelite.store import SpanNode, StoredSpan

WIDTH = 80


class Style:
    """ANSI colour when writing to a terminal, plain text otherwise."""

    def __init__(self, stream: Any) -> None:
        self.on = bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get(
            "NO_COLOR"
        )

    def _wrap(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.on else text

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def bold(self, text: str) -> str:
        return self._wrap("1", text)


def fmt_duration_ns(ns: float) -> str:
    ms = ns / 1e6
    if ms < 1000:
        return f"{ms:.1f}ms"
    return f"{ms / 1000:.2f}s"


def fmt_cost(cost: Optional[float], unpriced: int = 0) -> str:
    """A cost: ``unknown`` when no call was priced, a trailing ``+`` when only some were
    (the figure is a lower bound), ``-`` when there was nothing to price."""
    if cost is None:
        return "unknown" if unpriced else "-"
    return fmt_money(cost) + ("+" if unpriced else "")


UNPRICED_NOTE = "cost: 'unknown' = no call priced; '+' = some calls have no price (not counted)"


def cost_summary(cost: Optional[float], unpriced: int) -> str:
    """A total in words: ``$0.00003``, ``$0.00003 + 2 unpriced LLM calls``, ``unknown (...)``."""
    calls = f"{unpriced} LLM call{'s' if unpriced != 1 else ''}"
    if cost is None:
        return f"unknown ({calls} without a price)" if unpriced else "-"
    text = fmt_cost(cost)
    return f"{text} + {calls} unpriced" if unpriced else text


def fmt_tokens(tokens_in: int, tokens_out: int, estimated: bool = False) -> str:
    """``48 in + 16 out tokens``, with ``(est.)`` when the counts are estimates."""
    text = f"{tokens_in} in + {tokens_out} out tokens"
    return text + " (est.)" if estimated else text


def fmt_count(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e4:
        return f"{n / 1e3:.0f}k"
    return str(int(n))


def fmt_time(ns: int) -> str:
    return datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc).strftime(
        "%m-%d %H:%M:%S"
    )


def cut(text: str, width: int) -> str:
    """``text`` fitted to ``width`` characters (an ellipsis marks a cut)."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def terminal_width() -> int:
    """The terminal's width in columns (``COLUMNS`` wins; 80 when not a terminal)."""
    return max(shutil.get_terminal_size((WIDTH, 24)).columns, 20)


@dataclass
class Column:
    """One column of a text table.

    ``flex`` columns share the room the others leave (the widest is cut first, down
    to ``min_width``); ``drop`` columns (lowest first) are left out when even that
    does not fit the width.
    """

    header: str
    align: str = "<"
    flex: bool = False
    min_width: int = 6
    max_width: Optional[int] = None
    drop: Optional[int] = None


def layout(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int
) -> tuple[list[int], list[int]]:
    """The indices of the columns shown and their widths, fitting ``width`` if possible."""
    natural = []
    for i, column in enumerate(columns):
        size = max([len(column.header), *(len(row[i]) for row in rows)])
        natural.append(min(size, column.max_width) if column.max_width else size)
    shown = list(range(len(columns)))

    droppable = sorted((c.drop, i) for i, c in enumerate(columns) if c.drop is not None)
    natural_total = sum(natural[i] for i in shown) + len(shown) - 1
    for _, index in droppable:
        if natural_total <= width:
            break
        shown.remove(index)
        natural_total = sum(natural[i] for i in shown) + len(shown) - 1
    widths = {i: natural[i] for i in shown}
    flex = [i for i in shown if columns[i].flex]
    excess = sum(widths.values()) + len(shown) - 1 - width
    while excess > 0:
        shrinkable = [i for i in flex if widths[i] > min(natural[i], columns[i].min_width)]
        if not shrinkable:
            break  # still too wide: render_table cuts each line
        widths[max(shrinkable, key=lambda i: widths[i])] -= 1
        excess -= 1
    return shown, [widths[i] for i in shown]


def render_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int,
    style: Style,
    paint: Optional[Callable[[int, int, str], str]] = None,
) -> tuple[list[str], list[str]]:
    """The header and row lines of a table, each at most ``width`` characters, and the
    headers of the columns left out. ``paint(row, column, text)`` colours a cell."""
    shown, widths = layout(columns, rows, width)

    def line(cells: Sequence[str], row: Optional[int]) -> str:
        plain, painted = [], []
        for i, w in zip(shown, widths):
            text = f"{cut(cells[i], w):{columns[i].align}{w}}"
            plain.append(text)
            painted.append(paint(row, i, text) if paint and row is not None else text)
        text = " ".join(plain).rstrip()
        if len(text) > width:
            return cut(text, width)  # too narrow even for the fixed columns: no colour
        return " ".join(painted).rstrip() if paint and row is not None else text

    header = style.bold(line([c.header for c in columns], None))
    lines = [header, *(line(cells, n) for n, cells in enumerate(rows))]
    hidden = [columns[i].header for i in range(len(columns)) if i not in shown]
    return lines, hidden


def hidden_note(hidden: Sequence[str]) -> str:
    """The footer line naming the columns a narrow terminal left out."""
    return f"\n{', '.join(hidden)} left out at this width (widen the terminal, or use --json)"


def pack(items: Sequence[str], width: int, sep: str = "  ") -> list[str]:
    """``items`` joined by ``sep`` on as few lines of at most ``width`` as they fit."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + len(sep) + len(item) <= width:
            lines[-1] += sep + item
        else:
            lines.append(cut(item, width))
    return lines


def print_json(data: Any) -> None:
    """``data`` as indented JSON on stdout."""
    print(json.dumps(data, indent=2, default=str))


def walk_tree(nodes: Sequence[SpanNode], depth: int = 0) -> list[tuple[int, StoredSpan]]:
    """A trace's spans in display order (depth first, children in start order), with depths."""
    out: list[tuple[int, StoredSpan]] = []
    for node in nodes:
        out.append((depth, node.span))
        out.extend(walk_tree(node.children, depth + 1))
    return out
