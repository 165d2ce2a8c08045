"""The process-wide keyring: unwrapped data keys by key id, and each tenant's active keys.

Keys get here from a ``Keyring`` (``keyring.py``), which reads and unwraps them from the
database. Key ids are random and unique across tenants, so every app in a process (tests
build several) shares this one cache; decrypting needs nothing but the key id in the value.

A key that is not loaded yet (a tenant created on another node after this one started) is
loaded on first use: from async code with ``await ensure(tenant_id)``; from the sync
encrypt/decrypt inside a SQLAlchemy statement (a ``TypeDecorator``) through SQLAlchemy's
greenlet bridge, which lets sync code there await the load.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.util.concurrency import await_, in_greenlet

from warbler.security.encryption.context import KeyUnavailable, bound_tenant

DATA = "data"
SEARCH = "search"


@dataclass(frozen=True, slots=True)
class DataKey:
    kid: str
    tenant_id: str
    purpose: str  # data | search
    version: int
    secret: bytes = field(repr=False)
    aead: AESGCM = field(repr=False, compare=False)


class KeyLoader(Protocol):
    """What loads keys into the cache (a ``Keyring``): True when it found them."""

    async def ensure(self, tenant_id: str) -> bool: ...

    async def load_kid(self, kid: str) -> bool: ...


class KeyCache:
    def __init__(self) -> None:
        self._by_kid: dict[str, DataKey] = {}
        self._active: dict[tuple[str, str], str] = {}  # (tenant, purpose) -> kid
        self._loaders: list[KeyLoader] = []

    # -- filled by keyrings ------------------------------------------------------------------

    def put(self, key: DataKey, *, active: bool) -> None:
        self._by_kid[key.kid] = key
        if active:
            self._active[(key.tenant_id, key.purpose)] = key.kid

    def forget_tenant(self, tenant_id: str) -> None:
        """Drop a tenant's keys from memory (a deleted tenant; tests of loading on first use)."""
        for kid in [k for k, key in self._by_kid.items() if key.tenant_id == tenant_id]:
            del self._by_kid[kid]
        for slot in [slot for slot in self._active if slot[0] == tenant_id]:
            del self._active[slot]

    def register(self, loader: KeyLoader) -> None:
        self._loaders.append(loader)

    def unregister(self, loader: KeyLoader) -> None:
        with contextlib.suppress(ValueError):
            self._loaders.remove(loader)

    # -- lookups -----------------------------------------------------------------------------

    def by_kid(self, kid: str) -> DataKey:
        key = self._by_kid.get(kid)
        if key is None and self._load_sync(lambda loader: loader.load_kid(kid)):
            key = self._by_kid.get(kid)
        if key is None:
            raise KeyUnavailable(f"data key {kid} is not in this node's keyring")
        return key

    def active(self, tenant_id: str, purpose: str = DATA) -> DataKey:
        kid = self._active.get((tenant_id, purpose))
        if kid is None and self._load_sync(lambda loader: loader.ensure(tenant_id)):
            kid = self._active.get((tenant_id, purpose))
        if kid is None:
            raise KeyUnavailable(f"tenant {tenant_id} has no {purpose} key loaded")
        return self._by_kid[kid]

    def has_active(self, tenant_id: str, purpose: str = DATA) -> bool:
        return (tenant_id, purpose) in self._active

    async def ensure(self, tenant_id: str) -> None:
        """Load the tenant's keys if this process does not have them yet (or they are stale:
        each loader re-reads a tenant's keys now and then to notice a rotation)."""
        for loader in reversed(self._loaders):
            if await loader.ensure(tenant_id):
                return
        if not self.has_active(tenant_id, DATA):  # put here by hand (tests) or not at all
            raise KeyUnavailable(f"no data key found for tenant {tenant_id}")

    def _load_sync(self, load: Callable[[KeyLoader], Awaitable[bool]]) -> bool:
        """From sync code inside SQLAlchemy's greenlet: await the loaders. Elsewhere: False."""
        if not in_greenlet():
            return False
        for loader in reversed(self._loaders):
            if await_(load(loader)):
                return True
        return False


CACHE = KeyCache()


async def ensure(tenant_id: str) -> None:
    await CACHE.ensure(tenant_id)


@contextlib.asynccontextmanager
async def tenant_scope(tenant_id: str) -> AsyncIterator[None]:
    """Act for ``tenant_id`` inside the block: its keys loaded, encryption bound to it."""
    await CACHE.ensure(tenant_id)
    with bound_tenant(tenant_id):
        yield
