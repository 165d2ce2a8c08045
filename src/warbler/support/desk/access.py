"""Who may use the agent desk, and loading its rows the way every action must: by tenant."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.errors import NotFound
from warbler.im.principal import ADMIN_ROLES, Principal
from warbler.store.models_support import SupportTeam
from warbler.support import access
from warbler.support.tickets import load_conversation, load_ticket

__all__ = ["is_support_admin", "load_conversation", "load_team", "load_ticket", "require_agent"]

# The role/scope check of the whole of customer service (``support/access.py``).
require_agent = access.require_agent


def is_support_admin(principal: Principal) -> bool:
    if principal.user_id is not None:
        return principal.role in ADMIN_ROLES
    return principal.api_key_id is not None and principal.has_scope(access.ADMIN)


async def load_team(s: AsyncSession, tenant_id: str, team_id: str) -> SupportTeam:
    team = await s.scalar(
        select(SupportTeam).where(SupportTeam.tenant_id == tenant_id, SupportTeam.id == team_id)
    )
    if team is None:
        raise NotFound("no such team", details={"team_id": team_id})
    return team
