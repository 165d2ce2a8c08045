"""``PresenceStore`` in Redis: each user's connected devices counted across every node.

Keys (``<prefix>`` is ``WARBLER_REDIS_PREFIX``):

* ``<prefix>presence:<tenant>:<user>``: hash of node instance → that node's device count.
* ``<prefix>node:<instance>``: the instance's heartbeat, a key with a TTL (``ttl`` seconds,
  30 by default) that a background task refreshes every ``ttl / 3``. Counts of an instance
  whose heartbeat is gone are ignored, and deleted by the next script that reads them, so a
  node that dies leaves nobody online for longer than the TTL.
* ``<prefix>last_seen:<tenant>:<user>``: when the user's last device disconnected (ISO 8601,
  no TTL).

An *instance* is the node id plus a random epoch, new at every start, so a node restarted
under the same name does not revive the counts of its previous life. Each instance also keeps
its own counts in memory; whenever its Redis state may be wrong (its heartbeat key vanished:
Redis restarted, or the node stalled past the TTL and others deleted its counts; or a write
failed), the heartbeat task moves to a fresh epoch and writes those counts again. Writes
are increments only and a fresh epoch's field starts empty, so a re-sync cannot race with
connects and disconnects that are in flight.

Every read-modify-write (count a device in or out, then sum the live nodes) is one Lua
script, so two nodes never interleave. The scripts read heartbeat keys they find in the hash,
which Redis Cluster does not allow: use a standalone Redis (or Sentinel).

If Redis is unreachable, presence degrades to this node's own view (a warning is logged at
most once a minute): a chat never fails because presence is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from warbler.aio import cancel_and_wait
from warbler.bus.redis import REDIS_ERRORS, ThrottledWarning
from warbler.clock import utcnow

log = logging.getLogger(__name__)

# Sums the counts of live instances in hash KEYS[1]; deletes fields of dead ones.
# ARGV[1] = heartbeat key prefix, ARGV[2] = the caller's own instance (live by definition).
_LIVE_TOTAL = """
local function live_total(hash, node_prefix, me)
  local fields = redis.call('HGETALL', hash)
  local total = 0
  for i = 1, #fields, 2 do
    local node, count = fields[i], tonumber(fields[i + 1])
    if node == me or redis.call('EXISTS', node_prefix .. node) == 1 then
      if count > 0 then total = total + count end
    else
      redis.call('HDEL', hash, node)
    end
  end
  return total
end
"""

# KEYS[1] = presence hash; ARGV[3] = +1 or -1; ARGV[4] = last seen (on a disconnect).
# KEYS[2] = last-seen key. Returns the user's device count across live nodes.
COUNT = (
    _LIVE_TOTAL
    + """
local mine = redis.call('HINCRBY', KEYS[1], ARGV[2], ARGV[3])
if mine == 0 then redis.call('HDEL', KEYS[1], ARGV[2]) end
if ARGV[4] ~= '' then redis.call('SET', KEYS[2], ARGV[4]) end
return live_total(KEYS[1], ARGV[1], ARGV[2])
"""
)

# KEYS = n presence hashes, then n last-seen keys. Returns n totals, then n last-seen values.
STATUS = (
    _LIVE_TOTAL
    + """
