"""Who may use the agent desk, and loading its rows the way every action must: by tenant."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.errors import NotFound
from warbler.im.principal import ADMIN_ROLES, Principal
from warbler.store.models_support import SupportConversation, SupportTeam, SupportTicket
from warbler.support import access

# The role/scope check of the whole of customer service (``support/access.py``).
require_agent = access.require_agent


def is_support_admin(principal: Principal) -> bool:
    if principal.user_id is not None:
        return principal.role in ADMIN_ROLES
    return principal.api_key_id is not None and principal.has_scope(access.ADMIN)


async def load_ticket(s: AsyncSession, tenant_id: str, ticket_id: str) -> SupportTicket:
    ticket = await s.scalar(
        select(SupportTicket).where(
            SupportTicket.tenant_id == tenant_id, SupportTicket.id == ticket_id
        )
    )
    if ticket is None:
        raise NotFound("no such ticket", details={"ticket_id": ticket_id})
    return ticket


async def load_conversation(
    s: AsyncSession, tenant_id: str, conversation_id: str
) -> SupportConversation:
    """A support conversation of the tenant, or 404 (other conversations look missing)."""
    conv = await s.scalar(
        select(SupportConversation).where(
            SupportConversation.tenant_id == tenant_id,
            SupportConversation.conversation_id == conversation_id,
        )
    )
    if conv is None:
        raise NotFound("no such support conversation", details={"conversation_id": conversation_id})
    return conv


async def load_team(s: AsyncSession, tenant_id: str, team_id: str) -> SupportTeam:
    team = await s.scalar(
        select(SupportTeam).where(SupportTeam.tenant_id == tenant_id, SupportTeam.id == team_id)
    )
    if team is None:
        raise NotFound("no such team", details={"team_id": team_id})
    return team
