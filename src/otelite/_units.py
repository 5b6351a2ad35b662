"""Units otelite reads and computes in more than one place: durations and percentiles.

``parse_duration`` reads ``30m``, ``24h``, ``7d`` (a number and one unit of s, m, h, d,
w) for command-line options (``--since``, ``--older-than``) and for settings
(``configure(retention=...)``, ``OTELITE_RETENTION``), which may also be a number of
seconds. ``percentile`` is the nearest-rank percentile that ``otelite stats`` and a
dataset run's summary both report.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Optional, Union

from otelite._exceptions import ConfigurationError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class DurationError(ValueError):
    """A command-line duration that is not one; the message names the option."""


def parse_duration(value: Union[str, float], argument: str, *, setting: bool = False) -> float:
    """The seconds in a duration written as a number and a unit: ``90s``, ``30m``, ``24h``,
    ``7d``, ``2w`` (spaces around and between are allowed).

    A command-line option (the default) may be zero and fails with :class:`DurationError`
    (a ``ValueError``). A setting (``setting=True``: an argument of ``configure()`` or an
    environment variable) may also be a number of seconds, must be above zero, and fails
    with ``ConfigurationError``. Either message names ``argument`` and says how to write it.

    Example:
        >>> parse_duration("24h", "--since")
        86400.0
        >>> parse_duration(90, "retention", setting=True)
        90.0
    """
    if setting and isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(value.strip()) if isinstance(value, str) else None
    seconds: Optional[float] = None
    if match is not None:
        seconds = float(match.group(1)) * SECONDS_PER_UNIT[match.group(2)]
    if setting:
        if seconds is None or seconds <= 0:
            raise ConfigurationError(
                f"{argument}: {value!r} is not a duration; give seconds or a text such as "
                "'30d', '12h' or '2w'"
            )
        return seconds
    if seconds is None:
        raise DurationError(f"{argument}: {value!r} is not a duration; write e.g. 30m, 24h or 7d")
    return seconds


def percentile(values: Sequence[float], percent: float, *, presorted: bool = False) -> float:
    """The nearest-rank ``percent`` percentile of ``values`` (0.0 when there are none).

    The value at rank ``ceil(percent / 100 * n)`` (at least 1) in ascending order: always
    one of the values, never an interpolation. Pass ``presorted=True`` when ``values`` is
    already in ascending order (several percentiles of one list sort it once).

    Example:
        >>> percentile([30.0, 10.0, 20.0, 40.0], 50)
        20.0
        >>> percentile([], 95)
        0.0
    """
    if not values:
        return 0.0
    ordered = values if presorted else sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])
