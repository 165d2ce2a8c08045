"""Login throttling and lockout, per account (tenant slug + username) and per client IP.

Failed logins are counted in the database (table ``login_throttle``), the one store every
node shares whatever the deployment (with or without Redis), and which survives restarts:
a lockout must not end because a node restarted or Redis flushed. Logins are rare enough
that one small write per failure costs nothing.

- A counter's window opens at its first failure and lasts ``login_window_seconds``; a
  failure after the window starts a new one.
- When an account reaches ``login_account_max_failures`` (default 5) or an IP reaches
  ``login_ip_max_failures`` (default 50) within its window, it is locked for
  ``login_lockout_seconds`` (default 15 min): every login for it answers 429 ``login_locked``
  with ``Retry-After``, before the password is even checked. Attempts while locked do not
  extend the lock.
- Accounts that do not exist (or tenants that do not) are counted and locked exactly like
  real ones, so a lockout reveals nothing; keys are stored as SHA-256 hashes.
- A successful login clears its account's counter, not its IP's (an attacker holding one
  valid account must not be able to reset the counter of the IP it sprays from).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.errors import RateLimited
from warbler.store.db import Database
from warbler.store.models_access import LoginCounter

ACCOUNT = "account"
IP = "ip"


class LoginLocked(RateLimited):
    """429: too many failed logins for this account or address. ``details``:
    ``retry_after_seconds`` (also the Retry-After header) and ``message_zh``."""

    code = "login_locked"


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    account_max_failures: int = 5
    ip_max_failures: int = 50
    window_seconds: int = 900
    lockout_seconds: int = 900

    @classmethod
    def from_settings(cls, settings: Any) -> ThrottlePolicy:
        return cls(
            account_max_failures=settings.login_account_max_failures,
            ip_max_failures=settings.login_ip_max_failures,
            window_seconds=settings.login_window_seconds,
            lockout_seconds=settings.login_lockout_seconds,
        )


@dataclass(frozen=True, slots=True)
class _Key:
    scope: str
    key_hash: str
    max_failures: int


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


class LoginThrottle:
    def __init__(self, db: Database, policy: ThrottlePolicy | None = None) -> None:
        self.db = db
        self.policy = policy or ThrottlePolicy()

    def _keys(self, tenant_slug: str, username: str, ip: str | None) -> list[_Key]:
        keys = [
            _Key(
                ACCOUNT,
                _hash(ACCOUNT, tenant_slug.casefold(), username.casefold()),
                self.policy.account_max_failures,
            )
        ]
        if ip:
            keys.append(_Key(IP, _hash(IP, ip), self.policy.ip_max_failures))
        return keys

    async def check(self, tenant_slug: str, username: str, ip: str | None) -> None:
        """Raise ``LoginLocked`` while the account or the IP is locked."""
        now = utcnow()
        hashes = [k.key_hash for k in self._keys(tenant_slug, username, ip)]
        async with self.db.read() as s:
            until = await s.scalar(
                select(LoginCounter.locked_until)
                .where(LoginCounter.key_hash.in_(hashes), LoginCounter.locked_until > now)
                .order_by(LoginCounter.locked_until.desc())
                .limit(1)
            )
        if until is not None:
            raise locked_error(until, now)

    async def failed(
        self, s: AsyncSession, tenant_slug: str, username: str, ip: str | None
    ) -> list[tuple[str, datetime]]:
        """Count one failure (in the caller's transaction). Returns the scopes this failure
        locked, with their lock's end."""
        now = utcnow()
        locked = []
        for key in self._keys(tenant_slug, username, ip):
            failures = await self._count(s, key, now)
            if failures >= key.max_failures:
                until = now + timedelta(seconds=self.policy.lockout_seconds)
                await s.execute(
                    update(LoginCounter)
                    .where(LoginCounter.key_hash == key.key_hash)
                    .values(failures=0, window_start=now, locked_until=until, updated_at=now)
                )
                locked.append((key.scope, until))
        await self._prune(s, now)
        return locked

    async def _count(self, s: AsyncSession, key: _Key, now: datetime) -> int:
        """Add one failure atomically (INSERT … ON CONFLICT DO UPDATE, on both databases)."""
        table = LoginCounter.__table__
        expired = table.c.window_start <= now - timedelta(seconds=self.policy.window_seconds)
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        values = insert(LoginCounter).values(
            key_hash=key.key_hash, scope=key.scope, failures=1, window_start=now,
            locked_until=None, updated_at=now,
        )  # fmt: skip
        stmt = values.on_conflict_do_update(
            index_elements=[table.c.key_hash],
            set_={
                "failures": case((expired, 1), else_=table.c.failures + 1),
                "window_start": case((expired, now), else_=table.c.window_start),
                "updated_at": now,
            },
        ).returning(table.c.failures)
        return int((await s.execute(stmt)).scalar_one())

    async def succeeded(self, s: AsyncSession, tenant_slug: str, username: str) -> None:
        """A successful login clears its account's counter (not its IP's)."""
        key = self._keys(tenant_slug, username, None)[0]
        await s.execute(delete(LoginCounter).where(LoginCounter.key_hash == key.key_hash))

    async def _prune(self, s: AsyncSession, now: datetime) -> None:
        """Drop counters whose window and lock have both passed: both began at or before
        the row's last update."""
        stale = now - timedelta(seconds=self.policy.window_seconds + self.policy.lockout_seconds)
        await s.execute(delete(LoginCounter).where(LoginCounter.updated_at <= stale))


def locked_error(until: datetime, now: datetime) -> LoginLocked:
    seconds = max(1, math.ceil((until - now).total_seconds()))
    return LoginLocked(
        "too many failed logins: try again later",
        details={
            "retry_after_seconds": seconds,
            "message_zh": f"登录失败次数过多，请 {math.ceil(seconds / 60)} 分钟后再试",
        },
    )
