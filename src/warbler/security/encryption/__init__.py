"""Encryption at rest: envelope encryption under per-tenant data keys.

- ``master.py``: the master key (``WARBLER_SECRET_KEY``) wraps every tenant's data keys.
- ``models_crypto.TenantKey`` rows hold them wrapped; ``keyring.py`` loads them into the
  process-wide cache (``keycache.py``); ``context.py`` says which tenant code acts for.
- ``values.py``: the ``enc1:`` value format; ``columns.py``: column types that use it
  (message bodies, event payloads, job payloads, webhook secrets, bot memory);
  ``sealer.py``: provider and tool secrets; ``files.py``: file contents, streamed;
  ``blind_index.py``: the search index's keyed hashes.
- ``rotation.py`` and ``reencrypt.py``: ``warbler keys`` (rotate, re-encrypt, status).

What is encrypted with what, and how to rotate: docs/security.md.
"""

from warbler.security.encryption.columns import EncryptedJSON, EncryptedString, EncryptedText
from warbler.security.encryption.context import (
    EncryptionError,
    KeyUnavailable,
    NoTenantContext,
    WrongTenant,
    bound_tenant,
    current_tenant,
)
from warbler.security.encryption.keycache import ensure, tenant_scope

__all__ = [
    "EncryptedJSON",
    "EncryptedString",
    "EncryptedText",
    "EncryptionError",
    "KeyUnavailable",
    "NoTenantContext",
    "WrongTenant",
    "bound_tenant",
    "current_tenant",
    "ensure",
    "tenant_scope",
]
