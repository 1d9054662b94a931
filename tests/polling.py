"""Waiting in tests for something another process, thread or task brings about: one deadline rule
for the blocking waits and the asyncio ones."""

from __future__ import annotations

import time
from collections.abc import Iterator


def polls(timeout_s: float, failure: str) -> Iterator[None]:
    """One step per try: the first at once, then more while `timeout_s` has not passed since the
    start (counted on the monotonic clock); after that, AssertionError(`failure`).

    The caller tries, returns on success, and sleeps between tries its own way (time.sleep or
    asyncio.sleep), so a try is never cut short and the last one may start just before the deadline."""
    deadline = time.monotonic() + timeout_s
    yield
    while time.monotonic() <= deadline:
        yield
    raise AssertionError(failure)
