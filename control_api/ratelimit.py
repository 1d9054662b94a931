"""Per-user request limits: a fixed window counter in Redis, or in process when Redis is not configured.

Fixed windows (one counter per user per window) cost one round trip (INCR + EXPIRE in a pipeline) and
are exact across any number of API processes sharing the Redis; the price is that a client may burst
up to twice the limit across a window boundary, which is acceptable for abuse protection.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_after_s: float  # seconds until the current window ends


class RateLimiter(Protocol):
    def hit(self, key: str) -> RateDecision: ...


def window_of(now: float, window_s: int) -> tuple[int, float]:
    """The window number containing `now` and the seconds left in it."""
    index = math.floor(now / window_s)
    return index, (index + 1) * window_s - now


def decide(count: int, limit: int, reset_after_s: float) -> RateDecision:
    return RateDecision(count <= limit, limit, max(limit - count, 0), reset_after_s)


class InMemoryRateLimiter:
    """For a single embedded process: limits are per process, so only correct with one API process."""

    def __init__(self, limit: int, window_s: int, clock: Callable[[], float] = time.time) -> None:
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._counts: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> RateDecision:
        index, left = window_of(self._clock(), self.window_s)
        with self._lock:
            window, count = self._counts.get(key, (index, 0))
            count = count + 1 if window == index else 1
            self._counts[key] = (index, count)
            if len(self._counts) > 100_000:  # forget old windows so the dict cannot grow forever
                self._counts = {k: v for k, v in self._counts.items() if v[0] == index}
        return decide(count, self.limit, left)


class RedisRateLimiter:
    def __init__(
        self,
        client: redis.Redis,
        limit: int,
        window_s: int,
        prefix: str = "voiceflow:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client, self.limit, self.window_s, self.prefix, self._clock = (
            client,
            limit,
            window_s,
            prefix,
            clock,
        )

    def hit(self, key: str) -> RateDecision:
        index, left = window_of(self._clock(), self.window_s)
        redis_key = f"{self.prefix}rl:{key}:{index}"
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(redis_key)
        # A little longer than the window so a slow clock on another API process still sees the key.
        pipe.expire(redis_key, self.window_s + 5)
        count, _ = pipe.execute()
        return decide(int(count), self.limit, left)
