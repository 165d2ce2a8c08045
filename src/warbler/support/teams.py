"""Teams: who serves which conversations, in which time zone and hours, with which SLA.

Deleting a team moves its waiting tickets to the team-less pool (any agent may take them)
and unsets it as the default; assigned tickets stay with their agents.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.errors import Conflict, InvalidRequest, NotFound
from warbler.ids import new_id
from warbler.im.principal import Principal
from warbler.store.db import Database
from warbler.store.models import User
from warbler.store.models_support import (
    SupportConversation,
    SupportSettings,
    SupportTeam,
    SupportTeamMember,
    SupportTicket,
)
from warbler.support import access, office_hours
from warbler.support.assignment import AGENT_ROLES, lock_queue
from warbler.support.handoff import Handoffs
from warbler.support.views import team_view

MAX_NAME = 100
MAX_SLA_SECONDS = 90 * 24 * 3600
FIELDS = (
    "name", "timezone", "office_hours", "holidays", "sla_first_response_seconds",
    "sla_resolution_seconds", "member_ids",
)  # fmt: skip


class Teams:
    def __init__(self, db: Database, handoffs: Handoffs) -> None:
        self.db = db
        self.handoffs = handoffs

    async def list_teams(self, principal: Principal) -> list[dict[str, Any]]:
        access.require_agent(principal, write=False)
        async with self.db.read() as s:
            rows = (
                await s.scalars(
                    select(SupportTeam)
                    .where(SupportTeam.tenant_id == principal.tenant_id)
                    .order_by(SupportTeam.name)
                )
            ).all()
            return [team_view(t, await _members(s, t.id)) for t in rows]

    async def create(self, principal: Principal, fields: dict[str, Any]) -> dict[str, Any]:
        access.require_admin(principal)
        if not fields.get("name"):
            raise InvalidRequest("a team needs a name", details={"field": "name"})
        now = utcnow()
        team = SupportTeam(
            id=new_id(), tenant_id=principal.tenant_id, name="", timezone="UTC",
            office_hours={}, holidays=[], created_at=now, updated_at=now,
        )  # fmt: skip
        try:
            async with self.db.write_then() as (s, after):
                await lock_queue(s, principal.tenant_id)
                _apply(team, fields)
                s.add(team)
                await s.flush()
                if "member_ids" in fields:
                    await _set_members(s, principal.tenant_id, team.id, fields["member_ids"])
                view = team_view(team, await _members(s, team.id))
                await self.handoffs.dispatch(s, after, principal.tenant_id)
        except IntegrityError as exc:
            raise Conflict(
                "a team with this name exists", details={"name": fields["name"]}
            ) from exc
        return view

    async def update(
        self, principal: Principal, team_id: str, fields: dict[str, Any]
    ) -> dict[str, Any]:
        access.require_admin(principal)
        try:
            async with self.db.write_then() as (s, after):
                await lock_queue(s, principal.tenant_id)
                team = await _load(s, principal.tenant_id, team_id)
                _apply(team, fields)
                team.updated_at = utcnow()
                if "member_ids" in fields:
                    await _set_members(s, principal.tenant_id, team.id, fields["member_ids"])
                await s.flush()
                view = team_view(team, await _members(s, team.id))
                # New hours or new members may open the door for waiting tickets.
                await self.handoffs.dispatch(s, after, principal.tenant_id)
        except IntegrityError as exc:
            raise Conflict(
                "a team with this name exists", details={"name": fields.get("name")}
            ) from exc
        return view

    async def delete(self, principal: Principal, team_id: str) -> None:
        access.require_admin(principal)
        tenant_id = principal.tenant_id
        async with self.db.write_then() as (s, after):
            await lock_queue(s, tenant_id)
            team = await _load(s, tenant_id, team_id)
            await s.execute(
                update(SupportTicket)
                .where(
                    SupportTicket.tenant_id == tenant_id,
                    SupportTicket.team_id == team_id,
                    SupportTicket.state == "waiting",
                )
                .values(team_id=None)
            )
            await s.execute(
                update(SupportConversation)
                .where(
                    SupportConversation.tenant_id == tenant_id,
                    SupportConversation.team_id == team_id,
                )
                .values(team_id=None)
            )
            await s.execute(
                update(SupportSettings)
                .where(
                    SupportSettings.tenant_id == tenant_id,
                    SupportSettings.default_team_id == team_id,
                )
                .values(default_team_id=None)
            )
            await s.execute(delete(SupportTeamMember).where(SupportTeamMember.team_id == team_id))
            await s.delete(team)
            await s.flush()
            await self.handoffs.dispatch(s, after, tenant_id)


def _apply(team: SupportTeam, fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown team fields: {', '.join(sorted(unknown))}")
    if "name" in fields:
        name = str(fields["name"] or "").strip()
        if not name or len(name) > MAX_NAME:
            raise InvalidRequest(
                f"a team name is 1 to {MAX_NAME} characters", details={"field": "name"}
            )
        team.name = name
    if "timezone" in fields:
        team.timezone = office_hours.zone_of(str(fields["timezone"] or "UTC")).key
    hours = fields.get("office_hours", team.office_hours or {})
    holidays = fields.get("holidays", team.holidays or [])
    team.office_hours, team.holidays = office_hours.normalize(hours or {}, holidays or [])
    for name in ("sla_first_response_seconds", "sla_resolution_seconds"):
        if name in fields:
            value = fields[name]
            if value is not None and not (isinstance(value, int) and 0 < value <= MAX_SLA_SECONDS):
                raise InvalidRequest(
                    f"{name} is 1 to {MAX_SLA_SECONDS} seconds, or null", details={"field": name}
                )
            setattr(team, name, value)


async def _load(s: AsyncSession, tenant_id: str, team_id: str) -> SupportTeam:
    team = await s.scalar(
        select(SupportTeam).where(SupportTeam.tenant_id == tenant_id, SupportTeam.id == team_id)
    )
    if team is None:
        raise NotFound("no such team", details={"team_id": team_id})
    return team


async def _members(s: AsyncSession, team_id: str) -> list[str]:
    return sorted(
        (
            await s.scalars(
                select(SupportTeamMember.user_id).where(SupportTeamMember.team_id == team_id)
            )
        ).all()
    )


async def _set_members(s: AsyncSession, tenant_id: str, team_id: str, user_ids: Any) -> None:
    if not isinstance(user_ids, list):
        raise InvalidRequest("member_ids is a list of user ids", details={"field": "member_ids"})
    wanted = list(dict.fromkeys(str(u) for u in user_ids))
    found = set(
        (
            await s.scalars(
                select(User.id).where(
                    User.tenant_id == tenant_id, User.id.in_(wanted), User.role.in_(AGENT_ROLES)
                )
            )
        ).all()
    )
    missing = [u for u in wanted if u not in found]
    if missing:
        raise NotFound(
            "no such agents (team members need the agent, admin or owner role)",
            details={"user_ids": missing},
        )
    await s.execute(delete(SupportTeamMember).where(SupportTeamMember.team_id == team_id))
    s.add_all(SupportTeamMember(team_id=team_id, user_id=u, tenant_id=tenant_id) for u in wanted)
