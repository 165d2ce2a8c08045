"""The master key (and, during a rotation, the previous one): what wraps tenant data keys.

Each wrapped key records the fingerprint of the master key that wrapped it, so a node that
holds both the new and the previous master key (``WARBLER_SECRET_KEY`` and
``WARBLER_SECRET_KEY_PREVIOUS``) opens every key during a rotation, whichever one wrapped it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from warbler.config import Settings
from warbler.security.crypto import SecretBox, master_key, previous_master_key
from warbler.security.encryption.context import KeyUnavailable

NONCE_BYTES = 12


def fingerprint(key: bytes) -> str:
    """A public name for a master key (an HMAC of a constant, so it reveals nothing)."""
    return hmac.new(key, b"warbler master key fingerprint", hashlib.sha256).hexdigest()[:12]


def _wrap_aad(tenant_id: str, purpose: str, kid: str) -> bytes:
    return f"warbler-key:{tenant_id}:{purpose}:{kid}".encode()


@dataclass(frozen=True, slots=True)
class MasterKey:
    key: bytes = field(repr=False)
    id: str

    @classmethod
    def of(cls, key: bytes) -> MasterKey:
        if len(key) != 32:
            raise ValueError("a master key is 32 bytes")
        return cls(key, fingerprint(key))


class MasterKeys:
    def __init__(self, current: bytes, previous: bytes | None = None) -> None:
        self.current = MasterKey.of(current)
        self.previous = MasterKey.of(previous) if previous and previous != current else None

    @classmethod
    def from_settings(cls, settings: Settings) -> MasterKeys:
        return cls(master_key(settings), previous_master_key(settings))

    @property
    def ids(self) -> list[str]:
        return [self.current.id] + ([self.previous.id] if self.previous else [])

    def wrap(self, tenant_id: str, purpose: str, kid: str, secret: bytes) -> tuple[str, str]:
        """(wrapped, master id): the key sealed under the current master key."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.current.key).encrypt(nonce, secret, _wrap_aad(tenant_id, purpose, kid))
        return base64.urlsafe_b64encode(nonce + sealed).decode(), self.current.id

    def unwrap(self, tenant_id: str, purpose: str, kid: str, wrapped: str, master_id: str) -> bytes:
        master = next((m for m in (self.current, self.previous) if m and m.id == master_id), None)
        if master is None:
            raise KeyUnavailable(
                f"data key {kid} is wrapped under master key {master_id}, which this node "
                f"does not have (it has {', '.join(self.ids)}): every node needs the same "
                "WARBLER_SECRET_KEY; during a rotation, set WARBLER_SECRET_KEY_PREVIOUS"
            )
        try:
            raw = base64.urlsafe_b64decode(wrapped)
            return AESGCM(master.key).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], _wrap_aad(tenant_id, purpose, kid)
            )
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise KeyUnavailable(f"data key {kid} does not unwrap (tampered?)") from exc

    def legacy_boxes(self) -> list[SecretBox]:
        """Boxes for ``v1:`` secrets sealed directly under a master key (before tenant keys)."""
        return [SecretBox(m.key) for m in (self.current, self.previous) if m is not None]
