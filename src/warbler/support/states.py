"""The support conversation state machine: bot → waiting → assigned → resolved → bot.

Every change goes through ``Machine._move``: the ``support_conversations`` row takes its new
state, a ``support_transitions`` row records who, why and with what data, and a stored
``support.state_changed`` event tells the conversation's members (the widget, the agent).
Visitor-facing notices are system messages whose ``data.support`` carries the same facts
for programs. Everything here runs inside the caller's write transaction.

The allowed moves (reason codes in ``REASONS``, action names for the rest):

    bot|resolved → waiting     a reason code (escalation)
    bot|resolved → assigned    agent_takeover
    waiting → assigned         round_robin | pick | transfer
    assigned → assigned        transfer (to another agent)
    assigned → waiting         transfer (to a team)
    waiting|assigned → resolved  resolved
    resolved → bot             visitor_message
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.errors import Conflict, NotFound
from warbler.ids import new_id
from warbler.im.events import EventLog, PostCommit
from warbler.im.messages import Draft, append
from warbler.im.views import conversation_view
from warbler.security.encryption import bound_tenant
from warbler.store.models import Conversation, Member, User
from warbler.store.models_support import (
    SupportAgent,
    SupportConversation,
    SupportTeam,
    SupportTicket,
    SupportTransition,
)
from warbler.support import notices

STATE_EVENT = "support.state_changed"
REASONS = (
    "user_requested", "no_answer", "repeated_failure", "negative_sentiment",
    "sensitive_topic", "bot_error", "agent_takeover", "transfer", "other",
)  # fmt: skip
OPEN_TICKET = ("waiting", "assigned")
_MOVES = {
    ("bot", "waiting"), ("resolved", "waiting"), ("bot", "assigned"), ("resolved", "assigned"),
    ("waiting", "assigned"), ("assigned", "assigned"), ("assigned", "waiting"),
    ("waiting", "resolved"), ("assigned", "resolved"), ("resolved", "bot"),
}  # fmt: skip


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Machine:
    def __init__(self, events: EventLog) -> None:
        self.events = events

    # -- loading ---------------------------------------------------------------------------

    async def conversation(
        self, s: AsyncSession, tenant_id: str, conversation_id: str, *, lock: bool = True
    ) -> SupportConversation:
        """The support state of a conversation; with ``lock``, the conversation row is locked
        first (PostgreSQL), which orders this transaction with senders in it."""
        if lock:
            await s.execute(
                select(Conversation.id)
                .where(Conversation.id == conversation_id, Conversation.tenant_id == tenant_id)
                .with_for_update()
            )
        sc = await s.scalar(
            select(SupportConversation)
            .where(
                SupportConversation.conversation_id == conversation_id,
                SupportConversation.tenant_id == tenant_id,
            )
            .execution_options(populate_existing=True)
        )
        if sc is None:
            raise NotFound(
                "no such support conversation", details={"conversation_id": conversation_id}
            )
        return sc

    async def ticket(self, s: AsyncSession, tenant_id: str, ticket_id: str) -> SupportTicket:
        found = await s.scalar(
            select(SupportTicket)
            .where(SupportTicket.tenant_id == tenant_id, SupportTicket.id == ticket_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if found is None:
            raise NotFound("no such ticket", details={"ticket_id": ticket_id})
        return found

    # -- moves -----------------------------------------------------------------------------

    def new_ticket(
        self,
        sc: SupportConversation,
        *,
        reason: str,
        team: SupportTeam | None,
        now: datetime,
        detail: dict[str, Any] | None = None,
        summary: str | None = None,
    ) -> SupportTicket:
        first = team.sla_first_response_seconds if team is not None else None
        resolution = team.sla_resolution_seconds if team is not None else None
        return SupportTicket(
            id=new_id(), tenant_id=sc.tenant_id, conversation_id=sc.conversation_id,
            team_id=team.id if team is not None else None, state="waiting", reason=reason,
            reason_detail=detail or {}, summary=summary, queued_at=now,
            sla_first_response_due=now + timedelta(seconds=first) if first else None,
            sla_resolution_due=now + timedelta(seconds=resolution) if resolution else None,
            created_at=now, updated_at=now,
        )  # fmt: skip

    async def assign(
        self,
        s: AsyncSession,
        after: PostCommit,
        sc: SupportConversation,
        ticket: SupportTicket,
        agent: User,
        *,
        reason: str,
        actor_id: str | None,
        now: datetime,
        data: dict[str, Any] | None = None,
        notice: str | None = None,
    ) -> None:
        """→ assigned: the agent owns the ticket and joins the conversation."""
        if ticket.state not in ("waiting", "assigned"):
            raise Conflict("the ticket is resolved", details={"ticket_id": ticket.id})
        ticket.state = "assigned"
        ticket.assignee_id = agent.id
        ticket.assigned_at = now
        ticket.updated_at = now
        sc.ticket_id = ticket.id
        row = await s.get(SupportAgent, agent.id)
        if row is not None:
            row.last_assigned_at = now
        await self.join(s, after, sc, agent.id, actor_id or agent.id, now)
        await self.move(
            s, after, sc, "assigned", reason, actor_id, ticket, now,
            {**(data or {}), "assignee_id": agent.id},
        )  # fmt: skip
        await self.notice(
            s, after, sc, notice or notices.assigned(agent.display_name, sc.locale),
            {"event": "assigned", "assignee": {"id": agent.id, "display_name": agent.display_name}},
            ticket=ticket,
        )  # fmt: skip

    async def requeue(
        self,
        s: AsyncSession,
        after: PostCommit,
        sc: SupportConversation,
        ticket: SupportTicket,
        *,
        team: SupportTeam | None,
        actor_id: str | None,
        now: datetime,
        data: dict[str, Any],
    ) -> None:
        """assigned|waiting → waiting for another team (a transfer)."""
        previous = ticket.assignee_id
        ticket.state = "waiting"
        ticket.assignee_id = None
        ticket.team_id = team.id if team is not None else None
        ticket.updated_at = now
        sc.team_id = ticket.team_id
        if previous is not None:
            await self.leave(s, after, sc, previous, actor_id)
        await self.move(s, after, sc, "waiting", "transfer", actor_id, ticket, now, data)

    async def resolve(
        self,
        s: AsyncSession,
        after: PostCommit,
        sc: SupportConversation,
        ticket: SupportTicket,
        *,
        actor_id: str | None,
        now: datetime,
    ) -> None:
        """→ resolved; the agent stays a member (their history stays whole) and the visitor
        is asked for a rating (``data.support.csat_request`` = the ticket id)."""
        if ticket.state not in OPEN_TICKET:
            raise Conflict("the ticket is already resolved", details={"ticket_id": ticket.id})
        ticket.state = "resolved"
        ticket.resolved_at = now
        ticket.resolved_by = actor_id
        ticket.updated_at = now
        sc.ticket_id = None
        sc.failed_answers = 0
        await self.move(s, after, sc, "resolved", "resolved", actor_id, ticket, now, {})
        await self.notice(
            s, after, sc, notices.resolved(sc.locale),
            {"event": "resolved", "csat_request": ticket.id}, ticket=ticket,
        )  # fmt: skip

    async def back_to_bot(
        self, s: AsyncSession, after: PostCommit, sc: SupportConversation, *, actor_id: str | None,
        now: datetime,
    ) -> None:  # fmt: skip
        """resolved → bot: the visitor wrote again; the bot answers."""
        sc.failed_answers = 0
        sc.last_question_id = None
        await self.move(s, after, sc, "bot", "visitor_message", actor_id, None, now, {})

    # -- membership and notices ------------------------------------------------------------

    async def join(
        self, s: AsyncSession, after: PostCommit, sc: SupportConversation, user_id: str, by: str,
        now: datetime,
    ) -> None:  # fmt: skip
        if await s.get(Member, (sc.conversation_id, user_id)) is not None:
            return
        conv = await s.get(Conversation, sc.conversation_id)
        assert conv is not None
        s.add(
            Member(
                conversation_id=conv.id, user_id=user_id, tenant_id=conv.tenant_id,
                role="member", muted=False, last_read_seq=conv.last_seq, joined_at=now,
            )
        )  # fmt: skip
        await s.flush()
        await self.events.record(
            s, after, tenant_id=conv.tenant_id, type="member.added",
            data={"conversation": conversation_view(conv), "user_ids": [user_id], "by": by},
            conversation_id=conv.id, actor_id=by,
        )  # fmt: skip

    async def leave(
        self, s: AsyncSession, after: PostCommit, sc: SupportConversation, user_id: str,
        by: str | None,
    ) -> None:  # fmt: skip
        member = await s.get(Member, (sc.conversation_id, user_id))
        if member is None:
            return
        await s.delete(member)
        await s.flush()
        await self.events.record(
            s, after, tenant_id=sc.tenant_id, type="member.removed",
            data={"conversation_id": sc.conversation_id, "user_id": user_id, "by": by},
            conversation_id=sc.conversation_id, actor_id=by,
        )  # fmt: skip

    async def notice(
        self,
        s: AsyncSession,
        after: PostCommit,
        sc: SupportConversation,
        text: str,
        support: dict[str, Any],
        *,
        ticket: SupportTicket | None,
    ) -> dict[str, Any]:
        """A system message for the visitor; ``data.support`` repeats it for programs."""
        conv = await s.get(Conversation, sc.conversation_id)
        assert conv is not None
        payload = {
            "state": sc.state,
            "ticket_id": ticket.id if ticket is not None else None,
            "reason": ticket.reason if ticket is not None else None,
            **support,
        }
        return await append(
            s, after, self.events, conv, sender_id=None,
            draft=Draft(kind="system", text=text, data={"support": payload}),
        )  # fmt: skip

    async def move(
        self,
        s: AsyncSession,
        after: PostCommit,
        sc: SupportConversation,
        to_state: str,
        reason: str,
        actor_id: str | None,
        ticket: SupportTicket | None,
        now: datetime,
        data: dict[str, Any],
    ) -> None:
        from_state = sc.state
        if (from_state, to_state) not in _MOVES:
            raise Conflict(
                f"a support conversation cannot go from {from_state} to {to_state}",
                details={"state": from_state},
            )
        sc.state = to_state
        sc.updated_at = now
        s.add(
            SupportTransition(
                tenant_id=sc.tenant_id, conversation_id=sc.conversation_id,
                ticket_id=ticket.id if ticket is not None else None, from_state=from_state,
                to_state=to_state, reason=reason, actor_id=actor_id, data=data, created_at=now,
            )
        )  # fmt: skip
        # Encrypted columns (transition data, a new ticket's details) are sealed for this
        # tenant whoever calls: a request, a job, the sweeper or a script.
        with bound_tenant(sc.tenant_id):
            await s.flush()
        await self.events.record(
            s, after, tenant_id=sc.tenant_id, type=STATE_EVENT,
            data={
                "conversation_id": sc.conversation_id, "state": to_state,
                "from_state": from_state, "ticket_id": ticket.id if ticket else None,
                "reason": reason, "assignee_id": ticket.assignee_id if ticket else None,
                "position": data.get("position"),
                "expected_wait_seconds": data.get("expected_wait_seconds"),
            },
            conversation_id=sc.conversation_id, actor_id=actor_id,
        )  # fmt: skip
