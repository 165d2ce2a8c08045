"""Agents: availability (online | away | offline), capacity, teams, how busy each one is.

A user with the agent, admin or owner role becomes an agent (a ``support_agents`` row) the
first time their availability is read or set. Going online, or a raised capacity, lets the
queue move at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.errors import InvalidRequest, NotFound
from warbler.im.principal import Principal
from warbler.store.db import Database
from warbler.store.models import User
from warbler.store.models_support import SupportAgent, SupportTeam, SupportTeamMember
from warbler.support import access
from warbler.support.assignment import AGENT_ROLES, agent_user, lock_queue, open_counts
from warbler.support.handoff import Handoffs
from warbler.support.views import agent_view

STATUSES = ("online", "away", "offline")
DEFAULT_CAPACITY = 3
MAX_CAPACITY = 100


class Agents:
    def __init__(self, db: Database, handoffs: Handoffs) -> None:
        self.db = db
        self.handoffs = handoffs

    async def me(self, principal: Principal) -> dict[str, Any]:
        user_id = access.require_agent_user(principal)
        async with self.db.write() as s:
            await _ensure(s, principal.tenant_id, user_id)
        return await self._view(principal.tenant_id, user_id)

    async def set_status(self, principal: Principal, status: str) -> dict[str, Any]:
        user_id = access.require_agent_user(principal)
        if status not in STATUSES:
            raise InvalidRequest(
                f"status is one of {', '.join(STATUSES)}", details={"field": "status"}
            )
        async with self.db.write_then() as (s, after):
            await lock_queue(s, principal.tenant_id)
            row = await _ensure(s, principal.tenant_id, user_id)
            if row.status != status:
                row.status = status
                row.status_changed_at = utcnow()
            if status == "online":
                await self.handoffs.dispatch(s, after, principal.tenant_id)
        return await self._view(principal.tenant_id, user_id)

    async def update(
        self,
        principal: Principal,
        user_id: str,
        *,
        capacity: int | None = None,
        team_ids: list[str] | None = None,
        status: str | None = None,
    ) -> dict[str, Any]:
        """Admins set an agent's capacity, teams (replacing them) and, if need be, status."""
        access.require_admin(principal)
        tenant_id = principal.tenant_id
        if capacity is not None and not 0 <= capacity <= MAX_CAPACITY:
            raise InvalidRequest(f"capacity is 0 to {MAX_CAPACITY}", details={"field": "capacity"})
        if status is not None and status not in STATUSES:
            raise InvalidRequest(f"status is one of {', '.join(STATUSES)}")
        async with self.db.write_then() as (s, after):
            await lock_queue(s, tenant_id)
            await agent_user(s, tenant_id, user_id)
            row = await _ensure(s, tenant_id, user_id)
            if capacity is not None:
                row.capacity = capacity
            if status is not None and status != row.status:
                row.status, row.status_changed_at = status, utcnow()
            if team_ids is not None:
                await _set_teams(s, tenant_id, user_id, team_ids)
            await self.handoffs.dispatch(s, after, tenant_id)
        return await self._view(tenant_id, user_id)

    async def list_agents(self, principal: Principal) -> list[dict[str, Any]]:
        access.require_agent(principal, write=False)
        return await self._views(principal.tenant_id, None)

    async def _view(self, tenant_id: str, user_id: str) -> dict[str, Any]:
        found = await self._views(tenant_id, user_id)
        if not found:
            raise NotFound("no such agent", details={"agent_id": user_id})
        return found[0]

    async def _views(self, tenant_id: str, user_id: str | None) -> list[dict[str, Any]]:
        counts = open_counts(tenant_id)
        stmt = (
            select(SupportAgent, User, counts.c.n)
            .join(User, User.id == SupportAgent.user_id)
            .outerjoin(counts, counts.c.user_id == SupportAgent.user_id)
            .where(SupportAgent.tenant_id == tenant_id, User.tenant_id == tenant_id)
            .order_by(User.username)
        )
        if user_id is not None:
            stmt = stmt.where(SupportAgent.user_id == user_id)
        async with self.db.read() as s:
            rows = (await s.execute(stmt)).all()
            memberships = (
                await s.execute(
                    select(SupportTeamMember.user_id, SupportTeamMember.team_id).where(
                        SupportTeamMember.tenant_id == tenant_id
                    )
                )
            ).all()
        teams: dict[str, list[str]] = {}
        for uid, team_id in memberships:
            teams.setdefault(uid, []).append(team_id)
        return [
            agent_view(agent, user, int(n or 0), sorted(teams.get(agent.user_id, [])))
            for agent, user, n in rows
        ]


async def _ensure(s: AsyncSession, tenant_id: str, user_id: str) -> SupportAgent:
    row = await s.get(SupportAgent, user_id)
    if row is not None and row.tenant_id == tenant_id:
        return row
    user = await s.scalar(select(User).where(User.tenant_id == tenant_id, User.id == user_id))
    if user is None or user.role not in AGENT_ROLES:
        raise NotFound("no such agent", details={"agent_id": user_id})
    row = SupportAgent(
        user_id=user_id, tenant_id=tenant_id, capacity=DEFAULT_CAPACITY, status="offline",
        status_changed_at=utcnow(),
    )  # fmt: skip
    s.add(row)
    await s.flush()
    return row


async def _set_teams(s: AsyncSession, tenant_id: str, user_id: str, team_ids: list[str]) -> None:
    wanted = list(dict.fromkeys(team_ids))
    found = set(
        (
            await s.scalars(
                select(SupportTeam.id).where(
                    SupportTeam.tenant_id == tenant_id, SupportTeam.id.in_(wanted)
                )
            )
        ).all()
    )
    missing = [t for t in wanted if t not in found]
    if missing:
        raise NotFound("no such teams", details={"team_ids": missing})
    await s.execute(
        delete(SupportTeamMember).where(
            SupportTeamMember.tenant_id == tenant_id, SupportTeamMember.user_id == user_id
        )
    )
    s.add_all(SupportTeamMember(team_id=t, user_id=user_id, tenant_id=tenant_id) for t in wanted)
