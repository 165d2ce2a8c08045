"""Read receipts and unread counts: each member's read marker is a sequence number."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from warbler.bus.base import BusEvent
from warbler.errors import InvalidRequest
from warbler.im.events import EventLog
from warbler.im.membership import load_for_member
from warbler.im.principal import Principal
from warbler.store.db import Database
from warbler.store.models import Member


class ReceiptService:
    def __init__(self, db: Database, events: EventLog) -> None:
        self.db = db
        self.events = events

    async def mark_read(
        self, principal: Principal, conversation_id: str, seq: int
    ) -> dict[str, Any]:
        """Move the caller's read marker forward to ``seq`` (never back). Unread = last_seq -
        marker. Members (and the caller's other devices) get a ``receipt`` event."""
        me = principal.require_user()
        if seq < 0:
            raise InvalidRequest("seq must be >= 0", details={"field": "seq"})
        async with self.db.write() as s:
            conv, member = await load_for_member(s, principal.tenant_id, conversation_id, me)
            seq = min(seq, conv.last_seq)
            moved = seq > member.last_read_seq
            if moved:
                await s.execute(
                    update(Member)
                    .where(Member.conversation_id == conv.id, Member.user_id == me)
                    .values(last_read_seq=seq)
                )
            marker = max(seq, member.last_read_seq)
        if moved:
            self.events.publish_ephemeral(
                BusEvent(
                    type="receipt", tenant_id=principal.tenant_id, conversation_id=conversation_id,
                    data={"conversation_id": conversation_id, "user_id": me, "seq": marker},
                )
            )  # fmt: skip
        return {"conversation_id": conversation_id, "last_read_seq": marker,
                "unread": max(0, conv.last_seq - marker)}  # fmt: skip

    async def receipts(self, principal: Principal, conversation_id: str) -> list[dict[str, Any]]:
        """Every member's read marker: a message with seq N is read by those with marker >= N."""
        me = principal.require_user()
        async with self.db.read() as s:
            await load_for_member(s, principal.tenant_id, conversation_id, me)
            rows = (
                await s.execute(
                    select(Member.user_id, Member.last_read_seq).where(
                        Member.conversation_id == conversation_id
                    )
                )
            ).all()
        return [{"user_id": u, "last_read_seq": seq} for u, seq in rows]
