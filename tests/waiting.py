"""Wait on a condition with a deadline: the only way tests here wait for anything."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Return the first truthy value of ``check()``; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")
        time.sleep(interval)
        last = check()
    return last


async def wait_for_async(check: Callable[[], T], timeout: float, what: str, interval: float = 0.002) -> T:
    """``wait_for`` for code running inside an event loop: yields to the loop between checks."""
    import asyncio

    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value: {last!r})")
        await asyncio.sleep(interval)
        last = check()
    return last
