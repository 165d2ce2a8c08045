"""What agents read: the queue, tickets, support conversations, full histories, transitions.

Agents read any support conversation of their tenant, member or not (to take one over, or
review one). Reading a ticket's detail or a conversation's history is audited
(``support.read``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.errors import InvalidRequest, NotFound
from warbler.im.principal import Principal
from warbler.im.views import message_view
from warbler.security.audit import AuditLog
from warbler.store.db import Database
from warbler.store.models import Message, StoredFile, User
from warbler.store.models_support import (
    STATES,
    TICKET_STATES,
    SupportConversation,
    SupportTicket,
    SupportTransition,
)
from warbler.support import access, queue
from warbler.support.views import person, state_view, ticket_view, transition_view

MAX_LIMIT = 200
PREVIEW_CHARS = 200
READ_ACTION = "support.read"
# An agent's console re-reads an open conversation every few seconds: one audit entry per
# agent, conversation and node in this window (security/audit.py ``once_per_seconds``).
READ_AUDIT_WINDOW_SECONDS = 300.0


class Tickets:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    async def row(self, tenant_id: str, ticket_id: str) -> dict[str, Any]:
        async with self.db.read() as s:
            return ticket_view(await load_ticket(s, tenant_id, ticket_id))

    async def queue(self, principal: Principal, *, limit: int = 100) -> list[dict[str, Any]]:
        """Waiting tickets in the order they will be served (per team)."""
        access.require_agent(principal, write=False)
        tenant_id, now = principal.tenant_id, utcnow()
        out = []
        places: dict[str | None, int] = {}
        async with self.db.read() as s:
            for t in await queue.waiting(s, tenant_id, _limit(limit)):
                places[t.team_id] = places.get(t.team_id, 0) + 1
                sc = await s.get(SupportConversation, t.conversation_id)
                visitor = await s.get(User, sc.visitor_id) if sc is not None else None
                out.append({
                    "ticket_id": t.id, "conversation_id": t.conversation_id,
                    "position": places[t.team_id], "reason": t.reason, "queued_at": t.queued_at,
                    "waited_seconds": int((now - t.queued_at).total_seconds()),
                    "team_id": t.team_id, "visitor": person(visitor),
                    "preview": await _preview(s, sc), "summary": t.summary,
                    "sla_first_response_due": t.sla_first_response_due,
                })  # fmt: skip
        return out

    async def list_tickets(
        self,
        principal: Principal,
        *,
        state: str | None = None,
        assignee_id: str | None = None,
        team_id: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        access.require_agent(principal, write=False)
        if state is not None and state not in TICKET_STATES:
            raise InvalidRequest(f"state is one of {', '.join(TICKET_STATES)}")
        if assignee_id == "me":
            assignee_id = principal.require_user()
        stmt = select(SupportTicket).where(SupportTicket.tenant_id == principal.tenant_id)
        if state is not None:
            stmt = stmt.where(SupportTicket.state == state)
        if assignee_id is not None:
            stmt = stmt.where(SupportTicket.assignee_id == assignee_id)
        if team_id is not None:
            stmt = stmt.where(SupportTicket.team_id == team_id)
        stmt = stmt.order_by(SupportTicket.queued_at.desc(), SupportTicket.id.desc())
        async with self.db.read() as s:
            rows = (await s.scalars(stmt.limit(_limit(limit)))).all()
            return [await self._summary(s, t) for t in rows]

    async def detail(self, principal: Principal, ticket_id: str) -> dict[str, Any]:
        """The ticket, its conversation's state, the visitor, and the full transition history
        (audited)."""
        access.require_agent(principal, write=False)
        tenant_id = principal.tenant_id
        async with self.db.read() as s:
            t = await load_ticket(s, tenant_id, ticket_id)
            view = await self._summary(s, t)
            sc = await s.get(SupportConversation, t.conversation_id)
            assert sc is not None
            view["conversation"] = state_view(sc)
            view["transitions"] = await _transitions(s, tenant_id, t.conversation_id)
        await self.audit.record(
            tenant_id=tenant_id, actor=principal, action=READ_ACTION, target_type="support_ticket",
            target_id=ticket_id, data={"conversation_id": t.conversation_id},
        )  # fmt: skip
        return view

    async def conversations(
        self, principal: Principal, *, state: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Support conversations, most recently active first (bot ones too, to take over)."""
        access.require_agent(principal, write=False)
        if state is not None and state not in STATES:
            raise InvalidRequest(f"state is one of {', '.join(STATES)}")
        stmt = select(SupportConversation).where(
            SupportConversation.tenant_id == principal.tenant_id
        )
        if state is not None:
            stmt = stmt.where(SupportConversation.state == state)
        stmt = stmt.order_by(SupportConversation.updated_at.desc()).limit(_limit(limit))
        async with self.db.read() as s:
            out = []
            for sc in (await s.scalars(stmt)).all():
                view = state_view(sc)
                view["visitor"] = person(await s.get(User, sc.visitor_id))
                view["preview"] = await _preview(s, sc)
                ticket = await s.get(SupportTicket, sc.ticket_id) if sc.ticket_id else None
                view["ticket"] = ticket_view(ticket) if ticket is not None else None
                out.append(view)
        return out

    async def history(
        self, principal: Principal, conversation_id: str, *, before_seq: int | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:  # fmt: skip
        """Every message of a support conversation, the bot's turns with ``data.ai`` (status,
        sources), oldest first in the page (audited)."""
        access.require_agent(principal, write=False)
        tenant_id = principal.tenant_id
        limit = _limit(limit)
        async with self.db.read() as s:
            await load_conversation(s, tenant_id, conversation_id)
            stmt = (
                select(Message, StoredFile)
                .outerjoin(StoredFile, StoredFile.id == Message.file_id)
                .where(Message.conversation_id == conversation_id, Message.tenant_id == tenant_id)
            )
            if before_seq is not None:
                stmt = stmt.where(Message.seq < before_seq)
            rows = (await s.execute(stmt.order_by(Message.seq.desc()).limit(limit + 1))).all()
        await self.audit.record(
            once_per_seconds=READ_AUDIT_WINDOW_SECONDS,
            tenant_id=tenant_id, actor=principal, action=READ_ACTION,
            target_type="conversation", target_id=conversation_id,
            data={"before_seq": before_seq, "count": min(len(rows), limit)},
        )  # fmt: skip
        page = [message_view(m, f) for m, f in rows[:limit]]
        page.reverse()
        return {"messages": page, "has_more": len(rows) > limit}

    async def transitions(self, principal: Principal, conversation_id: str) -> list[dict[str, Any]]:
        access.require_agent(principal, write=False)
        async with self.db.read() as s:
            await load_conversation(s, principal.tenant_id, conversation_id)
            return await _transitions(s, principal.tenant_id, conversation_id)

    async def _summary(self, s: AsyncSession, t: SupportTicket) -> dict[str, Any]:
        view = ticket_view(t)
        sc = await s.get(SupportConversation, t.conversation_id)
        view["visitor"] = person(await s.get(User, sc.visitor_id)) if sc is not None else None
        view["assignee"] = person(await s.get(User, t.assignee_id)) if t.assignee_id else None
        view["conversation_state"] = sc.state if sc is not None else None
        if t.state == "waiting":
            view["position"] = await queue.position_of(s, t)
        return view


def _limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_LIMIT))


