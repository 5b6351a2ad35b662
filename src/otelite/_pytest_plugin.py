"""pytest plugin (registered through the ``pytest11`` entry point): the ``capture_spans`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otelite.testing import Captured, capture_spans


@pytest.fixture(name="capture_spans")
def capture_spans_fixture() -> Iterator[Captured]:
    """Spans and metrics otelite records during the test, in memory, with sequential ids."""
    with capture_spans() as captured:
        yield captured
