"""Which visitor message is "the question": the last real question before a point in the
conversation, skipping requests for a person ("转人工") and small talk ("thanks")."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.store.models import Message
from warbler.support.escalation import asks_for_person, small_talk

LOOKBACK = 50  # visitor messages searched back


def is_question(text: str | None) -> bool:
    return (
        bool(text and text.strip())
        and not asks_for_person(text or "")
        and not small_talk(text or "")
    )


async def visitor_question(
    s: AsyncSession, conversation_id: str, visitor_id: str, *, before_seq: int | None = None
) -> Message | None:
    """The visitor's last text message (before ``before_seq``) that is a real question; if
    none of the last ``LOOKBACK`` is, their last text message at all (None: they wrote
    nothing)."""
    query = select(Message).where(
        Message.conversation_id == conversation_id,
        Message.sender_id == visitor_id,
        Message.kind == "text",
        Message.recalled_at.is_(None),
    )
    if before_seq is not None:
        query = query.where(Message.seq < before_seq)
    rows = (await s.scalars(query.order_by(Message.seq.desc()).limit(LOOKBACK))).all()
    return next((m for m in rows if is_question(m.text)), rows[0] if rows else None)
