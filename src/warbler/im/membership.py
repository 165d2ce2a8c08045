"""Loading a conversation the way every action must: scoped to the tenant, for a member."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.errors import Forbidden, NotFound
from warbler.store.models import Conversation, Member

GROUP_ADMIN_ROLES = ("owner", "admin")


async def load_for_member(
    session: AsyncSession, tenant_id: str, conversation_id: str, user_id: str
) -> tuple[Conversation, Member]:
    """The conversation and the caller's membership, or 404: non-members learn nothing."""
    found = (
        await session.execute(
            select(Conversation, Member)
            .join(Member, Member.conversation_id == Conversation.id)
            .where(
                Conversation.id == conversation_id,
                Conversation.tenant_id == tenant_id,
                Member.user_id == user_id,
            )
        )
    ).first()
    if found is None:
        raise NotFound("no such conversation", details={"conversation_id": conversation_id})
    return found[0], found[1]


def require_group_admin(conversation: Conversation, member: Member) -> None:
    if conversation.kind != "group":
        raise Forbidden("direct conversations have no admins")
    if member.role not in GROUP_ADMIN_ROLES:
        raise Forbidden("only the group's owner or admins can do this")


async def member_ids(session: AsyncSession, conversation_id: str) -> list[str]:
    return list(
        (
            await session.scalars(
                select(Member.user_id).where(Member.conversation_id == conversation_id)
            )
        ).all()
    )