local n = #KEYS / 2
local out = {}
for i = 1, n do out[i] = live_total(KEYS[i], ARGV[1], ARGV[2]) end
for i = 1, n do out[n + i] = redis.call('GET', KEYS[n + i]) or false end
return out
"""
)


class RedisPresenceStore:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "warbler:",
        node_id: str = "node",
        ttl: float = 30.0,
        timeout: float = 1.0,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.node_id = node_id
        self.ttl_ms = max(1, round(ttl * 1000))
        self.timeout = timeout
        self.instance = self._new_instance()
        self._counts: dict[tuple[str, str], int] = {}  # this instance's devices, the truth
        self._dirty = False  # a write may have been lost: re-sync at the next heartbeat
        self._count = client.register_script(COUNT)
        self._status = client.register_script(STATUS)
        self._heartbeat: asyncio.Task[None] | None = None
        self._warn = ThrottledWarning(log)

    # -- PresenceStore -------------------------------------------------------------------------

    async def connected(self, tenant_id: str, user_id: str) -> bool:
        key = (tenant_id, user_id)
        self._counts[key] = self._counts.get(key, 0) + 1
        total = await self._apply(key, +1, "")
        return (self._counts[key] == 1) if total is None else total == 1

    async def disconnected(self, tenant_id: str, user_id: str) -> bool:
        key = (tenant_id, user_id)
        mine = self._counts.get(key, 0)
        if mine <= 0:
            return False  # not counted in here: nothing to count out
        if mine == 1:
            del self._counts[key]
        else:
            self._counts[key] = mine - 1
        total = await self._apply(key, -1, utcnow().isoformat())
        return (mine == 1) if total is None else total == 0

    async def status(self, tenant_id: str, user_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        users = list(dict.fromkeys(user_ids))
        if not users:
            return {}
        keys = [self._hash(tenant_id, u) for u in users]
        keys += [self._last_seen(tenant_id, u) for u in users]
        try:
            async with asyncio.timeout(self.timeout):
                raw = await self._status(keys=keys, args=[self._node_prefix, self.instance])
        except REDIS_ERRORS as exc:
            self._warn("presence cannot reach Redis (%s); showing this node's view", exc)
            local = [self._counts.get((tenant_id, u), 0) for u in users]
            return {
                u: {"online": count > 0, "devices": count, "last_seen": None}
                for u, count in zip(users, local, strict=True)
            }
        n = len(users)
        out: dict[str, dict[str, Any]] = {}
        for i, uid in enumerate(users):
            devices = int(raw[i])
            seen = raw[n + i]
            out[uid] = {
                "online": devices > 0,
                "devices": devices,
                "last_seen": datetime.fromisoformat(seen.decode()) if seen else None,
            }
        return out

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Register this instance, then keep its heartbeat alive."""
        if self._heartbeat is not None:
            return
        self._dirty = True  # the first beat writes the heartbeat key (and any counts)
        await self.beat()
        self._heartbeat = asyncio.create_task(self._beat_loop(), name="presence-heartbeat")

    async def stop(self) -> None:
        """Stop the heartbeat and withdraw this instance: its users stop counting at once."""
        if self._heartbeat is None:
            return
        await cancel_and_wait(self._heartbeat)
        self._heartbeat = None
        with contextlib.suppress(*REDIS_ERRORS):
            async with asyncio.timeout(self.timeout):
                await self.client.delete(self._node_key(self.instance))

    async def beat(self) -> None:
        """Refresh the heartbeat; re-sync under a fresh epoch if Redis may have lost state."""
        try:
            async with asyncio.timeout(self.timeout):
                if not self._dirty:
                    alive = await self.client.set(
                        self._node_key(self.instance), b"1", px=self.ttl_ms, xx=True
                    )
                    if alive:
                        return
                    log.warning("presence heartbeat of %s had expired; re-syncing", self.instance)
                await self._resync()
        except REDIS_ERRORS as exc:
            self._dirty = True
            self._warn("presence heartbeat cannot reach Redis (%s); will re-sync", exc)

    # -- internals -----------------------------------------------------------------------------

    async def _apply(self, key: tuple[str, str], delta: int, last_seen: str) -> int | None:
        """Run the count script; the live total, or None when Redis could not be reached."""
        tenant_id, user_id = key
        try:
            async with asyncio.timeout(self.timeout):
                total = await self._count(
                    keys=[self._hash(tenant_id, user_id), self._last_seen(tenant_id, user_id)],
                    args=[self._node_prefix, self.instance, delta, last_seen],
                )
        except REDIS_ERRORS as exc:
            self._dirty = True
            self._warn("presence cannot reach Redis (%s); showing this node's view", exc)
            return None
        return int(total)

    async def _resync(self) -> None:
        """Move to a fresh epoch and write this instance's counts under it.

        The old epoch's counts stop counting once its heartbeat key is deleted (or expired);
        calls in flight that still carry the old instance land on that dead field.
        """
        old, self.instance = self.instance, self._new_instance()
        snapshot = dict(self._counts)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self._node_key(old))
            pipe.set(self._node_key(self.instance), b"1", px=self.ttl_ms)
            for (tenant_id, user_id), count in snapshot.items():
                pipe.hincrby(self._hash(tenant_id, user_id), self.instance, count)
            await pipe.execute()
        self._dirty = False

    async def _beat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            await self.beat()

    def _new_instance(self) -> str:
        return f"{self.node_id}/{uuid.uuid4().hex[:12]}"

    @property
    def _node_prefix(self) -> str:
        return f"{self.prefix}node:"

    def _node_key(self, instance: str) -> str:
        return f"{self._node_prefix}{instance}"

    def _hash(self, tenant_id: str, user_id: str) -> str:
        return f"{self.prefix}presence:{tenant_id}:{user_id}"

    def _last_seen(self, tenant_id: str, user_id: str) -> str:
        return f"{self.prefix}last_seen:{tenant_id}:{user_id}"
