"""What a user's data export holds, written into a zip: JSON files and the user's own files.

``manifest.json``         the export's id, format, when it was made, what each file counts
``profile.json``          the user row and their sessions (devices, never token hashes)
``conversations.json``    conversations they are in: metadata, their role, read marker, mute
``messages.json``         every message they sent, in every conversation, oldest first
``hidden_messages.json``  messages they deleted for themselves (ids)
``files.json``            metadata of the files they uploaded; the bytes in ``files/<id>/<name>``
``support.json``          as a widget visitor: how they are known, their conversations,
                          tickets and ratings (CSAT)
``ai_usage.json``         their questions to bots: when, which bot, tokens, outcome
``audit.json``            audit-log entries of what they did (actions, times, addresses)
"""

from __future__ import annotations

import zipfile
from collections.abc import Awaitable, Callable
from typing import IO, Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.files.store import FileStore
from warbler.im.views import conversation_view, file_view, message_view, user_view
from warbler.store.db import Database
from warbler.store.models import (
    AccessToken,
    Conversation,
    Member,
    Message,
    MessageHide,
    StoredFile,
    User,
)
from warbler.store.models_ai import AiUsage
from warbler.store.models_audit import AuditEntry
from warbler.store.models_support import SupportConversation, SupportTicket, SupportVisitor

FORMAT = "warbler-export/1"
PAGE = 1000

Query = Callable[[AsyncSession, Any], Awaitable[list[Any]]]


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)


