"""The visitor's side: their one support conversation, and what the widget shows about it.

A visitor (a ``users`` row of kind visitor) has exactly one support conversation with the
tenant's support bot, found again on every later session, so the history survives reloads
and new devices. It moves between bot and people (``states.py``) but never closes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.errors import Forbidden, InvalidRequest, NotFound
from warbler.ids import new_id
from warbler.im.events import EventLog
from warbler.im.views import conversation_view
from warbler.store.db import Database
from warbler.store.models import Conversation, Member, User
from warbler.store.models_support import SupportConversation, SupportTicket
from warbler.support import queue, tenant_settings
from warbler.support.views import person

LOCALES = ("en", "zh")
CSAT_WINDOW = timedelta(days=7)  # how long after resolution a rating is still asked for


def locale_of(value: str | None) -> str:
    return "zh" if (value or "").lower().startswith("zh") else "en"


class Visitors:
    def __init__(self, db: Database, events: EventLog) -> None:
        self.db = db
        self.events = events

    async def open(self, tenant_id: str, visitor_id: str, *, locale: str = "en") -> dict[str, Any]:
        """The visitor's support conversation, created with the support bot when new."""
        locale = locale_of(locale)
        async with self.db.read() as s:
            settings = await tenant_settings.load(s, tenant_id)
            found = await _of_visitor(s, tenant_id, visitor_id)
        if settings is None or settings.bot_user_id is None:
            raise InvalidRequest(
                "customer service is not configured: choose a support bot "
                "(PUT /api/v1/support/settings {bot_user_id})"
            )
        created = False
        async with self.db.write_then() as (s, after):
            # Lock the visitor: two first sessions at once make one conversation.
            visitor = await s.scalar(
                select(User)
                .where(User.tenant_id == tenant_id, User.id == visitor_id)
                .with_for_update()
            )
            if visitor is None:
                raise NotFound("no such visitor", details={"visitor_id": visitor_id})
            if visitor.kind != "visitor":
                raise Forbidden("only visitors have a support conversation of their own")
            found = await _of_visitor(s, tenant_id, visitor_id)
            if found is None:
                found = await self._create(s, after, tenant_id, visitor_id, settings, locale)
                created = True
            elif found.locale != locale:
                found.locale = locale
        view = await self.view(tenant_id, found.conversation_id)
        view["created"] = created
        return view

    async def _create(
        self, s: AsyncSession, after: Any, tenant_id: str, visitor_id: str,
        settings: Any, locale: str,
    ) -> SupportConversation:  # fmt: skip
        now = utcnow()
        conv = Conversation(
            id=new_id(), tenant_id=tenant_id, kind="support", created_by=visitor_id,
            last_seq=0, created_at=now, updated_at=now,
        )  # fmt: skip
        s.add(conv)
        await s.flush()
        for user_id in (visitor_id, settings.bot_user_id):
            s.add(
                Member(
                    conversation_id=conv.id, user_id=user_id, tenant_id=tenant_id,
                    role="member", muted=False, last_read_seq=0, joined_at=now,
                )
            )  # fmt: skip
        sc = SupportConversation(
            conversation_id=conv.id, tenant_id=tenant_id, visitor_id=visitor_id,
            bot_user_id=settings.bot_user_id, team_id=settings.default_team_id, state="bot",
            failed_answers=0, locale=locale, created_at=now, updated_at=now,
        )  # fmt: skip
        s.add(sc)
        await s.flush()
        await self.events.record(
            s, after, tenant_id=tenant_id, type="member.added",
            data={"conversation": conversation_view(conv),
                  "user_ids": [visitor_id, settings.bot_user_id], "by": visitor_id},
            conversation_id=conv.id, actor_id=visitor_id,
        )  # fmt: skip
        return sc

    async def me(self, tenant_id: str, visitor_id: str) -> dict[str, Any]:
        async with self.db.read() as s:
            found = await _of_visitor(s, tenant_id, visitor_id)
        if found is None:
            raise NotFound("no support conversation yet: open a widget session first")
        return await self.view(tenant_id, found.conversation_id)

    async def view(self, tenant_id: str, conversation_id: str) -> dict[str, Any]:
        """{conversation_id, state, locale, ticket, office, csat_pending} for the widget."""
        now = utcnow()
        async with self.db.read() as s:
            sc = await s.scalar(
                select(SupportConversation).where(
                    SupportConversation.tenant_id == tenant_id,
                    SupportConversation.conversation_id == conversation_id,
                )
            )
            if sc is None:
                raise NotFound("no such support conversation")
            settings = await tenant_settings.load(s, tenant_id)
            team_id = sc.team_id or (settings.default_team_id if settings else None)
            office = await queue.office_of(s, tenant_id, team_id)
            ticket = None
            if sc.ticket_id is not None:
                row = await s.get(SupportTicket, sc.ticket_id)
                if row is not None:
                    ticket = await ticket_brief(s, row, now)
            pending = await s.scalar(
                select(SupportTicket.id)
                .where(
                    SupportTicket.tenant_id == tenant_id,
                    SupportTicket.conversation_id == conversation_id,
                    SupportTicket.state == "resolved",
                    SupportTicket.csat_score.is_(None),
                    SupportTicket.resolved_at > now - CSAT_WINDOW,
                )
                .order_by(SupportTicket.resolved_at.desc())
                .limit(1)
            )
        return {
            "conversation_id": sc.conversation_id,
            "state": sc.state,
            "locale": sc.locale,
            "bot_user_id": sc.bot_user_id,
            "ticket": ticket,
            "office": office.view(now),
            # Only while the bot has it back: a new hand-off supersedes the old rating.
            "csat_pending": pending if sc.state in ("resolved", "bot") else None,
        }


async def ticket_brief(s: AsyncSession, t: SupportTicket, now: Any) -> dict[str, Any]:
    """What a visitor may know of their ticket: its place, the wait, who has it."""
    position = wait = None
    if t.state == "waiting":
        office = await queue.office_of(s, t.tenant_id, t.team_id)
        position = await queue.position_of(s, t)
        wait = await queue.expected_wait(s, t, position, office, now)
    assignee = await s.get(User, t.assignee_id) if t.assignee_id else None
    return {
        "id": t.id,
        "state": t.state,
        "reason": t.reason,
        "position": position,
        "expected_wait_seconds": wait,
        "assignee": person(assignee),
    }


async def _of_visitor(
    s: AsyncSession, tenant_id: str, visitor_id: str
) -> SupportConversation | None:
    return await s.scalar(
        select(SupportConversation)
        .where(
            SupportConversation.tenant_id == tenant_id,
            SupportConversation.visitor_id == visitor_id,
        )
        .order_by(SupportConversation.created_at)
        .limit(1)
    )