async def load_ticket(s: AsyncSession, tenant_id: str, ticket_id: str) -> SupportTicket:
    """A ticket of the tenant, or 404."""
    found = await s.scalar(
        select(SupportTicket).where(
            SupportTicket.tenant_id == tenant_id, SupportTicket.id == ticket_id
        )
    )
    if found is None:
        raise NotFound("no such ticket", details={"ticket_id": ticket_id})
    return found


async def load_conversation(
    s: AsyncSession, tenant_id: str, conversation_id: str
) -> SupportConversation:
    """A support conversation of the tenant, or 404 (other conversations look missing)."""
    found = await s.scalar(
        select(SupportConversation).where(
            SupportConversation.tenant_id == tenant_id,
            SupportConversation.conversation_id == conversation_id,
        )
    )
    if found is None:
        raise NotFound("no such support conversation", details={"conversation_id": conversation_id})
    return found


async def _transitions(
    s: AsyncSession, tenant_id: str, conversation_id: str
) -> list[dict[str, Any]]:
    rows = (
        await s.scalars(
            select(SupportTransition)
            .where(
                SupportTransition.tenant_id == tenant_id,
                SupportTransition.conversation_id == conversation_id,
            )
            .order_by(SupportTransition.id)
        )
    ).all()
    return [transition_view(r) for r in rows]


async def _preview(s: AsyncSession, sc: SupportConversation | None) -> str | None:
    """The visitor's last text, cut short."""
    if sc is None:
        return None
    text = await s.scalar(
        select(Message.text)
        .where(
            and_(
                Message.conversation_id == sc.conversation_id,
                Message.sender_id == sc.visitor_id,
                Message.kind == "text",
                Message.recalled_at.is_(None),
            )
        )
        .order_by(Message.seq.desc())
        .limit(1)
    )
    if text is None:
        return None
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"
