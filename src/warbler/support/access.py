"""Who may do what in customer service.

Agents' work (the queue, tickets, full histories, pick/transfer/resolve) needs a user with the
agent, admin or owner role, or an API key with ``support:write`` (``support:read`` for
reads). Settings, teams and agents' capacity need a tenant admin or ``support:admin``.
The visitor's own endpoints need a visitor's token.
"""

from __future__ import annotations

from warbler.errors import Forbidden
from warbler.im.principal import Principal
from warbler.support.assignment import AGENT_ROLES

READ = "support:read"
WRITE = "support:write"
ADMIN = "support:admin"


def require_agent(principal: Principal, *, write: bool) -> None:
    """An agent (by role), or an API key holding the scope (``support:write`` reads too)."""
    if principal.api_key_id is not None:
        if principal.has_scope(WRITE) or (not write and principal.has_scope(READ)):
            return
        raise Forbidden(
            f"this API key needs the '{WRITE if write else READ}' scope",
            details={"required": WRITE if write else READ},
        )
    if principal.user_id is not None and principal.role in AGENT_ROLES:
        return
    raise Forbidden("customer-service work needs the agent, admin or owner role")


def require_agent_user(principal: Principal) -> str:
    """An agent acting as themselves (picking, taking over, setting their status)."""
    require_agent(principal, write=True)
    user_id = principal.require_user()
    if principal.role not in AGENT_ROLES:
        raise Forbidden("only users with the agent, admin or owner role handle conversations")
    return user_id


def require_admin(principal: Principal) -> None:
    principal.require_admin(ADMIN)


def require_visitor(principal: Principal) -> str:
    user_id = principal.require_user()
    if principal.kind != "visitor":
        raise Forbidden("this endpoint is for widget visitors")
    return user_id