class ArchiveWriter:
    """Writes one user's export into ``out`` (a binary file); ``counts`` says what it holds."""

    def __init__(self, db: Database, files: FileStore, tenant_id: str, user_id: str) -> None:
        self.db = db
        self.files = files
        self.tenant_id = tenant_id
        self.user_id = user_id
        self.counts: dict[str, int] = {}

    async def write(self, out: IO[bytes], export_id: str) -> dict[str, int]:
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("profile.json", _dumps(await self._profile()))
            zf.writestr("conversations.json", _dumps(await self._conversations()))
            await self._paged(zf, "messages.json", self._messages)
            await self._paged(zf, "hidden_messages.json", self._hidden)
            await self._files(zf)
            zf.writestr("support.json", _dumps(await self._support()))
            await self._paged(zf, "ai_usage.json", self._usage)
            await self._paged(zf, "audit.json", self._audit)
            manifest = {
                "format": FORMAT, "export_id": export_id, "tenant_id": self.tenant_id,
                "user_id": self.user_id, "generated_at": utcnow(), "counts": self.counts,
            }  # fmt: skip
            zf.writestr("manifest.json", _dumps(manifest))
        return self.counts

    async def _paged(self, zf: zipfile.ZipFile, name: str, query: Query) -> None:
        """A JSON array written a page at a time, so a long history never sits in memory."""
        count, after = 0, None
        with zf.open(name, "w", force_zip64=True) as fh:
            fh.write(b"[")
            while True:
                async with self.db.read() as s:
                    page = await query(s, after)
                for item, _ in page:
                    fh.write((b",\n" if count else b"\n") + orjson.dumps(item))
                    count += 1
                if len(page) < PAGE:
                    break
                after = page[-1][1]
            fh.write(b"\n]\n")
        self.counts[name.removesuffix(".json")] = count

    async def _profile(self) -> dict[str, Any]:
        async with self.db.read() as s:
            user = await s.scalar(
                select(User).where(User.tenant_id == self.tenant_id, User.id == self.user_id)
            )
            tokens = (
                await s.scalars(
                    select(AccessToken)
                    .where(
                        AccessToken.tenant_id == self.tenant_id, AccessToken.user_id == self.user_id
                    )
                    .order_by(AccessToken.created_at)
                )
            ).all()
        sessions = [
            {"id": t.id, "device": t.device, "created_at": t.created_at,
             "expires_at": t.expires_at, "revoked_at": t.revoked_at,
             "last_used_at": t.last_used_at}
            for t in tokens
        ]  # fmt: skip
        self.counts["sessions"] = len(sessions)
        return {"user": user_view(user) if user else None, "sessions": sessions}

    async def _conversations(self) -> list[dict[str, Any]]:
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(Conversation, Member)
                    .join(Member, Member.conversation_id == Conversation.id)
                    .where(Member.user_id == self.user_id, Member.tenant_id == self.tenant_id)
                    .order_by(Conversation.created_at)
                )
            ).all()
        self.counts["conversations"] = len(rows)
        return [{**conversation_view(c, m), "joined_at": m.joined_at} for c, m in rows]

    async def _messages(self, s: AsyncSession, after: Any) -> list[Any]:
        stmt = (
            select(Message, StoredFile)
            .outerjoin(StoredFile, StoredFile.id == Message.file_id)
            .where(Message.tenant_id == self.tenant_id, Message.sender_id == self.user_id)
            .order_by(Message.id)
            .limit(PAGE)
        )
        if after is not None:
            stmt = stmt.where(Message.id > after)
        return [(message_view(m, f), m.id) for m, f in (await s.execute(stmt)).all()]

    async def _hidden(self, s: AsyncSession, after: Any) -> list[Any]:
        stmt = (
            select(MessageHide)
            .where(MessageHide.tenant_id == self.tenant_id, MessageHide.user_id == self.user_id)
            .order_by(MessageHide.message_id)
            .limit(PAGE)
        )
        if after is not None:
            stmt = stmt.where(MessageHide.message_id > after)
        rows = (await s.scalars(stmt)).all()
        return [
            ({"message_id": h.message_id, "conversation_id": h.conversation_id,
              "hidden_at": h.created_at}, h.message_id)
            for h in rows
        ]  # fmt: skip

    async def _files(self, zf: zipfile.ZipFile) -> None:
        async with self.db.read() as s:
            rows = (
                await s.scalars(
                    select(StoredFile)
                    .where(
                        StoredFile.tenant_id == self.tenant_id,
                        StoredFile.uploader_id == self.user_id,
                    )
                    .order_by(StoredFile.id)
                )
            ).all()
        listed = []
        for f in rows:
            entry = {**file_view(f), "path": f"files/{f.id}/{f.name}"}
            try:
                chunks = await self.files.open(f.storage_key)
            except FileNotFoundError:
                entry["path"] = None  # the row outlived its bytes (see files/service.py)
            else:
                with zf.open(entry["path"], "w", force_zip64=True) as fh:
                    async for chunk in chunks:
                        fh.write(chunk)
            listed.append(entry)
        zf.writestr("files.json", _dumps(listed))
        self.counts["files"] = len(listed)

    async def _support(self) -> dict[str, Any]:
        async with self.db.read() as s:
            visitor = await s.scalar(
                select(SupportVisitor).where(
                    SupportVisitor.tenant_id == self.tenant_id,
                    SupportVisitor.user_id == self.user_id,
                )
            )
            convs = (
                await s.scalars(
                    select(SupportConversation).where(
                        SupportConversation.tenant_id == self.tenant_id,
                        SupportConversation.visitor_id == self.user_id,
                    )
                )
            ).all()
            tickets = (
                await s.scalars(
                    select(SupportTicket)
                    .where(
                        SupportTicket.tenant_id == self.tenant_id,
                        SupportTicket.conversation_id.in_([c.conversation_id for c in convs]),
                    )
                    .order_by(SupportTicket.queued_at)
                )
            ).all()
        self.counts["support_tickets"] = len(tickets)
        return {
            "visitor": None if visitor is None else {
                "external_id": visitor.external_id, "email": visitor.email,
                "locale": visitor.locale, "created_at": visitor.created_at,
                "last_seen_at": visitor.last_seen_at,
            },
            "conversations": [
                {"conversation_id": c.conversation_id, "state": c.state, "locale": c.locale,
                 "created_at": c.created_at}
                for c in convs
            ],
            "tickets": [
                {"id": t.id, "conversation_id": t.conversation_id, "state": t.state,
                 "queued_at": t.queued_at, "resolved_at": t.resolved_at,
                 "csat_score": t.csat_score, "csat_comment": t.csat_comment, "csat_at": t.csat_at}
                for t in tickets
            ],
        }  # fmt: skip

    async def _usage(self, s: AsyncSession, after: Any) -> list[Any]:
        stmt = (
            select(AiUsage)
            .where(AiUsage.tenant_id == self.tenant_id, AiUsage.user_id == self.user_id)
            .order_by(AiUsage.id)
            .limit(PAGE)
        )
        if after is not None:
            stmt = stmt.where(AiUsage.id > after)
        return [
            ({"id": u.id, "bot_id": u.bot_id, "conversation_id": u.conversation_id,
              "source": u.source, "model": u.model, "prompt_tokens": u.prompt_tokens,
              "completion_tokens": u.completion_tokens, "status": u.status,
              "created_at": u.created_at}, u.id)
            for u in (await s.scalars(stmt)).all()
        ]  # fmt: skip

    async def _audit(self, s: AsyncSession, after: Any) -> list[Any]:
        stmt = (
            select(AuditEntry)
            .where(AuditEntry.tenant_id == self.tenant_id, AuditEntry.actor_id == self.user_id)
            .order_by(AuditEntry.id)
            .limit(PAGE)
        )
        if after is not None:
            stmt = stmt.where(AuditEntry.id > after)
        return [
            ({"action": a.action, "target_type": a.target_type, "target_id": a.target_id,
              "ip": a.ip, "user_agent": a.user_agent, "at": a.created_at}, a.id)
            for a in (await s.scalars(stmt)).all()
        ]  # fmt: skip
