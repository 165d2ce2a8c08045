"""Rate limits: a token bucket per key (a user's sends). In memory on the embedded default;
a shared implementation of ``RateLimiter`` (Redis) makes the counters cluster-wide."""

from __future__ import annotations

import math
import time
from typing import Protocol

from warbler.errors import RateLimited


class RateLimiter(Protocol):
    async def hit(self, key: str) -> float:
        """Take one token for ``key``; returns 0 if allowed, else seconds until one is free."""


class MemoryRateLimiter:
    def __init__(self, rate_per_second: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate_per_second
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)

    async def hit(self, key: str) -> float:
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self.max_keys:
            self._forget_full(now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: they hold no information."""
        refill = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < refill}


async def enforce(limiter: RateLimiter, key: str, what: str) -> None:
    wait = await limiter.hit(key)
    if wait > 0:
        raise RateLimited(
            f"too many {what}; try again in {wait:.1f} s",
            details={"retry_after_seconds": math.ceil(wait * 10) / 10},
        )
