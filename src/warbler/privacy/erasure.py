"""Erasure: a tenant admin removes a user's personal data, leaving a tombstone.

The user row stays, renamed "Deleted user 已删除用户" and disabled, so ids stay stable and
other people's history shows a placeholder. Their messages stay in the sequence as
tombstones that read like recalled messages (no text, data or file; ``recalled: true``), and
so do the bot replies that answered them; for a widget visitor, every message of their
support conversations. Everything that copied the content goes: search-index rows, jobs
about those messages (webhook deliveries, bot replies), bots' running summaries, support
ticket summaries and CSAT comments, notes, the files they uploaded (rows and bytes), their
export archives, sessions. Other tables are covered through ``privacy/catalog.py``.
The audit log is append-only: its entries keep the (now anonymous) user id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.delivery.hub import Hub
from warbler.errors import Forbidden, Gone, InvalidRequest, NotFound
from warbler.files.store import FileStore
from warbler.im.auth import AuthService
from warbler.im.conversations import ConversationService
from warbler.im.events import EventLog
from warbler.im.principal import Principal
from warbler.im.views import message_view
from warbler.privacy import catalog, purge
from warbler.privacy.export import ExportService
from warbler.security.audit import AuditLog
from warbler.security.encryption import tenant_scope
from warbler.store.db import Database
from warbler.store.models import Base, Conversation, Event, Job, Member, Message, StoredFile, User
from warbler.store.models_ai import AiUsage
from warbler.store.models_support import (
    SupportConversation,
    SupportNote,
    SupportTicket,
    SupportTransition,
)

log = logging.getLogger(__name__)

TOMBSTONE_NAME = "Deleted user 已删除用户"
_ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def tombstone_username(user_id: str) -> str:
    return f"deleted-{user_id.lower()}"


class ErasureService:
    def __init__(
        self,
        db: Database,
        files: FileStore,
        exports: ExportService,
        conversations: ConversationService,
        events: EventLog,
        auth: AuthService,
        hub: Hub,
        audit: AuditLog,
    ) -> None:
        self.db = db
        self.files = files
        self.exports = exports
        self.conversations = conversations
        self.events = events
        self.auth = auth
        self.hub = hub
        self.audit = audit

    async def erase(self, principal: Principal, user_id: str, confirm: str) -> dict[str, Any]:
        """Erase ``user_id`` of the caller's tenant; ``confirm`` must be their username.
        Safe to run again after a failure: it picks up where it stopped."""
        principal.require_admin()
        user = await self._check(principal, user_id, confirm)
        async with tenant_scope(principal.tenant_id):
            return await self._erase(principal, user)

    async def _erase(self, principal: Principal, user: User) -> dict[str, Any]:
        tenant_id, user_id = principal.tenant_id, user.id
        # First shut them out, so nothing new arrives while their data goes.
        async with self.db.write() as s:
            await s.execute(update(User).where(User.id == user_id).values(disabled=True))
        await self.auth.revoke_all_tokens(tenant_id, user_id)
        self.hub.close_user(user_id, "erased")

        counts: dict[str, int] = {}
        scope = await self._scope(tenant_id, user_id)
        counts["messages"] = await self._tombstone(tenant_id, scope.messages)
        files = await self._files_of(tenant_id, user_id, scope.visitor_conversations)
        counts["files"] = await purge.delete_files(self.db, self.files, tenant_id, files)
        async with self.db.write() as s:
            await purge.secure_delete(s)
            counts.update(await self._support(s, tenant_id, scope.visitor_conversations))
            for table, column, action in catalog.generic_rules(Base.metadata):
                n = await _apply(s, table, column, action, tenant_id, user_id)
                if n:
                    counts[f"{table.name}.{column.name}"] = n
        erased_ids = {user_id, *scope.messages, *files}
        counts["jobs"] = counts.get("jobs", 0) + await self._jobs_mentioning(tenant_id, erased_ids)
        counts["exports"] = await self.exports.delete_for_user(tenant_id, user_id)
        counts["memberships"] = await self._memberships(user)
        async with self.db.write() as s:
            await purge.secure_delete(s)
            row = await s.get_one(User, user_id)
            row.username = tombstone_username(user_id)
            row.display_name = TOMBSTONE_NAME
            row.avatar_url = None
            row.password_hash = None
            row.disabled = True
            if row.kind == "human":
                row.role = "member"
            row.updated_at = utcnow()
            await self.audit.record_in(
                s, tenant_id=tenant_id, actor=principal, action="privacy.erase",
                target_type="user", target_id=user_id, data={"counts": counts},
            )  # fmt: skip
        await purge.compact(self.db, search=True)
        log.info("erased user %s of tenant %s: %s", user_id, tenant_id, counts)
        return {"user_id": user_id, "erased_at": utcnow(), "counts": counts}

    async def _check(self, principal: Principal, user_id: str, confirm: str) -> User:
        async with self.db.read() as s:
            user = await s.scalar(
                select(User).where(User.tenant_id == principal.tenant_id, User.id == user_id)
            )
        if user is None:
            raise NotFound("no such user", details={"user_id": user_id})
        if user.username == tombstone_username(user.id):
            raise Gone("this user was already erased", details={"user_id": user_id})
        if user.kind == "bot":
            raise InvalidRequest("bots are not erased: delete the bot instead")
        if user_id == principal.user_id:
            raise InvalidRequest("you cannot erase yourself: ask another admin")
        if user.role == "owner" and principal.role != "owner" and principal.api_key_id is None:
            raise Forbidden("only an owner can erase an owner")
        if confirm != user.username:
            raise InvalidRequest(
                "to confirm, send the user's username in 'confirm'", details={"field": "confirm"}
            )
        return user

    async def _scope(self, tenant_id: str, user_id: str) -> _Scope:
        """Which messages go: theirs, the bot replies to them, and every message of the
        support conversations where they are the visitor."""
        async with self.db.read() as s:
            visitor_convs = list(
                (
                    await s.scalars(
                        select(SupportConversation.conversation_id).where(
                            SupportConversation.tenant_id == tenant_id,
                            SupportConversation.visitor_id == user_id,
                        )
                    )
                ).all()
            )
            mine = select(Message.id).where(
                Message.tenant_id == tenant_id,
                or_(Message.sender_id == user_id, Message.conversation_id.in_(visitor_convs)),
            )
            replies = select(AiUsage.reply_message_id).where(
                AiUsage.tenant_id == tenant_id,
                AiUsage.user_id == user_id,
                AiUsage.reply_message_id.is_not(None),
            )
            ids = set((await s.scalars(mine)).all()) | set((await s.scalars(replies)).all())
        return _Scope(sorted(i for i in ids if i), visitor_convs)

    async def _tombstone(self, tenant_id: str, message_ids: Sequence[str]) -> int:
        async with self.db.read() as s:
            keys = await purge.JobKeys.load(s, tenant_id)
        total = 0
        for part in purge.chunks(message_ids):
            async with self.db.write_then() as (s, after):
                await purge.secure_delete(s)
                rows = (
                    await s.scalars(
                        select(Message).where(Message.tenant_id == tenant_id, Message.id.in_(part))
                    )
                ).all()
                now = utcnow()
                for msg in rows:
                    had_content = bool(msg.text or msg.data or msg.file_id)
                    msg.text, msg.data, msg.file_id = None, None, None
                    msg.client_msg_id, msg.mentions, msg.mention_all = None, None, False
                    msg.recalled_at = msg.recalled_at or now
                    if had_content:  # clients drop what they cached, as for a recall
                        await self.events.record(
                            s, after, tenant_id=tenant_id, type="message.recalled",
                            data={"message": message_view(msg)}, conversation_id=msg.conversation_id,
                            message_id=msg.id,
                        )  # fmt: skip
                await purge.remove_search_rows(s, part)
                event_ids = list(
                    (await s.scalars(select(Event.id).where(Event.message_id.in_(part)))).all()
                )
                await keys.delete_jobs(s, tenant_id, part, event_ids)
                await purge.forget_ai_memory(s, tenant_id, {m.conversation_id for m in rows})
                total += len(rows)
        return total

    async def _files_of(self, tenant_id: str, user_id: str, convs: list[str]) -> list[str]:
        async with self.db.read() as s:
            return list(
                (
                    await s.scalars(
                        select(StoredFile.id).where(
                            StoredFile.tenant_id == tenant_id,
                            or_(
                                StoredFile.uploader_id == user_id,
                                StoredFile.conversation_id.in_(convs),
                            ),
                        )
                    )
                ).all()
            )

    @staticmethod
    async def _support(s: AsyncSession, tenant_id: str, convs: list[str]) -> dict[str, int]:
        """A visitor's support conversations: tickets keep their times, states and scores
        (reports), but lose what quotes the visitor; notes about them go."""
        if not convs:
            return {}
        tickets: Any = await s.execute(
            update(SupportTicket)
            .where(SupportTicket.tenant_id == tenant_id, SupportTicket.conversation_id.in_(convs))
            .values(summary=None, csat_comment=None, reason_detail={})
        )
        notes: Any = await s.execute(
            delete(SupportNote).where(
                SupportNote.tenant_id == tenant_id, SupportNote.conversation_id.in_(convs)
            )
        )
        await s.execute(
            update(SupportTransition)
            .where(
                SupportTransition.tenant_id == tenant_id,
                SupportTransition.conversation_id.in_(convs),
            )
            .values(data={})
        )
        return {"support_tickets": int(tickets.rowcount or 0), "support_notes": int(notes.rowcount or 0)}  # fmt: skip

    async def _jobs_mentioning(self, tenant_id: str, ids: set[str]) -> int:
        """Jobs whose payload, result, error or keys name the user, an erased message or
        file (any job kind, including those other modules add)."""
        doomed: list[str] = []
        after = ""
        while True:
            async with self.db.read() as s:
                rows = (
                    await s.scalars(
                        select(Job)
                        .where(Job.tenant_id == tenant_id, Job.id > after)
                        .order_by(Job.id)
                        .limit(purge.BATCH)
                    )
                ).all()
            for job in rows:
                blob = orjson.dumps([job.payload, job.result, job.last_error, job.dedupe_key,
                                     job.ref]).decode()  # fmt: skip
                if ids.intersection(_ULID.findall(blob)):
                    doomed.append(job.id)
            if len(rows) < purge.BATCH:
                break
            after = rows[-1].id
        for part in purge.chunks(doomed):
            async with self.db.write() as s:
                await purge.secure_delete(s)
                await s.execute(delete(Job).where(Job.id.in_(part)))
        return len(doomed)

    async def _memberships(self, user: User) -> int:
        """Leave every group (ownership passes on, members are told); in direct and support
        conversations, where membership cannot change, reset the read marker and settings."""
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(Member.conversation_id, Conversation.kind)
                    .join(Conversation, Conversation.id == Member.conversation_id)
                    .where(Member.tenant_id == user.tenant_id, Member.user_id == user.id)
                )
            ).all()
        me = Principal(tenant_id=user.tenant_id, user_id=user.id, role=user.role, kind=user.kind)
        for conversation_id, kind in rows:
            if kind == "group":
                await self.conversations.remove_member(me, conversation_id, user.id)
        async with self.db.write() as s:
            await s.execute(
                update(Member)
                .where(Member.tenant_id == user.tenant_id, Member.user_id == user.id)
                .values(last_read_seq=0, muted=False)
            )
        return len(rows)


class _Scope:
    def __init__(self, messages: list[str], visitor_conversations: list[str]) -> None:
        self.messages = messages
        self.visitor_conversations = visitor_conversations


async def _apply(
    s: AsyncSession, table: Any, column: Any, action: str, tenant_id: str, user_id: str
) -> int:
    where = [column == user_id]
    if "tenant_id" in table.c:
        where.append(table.c.tenant_id == tenant_id)
    stmt = delete(table) if action == "delete" else update(table).values({column.name: None})
    result: Any = await s.execute(stmt.where(*where))
    return int(result.rowcount or 0)
