"""Conversations: direct (one per pair, found again) and groups (owner, admins, members)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.errors import Forbidden, InvalidRequest, NotFound
from warbler.ids import new_id
from warbler.im.events import EventLog, PostCommit
from warbler.im.membership import load_for_member, member_ids, require_group_admin
from warbler.im.messages import Draft, append
from warbler.im.principal import Principal
from warbler.im.views import conversation_view, member_view, message_view
from warbler.store.db import Database
from warbler.store.models import Conversation, Member, Message, StoredFile, User

MAX_TITLE = 200
MAX_ANNOUNCEMENT = 4000


class ConversationService:
    def __init__(self, db: Database, events: EventLog, max_group_members: int) -> None:
        self.db = db
        self.events = events
        self.max_group_members = max_group_members

    # -- create ------------------------------------------------------------------------

    async def open_direct(self, principal: Principal, other_id: str) -> tuple[dict[str, Any], bool]:
        """The one direct conversation between the caller and ``other_id``; created if new."""
        me = principal.require_user()
        if other_id == me:
            raise InvalidRequest("a direct conversation needs another user")
        key = ":".join(sorted((me, other_id)))
        existing = await self._direct_by_key(principal, key, me)
        if existing is not None:
            return existing, False
        try:
            async with self.db.write_then() as (s, after):
                await self._require_users(s, principal.tenant_id, [other_id])
                now = utcnow()
                conv = Conversation(
                    id=new_id(), tenant_id=principal.tenant_id, kind="direct", direct_key=key,
                    created_by=me, last_seq=0, created_at=now, updated_at=now,
                )  # fmt: skip
                s.add(conv)
                members = [self._member(conv, uid, "member") for uid in (me, other_id)]
                s.add_all(members)
                await s.flush()
                await self._announce_joined(s, after, conv, members, actor=me)
                mine = members[0]
        except IntegrityError:
            existing = await self._direct_by_key(principal, key, me)
            if existing is None:
                raise
            return existing, False
        return conversation_view(conv, mine), True

    async def create_group(
        self, principal: Principal, *, title: str, member_ids_: list[str]
    ) -> dict[str, Any]:
        me = principal.require_user()
        title = _clean_title(title)
        others = [u for u in dict.fromkeys(member_ids_) if u != me]
        if len(others) + 1 > self.max_group_members:
            raise InvalidRequest(f"a group holds at most {self.max_group_members} members")
        async with self.db.write_then() as (s, after):
            await self._require_users(s, principal.tenant_id, others)
            now = utcnow()
            conv = Conversation(
                id=new_id(), tenant_id=principal.tenant_id, kind="group", title=title,
                created_by=me, last_seq=0, created_at=now, updated_at=now,
            )  # fmt: skip
            s.add(conv)
            members = [self._member(conv, me, "owner")]
            members += [self._member(conv, uid, "member") for uid in others]
            s.add_all(members)
            await s.flush()
            await self._announce_joined(s, after, conv, members, actor=me)
        return conversation_view(conv, members[0])

    # -- read --------------------------------------------------------------------------

    async def list_mine(
        self, principal: Principal, *, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """The caller's conversations, most recently active first, with unread counts and
        the last message."""
        me = principal.require_user()
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(Conversation, Member, Message, StoredFile)
                    .join(Member, Member.conversation_id == Conversation.id)
                    .outerjoin(
                        Message,
                        and_(
                            Message.conversation_id == Conversation.id,
                            Message.seq == Conversation.last_seq,
                        ),
                    )
                    .outerjoin(StoredFile, StoredFile.id == Message.file_id)
                    .where(Member.user_id == me, Conversation.tenant_id == principal.tenant_id)
                    .order_by(
                        func.coalesce(Conversation.last_message_at, Conversation.created_at).desc()
                    )
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
        out = []
        for conv, member, last, file in rows:
            view = conversation_view(conv, member)
            view["last_message"] = message_view(last, file) if last is not None else None
            out.append(view)
        return out

    async def get(self, principal: Principal, conversation_id: str) -> dict[str, Any]:
        me = principal.require_user()
        async with self.db.read() as s:
            conv, member = await load_for_member(s, principal.tenant_id, conversation_id, me)
            count = await s.scalar(
                select(func.count()).select_from(Member).where(Member.conversation_id == conv.id)
            )
        view = conversation_view(conv, member)
        view["member_count"] = count
        return view

    async def members(self, principal: Principal, conversation_id: str) -> list[dict[str, Any]]:
        me = principal.require_user()
        async with self.db.read() as s:
            await load_for_member(s, principal.tenant_id, conversation_id, me)
            rows = (
                await s.scalars(
                    select(Member)
                    .where(Member.conversation_id == conversation_id)
                    .order_by(Member.joined_at, Member.user_id)
                )
            ).all()
        return [member_view(m) for m in rows]

    # -- change ------------------------------------------------------------------------

    async def update(
        self, principal: Principal, conversation_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        me = principal.require_user()
        async with self.db.write_then() as (s, after):
            conv, member = await load_for_member(s, principal.tenant_id, conversation_id, me)
            require_group_admin(conv, member)
            if "title" in changes:
                conv.title = _clean_title(changes["title"])
            if "announcement" in changes:
                text = changes["announcement"]
                if text is not None and len(text) > MAX_ANNOUNCEMENT:
                    raise InvalidRequest(
                        f"an announcement is at most {MAX_ANNOUNCEMENT} characters"
                    )
                conv.announcement = text or None
            conv.updated_at = utcnow()
            await s.flush()
            view = conversation_view(conv)
            await self.events.record(
                s, after, tenant_id=conv.tenant_id, type="conversation.updated",
                data={"conversation": view, "changed": sorted(changes)},
                conversation_id=conv.id, actor_id=me,
            )  # fmt: skip
            await self._system(s, after, conv, me, "conversation.updated", changed=sorted(changes))
        return conversation_view(conv, member)

    async def add_members(
        self, principal: Principal, conversation_id: str, user_ids: list[str]
    ) -> list[dict[str, Any]]:
        me = principal.require_user()
        async with self.db.write_then() as (s, after):
            conv, member = await load_for_member(s, principal.tenant_id, conversation_id, me)
            require_group_admin(conv, member)
            current = set(await member_ids(s, conv.id))
            new = [u for u in dict.fromkeys(user_ids) if u not in current]
            if len(current) + len(new) > self.max_group_members:
                raise InvalidRequest(f"a group holds at most {self.max_group_members} members")
            await self._require_users(s, principal.tenant_id, new)
            members = [self._member(conv, uid, "member") for uid in new]
            s.add_all(members)
            await s.flush()
            if members:
                await self._announce_joined(s, after, conv, members, actor=me)
        return [member_view(m) for m in members]

    async def remove_member(self, principal: Principal, conversation_id: str, user_id: str) -> None:
        """Leave (yourself) or remove someone (group owner/admin; admins cannot remove the
        owner or other admins). An owner who leaves hands the group to the longest member."""
        me = principal.require_user()
        async with self.db.write_then() as (s, after):
            conv, member = await load_for_member(s, principal.tenant_id, conversation_id, me)
            if conv.kind != "group":
                raise Forbidden("members of a direct conversation cannot change")
            if user_id == me:
                target = member
            else:
                require_group_admin(conv, member)
                found = await s.get(Member, (conv.id, user_id))
                if found is None:
                    raise NotFound("not a member", details={"user_id": user_id})
                target = found
                if target.role != "member" and member.role != "owner":
                    raise Forbidden("only the owner can remove an admin or the owner")
            await s.delete(target)
            await s.flush()
            if target.role == "owner":
                await self._hand_over(s, after, conv)
            await self.events.record(
                s, after, tenant_id=conv.tenant_id, type="member.removed",
                data={"conversation_id": conv.id, "user_id": user_id, "by": me},
                conversation_id=conv.id, actor_id=me,
            )  # fmt: skip
            await self._system(s, after, conv, me, "member.removed", user_ids=[user_id])

    async def set_role(
        self, principal: Principal, conversation_id: str, user_id: str, role: str
    ) -> dict[str, Any]:
        """The owner makes members admins (or back), or hands ownership over."""
        me = principal.require_user()
        if role not in ("owner", "admin", "member"):
            raise InvalidRequest("role must be owner, admin or member", details={"field": "role"})
        async with self.db.write_then() as (s, after):
            conv, member = await load_for_member(s, principal.tenant_id, conversation_id, me)
            require_group_admin(conv, member)
            if member.role != "owner":
                raise Forbidden("only the group's owner can change roles")
            target = await s.get(Member, (conv.id, user_id))
            if target is None:
                raise NotFound("not a member", details={"user_id": user_id})
            if target.user_id == me:
                raise InvalidRequest("hand ownership to someone else instead")
            target.role = role
            if role == "owner":
                member.role = "admin"
            await s.flush()
            await self.events.record(
                s, after, tenant_id=conv.tenant_id, type="member.updated",
                data={"conversation_id": conv.id, "user_id": user_id, "role": role},
                conversation_id=conv.id, actor_id=me,
            )  # fmt: skip
        return member_view(target)

    async def set_muted(
        self, principal: Principal, conversation_id: str, muted: bool
    ) -> dict[str, Any]:
        me = principal.require_user()
        async with self.db.write_then() as (s, after):
            conv, member = await load_for_member(s, principal.tenant_id, conversation_id, me)
            member.muted = muted
            await s.flush()
            await self.events.record(
                s, after, tenant_id=conv.tenant_id, type="member.settings",
                data={"conversation_id": conv.id, "muted": muted},
                conversation_id=conv.id, target_user_id=me, actor_id=me,
            )  # fmt: skip
        return conversation_view(conv, member)

    # -- helpers -----------------------------------------------------------------------

    async def _direct_by_key(
        self, principal: Principal, key: str, me: str
    ) -> dict[str, Any] | None:
        async with self.db.read() as s:
            found = (
                await s.execute(
                    select(Conversation, Member)
                    .join(Member, Member.conversation_id == Conversation.id)
                    .where(
                        Conversation.tenant_id == principal.tenant_id,
                        Conversation.direct_key == key,
                        Member.user_id == me,
                    )
                )
            ).first()
        return conversation_view(found[0], found[1]) if found else None

    @staticmethod
    async def _require_users(s: AsyncSession, tenant_id: str, user_ids: list[str]) -> None:
        if not user_ids:
            return
        found = set(
            (
                await s.scalars(
                    select(User.id).where(
                        User.tenant_id == tenant_id, User.id.in_(user_ids), User.disabled.is_(False)
                    )
                )
            ).all()
        )
        missing = [u for u in user_ids if u not in found]
        if missing:
            raise NotFound("no such users", details={"user_ids": missing})

    @staticmethod
    def _member(conv: Conversation, user_id: str, role: str) -> Member:
        return Member(
            conversation_id=conv.id, user_id=user_id, tenant_id=conv.tenant_id, role=role,
            muted=False, last_read_seq=conv.last_seq, joined_at=utcnow(),
        )  # fmt: skip

    async def _announce_joined(
        self,
        s: AsyncSession,
        after: PostCommit,
        conv: Conversation,
        members: list[Member],
        actor: str,
    ) -> None:
        ids = tuple(m.user_id for m in members)
        await self.events.record(
            s, after, tenant_id=conv.tenant_id, type="member.added",
            data={"conversation": conversation_view(conv), "user_ids": list(ids), "by": actor},
            conversation_id=conv.id, actor_id=actor,
        )  # fmt: skip
        if conv.kind == "group":
            await self._system(s, after, conv, actor, "member.added", user_ids=list(ids))

    async def _hand_over(self, s: AsyncSession, after: PostCommit, conv: Conversation) -> None:
        heir = await s.scalar(
            select(Member)
            .where(Member.conversation_id == conv.id)
            .order_by((Member.role == "admin").desc(), Member.joined_at, Member.user_id)
            .limit(1)
        )
        if heir is None:
            return
        heir.role = "owner"
        await s.flush()
        await self.events.record(
            s, after, tenant_id=conv.tenant_id, type="member.updated",
            data={"conversation_id": conv.id, "user_id": heir.user_id, "role": "owner"},
            conversation_id=conv.id,
        )  # fmt: skip

    async def _system(
        self,
        s: AsyncSession,
        after: PostCommit,
        conv: Conversation,
        actor: str,
        what: str,
        **extra: Any,
    ) -> None:
        """A system message in the history, so it explains itself ("Ann added Bo")."""
        msg = await append(
            s, after, self.events, conv, sender_id=None,
            draft=Draft(kind="system", data={"event": what, "actor_id": actor, **extra}),
        )  # fmt: skip
        # Like sending, acting means having seen it: no unread badge for one's own action.
        mine = await s.get(Member, (conv.id, actor))
        if mine is not None and mine.last_read_seq < msg["seq"]:
            mine.last_read_seq = msg["seq"]


def _clean_title(title: str | None) -> str:
    title = (title or "").strip()
    if not title or len(title) > MAX_TITLE:
        raise InvalidRequest(
            f"a group title is 1 to {MAX_TITLE} characters", details={"field": "title"}
        )
    return title
