"""Encrypted values: ``enc1:<key id>:<base64url(nonce ‖ AES-256-GCM ciphertext ‖ tag)>``.

The associated data binds the tenant that owns the key and the *purpose* (the column, such
as ``messages.text``, or a secret's context, such as ``ai_provider:<id>:api_key``): a value
copied into another column fails to decrypt, and one copied into another tenant's row fails
the moment that tenant reads it (``WrongTenant``).
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag

from warbler.security.encryption.context import (
    EncryptionError,
    NoTenantContext,
    WrongTenant,
    current_tenant,
)
from warbler.security.encryption.keycache import CACHE, DATA

PREFIX = "enc1:"
NONCE_BYTES = 12
KID_CHARS = 8


class DecryptionFailed(EncryptionError):
    """Wrong key, wrong purpose or tenant, or a tampered value."""


def associated_data(tenant_id: str, purpose: str, kid: str) -> bytes:
    return f"warbler:{tenant_id}:{purpose}:{kid}".encode()


def is_encrypted(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def key_id(value: str) -> str | None:
    """The key id of an encrypted value (None for anything else)."""
    if not is_encrypted(value):
        return None
    return value[len(PREFIX) : len(PREFIX) + KID_CHARS]


def encrypt(plaintext: bytes, purpose: str, *, tenant_id: str | None = None) -> str:
    """Encrypt under the active data key of ``tenant_id`` (default: the bound tenant)."""
    tenant = tenant_id or current_tenant()
    if tenant is None:
        raise NoTenantContext(f"no tenant is bound to encrypt {purpose}")
    key = CACHE.active(tenant, DATA)
    nonce = os.urandom(NONCE_BYTES)
    sealed = key.aead.encrypt(nonce, plaintext, associated_data(tenant, purpose, key.kid))
    return f"{PREFIX}{key.kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(value: str, purpose: str) -> bytes:
    """The plaintext of an ``enc1:`` value. Acting for a tenant (``current_tenant``), the
    key must be that tenant's; with no tenant bound (a node's own background work), the
    key's tenant is the binding."""
    kid = key_id(value)
    body = value[len(PREFIX) + KID_CHARS + 1 :]
    if kid is None or value[len(PREFIX) + KID_CHARS : len(PREFIX) + KID_CHARS + 1] != ":":
        raise DecryptionFailed("not an encrypted value")
    key = CACHE.by_kid(kid)
    acting = current_tenant()
    if acting is not None and acting != key.tenant_id:
        raise WrongTenant(f"a value of another tenant was read as {purpose}")
    try:
        raw = base64.urlsafe_b64decode(body)
        return key.aead.decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated_data(key.tenant_id, purpose, kid)
        )
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise DecryptionFailed(f"the {purpose} value does not decrypt") from exc
