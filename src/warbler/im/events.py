"""The resume log: record an event inside a write transaction, replay what a cursor missed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.bus.base import BusEvent, EventBus
from warbler.clock import utcnow
from warbler.im.views import message_view
from warbler.store.models import Event, Member, Message, MessageHide, StoredFile

PostCommit = list[Callable[[], None]]


class EventLog:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    async def record(
        self,
        session: AsyncSession,
        after: PostCommit,
        *,
        tenant_id: str,
        type: str,
        data: dict[str, Any],
        conversation_id: str | None = None,
        target_user_id: str | None = None,
        message_id: str | None = None,
        actor_id: str | None = None,
        joined: tuple[str, ...] = (),
        left: tuple[str, ...] = (),
    ) -> Event:
        """Store the event in the caller's transaction; publish it once that commits.

        Message events store only the message id: the body lives once, in ``messages``.
        """
        row = Event(
            tenant_id=tenant_id,
            type=type,
            conversation_id=conversation_id,
            target_user_id=target_user_id,
            message_id=message_id,
            actor_id=actor_id,
            payload={} if message_id else data,
            created_at=utcnow(),
        )
        session.add(row)
        await session.flush()
        event = BusEvent(
            type=type,
            tenant_id=tenant_id,
            data=data,
            id=row.id,
            conversation_id=conversation_id,
            target_user_id=target_user_id,
            joined_user_ids=joined,
            left_user_ids=left,
        )
        after.append(lambda: self.bus.publish(event))
        return row

    def publish_ephemeral(self, event: BusEvent) -> None:
        """Typing, presence, receipts: pushed live, never stored, never replayed."""
        self.bus.publish(event)


async def latest_id(session: AsyncSession) -> int:
    return (await session.scalar(select(func.max(Event.id)))) or 0


async def oldest_id(session: AsyncSession) -> int | None:
    return await session.scalar(select(func.min(Event.id)))


async def replay(
    session: AsyncSession, *, tenant_id: str, user_id: str, after_id: int, limit: int
) -> tuple[list[BusEvent], int, bool]:
    """Events after ``after_id`` that ``user_id`` may see, oldest first.

    Scans at most ``limit`` log rows; returns (events, the last id scanned, whether more rows
    may follow). Events for messages the user deleted for themselves are skipped.
    """
    my_conversations = select(Member.conversation_id).where(Member.user_id == user_id)
    rows = (
        await session.scalars(
            select(Event)
            .where(
                Event.tenant_id == tenant_id,
                Event.id > after_id,
                or_(
                    Event.target_user_id == user_id,
                    Event.target_user_id.is_(None) & Event.conversation_id.in_(my_conversations),
                ),
            )
            .order_by(Event.id)
            .limit(limit)
        )
    ).all()
    messages = await _messages_for(session, user_id, [r.message_id for r in rows if r.message_id])
    out: list[BusEvent] = []
    for row in rows:
        data = row.payload
        if row.message_id:
            view = messages.get(row.message_id)
            if view is None:  # deleted for this user, or erased
                continue
            data = {"message": view}
        out.append(
            BusEvent(
                type=row.type,
                tenant_id=row.tenant_id,
                data=data,
                id=row.id,
                conversation_id=row.conversation_id,
                target_user_id=row.target_user_id,
            )
        )
    last = rows[-1].id if rows else after_id
    return out, last, len(rows) == limit


async def _messages_for(
    session: AsyncSession, user_id: str, ids: list[str]
) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    hidden = select(MessageHide.message_id).where(MessageHide.user_id == user_id)
    result = await session.execute(
        select(Message, StoredFile)
        .outerjoin(StoredFile, StoredFile.id == Message.file_id)
        .where(Message.id.in_(set(ids)), Message.id.not_in(hidden))
    )
    return {m.id: message_view(m, f) for m, f in result.all()}


async def cursor_is_resumable(session: AsyncSession, cursor: int) -> bool:
    """False when events after ``cursor`` may have been pruned, or the cursor is from the
    future (another database): the client must reload state and take a fresh cursor."""
    if cursor > await latest_id(session):
        return False
    oldest = await oldest_id(session)
    return oldest is None or cursor >= oldest - 1
