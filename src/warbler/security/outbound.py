"""Outbound HTTP on a tenant's behalf (HTTP tools, URL ingestion): public hosts only, unless
the operator allowed a host (``WARBLER_OUTBOUND_ALLOWED_HOSTS``) or all private addresses
(``WARBLER_OUTBOUND_ALLOW_PRIVATE``).

The connection is pinned to the address that was checked, so DNS cannot answer differently
between the check and the request. Redirects are not followed (each hop would need a check).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from warbler.config import Settings
from warbler.webhooks.targets import TargetRejected, parse_url, pinned, resolve_public

__all__ = ["OutboundPolicy", "TargetRejected"]


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    allowed_hosts: tuple[str, ...] = field(default_factory=tuple)
    allow_private: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundPolicy:
        hosts = tuple(h.strip().lower() for h in settings.outbound_allowed_hosts if h.strip())
        return cls(allowed_hosts=hosts, allow_private=settings.outbound_allow_private)

    def host_allowed(self, host: str) -> bool:
        """An operator-allowed host may be private (an intranet service)."""
        host = host.lower().rstrip(".")
        for allowed in self.allowed_hosts:
            if allowed.startswith("*.") and host.endswith(allowed[1:]):
                return True
            if host == allowed:
                return True
        return False

    async def check(self, url: str) -> httpx.URL:
        """Validate the URL's shape and destination; raises ``TargetRejected``."""
        parsed = parse_url(url)
        if not (self.allow_private or self.host_allowed(parsed.host)):
            await resolve_public(parsed)
        return parsed

    async def request(
        self, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
    ) -> httpx.Response:
        """Send one request through the policy (no redirects followed)."""
        parsed = parse_url(url)
        if self.allow_private or self.host_allowed(parsed.host):
            return await client.request(method, parsed, follow_redirects=False, **kwargs)
        address = await resolve_public(parsed)
        target, headers, extensions = pinned(parsed, address)
        merged = {**dict(kwargs.pop("headers", None) or {}), **headers}
        return await client.request(
            method, target, headers=merged, extensions=extensions, follow_redirects=False,
            **kwargs,
        )  # fmt: skip
