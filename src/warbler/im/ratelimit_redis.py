"""The token-bucket ``RateLimiter`` in Redis, so every node draws from one bucket per key.

One Lua script reads, refills and takes from the bucket atomically (run with EVALSHA; redis-py
loads it again on NOSCRIPT, e.g. after a Redis restart). The script reads Redis's own clock
(TIME), so nodes with skewed clocks still agree. A bucket is the hash
``<prefix>rate:<name>:<key>`` with fields ``tokens`` and ``ts``; it expires once it would be
full again (burst / rate seconds, at least one second), since a full bucket holds no
information. A call may pass its own rate and burst (per-key limits, as AI quotas have).

If Redis is unreachable or slow (over ``timeout``), the limiter fails OPEN: the call is
allowed and a warning is logged at most once a minute. A rate limit protects against abuse;
stopping every chat because its store is down would be worse than a minute without it.
"""

from __future__ import annotations

import asyncio
import logging
import math

import redis.asyncio as aioredis

from warbler.bus.redis import REDIS_ERRORS, ThrottledWarning

log = logging.getLogger(__name__)

TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local ttl_ms = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local last = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
else
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'ts', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], ttl_ms)
-- A Lua number would reach the client truncated to an integer: send text.
return string.format('%.17g', wait)
"""


class RedisRateLimiter:
    def __init__(
        self,
        client: aioredis.Redis,
        rate_per_second: float,
        burst: int,
        *,
        prefix: str = "warbler:",
        name: str = "send",
        timeout: float = 0.5,
    ) -> None:
        self.rate = rate_per_second
        self.burst = float(burst)
        self.key_prefix = f"{prefix}rate:{name}:"
        self.timeout = timeout
        self.ttl_ms = _ttl_ms(self.rate, self.burst)
        self._script = client.register_script(TOKEN_BUCKET)
        self._warn = ThrottledWarning(log)

    async def hit(
        self, key: str, *, rate_per_second: float | None = None, burst: float | None = None
    ) -> float:
        """Take one token for ``key``; 0 if allowed, else seconds until one is free."""
        rate = self.rate if rate_per_second is None else rate_per_second
        cap = self.burst if burst is None else float(burst)
        ttl_ms = self.ttl_ms if rate_per_second is None and burst is None else _ttl_ms(rate, cap)
        try:
            async with asyncio.timeout(self.timeout):
                wait = await self._script(keys=[self.key_prefix + key], args=[rate, cap, ttl_ms])
        except REDIS_ERRORS as exc:
            self._warn("rate limiter cannot reach Redis (%s); allowing requests", exc)
            return 0.0
        return float(wait)


def _ttl_ms(rate: float, burst: float) -> int:
    """How long a bucket outlives its last hit: until it would be full again."""
    return max(1000, math.ceil(burst / rate * 1000))
