"""Assignment: round-robin among online agents with free capacity, serialized per tenant.

Round-robin picks, among agents who are ``online``, not disabled, hold an agent role, belong
to the ticket's team (any agent when the ticket has none) and have fewer assigned tickets
than their capacity, the one whose ``last_assigned_at`` is oldest (never assigned first).
Waiting tickets are served strictly first in, first out within their team; a team outside
its office hours gets no automatic assignment.

Assignment is serialized per tenant by locking the tenant's ``support_settings`` row
(``lock_queue``; PostgreSQL ``FOR UPDATE``, SQLite's single writer does the same). Lock
order, to stay free of deadlocks: a conversation still in state ``bot`` is locked before the
queue (a visitor's send already holds it when escalation runs); anything about a queued or
assigned ticket takes the queue lock first, then the conversations it touches.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.errors import InvalidRequest, NotFound
from warbler.im.events import EventLog, PostCommit
from warbler.store.models import User
from warbler.store.models_support import (
    SupportAgent,
    SupportSettings,
    SupportTeamMember,
    SupportTicket,
)
from warbler.support import office_hours, queue
from warbler.support.queue import Office
from warbler.support.states import Machine

AGENT_ROLES = ("owner", "admin", "agent")
POSITION_EVENT = "support.position_changed"
MAX_SWEEP = 500  # waiting tickets looked at per pass
MAX_POSITION_EVENTS = 50  # waiting visitors told their new place after the queue moves


async def lock_queue(s: AsyncSession, tenant_id: str) -> SupportSettings | None:
    """Take the tenant's queue lock (its settings row) for the rest of the transaction."""
    return await s.scalar(
        select(SupportSettings).where(SupportSettings.tenant_id == tenant_id).with_for_update()
    )


def open_counts(tenant_id: str) -> Any:
    return (
        select(SupportTicket.assignee_id.label("user_id"), func.count().label("n"))
        .where(SupportTicket.tenant_id == tenant_id, SupportTicket.state == "assigned")
        .group_by(SupportTicket.assignee_id)
        .subquery()
    )


async def free_agent(s: AsyncSession, tenant_id: str, team_id: str | None) -> User | None:
    counts = open_counts(tenant_id)
    stmt = (
        select(User)
        .join(SupportAgent, SupportAgent.user_id == User.id)
        .outerjoin(counts, counts.c.user_id == SupportAgent.user_id)
        .where(
            SupportAgent.tenant_id == tenant_id,
            SupportAgent.status == "online",
            User.disabled.is_(False),
            User.role.in_(AGENT_ROLES),
            func.coalesce(counts.c.n, 0) < SupportAgent.capacity,
        )
    )
    if team_id is not None:
        stmt = stmt.join(
            SupportTeamMember,
            and_(SupportTeamMember.user_id == User.id, SupportTeamMember.team_id == team_id),
        )
    stmt = stmt.order_by(
        SupportAgent.last_assigned_at.is_not(None), SupportAgent.last_assigned_at, User.id
    ).limit(1)
    return await s.scalar(stmt)


async def agent_user(s: AsyncSession, tenant_id: str, user_id: str) -> User:
    """A user of the tenant who may handle conversations (404 / 400 otherwise)."""
    user = await s.scalar(select(User).where(User.tenant_id == tenant_id, User.id == user_id))
    if user is None or user.disabled:
        raise NotFound("no such agent", details={"agent_id": user_id})
    if user.role not in AGENT_ROLES:
        raise InvalidRequest(
            "only users with the agent, admin or owner role handle conversations",
            details={"agent_id": user_id, "role": user.role},
        )
    return user


class Dispatcher:
    """Hands waiting tickets to free agents and tells the rest of the queue where they stand."""

    def __init__(self, machine: Machine, events: EventLog) -> None:
        self.machine = machine
        self.events = events

    async def assign_waiting(
        self, s: AsyncSession, after: PostCommit, tenant_id: str, now: datetime
    ) -> list[SupportTicket]:
        """Assign every waiting ticket an agent can take now, oldest first. The caller holds
        the queue lock."""
        assigned: list[SupportTicket] = []
        blocked: set[str | None] = set()  # pools with no free agent, or closed
        offices: dict[str | None, Office] = {}
        for ticket in await queue.waiting(s, tenant_id, MAX_SWEEP):
            pool = ticket.team_id
            if pool in blocked:
                continue
            if pool not in offices:
                offices[pool] = await queue.office_of(s, tenant_id, pool)
            if not office_hours.is_open(offices[pool].hours, now):
                blocked.add(pool)
                continue
            agent = await free_agent(s, tenant_id, pool)
            if agent is None:
                blocked.add(pool)
                continue
            sc = await self.machine.conversation(s, tenant_id, ticket.conversation_id)
            await self.machine.assign(
                s, after, sc, ticket, agent, reason="round_robin", actor_id=None, now=now
            )
            assigned.append(ticket)
        if assigned:
            await self.tell_positions(s, after, tenant_id, now)
        return assigned

    async def tell_positions(
        self, s: AsyncSession, after: PostCommit, tenant_id: str, now: datetime
    ) -> None:
        """A ``support.position_changed`` event for each visitor still waiting (the first
        ``MAX_POSITION_EVENTS``), after the queue moved."""
        places: dict[str | None, int] = {}
        per_pool: dict[str | None, tuple[int, int, Office]] = {}
        for ticket in await queue.waiting(s, tenant_id, MAX_POSITION_EVENTS):
            pool = ticket.team_id
            places[pool] = places.get(pool, 0) + 1
            if pool not in per_pool:
                per_pool[pool] = (
                    await queue.median_handle_seconds(s, tenant_id, pool),
                    await queue.seats(s, tenant_id, pool),
                    await queue.office_of(s, tenant_id, pool),
                )
            handle, seats, office = per_pool[pool]
            wait = math.ceil(places[pool] / seats) * handle
            opens = office_hours.next_open(office.hours, now)
            if opens is not None and opens > now:
                wait += int((opens - now).total_seconds())
            await self.events.record(
                s, after, tenant_id=tenant_id, type=POSITION_EVENT,
                data={"conversation_id": ticket.conversation_id, "ticket_id": ticket.id,
                      "position": places[pool], "expected_wait_seconds": wait},
                conversation_id=ticket.conversation_id,
            )  # fmt: skip
