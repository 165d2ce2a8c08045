"""Rate limits: a token bucket per key (a user's sends). In memory on the embedded default;
a shared implementation of ``RateLimiter`` (Redis) makes the counters cluster-wide.

A limiter has a default rate and burst; a call may pass its own (``rate_per_second``,
``burst``) when limits differ per key, as AI quotas do (each bot and tenant has its own)."""

from __future__ import annotations

import math
import time
from typing import Protocol

from warbler.errors import RateLimited


class RateLimiter(Protocol):
    async def hit(
        self, key: str, *, rate_per_second: float | None = None, burst: float | None = None
    ) -> float:
        """Take one token for ``key``; returns 0 if allowed, else seconds until one is free.
        ``rate_per_second``/``burst`` override the limiter's defaults for this key."""


class MemoryRateLimiter:
    def __init__(self, rate_per_second: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate_per_second
        self.burst = float(burst)
        self.max_keys = max_keys
        # key -> (tokens, last time, seconds an empty bucket takes to refill)
        self._buckets: dict[str, tuple[float, float, float]] = {}

    async def hit(
        self, key: str, *, rate_per_second: float | None = None, burst: float | None = None
    ) -> float:
        rate = self.rate if rate_per_second is None else rate_per_second
        cap = self.burst if burst is None else float(burst)
        now = time.monotonic()
        tokens, last, _ = self._buckets.get(key, (cap, now, 0.0))
        tokens = min(cap, tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now, cap / rate)
            return (1.0 - tokens) / rate
        self._buckets[key] = (tokens - 1.0, now, cap / rate)
        if len(self._buckets) > self.max_keys:
            self._forget_full(now)
        return 0.0

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: they hold no information."""
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < v[2]}


async def enforce(limiter: RateLimiter, key: str, what: str) -> None:
    wait = await limiter.hit(key)
    if wait > 0:
        raise RateLimited(
            f"too many {what}; try again in {wait:.1f} s",
            details={"retry_after_seconds": math.ceil(wait * 10) / 10},
        )
