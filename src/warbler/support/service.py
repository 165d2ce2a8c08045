"""``services.support``: the customer-service facade the API and the other support parts call.

Visitor side (the widget, ``support/widget/``):
  - ``await open_for_visitor(tenant_id, visitor_id, *, locale="en") -> dict``: the visitor's
    one support conversation (created with the support bot and the visitor as members when
    new; found again later): ``{conversation_id, state, locale, bot_user_id, ticket,
    office: {open, next_open_at, timezone}, csat_pending, created}``. Raises
    ``InvalidRequest`` when the tenant has no support bot.
  - ``await visitor_view(tenant_id, visitor_id) -> dict``: the same view (``GET /support/me``).
  - ``await ensure_settings(tenant_id, *, widget_id=None) -> dict``: the settings view,
    created (with ``widget_id`` or a fresh id) when missing.
  - ``await settings_by_widget(widget_id) -> dict | None`` (includes ``tenant_id``),
    ``await identity_secret(tenant_id) -> str | None`` (unsealed HMAC key),
    ``await office(tenant_id, team_id=None) -> {open, next_open_at, timezone}`` (the default
    team's when ``team_id`` is None).

Agent desk (``support/desk/``):
  - ``await ticket_row(tenant_id, ticket_id) -> dict`` (``ticket_view``; NotFound),
    ``await ticket_of_conversation(tenant_id, conversation_id) -> dict | None`` (the open
    ticket, else the latest one), ``await state_of(tenant_id, conversation_id) -> dict``.
  - ``await last_visitor_question(tenant_id, conversation_id, *, before_seq=None) -> dict |
    None``: the visitor's last text message (a message view), before ``before_seq`` if given.
  - ``support_conversations.last_question_id``: the visitor's last real question (not small
    talk) while the bot had the conversation; ``ticket.reason_detail`` holds the message id
    that escalated (``message_id``) or the bot reply that did not help (``reply_id``).
  - Resolving posts the CSAT request: a system message whose ``data.support`` is
    ``{"event": "resolved", "csat_request": <ticket id>, ...}``.
  - ``access.require_agent(principal, write=...)`` is the role/scope check to reuse.

Bots and the AI engine: ``await escalate(tenant_id, conversation_id, reason, *, actor_id,
detail, summary)`` in a transaction of its own, or ``await escalate_in(s, after, tenant_id,
conversation_id, reason, ...)`` inside the caller's (the hand-off tool); reason codes are
``states.REASONS``. Hooks registered in ``services.py``: ``send_hook`` (before the AI reply
trigger), ``reply_gate`` (bot silence), ``after_reply`` (no_answer, bot_error).

The API's parts: ``settings`` (``tenant_settings.py``), ``agents``, ``teams``, ``tickets``
(agents' reads), and ``pick`` / ``takeover`` / ``transfer`` / ``resolve`` here.

Events: ``support.state_changed`` (every change of state, on the conversation) and
``support.position_changed`` (a waiting visitor's new place after the queue moved).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.im.events import EventLog, PostCommit
from warbler.im.principal import Principal
from warbler.im.views import message_view
from warbler.security.audit import AuditLog
from warbler.security.crypto import SecretBox
from warbler.security.encryption.keycache import tenant_scope
from warbler.store.db import Database
from warbler.store.models import Message
from warbler.store.models_support import SupportConversation, SupportTicket
from warbler.support import access, queue, tenant_settings
from warbler.support.agents import Agents
from warbler.support.assignment import Dispatcher
from warbler.support.handoff import Handoffs
from warbler.support.hooks import SupportHooks
from warbler.support.states import Machine
from warbler.support.teams import Teams
from warbler.support.tenant_settings import TenantSettings
from warbler.support.tickets import Tickets
from warbler.support.views import state_view, ticket_view
from warbler.support.visitor import Visitors


class SupportService:
    def __init__(self, db: Database, events: EventLog, audit: AuditLog, secrets: SecretBox) -> None:
        self.db = db
        self.events = events
        self.machine = Machine(events)
        self.dispatcher = Dispatcher(self.machine, events)
        self.handoffs = Handoffs(self.machine, self.dispatcher)
        self.settings = TenantSettings(db, secrets, audit)
        self.visitors = Visitors(db, events)
        self.agents = Agents(db, self.handoffs)
        self.teams = Teams(db, self.handoffs)
        self.tickets = Tickets(db, audit)
        self.hooks = SupportHooks(db, self.machine, self.handoffs)
        self.send_hook = self.hooks.on_send
        self.reply_gate = self.hooks.gate
        self.after_reply = self.hooks.after_reply

    # Entry points that may run outside a request or a job (the widget's public session
    # route, the sweeper) act for their tenant themselves: its data key encrypts what they
    # write (security/encryption).

    # -- visitor side ------------------------------------------------------------------------

    async def open_for_visitor(
        self, tenant_id: str, visitor_id: str, *, locale: str = "en"
    ) -> dict[str, Any]:
        async with tenant_scope(tenant_id):
            return await self.visitors.open(tenant_id, visitor_id, locale=locale)

    async def visitor_view(self, tenant_id: str, visitor_id: str) -> dict[str, Any]:
        return await self.visitors.me(tenant_id, visitor_id)

    async def me(self, principal: Principal) -> dict[str, Any]:
        visitor_id = access.require_visitor(principal)
        return await self.visitors.me(principal.tenant_id, visitor_id)

    async def ensure_settings(
        self, tenant_id: str, *, widget_id: str | None = None
    ) -> dict[str, Any]:
        async with tenant_scope(tenant_id):
            return await self.settings.ensure(tenant_id, widget_id=widget_id)

    async def settings_by_widget(self, widget_id: str) -> dict[str, Any] | None:
        return await self.settings.by_widget(widget_id)

    async def identity_secret(self, tenant_id: str) -> str | None:
        return await self.settings.identity_secret(tenant_id)

    async def office(self, tenant_id: str, team_id: str | None = None) -> dict[str, Any]:
        async with self.db.read() as s:
            if team_id is None:
                row = await tenant_settings.load(s, tenant_id)
                team_id = row.default_team_id if row is not None else None
            found = await queue.office_of(s, tenant_id, team_id)
        return found.view(utcnow())

    # -- for the agent desk ------------------------------------------------------------------

    async def ticket_row(self, tenant_id: str, ticket_id: str) -> dict[str, Any]:
        return await self.tickets.row(tenant_id, ticket_id)

    async def ticket_of_conversation(
        self, tenant_id: str, conversation_id: str
    ) -> dict[str, Any] | None:
        async with self.db.read() as s:
            sc = await _state(s, tenant_id, conversation_id)
            if sc.ticket_id is not None:
                found = await s.get(SupportTicket, sc.ticket_id)
            else:
                found = await s.scalar(
                    select(SupportTicket)
                    .where(
                        SupportTicket.tenant_id == tenant_id,
                        SupportTicket.conversation_id == conversation_id,
                    )
                    .order_by(SupportTicket.queued_at.desc(), SupportTicket.id.desc())
                    .limit(1)
                )
        return ticket_view(found) if found is not None else None

    async def state_of(self, tenant_id: str, conversation_id: str) -> dict[str, Any]:
        async with self.db.read() as s:
            return state_view(await _state(s, tenant_id, conversation_id))

    async def last_visitor_question(
        self, tenant_id: str, conversation_id: str, *, before_seq: int | None = None
    ) -> dict[str, Any] | None:
        async with self.db.read() as s:
            sc = await _state(s, tenant_id, conversation_id)
            stmt = select(Message).where(
                Message.conversation_id == conversation_id,
                Message.sender_id == sc.visitor_id,
                Message.kind == "text",
                Message.recalled_at.is_(None),
            )
            if before_seq is not None:
                stmt = stmt.where(Message.seq < before_seq)
            found = await s.scalar(stmt.order_by(Message.seq.desc()).limit(1))
        return message_view(found) if found is not None else None

    # -- hand-offs -----------------------------------------------------------------------------

    async def escalate(
        self,
        tenant_id: str,
        conversation_id: str,
        reason: str,
        *,
        actor_id: str | None = None,
        detail: dict[str, Any] | None = None,
        summary: str | None = None,
    ) -> dict[str, Any] | None:
        """Queue a support conversation for a person (no-op when one already has it)."""
        async with tenant_scope(tenant_id), self.db.write_then() as (s, after):
            ticket = await self.escalate_in(
                s, after, tenant_id, conversation_id, reason, actor_id=actor_id, detail=detail,
                summary=summary,
            )  # fmt: skip
            return ticket_view(ticket) if ticket is not None else None

    async def escalate_in(
        self,
        s: AsyncSession,
        after: PostCommit,
        tenant_id: str,
        conversation_id: str,
        reason: str,
        *,
        actor_id: str | None = None,
        detail: dict[str, Any] | None = None,
        summary: str | None = None,
    ) -> SupportTicket | None:
        sc = await self.machine.conversation(s, tenant_id, conversation_id)
        return await self.handoffs.escalate(
            s, after, sc, reason, actor_id=actor_id, detail=detail, summary=summary
        )

    async def pick(self, principal: Principal, ticket_id: str) -> dict[str, Any]:
        agent_id = access.require_agent_user(principal)
        async with self.db.write_then() as (s, after):
            ticket = await self.handoffs.pick(s, after, principal.tenant_id, ticket_id, agent_id)
            return ticket_view(ticket)

    async def takeover(self, principal: Principal, conversation_id: str) -> dict[str, Any]:
        agent_id = access.require_agent_user(principal)
        async with self.db.write_then() as (s, after):
            ticket = await self.handoffs.takeover(
                s, after, principal.tenant_id, conversation_id, agent_id
            )
            return ticket_view(ticket)

    async def transfer(
        self,
        principal: Principal,
        ticket_id: str,
        *,
        agent_id: str | None = None,
        team_id: str | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        access.require_agent(principal, write=True)
        async with self.db.write_then() as (s, after):
            ticket = await self.handoffs.transfer(
                s, after, principal.tenant_id, ticket_id, actor_id=principal.user_id,
                agent_id=agent_id, team_id=team_id, note=note,
            )  # fmt: skip
            return ticket_view(ticket)

    async def resolve(self, principal: Principal, ticket_id: str) -> dict[str, Any]:
        access.require_agent(principal, write=True)
        async with self.db.write_then() as (s, after):
            ticket = await self.handoffs.resolve(
                s, after, principal.tenant_id, ticket_id, principal.user_id
            )
            return ticket_view(ticket)

    async def dispatch(self, tenant_id: str) -> int:
        """Assign what can be assigned now (the sweeper calls this per tenant)."""
        async with tenant_scope(tenant_id), self.db.write_then() as (s, after):
            return await self.handoffs.dispatch(s, after, tenant_id)


async def _state(s: AsyncSession, tenant_id: str, conversation_id: str) -> SupportConversation:
    from warbler.errors import NotFound

    sc = await s.scalar(
        select(SupportConversation).where(
            SupportConversation.tenant_id == tenant_id,
            SupportConversation.conversation_id == conversation_id,
        )
    )
    if sc is None:
        raise NotFound("no such support conversation", details={"conversation_id": conversation_id})
    return sc
