"""The shared units: one duration parser (CLI options and settings) and one percentile."""

from __future__ import annotations

import pytest

import otelite
from otelite._units import DurationError, parse_duration, percentile


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("30m", 1800.0),
        ("24h", 86400.0),
        ("7d", 604800.0),
        ("2w", 1209600.0),
        ("1.5h", 5400.0),
        (" 12 h ", 43200.0),
        ("0d", 0.0),
    ],
)
def test_option_durations(text: str, seconds: float) -> None:
    """A command-line duration is a number and one unit of s, m, h, d, w (zero allowed)."""
    assert parse_duration(text, "--since") == seconds


@pytest.mark.parametrize("text", ["yesterday", "24", "7 days", "-1d", "1d2h", "", "h"])
def test_option_duration_errors_name_the_option(text: str) -> None:
    """A bad command-line duration is a DurationError (a ValueError) naming the option."""
    with pytest.raises(DurationError) as caught:
        parse_duration(text, "--older-than")
    assert isinstance(caught.value, ValueError)
    assert str(caught.value) == (
        f"--older-than: {text!r} is not a duration; write e.g. 30m, 24h or 7d"
    )


@pytest.mark.parametrize(
    ("value", "seconds"), [("30d", 2592000.0), (" 12h ", 43200.0), (90, 90.0), (0.5, 0.5)]
)
def test_setting_durations(value: object, seconds: float) -> None:
    """A setting may also be a positive number of seconds."""
    assert parse_duration(value, "retention", setting=True) == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["soon", "0d", 0, -5, True, None, "30"])
def test_setting_duration_errors_name_the_setting(value: object) -> None:
    """A bad setting (zero included) is a ConfigurationError naming the argument or variable."""
    with pytest.raises(otelite.ConfigurationError) as caught:
        parse_duration(value, "OTELITE_RETENTION", setting=True)  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"OTELITE_RETENTION: {value!r} is not a duration; give seconds or a text such as "
        "'30d', '12h' or '2w'"
    )


def test_option_rejects_a_bare_number() -> None:
    """A command-line option is always text: a number (even of seconds) is refused."""
    with pytest.raises(DurationError, match="--since: 3600 is not a duration"):
        parse_duration(3600, "--since")


@pytest.mark.parametrize(
    ("percent", "expected"),
    [(0, 10.0), (25, 10.0), (50, 20.0), (75, 30.0), (95, 40.0), (100, 40.0)],
)
def test_percentile_is_nearest_rank(percent: float, expected: float) -> None:
    """The nearest-rank percentile: always one of the values, never an interpolation."""
    assert percentile([40.0, 10.0, 30.0, 20.0], percent) == expected


def test_percentile_of_nothing_is_zero() -> None:
    """No values: 0.0 (what stats and dataset-run summaries show for an empty group)."""
    assert percentile([], 50) == 0.0
    assert percentile([], 99, presorted=True) == 0.0


def test_percentile_presorted_reads_the_list_as_given() -> None:
    """presorted=True skips the sort: the caller vouches for the order."""
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 60, presorted=True) == 3.0
    assert percentile([5.0, 4.0, 3.0, 2.0, 1.0], 20, presorted=True) == 5.0
    assert percentile([5.0, 4.0, 3.0, 2.0, 1.0], 20) == 1.0


def test_percentile_of_one_value() -> None:
    """One value is every percentile of it, returned as a float."""
    for percent in (0, 50, 99, 100):
        value = percentile([7], percent)
        assert value == 7.0
        assert isinstance(value, float)
