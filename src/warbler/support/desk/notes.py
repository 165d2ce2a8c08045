"""Internal notes on a support conversation: written and read by agents, never by the visitor.

Notes live in their own table, not in the conversation's messages, and record no
conversation event: nothing the visitor's history, events or WebSocket read can carry them.
Reading them is a read of the conversation by an agent, audited as ``support.read``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from warbler.clock import utcnow
from warbler.errors import InvalidRequest
from warbler.ids import new_id
from warbler.im.principal import Principal
from warbler.security.audit import AuditLog
from warbler.store.db import Database
from warbler.store.models import User
from warbler.store.models_support import SupportNote, SupportTicket
from warbler.support.desk.access import load_conversation, require_agent

MAX_NOTE_CHARS = 5_000
MAX_PAGE = 500


def note_view(note: SupportNote, author: User | None) -> dict[str, Any]:
    return {
        "id": note.id,
        "conversation_id": note.conversation_id,
        "ticket_id": note.ticket_id,
        "author": {
            "id": note.author_id,
            "display_name": author.display_name if author is not None else None,
        },
        "text": note.text,
        "created_at": note.created_at,
    }


class Notes:
    def __init__(self, db: Database, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    async def add(self, principal: Principal, conversation_id: str, text: str) -> dict[str, Any]:
        """A note on the conversation, tied to its open ticket (or its latest one)."""
        require_agent(principal, write=True)
        author_id = principal.require_user()
        text = text.strip()
        if not text:
            raise InvalidRequest("the note is empty", details={"field": "text"})
        if len(text) > MAX_NOTE_CHARS:
            raise InvalidRequest(
                f"a note is at most {MAX_NOTE_CHARS} characters",
                details={"field": "text", "limit": MAX_NOTE_CHARS},
            )
        async with self.db.write() as s:
            conv = await load_conversation(s, principal.tenant_id, conversation_id)
            ticket_id = conv.ticket_id or await s.scalar(
                select(SupportTicket.id)
                .where(
                    SupportTicket.tenant_id == principal.tenant_id,
                    SupportTicket.conversation_id == conversation_id,
                )
                .order_by(SupportTicket.queued_at.desc(), SupportTicket.id.desc())
                .limit(1)
            )
            note = SupportNote(
                id=new_id(), tenant_id=principal.tenant_id, conversation_id=conversation_id,
                ticket_id=ticket_id, author_id=author_id, text=text, created_at=utcnow(),
            )  # fmt: skip
            s.add(note)
            await self.audit.record_in(
                s, tenant_id=principal.tenant_id, actor=principal, action="support.note_added",
                target_type="conversation", target_id=conversation_id,
                data={"note_id": note.id, "ticket_id": ticket_id},
            )  # fmt: skip
            author = await s.get(User, author_id)
            return note_view(note, author)

    async def list(
        self, principal: Principal, conversation_id: str, *, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The conversation's newest ``limit`` notes (at most ``MAX_PAGE``), oldest first."""
        require_agent(principal, write=False)
        limit = max(1, min(limit, MAX_PAGE))
        async with self.db.write() as s:
            await load_conversation(s, principal.tenant_id, conversation_id)
            rows = (
                await s.execute(
                    select(SupportNote, User)
                    .outerjoin(User, User.id == SupportNote.author_id)
                    .where(
                        SupportNote.tenant_id == principal.tenant_id,
                        SupportNote.conversation_id == conversation_id,
                    )
                    .order_by(SupportNote.created_at.desc(), SupportNote.id.desc())
                    .limit(limit)
                )
            ).all()
            await self.audit.record_in(
                s, tenant_id=principal.tenant_id, actor=principal, action="support.read",
                target_type="conversation", target_id=conversation_id, data={"part": "notes"},
            )  # fmt: skip
        return [note_view(n, u) for n, u in reversed(rows)]
