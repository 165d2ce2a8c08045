"""A node's keyring: reads tenants' data keys from the database, unwraps them with the master
key and puts them in the process-wide cache (``keycache.CACHE``); creates a tenant's first
keys; re-reads a tenant's keys every ``key_refresh_seconds`` to notice a rotation made by
another node or by ``warbler keys rotate-tenant``.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.security.encryption.context import KeyUnavailable
from warbler.security.encryption.keycache import CACHE, DATA, SEARCH, DataKey
from warbler.security.encryption.master import MasterKeys
from warbler.store.db import Database
from warbler.store.models import Tenant
from warbler.store.models_crypto import TenantKey

log = logging.getLogger("warbler.keys")

PURPOSES = (DATA, SEARCH)
_KID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


def new_kid() -> str:
    return "".join(secrets.choice(_KID_ALPHABET) for _ in range(8))


class Keyring:
    """Also a Worker: ``start()`` gives every tenant without keys its first keys and loads
    all keys, so a node serves its first request without a key lookup."""

    def __init__(self, db: Database, masters: MasterKeys, *, refresh_seconds: float = 60.0) -> None:
        self.db = db
        self.masters = masters
        self.refresh_seconds = refresh_seconds
        self._loaded: dict[str, float] = {}  # tenant -> when its keys were last read
        CACHE.register(self)

    # -- Worker --------------------------------------------------------------------------

    async def start(self) -> None:
        await self.bootstrap()

    async def stop(self) -> None:
        return None

    def close(self) -> None:
        CACHE.unregister(self)

    # -- loading -------------------------------------------------------------------------

    async def ensure(self, tenant_id: str) -> bool:
        """Make sure the tenant's keys are loaded and fresh; create its first keys if it has
        none. False when the tenant is not in this keyring's database."""
        seen = self._loaded.get(tenant_id)
        if seen is not None and time.monotonic() - seen < self.refresh_seconds:
            return True
        try:
            if await self.load_tenant(tenant_id):
                return True
        except Exception:
            if seen is None:
                raise
            # Stale keys still decrypt; a database hiccup must not stop a node from working.
            log.warning("re-reading the keys of tenant %s failed; using the cached ones",
                        tenant_id, exc_info=True)  # fmt: skip
            return True
        return await self._create(tenant_id)

    async def load_tenant(self, tenant_id: str) -> bool:
        async with self.db.read() as s:
            query = select(TenantKey).where(TenantKey.tenant_id == tenant_id)
            rows = list((await s.scalars(query)).all())
        if not rows:
            return False
        self._cache_rows(rows)
        self._loaded[tenant_id] = time.monotonic()
        return True

    async def load_kid(self, kid: str) -> bool:
        async with self.db.read() as s:
            row = await s.get(TenantKey, kid)
        if row is None:
            return False
        return await self.load_tenant(row.tenant_id)

    async def bootstrap(self) -> int:
        """Give every tenant without keys its first keys (tenants from before encryption at
        rest); load every key. Returns how many tenants got keys now."""
        async with self.db.read() as s:
            tenants = list((await s.scalars(select(Tenant.id))).all())
            keyed = set((await s.scalars(select(TenantKey.tenant_id).distinct())).all())
        created = 0
        for tenant_id in tenants:
            if tenant_id not in keyed and await self._create(tenant_id):
                created += 1
        async with self.db.read() as s:
            rows = list((await s.scalars(select(TenantKey))).all())
        self._cache_rows(rows)
        now = time.monotonic()
        for row in rows:
            self._loaded[row.tenant_id] = now
        return created

    def forget(self, tenant_id: str) -> None:
        """Re-read the tenant's keys on next use (after this node rotated them)."""
        self._loaded.pop(tenant_id, None)

    # -- creating ------------------------------------------------------------------------

    def provision_in(self, session: AsyncSession, tenant_id: str) -> None:
        """Add a new tenant's first keys to the transaction that creates the tenant."""
        for purpose in PURPOSES:
            session.add(self.new_key_row(tenant_id, purpose, 1, session_cache=True))
        self._loaded[tenant_id] = time.monotonic()

    def new_key_row(
        self, tenant_id: str, purpose: str, version: int, *, session_cache: bool = False
    ) -> TenantKey:
        """A fresh random key as a row (wrapped under the current master key). With
        ``session_cache`` it is cached at once, as the active key of its purpose."""
        kid, secret = new_kid(), secrets.token_bytes(32)
        wrapped, master_id = self.masters.wrap(tenant_id, purpose, kid, secret)
        if session_cache:
            CACHE.put(_key(kid, tenant_id, purpose, version, secret), active=True)
        return TenantKey(
            id=kid, tenant_id=tenant_id, purpose=purpose, version=version, state="active",
            wrapped=wrapped, master_id=master_id, created_at=utcnow(),
        )  # fmt: skip

    async def _create(self, tenant_id: str) -> bool:
        async with self.db.read() as s:
            if await s.get(Tenant, tenant_id) is None:
                return False  # not this database's tenant
        if self.db.is_sqlite and self.db.in_write():
            # This task holds SQLite's write lock: a second write transaction would wait on it.
            raise KeyUnavailable(
                f"tenant {tenant_id} has no data keys yet; they are created with the tenant, "
                "or for older tenants when a node starts (Keyring.bootstrap)"
            )
        try:
            async with self.db.write() as s:
                if await s.scalar(select(TenantKey.id).where(TenantKey.tenant_id == tenant_id)):
                    pass  # another node (or task) created them first
                else:
                    s.add_all([self.new_key_row(tenant_id, p, 1) for p in PURPOSES])
        except IntegrityError:
            pass  # created concurrently: read theirs
        return await self.load_tenant(tenant_id)

    def _cache_rows(self, rows: list[TenantKey]) -> None:
        newest: dict[tuple[str, str], TenantKey] = {}
        for row in rows:
            if row.state == "active":
                best = newest.get((row.tenant_id, row.purpose))
                if best is None or row.version > best.version:
                    newest[(row.tenant_id, row.purpose)] = row
        for row in rows:
            active = newest.get((row.tenant_id, row.purpose)) is row
            try:
                secret = self.masters.unwrap(
                    row.tenant_id, row.purpose, row.id, row.wrapped, row.master_id
                )
            except KeyUnavailable:
                if active:
                    raise
                # An old key: only values not yet re-encrypted need it; say so, go on.
                log.error("retired data key %s of tenant %s does not unwrap", row.id,
                          row.tenant_id, exc_info=True)  # fmt: skip
                continue
            CACHE.put(_key(row.id, row.tenant_id, row.purpose, row.version, secret), active=active)


def _key(kid: str, tenant_id: str, purpose: str, version: int, secret: bytes) -> DataKey:
    return DataKey(kid, tenant_id, purpose, version, secret, AESGCM(secret))


def key_view(row: TenantKey) -> dict[str, Any]:
    """What ``warbler keys status`` shows of a key (never its bytes)."""
    return {
        "kid": row.id,
        "tenant_id": row.tenant_id,
        "purpose": row.purpose,
        "version": row.version,
        "state": row.state,
        "master_id": row.master_id,
        "created_at": row.created_at,
        "retired_at": row.retired_at,
    }
