"""Secrets at rest (provider API keys, HTTP tool and MCP secrets): ``services.secrets``.

New secrets are sealed under the tenant's data key, bound to a context naming the row and
field (``ai_provider:<id>:api_key``). ``v1:`` values sealed under the master key before
tenant keys existed still open (under the current or the previous master key) until a
re-encryption re-seals them.
"""

from __future__ import annotations

from warbler.security.crypto import VERSION as LEGACY_VERSION
from warbler.security.crypto import SecretBox, SecretError
from warbler.security.encryption import values
from warbler.security.encryption.keycache import ensure
from warbler.security.encryption.master import MasterKeys


class Sealer(SecretBox):
    """A drop-in ``SecretBox`` (same ``seal``/``open``) that seals under tenant keys."""

    def __init__(self, masters: MasterKeys) -> None:
        super().__init__(masters.current.key)
        self.masters = masters

    async def ensure(self, tenant_id: str) -> None:
        """Load the tenant's keys (call before ``seal`` from async code)."""
        await ensure(tenant_id)

    def seal(self, plaintext: str, context: str, *, tenant_id: str | None = None) -> str:
        """Seal under the data key of ``tenant_id`` (default: the bound tenant)."""
        return values.encrypt(plaintext.encode(), context, tenant_id=tenant_id)

    def open(self, sealed: str, context: str) -> str:
        """The secret; ``SecretError`` when it does not open with this context and key."""
        if sealed.startswith(LEGACY_VERSION):
            for box in self.masters.legacy_boxes():
                try:
                    return box.open(sealed, context)
                except SecretError:
                    continue
            raise SecretError("the sealed value does not open with this node's master keys")
        return values.decrypt(sealed, context).decode()

    @staticmethod
    def is_legacy(sealed: str) -> bool:
        return sealed.startswith(LEGACY_VERSION)
