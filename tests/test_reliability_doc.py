"""docs/reliability.md names a test for each guarantee: every named test must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _defined_tests() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        names.update(re.findall(r"^(?:async )?def (test_\w+)\(", path.read_text(), re.M))
    return names


def test_every_test_named_in_reliability_doc_exists() -> None:
    """Each `test_…` the reliability page cites is defined in tests/ (no stale or invented names)."""
    text = (ROOT / "docs" / "reliability.md").read_text()
    cited = set(re.findall(r"\b(test_\w+)\b(?!\.py)", text))  # file names are not tests
    assert len(cited) > 40
    missing = sorted(cited - _defined_tests())
    assert missing == []
