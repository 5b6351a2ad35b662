"""Running coroutine tests with asyncio.run, one fresh event loop per test (no plugin needed)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Coroutine
from typing import Any, Callable


def asyncio_test(func: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Turn ``async def test_...`` into a plain test that runs it in its own event loop."""

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(func(*args, **kwargs))

    del run.__wrapped__  # pytest must see a plain function, not the coroutine function
    return run
