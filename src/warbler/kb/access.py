"""Who may read a knowledge base. Retrieval, search and every KB endpoint go through here.

Tenant owners and admins read every KB. Other users read a KB when their role is in its
``read_roles`` or they are a member of one of its ``read_group_ids`` conversations. An API key
reads every KB with the ``kb:read`` (or ``admin``) scope, and none without; an API key acting
as a user (``X-Warbler-User``) reads what that user reads. Bots read as the user who asked.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.errors import NotFound
from warbler.im.principal import Principal
from warbler.store.models import Member
from warbler.store.models_kb import KnowledgeBase


def _may_read(principal: Principal, kb: KnowledgeBase, groups: set[str]) -> bool:
    if principal.user_id is None:
        return principal.api_key_id is not None and principal.has_scope("kb:read")
    if principal.is_tenant_admin:
        return True
    if principal.role in (kb.read_roles or []):
        return True
    return bool(groups.intersection(kb.read_group_ids or []))


async def _groups_of(s: AsyncSession, principal: Principal) -> set[str]:
    if principal.user_id is None:
        return set()
    rows = await s.scalars(
        select(Member.conversation_id).where(
            Member.tenant_id == principal.tenant_id, Member.user_id == principal.user_id
        )
    )
    return set(rows.all())


async def readable_kbs(
    s: AsyncSession, principal: Principal, wanted: Sequence[str] | None = None
) -> list[KnowledgeBase]:
    """The tenant's KBs the principal may read, optionally only among ``wanted`` ids
    (unknown or unreadable ids are silently left out: callers must not learn they exist)."""
    query = select(KnowledgeBase).where(KnowledgeBase.tenant_id == principal.tenant_id)
    if wanted is not None:
        if not wanted:
            return []
        query = query.where(KnowledgeBase.id.in_(list(wanted)))
    kbs = list((await s.scalars(query.order_by(KnowledgeBase.name))).all())
    needs_groups = any(kb.read_group_ids for kb in kbs)
    groups = await _groups_of(s, principal) if needs_groups else set()
    return [kb for kb in kbs if _may_read(principal, kb, groups)]


async def load_readable(s: AsyncSession, principal: Principal, kb_id: str) -> KnowledgeBase:
    """One KB the principal may read, or 404 (an unreadable KB looks like a missing one)."""
    found = await readable_kbs(s, principal, [kb_id])
    if not found:
        raise NotFound("no such knowledge base", details={"kb_id": kb_id})
    return found[0]
