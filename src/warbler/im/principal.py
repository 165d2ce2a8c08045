"""Who is asking: a user (by access token) or a service (by API key), always in one tenant."""

from __future__ import annotations

from dataclasses import dataclass, field

from warbler.errors import Forbidden

ROLES = ("owner", "admin", "agent", "member", "bot", "visitor")
HUMAN_ROLES = ("owner", "admin", "agent", "member")
ADMIN_ROLES = ("owner", "admin")
KINDS = ("human", "bot", "visitor")
KIND_ROLE = {"bot": "bot", "visitor": "visitor"}

SCOPES = (
    "admin",
    "users:read",
    "users:write",
    "tokens:write",
    "webhooks:write",
    "impersonate",
    "kb:read",  # read every knowledge base of the tenant (retrieval, search)
    "kb:write",  # manage knowledge bases, documents and curated answers
    "bots:use",  # talk to bots through the OpenAI-compatible API
    "bots:write",  # configure bots, providers and tools
    "support:read",  # customer service: the queue, tickets, histories (audited)
    "support:write",  # customer service: pick, take over, transfer, resolve (and read)
    "support:admin",  # customer service: settings, teams, agents' capacity
    "audit:read",  # list and export the audit log
)


@dataclass(frozen=True, slots=True)
class Principal:
    tenant_id: str
    user_id: str | None = None
    role: str = "member"
    kind: str = "human"
    token_id: str | None = None
    api_key_id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_tenant_admin(self) -> bool:
        return self.user_id is not None and self.role in ADMIN_ROLES

    def has_scope(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    def require_admin(self, scope: str = "admin") -> None:
        """Tenant owners/admins, or an API key holding ``scope`` (or ``admin``)."""
        if self.is_tenant_admin or (self.api_key_id is not None and self.has_scope(scope)):
            return
        raise Forbidden(
            f"this action needs a tenant owner or admin, or an API key with the '{scope}' scope",
            details={"required": scope},
        )

    def require_user(self) -> str:
        """The acting user id; API keys act as a user only through impersonation."""
        if self.user_id is None:
            raise Forbidden(
                "this endpoint acts as a user: use an access token, or an API key with the "
                "'impersonate' scope and the X-Warbler-User header",
            )
        return self.user_id
