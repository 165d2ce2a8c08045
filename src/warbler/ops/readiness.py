"""Readiness: whether this node should receive traffic (database, schema, Redis, not draining).

A load balancer polls ``GET /ready`` every few seconds, so each check is one cheap round trip
bounded by ``ready_timeout_seconds``. Failures report only the exception's type: messages from
drivers can carry host names or SQL, and the body is public; the log gets the whole error.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from warbler import store
from warbler.config import Settings
from warbler.store.db import Database

log = logging.getLogger("warbler.ready")

MIGRATIONS = Path(store.__file__).parent / "migrations"

Check = dict[str, Any]


@functools.cache
def script_heads() -> tuple[str, ...]:
    """The head revision(s) this code's migrations end at (read once; they never change)."""
    return tuple(sorted(ScriptDirectory(str(MIGRATIONS)).get_heads()))


def _current_heads(connection: Connection) -> tuple[str, ...]:
    return tuple(sorted(MigrationContext.configure(connection).get_current_heads()))


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
        head (the schema is the one this code expects), on one connection."""
        heads = script_heads()
        database: Check | None = None
        migrations: Check = {"ok": False, "head": _one(heads), "error": "not checked"}
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                async with self.db.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                    database = {"ok": True, "latency_ms": _ms_since(started)}
                    current = await conn.run_sync(_current_heads)
            migrations = {"ok": current == heads, "revision": _one(current), "head": _one(heads)}
            if current != heads:
                migrations["error"] = "schema is not at the code's head: run `warbler migrate`"
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
        self._errors[name] = exc
        if isinstance(exc, TimeoutError):
            return {"ok": False, "error": f"no answer within {self.timeout:g} s"}
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
