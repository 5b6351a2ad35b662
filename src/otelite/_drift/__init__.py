"""Drift between two windows of the local store (``otelite drift``).

``_statistics`` holds the statistics (pure functions); ``_compare`` reads the calls of
two windows with SQL and gives each group and metric its verdict.
"""

from __future__ import annotations

from otelite._drift._compare import (
    DRIFTED,
    NOT_ENOUGH,
    STABLE,
    DriftReport,
    DriftRow,
    Thresholds,
    Window,
    compare,
    user_text,
)
from otelite._drift._statistics import (
    chi_square,
    dominant_script,
    jensen_shannon,
    js_against_chance,
    kolmogorov_sf,
    ks_2samp,
    psi,
    psi_categorical,
    quantile_edges,
    two_proportion_z,
    welch_z,
)

__all__ = [
    "DRIFTED",
    "NOT_ENOUGH",
    "STABLE",
    "DriftReport",
    "DriftRow",
    "Thresholds",
    "Window",
    "chi_square",
    "dominant_script",
    "jensen_shannon",
    "js_against_chance",
    "kolmogorov_sf",
    "ks_2samp",
    "psi",
    "psi_categorical",
    "quantile_edges",
    "two_proportion_z",
    "welch_z",
    "compare",
    "user_text",
]
