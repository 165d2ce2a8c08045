"""Which tenant the running code acts for: the tenant whose data key encrypts what it writes.

The API's auth dependency, the WebSocket gateway, the job runner (per job) and the CLI set
it with ``tenant_scope`` (which also makes sure the tenant's keys are loaded); the few
functions that write a tenant's rows themselves (sending a message, recording events,
enqueueing a job) bind the tenant they write for with ``bound_tenant``. Encrypting with no
tenant bound raises (fail closed) instead of guessing a key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from warbler.security.crypto import SecretError

_TENANT: ContextVar[str | None] = ContextVar("warbler_tenant", default=None)


class EncryptionError(SecretError):
    """A value could not be encrypted or decrypted (base class)."""


class NoTenantContext(EncryptionError):
    """Something tried to encrypt a tenant's data with no tenant bound: a bug, never data."""


class KeyUnavailable(EncryptionError):
    """The key a value needs is not in this node's keyring and could not be loaded."""


class WrongTenant(EncryptionError):
    """A ciphertext of one tenant was read while acting for another (moved between rows)."""


def current_tenant() -> str | None:
    return _TENANT.get()


@contextlib.contextmanager
def bound_tenant(tenant_id: str) -> Iterator[None]:
    """Encrypt for ``tenant_id`` inside the block. The caller makes sure the keys are
    loaded (``await keycache.ensure(tenant_id)``) or runs inside SQLAlchemy, which loads
    a missing key on first use."""
    token = _TENANT.set(tenant_id)
    try:
        yield
    finally:
        _TENANT.reset(token)
