"""Hand-offs between the bot and people: escalate, take over, pick, transfer, resolve.

Each operation runs inside the caller's write transaction, takes the locks in the order
``assignment.py`` documents, moves the state machine (``states.py``), and lets the queue
move on (``Dispatcher.assign_waiting``) whenever capacity may have freed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.errors import Conflict, InvalidRequest, NotFound
from warbler.ids import new_id
from warbler.im.events import PostCommit
from warbler.store.models_support import (
    SupportConversation,
    SupportNote,
    SupportTeam,
    SupportTicket,
)
from warbler.support import notices, office_hours, queue
from warbler.support.assignment import Dispatcher, agent_user, lock_queue
from warbler.support.states import OPEN_TICKET, REASONS, Machine

MAX_NOTE_CHARS = 2000


class Handoffs:
    def __init__(self, machine: Machine, dispatcher: Dispatcher) -> None:
        self.machine = machine
        self.dispatcher = dispatcher

    async def escalate(
        self,
        s: AsyncSession,
        after: PostCommit,
        sc: SupportConversation,
        reason: str,
        *,
        actor_id: str | None,
        detail: dict[str, Any] | None = None,
        summary: str | None = None,
    ) -> SupportTicket | None:
        """Queue the conversation for a person (bot|resolved → waiting), assign it at once if
        an agent is free, else tell the visitor their place or when the team opens. The
        conversation row must already be locked (``Machine.conversation`` or a send). A
        conversation already waiting or assigned keeps its ticket (returned)."""
        if reason not in REASONS:
            raise InvalidRequest(f"unknown reason code '{reason}'", details={"reason": reason})
        if sc.state in OPEN_TICKET:
            return await s.get(SupportTicket, sc.ticket_id) if sc.ticket_id else None
        now = utcnow()
        settings = await lock_queue(s, sc.tenant_id)
        team_id = sc.team_id or (settings.default_team_id if settings is not None else None)
        office = await queue.office_of(s, sc.tenant_id, team_id)
        ticket = self.machine.new_ticket(
            sc, reason=reason, team=office.team, now=now, detail=detail, summary=summary
        )
        s.add(ticket)
        await s.flush()
        position = await queue.position_of(s, ticket)
        wait = await queue.expected_wait(s, ticket, position, office, now)
        sc.ticket_id, sc.team_id, sc.failed_answers = ticket.id, ticket.team_id, 0
        await self.machine.move(
            s, after, sc, "waiting", reason, actor_id, ticket, now,
            {"detail": detail or {}, "position": position, "expected_wait_seconds": wait},
        )  # fmt: skip
        await self.dispatcher.assign_waiting(s, after, sc.tenant_id, now)
        if ticket.state == "waiting":
            await self.tell_waiting(s, after, sc, ticket, office, now)
        return ticket

    async def tell_waiting(
        self,
        s: AsyncSession,
        after: PostCommit,
        sc: SupportConversation,
        ticket: SupportTicket,
        office: queue.Office,
        now: datetime,
    ) -> None:
        """The visitor's notice for a waiting ticket: their place and wait, or, outside
        office hours, when a person will reply."""
        position = await queue.position_of(s, ticket)
        wait = await queue.expected_wait(s, ticket, position, office, now)
        facts: dict[str, Any] = {"position": position, "expected_wait_seconds": wait}
        if office_hours.is_open(office.hours, now):
            text = notices.queued(ticket.reason, position, wait, sc.locale)
            facts["event"] = "queued"
        else:
            opens = office_hours.next_open(office.hours, now)
            text = notices.closed(ticket.reason, opens, office.hours.timezone, sc.locale)
            facts.update(
                event="office_closed", next_open_at=opens.isoformat() if opens else None,
                timezone=office.hours.timezone,
            )  # fmt: skip
        await self.machine.notice(s, after, sc, text, facts, ticket=ticket)

    async def takeover(
        self, s: AsyncSession, after: PostCommit, tenant_id: str, conversation_id: str,
        agent_id: str,
    ) -> SupportTicket:  # fmt: skip
        """An agent takes the conversation: from the bot (a new ticket, reason
        ``agent_takeover``) or from the queue (a pick). Taking one another agent holds is a
        transfer, not a takeover (409)."""
        peek = await self.machine.conversation(s, tenant_id, conversation_id, lock=False)
        if peek.state == "waiting" and peek.ticket_id:
            return await self.pick(s, after, tenant_id, peek.ticket_id, agent_id)
        sc = await self.machine.conversation(s, tenant_id, conversation_id)
        settings = await lock_queue(s, tenant_id)
        agent = await agent_user(s, tenant_id, agent_id)
        now = utcnow()
        if sc.state in OPEN_TICKET:
            ticket = await self.machine.ticket(s, tenant_id, str(sc.ticket_id))
            if ticket.assignee_id == agent_id:
                return ticket
            if ticket.state == "waiting":  # it was queued after we looked
                await self.machine.assign(
                    s, after, sc, ticket, agent, reason="pick", actor_id=agent_id, now=now
                )
                return ticket
            raise Conflict(
                "another agent has this conversation: ask them to transfer it",
                details={"state": sc.state, "ticket_id": ticket.id},
            )
        team_id = sc.team_id or (settings.default_team_id if settings is not None else None)
        office = await queue.office_of(s, tenant_id, team_id)
        ticket = self.machine.new_ticket(sc, reason="agent_takeover", team=office.team, now=now)
        s.add(ticket)
        await s.flush()
        sc.failed_answers = 0
        await self.machine.assign(
            s, after, sc, ticket, agent, reason="agent_takeover", actor_id=agent_id, now=now
        )
        return ticket

    async def pick(
        self, s: AsyncSession, after: PostCommit, tenant_id: str, ticket_id: str, agent_id: str
    ) -> SupportTicket:
        """An agent assigns a waiting ticket to themselves (capacity and office hours do not
        stop a deliberate pick)."""
        await lock_queue(s, tenant_id)
        ticket = await self.machine.ticket(s, tenant_id, ticket_id)
        if ticket.state == "assigned" and ticket.assignee_id == agent_id:
            return ticket
        if ticket.state != "waiting":
            raise Conflict(
                f"the ticket is {ticket.state}, not waiting",
                details={"ticket_id": ticket.id, "state": ticket.state},
            )
        agent = await agent_user(s, tenant_id, agent_id)
        sc = await self.machine.conversation(s, tenant_id, ticket.conversation_id)
        await self.machine.assign(
            s, after, sc, ticket, agent, reason="pick", actor_id=agent_id, now=utcnow()
        )
        await self.dispatcher.tell_positions(s, after, tenant_id, utcnow())
        return ticket

    async def transfer(
        self,
        s: AsyncSession,
        after: PostCommit,
        tenant_id: str,
        ticket_id: str,
        *,
        actor_id: str | None,
        agent_id: str | None = None,
        team_id: str | None = None,
        note: str | None = None,
    ) -> SupportTicket:
        """To an agent (assigned to them at once) or to a team (queued for it)."""
        if (agent_id is None) == (team_id is None):
            raise InvalidRequest("transfer to an agent_id or a team_id (one of them)")
        if note is not None and len(note) > MAX_NOTE_CHARS:
            raise InvalidRequest(f"a transfer note is at most {MAX_NOTE_CHARS} characters")
        await lock_queue(s, tenant_id)
        ticket = await self.machine.ticket(s, tenant_id, ticket_id)
        # The target first: an unknown agent or team is a 404 whatever the ticket's state.
        agent = await agent_user(s, tenant_id, agent_id) if agent_id is not None else None
        team = None
        if team_id is not None:
            team = await s.scalar(
                select(SupportTeam).where(
                    SupportTeam.tenant_id == tenant_id, SupportTeam.id == team_id
                )
            )
            if team is None:
                raise NotFound("no such team", details={"team_id": team_id})
        if ticket.state not in OPEN_TICKET:
            raise Conflict(
                "a resolved ticket cannot be transferred", details={"ticket_id": ticket_id}
            )
        sc = await self.machine.conversation(s, tenant_id, ticket.conversation_id)
        now = utcnow()
        previous = ticket.assignee_id
        data: dict[str, Any] = {"from_agent_id": previous, "note": bool(note)}
        if agent is not None:
            if previous == agent.id:
                raise InvalidRequest("the ticket is already theirs", details={"agent_id": agent_id})
            if previous is not None:
                await self.machine.leave(s, after, sc, previous, actor_id)
            await self.machine.assign(
                s, after, sc, ticket, agent, reason="transfer", actor_id=actor_id, now=now,
                data={**data, "to_agent_id": agent.id},
                notice=notices.transferred_to_agent(agent.display_name, sc.locale),
            )  # fmt: skip
        else:
            assert team is not None
            await self.machine.requeue(
                s, after, sc, ticket, team=team, actor_id=actor_id, now=now,
                data={**data, "to_team_id": team.id},
            )  # fmt: skip
            await self.machine.notice(
                s, after, sc, notices.transferred_to_team(team.name, sc.locale),
                {"event": "transferred", "team": {"id": team.id, "name": team.name}},
                ticket=ticket,
            )  # fmt: skip
        if note:
            s.add(SupportNote(
                id=new_id(), tenant_id=tenant_id, conversation_id=sc.conversation_id,
                ticket_id=ticket.id, author_id=actor_id or "", text=note, created_at=now,
            ))  # fmt: skip
        await self.dispatcher.assign_waiting(s, after, tenant_id, now)
        if ticket.state == "waiting":
            office = await queue.office_of(s, tenant_id, ticket.team_id)
            await self.tell_waiting(s, after, sc, ticket, office, now)
        return ticket

    async def resolve(
        self, s: AsyncSession, after: PostCommit, tenant_id: str, ticket_id: str,
        actor_id: str | None,
    ) -> SupportTicket:  # fmt: skip
        await lock_queue(s, tenant_id)
        ticket = await self.machine.ticket(s, tenant_id, ticket_id)
        sc = await self.machine.conversation(s, tenant_id, ticket.conversation_id)
        now = utcnow()
        await self.machine.resolve(s, after, sc, ticket, actor_id=actor_id, now=now)
        await self.dispatcher.assign_waiting(s, after, tenant_id, now)
        return ticket

    async def dispatch(self, s: AsyncSession, after: PostCommit, tenant_id: str) -> int:
        """Let the queue move (an agent came online, capacity rose, the office opened)."""
        if await lock_queue(s, tenant_id) is None:
            return 0
        return len(await self.dispatcher.assign_waiting(s, after, tenant_id, utcnow()))
