"""Login throttling: wrong passwords are counted per (client address, account) and met with a growing wait.

Why not per account alone: then 100 wrong guesses from anywhere lock the real owner out. Why not per
client alone: one address could then try every account. Keyed by the pair, a guesser slows down only
itself; the per-client request limit (`login-ip:` in the route) still caps how many accounts one address
can try. A success clears the pair's record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

log = logging.getLogger(__name__)

FREE_FAILURES = 5  # wrong passwords a pair may make before any wait (typos happen)
BASE_BACKOFF_S = 1.0  # the wait after the first counted failure; it doubles with each further one
MAX_BACKOFF_S = 15 * 60.0
FORGET_AFTER_S = 24 * 3600  # a pair's failures are forgotten after a day without one


def backoff_s(failures: int) -> float:
    """The wait imposed after `failures` consecutive wrong passwords."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(BASE_BACKOFF_S * 2.0 ** (failures - FREE_FAILURES), MAX_BACKOFF_S)


def guard_key(client: str, username: str) -> str:
    return f"{client}|{username}"


class LoginGuard(Protocol):
    def retry_after(self, key: str) -> float:
        """Seconds this pair must still wait (0: it may try now)."""
        ...

    def failed(self, key: str) -> float:
        """Record a wrong password; returns the wait it imposes."""
        ...

    def succeeded(self, key: str) -> None: ...


class InMemoryLoginGuard:
    """For one embedded API process (several processes need Redis to agree)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._state: dict[str, tuple[int, float]] = {}  # key -> (failures, blocked until)
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        with self._lock:
            _, until = self._state.get(key, (0, 0.0))
        return max(0.0, until - self._clock())

    def failed(self, key: str) -> float:
        now = self._clock()
        with self._lock:
            failures = self._state.get(key, (0, 0.0))[0] + 1
            wait = backoff_s(failures)
            self._state[key] = (failures, now + wait)
            if len(self._state) > 100_000:  # bounded: forget pairs that are no longer blocked
                self._state = {k: v for k, v in self._state.items() if v[1] > now}
        return wait

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._state.pop(key, None)


class RedisLoginGuard:
    """The same, shared by every API process through Redis (one hash per pair, expiring)."""

    def __init__(self, client: redis.Redis, prefix: str, clock: Callable[[], float] = time.time) -> None:
        self.client, self.prefix, self._clock = client, prefix, clock

    def _key(self, key: str) -> str:
        return f"{self.prefix}login:{key}"

    def retry_after(self, key: str) -> float:
        until = self.client.hget(self._key(key), "until")
        return max(0.0, float(until) - self._clock()) if until is not None else 0.0

    def failed(self, key: str) -> float:
        name = self._key(key)
        failures = int(self.client.hincrby(name, "failures", 1))
        wait = backoff_s(failures)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(name, "until", str(self._clock() + wait))
        pipe.expire(name, FORGET_AFTER_S)
        pipe.execute()
        return wait

    def succeeded(self, key: str) -> None:
        self.client.delete(self._key(key))
