"""The waiting queue: FIFO order, a ticket's position, the expected wait, a team's hours.

Position counts the tickets of the same team (or the team-less pool) queued before this one,
by ``queued_at`` then id. The expected wait is ``ceil(position / free seats) x median
handle time``: the median of assigned → resolved over the team's last ``RECENT_TICKETS``
resolved tickets (``DEFAULT_HANDLE_SECONDS`` when there are none), the free seats the online
agents' capacity (at least one). Outside office hours the time until opening is added.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.store.models_support import (
    SupportAgent,
    SupportTeam,
    SupportTeamMember,
    SupportTicket,
)
from warbler.support import office_hours
from warbler.support.office_hours import Hours

DEFAULT_HANDLE_SECONDS = 300
RECENT_TICKETS = 50
ALWAYS = office_hours.parse("UTC", {}, [])


@dataclass(frozen=True, slots=True)
class Office:
    team: SupportTeam | None
    hours: Hours

    def view(self, now: datetime) -> dict[str, Any]:
        is_open = office_hours.is_open(self.hours, now)
        opens = None if is_open else office_hours.next_open(self.hours, now)
        return {"open": is_open, "next_open_at": opens, "timezone": self.hours.timezone}


async def office_of(s: AsyncSession, tenant_id: str, team_id: str | None) -> Office:
    """A team's office hours; no team (or a deleted one): always open."""
    if team_id is None:
        return Office(None, ALWAYS)
    team = await s.scalar(
        select(SupportTeam).where(SupportTeam.tenant_id == tenant_id, SupportTeam.id == team_id)
    )
    if team is None:
        return Office(None, ALWAYS)
    return Office(team, office_hours.parse(team.timezone, team.office_hours, team.holidays))


def _same_pool(tenant_id: str, team_id: str | None) -> Any:
    team = SupportTicket.team_id.is_(None) if team_id is None else SupportTicket.team_id == team_id
    return and_(SupportTicket.tenant_id == tenant_id, SupportTicket.state == "waiting", team)


async def position_of(s: AsyncSession, ticket: SupportTicket) -> int:
    ahead = await s.scalar(
        select(func.count())
        .select_from(SupportTicket)
        .where(
            _same_pool(ticket.tenant_id, ticket.team_id),
            or_(
                SupportTicket.queued_at < ticket.queued_at,
                and_(SupportTicket.queued_at == ticket.queued_at, SupportTicket.id < ticket.id),
            ),
        )
    )
    return int(ahead or 0) + 1


async def median_handle_seconds(s: AsyncSession, tenant_id: str, team_id: str | None) -> int:
    stmt = select(SupportTicket.assigned_at, SupportTicket.resolved_at).where(
        SupportTicket.tenant_id == tenant_id,
        SupportTicket.state == "resolved",
        SupportTicket.assigned_at.is_not(None),
        SupportTicket.resolved_at.is_not(None),
    )
    if team_id is not None:
        stmt = stmt.where(SupportTicket.team_id == team_id)
    rows = (
        await s.execute(stmt.order_by(SupportTicket.resolved_at.desc()).limit(RECENT_TICKETS))
    ).all()
    spans = [(r - a).total_seconds() for a, r in rows if a is not None and r is not None and r >= a]
    return round(statistics.median(spans)) if spans else DEFAULT_HANDLE_SECONDS


async def seats(s: AsyncSession, tenant_id: str, team_id: str | None) -> int:
    """The total capacity of the online agents who serve this pool (at least one)."""
    stmt = select(func.coalesce(func.sum(SupportAgent.capacity), 0)).where(
        SupportAgent.tenant_id == tenant_id, SupportAgent.status == "online"
    )
    if team_id is not None:
        stmt = stmt.join(
            SupportTeamMember,
            and_(
                SupportTeamMember.user_id == SupportAgent.user_id,
                SupportTeamMember.team_id == team_id,
            ),
        )
    return max(1, int(await s.scalar(stmt) or 0))


async def expected_wait(
    s: AsyncSession, ticket: SupportTicket, position: int, office: Office, now: datetime
) -> int:
    handle = await median_handle_seconds(s, ticket.tenant_id, ticket.team_id)
    wait = math.ceil(position / await seats(s, ticket.tenant_id, ticket.team_id)) * handle
    if not office_hours.is_open(office.hours, now):
        opens = office_hours.next_open(office.hours, now)
        if opens is not None:
            wait += int((opens - now).total_seconds())
    return int(wait)


async def waiting(s: AsyncSession, tenant_id: str, limit: int) -> list[SupportTicket]:
    """The tenant's waiting tickets, oldest first."""
    return list(
        (
            await s.scalars(
                select(SupportTicket)
                .where(SupportTicket.tenant_id == tenant_id, SupportTicket.state == "waiting")
                .order_by(SupportTicket.queued_at, SupportTicket.id)
                .limit(limit)
            )
        ).all()
    )
