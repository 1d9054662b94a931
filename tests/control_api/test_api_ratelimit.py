"""Rate limits: the window arithmetic, the in-process limiter, and the Redis limiter for real."""

from __future__ import annotations

import redis

from control_api.ratelimit import InMemoryRateLimiter, RedisRateLimiter, window_of


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_window_of_splits_time_into_fixed_windows() -> None:
    assert window_of(125.0, 60) == (2, 55.0)
    assert window_of(120.0, 60) == (2, 60.0)


def test_in_memory_limit_hits_then_resets_in_the_next_window() -> None:
    clock = Clock(1000.0)
    limiter = InMemoryRateLimiter(limit=3, window_s=60, clock=clock)
    decisions = [limiter.hit("user:a") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[2].remaining == 0
    assert limiter.hit("user:b").allowed  # per key
    clock.now += 60
    assert limiter.hit("user:a").allowed


def test_redis_limit_is_shared_between_limiters_and_resets(redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    clock = Clock(10_000.0)
    # Two limiters = two API processes sharing one Redis: the count is global.
    first = RedisRateLimiter(client, limit=3, window_s=60, prefix=redis_prefix, clock=clock)
    second = RedisRateLimiter(client, limit=3, window_s=60, prefix=redis_prefix, clock=clock)
    assert [first.hit("user:a").allowed, second.hit("user:a").allowed, first.hit("user:a").allowed] == [True] * 3
    refused = second.hit("user:a")
    assert not refused.allowed and refused.remaining == 0 and 0 < refused.reset_after_s <= 60
    clock.now += 60
    assert first.hit("user:a").allowed
    # Keys expire on their own, so Redis does not fill up with old windows.
    ttls = [client.ttl(k) for k in client.scan_iter(f"{redis_prefix}rl:*")]
    assert ttls and all(0 < t <= 65 for t in ttls)
