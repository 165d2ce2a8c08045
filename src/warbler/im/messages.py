"""Messages: send (idempotent, gap-free sequence), history, edit, recall, delete for me."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from warbler.clock import utcnow
from warbler.errors import Forbidden, Gone, InvalidRequest, NotFound, TooLarge, WarblerError
from warbler.im.append import (
    Draft,
    append,
    append_many,
    by_client_ids,
    mark_read,
    members_of,
    needs_ref_checks,
)
from warbler.im.events import EventLog, PostCommit
from warbler.im.membership import GROUP_ADMIN_ROLES, load_for_member
from warbler.im.principal import Principal
from warbler.im.ratelimit import RateLimiter, enforce
from warbler.im.send_batch import PendingSend, SendBatcher, Sent
from warbler.im.views import message_view
from warbler.search import index as search_index
from warbler.security.encryption import bound_tenant
from warbler.security.encryption import ensure as ensure_keys
from warbler.store.db import Database
from warbler.store.models import Conversation, Member, Message, MessageHide, StoredFile

__all__ = ["Draft", "Limits", "MessageService", "append"]

USER_KINDS = ("text", "image", "file", "card")
EDITABLE_KINDS = ("text", "card")

# Called inside the send transaction after the message is stored, with
# (session, after, conversation, message view, sender): work that must exist iff the message
# commits (a bot's reply job) enqueues here. Keep hooks cheap: they are on every send.
SendHook = Callable[
    [AsyncSession, PostCommit, Conversation, dict[str, Any], Principal], Awaitable[None]
]


@dataclass(frozen=True, slots=True)
class Limits:
    max_text_chars: int
    max_data_bytes: int
    recall_window_seconds: int
    history_page_max: int


class MessageService:
    def __init__(self, db: Database, events: EventLog, limits: Limits, rate: RateLimiter) -> None:
        self.db = db
        self.events = events
        self.limits = limits
        self.rate = rate
        self.send_hooks: list[SendHook] = []
        self.batcher = SendBatcher(self._store_many, self._store_one)

    # -- send --------------------------------------------------------------------------

    async def send(
        self, principal: Principal, conversation_id: str, draft: Draft
    ) -> tuple[dict[str, Any], bool]:
        """Store and announce a message. Returns (message, created); a retry with the same
        ``client_msg_id`` returns the stored message and ``created=False``.

        Concurrent sends are stored together, one transaction per batch (``send_batch.py``).
        """
        sender = principal.require_user()
        self._check_shape(principal, draft)
        if principal.api_key_id is None:  # server-to-server keys are trusted callers
            await enforce(self.rate, sender, "messages")
        return await self.batcher.submit(principal, conversation_id, draft)

    async def _store_many(self, batch: list[PendingSend]) -> list[Sent | BaseException]:
        """One transaction for a batch of one tenant's sends (see ``SendBatcher``)."""
        results: list[Sent | BaseException | None] = [None] * len(batch)
        async with self.db.write_then() as (s, after):
            found = await members_of(s, batch)
            existing = await by_client_ids(s, batch)
            accepted: list[tuple[int, Conversation, Member]] = []
            files: dict[int, StoredFile | None] = {}
            claimed: dict[tuple[str, str, str], int] = {}
            for i, item in enumerate(batch):
                pair = found.get((item.conversation_id, item.sender_id))
                if pair is None:
                    results[i] = NotFound(
                        "no such conversation", details={"conversation_id": item.conversation_id}
                    )
                    continue
                key = (item.conversation_id, item.sender_id, item.draft.client_msg_id or "")
                if item.draft.client_msg_id:
                    if key in existing:
                        results[i] = (existing[key], False)
                        continue
                    if key in claimed:  # the same send twice in this batch: one message
                        continue
                    claimed[key] = i
                conv, member = pair
                if needs_ref_checks(item.draft):
                    try:
                        file = await self._check_refs(s, conv, member, item.draft)
                    except WarblerError as exc:
                        results[i] = exc
                        continue
                    files[i] = file
                accepted.append((i, conv, member))
            views = await append_many(
                s, after, self.events,
                [(conv, batch[i].sender_id, batch[i].draft, files.get(i)) for i, conv, _ in accepted],
            )  # fmt: skip
            read_up_to: dict[tuple[str, str], int] = {}
            for (i, conv, member), view in zip(accepted, views, strict=True):
                for hook in self.send_hooks:
                    await hook(s, after, conv, view, batch[i].principal)
                results[i] = (view, True)
                read_up_to[(conv.id, member.user_id)] = view["seq"]
                # The loaded membership learns it without becoming dirty (see mark_read).
                if member.last_read_seq < view["seq"]:
                    set_committed_value(member, "last_read_seq", view["seq"])
            # Sending implies having read everything up to one's own message.
            await mark_read(s, read_up_to)
        for i, item in enumerate(batch):
            if results[i] is None:  # a duplicate within the batch: the first one's message
                key = (item.conversation_id, item.sender_id, item.draft.client_msg_id or "")
                first = results[claimed[key]]
                results[i] = (first[0], False) if isinstance(first, tuple) else first
        return [r for r in results if r is not None]

    async def _store_one(self, item: PendingSend) -> Sent:
        """A send in its own transaction: the path a failed batch's sends are retried on."""
        draft, sender, conversation_id = item.draft, item.sender_id, item.conversation_id
        try:
            async with self.db.write_then() as (s, after):
                conv, member = await load_for_member(
                    s, item.principal.tenant_id, conversation_id, sender
                )
                if draft.client_msg_id:
                    existing = await self._by_client_id(
                        s, conversation_id, sender, draft.client_msg_id
                    )
                    if existing is not None:
                        return existing, False
                file = await self._check_refs(s, conv, member, draft)
                msg = await append(
                    s, after, self.events, conv, sender_id=sender, draft=draft, file=file
                )
                for hook in self.send_hooks:
                    await hook(s, after, conv, msg, item.principal)
                member.last_read_seq = msg["seq"]
                return msg, True
        except IntegrityError:
            # Two retries raced on PostgreSQL; the loser returns the winner's message.
            if draft.client_msg_id:
                async with self.db.read() as s:
                    existing = await self._by_client_id(
                        s, conversation_id, sender, draft.client_msg_id
                    )
                if existing is not None:
                    return existing, False
            raise

    def _check_shape(self, principal: Principal, d: Draft) -> None:
        if d.kind == "system":
            if principal.api_key_id is None:
                raise Forbidden("only the server or an API key can post system messages")
        elif d.kind not in USER_KINDS:
            raise InvalidRequest(f"unknown message kind '{d.kind}'", details={"field": "kind"})
        if d.text is not None and len(d.text) > self.limits.max_text_chars:
            raise TooLarge(
                f"text is longer than {self.limits.max_text_chars} characters",
                details={"limit": self.limits.max_text_chars, "length": len(d.text)},
            )
        if d.data is not None:
            size = len(orjson.dumps(d.data))
            if size > self.limits.max_data_bytes:
                raise TooLarge(
                    f"data is larger than {self.limits.max_data_bytes} bytes",
                    details={"limit": self.limits.max_data_bytes, "size": size},
                )
        if d.kind == "text" and not (d.text and d.text.strip()):
            raise InvalidRequest("a text message needs non-empty text", details={"field": "text"})
        if d.kind in ("image", "file") and not d.file_id:
            raise InvalidRequest(
                f"a {d.kind} message needs a file_id", details={"field": "file_id"}
            )
        if d.kind == "card" and not d.data:
            raise InvalidRequest("a card message needs data", details={"field": "data"})
        if d.kind in ("text", "card", "system") and d.file_id:
            raise InvalidRequest(f"a {d.kind} message takes no file", details={"field": "file_id"})

    async def _check_refs(
        self, s: AsyncSession, conv: Conversation, member: Member, d: Draft
    ) -> StoredFile | None:
        file = None
        if d.file_id:
            file = await s.scalar(
                select(StoredFile).where(
                    StoredFile.id == d.file_id,
                    StoredFile.tenant_id == conv.tenant_id,
                    StoredFile.conversation_id == conv.id,
                )
            )
            if file is None:
                raise NotFound("no such file in this conversation", details={"file_id": d.file_id})
            if d.kind == "image" and not file.content_type.startswith("image/"):
                raise InvalidRequest("an image message needs an image file")
        if d.reply_to_id:
            exists = await s.scalar(
                select(Message.id).where(
                    Message.id == d.reply_to_id, Message.conversation_id == conv.id
                )
            )
            if exists is None:
                raise NotFound("reply_to message is not in this conversation")
        if d.mentions:
            d.mentions = list(dict.fromkeys(d.mentions))
            found = set(
                (
                    await s.scalars(
                        select(Member.user_id).where(
                            Member.conversation_id == conv.id, Member.user_id.in_(d.mentions)
                        )
                    )
                ).all()
            )
            missing = [u for u in d.mentions if u not in found]
            if missing:
                raise InvalidRequest(
                    "mentioned users must be members", details={"not_members": missing}
                )
        if d.mention_all and (conv.kind != "group" or member.role not in GROUP_ADMIN_ROLES):
            raise Forbidden("only a group's owner or admins can mention @all")
        return file

    @staticmethod
    async def _by_client_id(
        s: AsyncSession, conversation_id: str, sender: str, client_msg_id: str
    ) -> dict[str, Any] | None:
        found = (
            await s.execute(
                select(Message, StoredFile)
                .outerjoin(StoredFile, StoredFile.id == Message.file_id)
                .where(
                    Message.conversation_id == conversation_id,
                    Message.sender_id == sender,
                    Message.client_msg_id == client_msg_id,
                )
            )
        ).first()
        return message_view(found[0], found[1]) if found else None

    # -- read --------------------------------------------------------------------------

    async def history(
        self,
        principal: Principal,
        conversation_id: str,
        *,
        before_seq: int | None = None,
        after_seq: int | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """A page of messages in ascending seq. Default: the newest page."""
        user = principal.require_user()
        limit = max(1, min(limit, self.limits.history_page_max))
        if before_seq is not None and after_seq is not None:
            raise InvalidRequest("give before_seq or after_seq, not both")
        async with self.db.read() as s:
            await load_for_member(s, principal.tenant_id, conversation_id, user)
            hidden = select(MessageHide.message_id).where(
                MessageHide.user_id == user, MessageHide.conversation_id == conversation_id
            )
            stmt = (
                select(Message, StoredFile)
                .outerjoin(StoredFile, StoredFile.id == Message.file_id)
                .where(Message.conversation_id == conversation_id, Message.id.not_in(hidden))
            )
            if after_seq is not None:
                stmt = stmt.where(Message.seq > after_seq).order_by(Message.seq)
            else:
                if before_seq is not None:
                    stmt = stmt.where(Message.seq < before_seq)
                stmt = stmt.order_by(Message.seq.desc())
            rows = (await s.execute(stmt.limit(limit + 1))).all()
        has_more = len(rows) > limit
        page = [message_view(m, f) for m, f in rows[:limit]]
        if after_seq is None:
            page.reverse()
        return {"messages": page, "has_more": has_more}

    async def get(
        self, principal: Principal, conversation_id: str, message_id: str
    ) -> dict[str, Any]:
        user = principal.require_user()
        async with self.db.read() as s:
            await load_for_member(s, principal.tenant_id, conversation_id, user)
            msg, file = await _load(s, conversation_id, message_id)
            hidden = await s.get(MessageHide, (user, message_id))
        if hidden is not None:
            raise NotFound("no such message", details={"message_id": message_id})
        return message_view(msg, file)

    # -- change ------------------------------------------------------------------------

    async def edit(
        self,
        principal: Principal,
        conversation_id: str,
        message_id: str,
        *,
        text: str | None,
        data: dict[str, Any] | None,
    ) -> dict[str, Any]:
        user = principal.require_user()
        async with self.db.write_then() as (s, after):
            await load_for_member(s, principal.tenant_id, conversation_id, user)
            msg, file = await _load(s, conversation_id, message_id)
            if msg.sender_id != user:
                raise Forbidden("only the sender can edit a message")
            if msg.recalled_at is not None:
                raise Gone("the message was recalled")
            if msg.kind not in EDITABLE_KINDS:
                raise InvalidRequest(f"{msg.kind} messages cannot be edited")
            self._check_shape(
                principal,
                Draft(kind=msg.kind, text=text if text is not None else msg.text,
                      data=data if data is not None else msg.data),
            )  # fmt: skip
            if text is not None:
                msg.text = text
            if data is not None:
                msg.data = data
            msg.edited_at = utcnow()
            await ensure_keys(msg.tenant_id)
            with bound_tenant(msg.tenant_id):
                await s.flush()
                await search_index.replace(s, msg)
            view = message_view(msg, file)
            await self.events.record(
                s, after, tenant_id=msg.tenant_id, type="message.edited", data={"message": view},
                conversation_id=conversation_id, message_id=msg.id, actor_id=user,
            )  # fmt: skip
        return view

    async def recall(
        self, principal: Principal, conversation_id: str, message_id: str
    ) -> dict[str, Any]:
        """The sender within the recall window, or a group owner/admin at any time."""
        user = principal.require_user()
        async with self.db.write_then() as (s, after):
            conv, member = await load_for_member(s, principal.tenant_id, conversation_id, user)
            msg, _file = await _load(s, conversation_id, message_id)
            if msg.recalled_at is not None:
                raise Gone("the message was already recalled")
            moderator = conv.kind == "group" and member.role in GROUP_ADMIN_ROLES
            if not moderator:
                if msg.sender_id != user:
                    raise Forbidden("only the sender or a group admin can recall a message")
                window = timedelta(seconds=self.limits.recall_window_seconds)
                if utcnow() - msg.created_at > window:
                    raise Gone(
                        "the recall window has passed",
                        details={"window_seconds": self.limits.recall_window_seconds},
                    )
            # A recalled message keeps its place in the sequence but loses its content.
            msg.recalled_at = utcnow()
            msg.text = None
            msg.data = None
            await search_index.remove(s, msg.id)
            view = message_view(msg)
            await self.events.record(
                s, after, tenant_id=msg.tenant_id, type="message.recalled",
                data={"message": view}, conversation_id=conversation_id, message_id=msg.id,
                actor_id=user,
            )  # fmt: skip
        return view

    async def delete_for_me(
        self, principal: Principal, conversation_id: str, message_id: str
    ) -> None:
        user = principal.require_user()
        async with self.db.write_then() as (s, after):
            await load_for_member(s, principal.tenant_id, conversation_id, user)
            await _load(s, conversation_id, message_id)
            if await s.get(MessageHide, (user, message_id)) is not None:
                return
            s.add(
                MessageHide(
                    user_id=user, message_id=message_id, tenant_id=principal.tenant_id,
                    conversation_id=conversation_id, created_at=utcnow(),
                )
            )  # fmt: skip
            # Tell the user's other devices; no message_id column, or replay would drop it.
            await self.events.record(
                s, after, tenant_id=principal.tenant_id, type="message.hidden",
                data={"conversation_id": conversation_id, "message_id": message_id},
                conversation_id=conversation_id, target_user_id=user, actor_id=user,
            )  # fmt: skip


async def _load(
    s: AsyncSession, conversation_id: str, message_id: str
) -> tuple[Message, StoredFile | None]:
    found = (
        await s.execute(
            select(Message, StoredFile)
            .outerjoin(StoredFile, StoredFile.id == Message.file_id)
            .where(Message.id == message_id, Message.conversation_id == conversation_id)
        )
    ).first()
    if found is None:
        raise NotFound("no such message", details={"message_id": message_id})
    return found[0], found[1]
