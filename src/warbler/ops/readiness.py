"""Readiness: whether this node should receive traffic (database, schema, Redis, not draining).

A load balancer polls ``GET /ready`` every few seconds, so each check is one cheap round trip
bounded by ``ready_timeout_seconds``. Failures report only the exception's type: messages from
drivers can carry host names or SQL, and the body is public; the log gets the whole error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import text

from warbler.config import Settings
from warbler.store.db import Database
from warbler.store.migrate import compare, current_heads, script_heads

log = logging.getLogger("warbler.ready")

Check = dict[str, Any]


def compare_schema(current: tuple[str, ...]) -> Check:
    """The migrations check for the database's revision(s) ``current``.

    Behind: not ready, the code would hit missing tables. Ahead: ready. That is an old node
    during a rolling upgrade, after `warbler migrate` ran for the new code; failing it would
    take every old node out of the load balancer at once. Migrations are written to keep
    that safe (add first, remove later).
    """
    check: Check = {"ok": True, "revision": _one(current), "head": _one(script_heads())}
    state = compare(current)
    check["state"] = state
    if state == "behind":
        check |= {"ok": False, "error": "the schema is older than this code: run `warbler migrate`"}
    return check


class Readiness:
    """Runs the readiness checks and holds the node's draining flag."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.timeout = settings.ready_timeout_seconds
        self._draining = False
        self._last_ok: dict[str, bool] = {}
        self._errors: dict[str, BaseException] = {}

    @property
    def draining(self) -> bool:
        return self._draining

    def begin_draining(self) -> None:
        """From now on the node is not ready. Only sets a flag, so a signal handler may call it."""
        self._draining = True

    async def report(self) -> tuple[bool, dict[str, Check]]:
        """``(ready, checks)``. A draining node skips the dependency checks: it is leaving
        whatever they say, and its connection pools may already be closing."""
        if self._draining:
            return False, {"lifecycle": {"ok": False, "state": "draining"}}
        checks: dict[str, Check] = {"lifecycle": {"ok": True, "state": "serving"}}
        work = [self._database()]
        if self.settings.redis_url:
            work.append(self._redis())
        for found in await asyncio.gather(*work):
            checks.update(found)
        for name, check in checks.items():
            self._log_change(name, check)
        return all(check["ok"] for check in checks.values()), checks

    async def _database(self) -> dict[str, Check]:
        """``SELECT 1`` (the database answers), then alembic's revision against the code's
        head (see ``compare_schema``), on one connection."""
        database: Check | None = None
        migrations: Check = {"ok": False, "head": _one(script_heads()), "error": "not checked"}
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                async with self.db.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                    database = {"ok": True, "latency_ms": _ms_since(started)}
                    current = await conn.run_sync(current_heads)
            migrations = compare_schema(current)
        except Exception as exc:
            failed = self._failure("database" if database is None else "migrations", exc)
            if database is None:
                database = failed
            else:
                migrations.update(failed)
        return {"database": database, "migrations": migrations}

    async def _redis(self) -> dict[str, Check]:
        # A fresh connection per probe: it proves a new node could connect too, and leaves
        # no client to close at shutdown. No retries: the probe itself is retried by the LB.
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        started = time.perf_counter()
        client = Redis.from_url(
            self.settings.redis_url,
            socket_connect_timeout=self.timeout,
            socket_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            async with asyncio.timeout(self.timeout):
                await client.ping()
            return {"redis": {"ok": True, "latency_ms": _ms_since(started)}}
        except Exception as exc:
            return {"redis": self._failure("redis", exc)}
        finally:
            await client.aclose()

    def _failure(self, name: str, exc: BaseException) -> Check:
        if isinstance(exc, TimeoutError):
            return {"ok": False, "error": f"no answer within {self.timeout:g} s"}
        self._errors[name] = exc  # logged with its traceback if the check was passing
        return {"ok": False, "error": type(exc).__name__}

    def _log_change(self, name: str, check: Check) -> None:
        # Log transitions only: the load balancer polls every few seconds.
        ok = bool(check["ok"])
        error = self._errors.pop(name, None)
        if self._last_ok.get(name, True) != ok:
            if ok:
                log.warning("readiness check %s recovered", name)
            else:
                log.warning("readiness check %s failed: %s", name, check.get("error"),
                            exc_info=error)  # fmt: skip
        self._last_ok[name] = ok


def _one(heads: tuple[str, ...]) -> str | None:
    return ",".join(heads) or None


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
