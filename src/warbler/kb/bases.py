"""Knowledge bases: create, list, change and delete a tenant's KBs and who may read them.

Managing (create, change, delete, and everything about documents) takes a tenant owner or
admin, or an API key with ``kb:write``. Reading goes through ``warbler.kb.access``: a KB the
caller may not read looks exactly like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.errors import Conflict, InvalidRequest, NotFound
from warbler.files.store import FileStore
from warbler.ids import new_id
from warbler.im.principal import ROLES, Principal
from warbler.jobs.queue import JobQueue
from warbler.kb.access import load_readable, readable_kbs
from warbler.kb.ingest.blobs import blob_key
from warbler.store.db import Database
from warbler.store.models import Conversation
from warbler.store.models_kb import KbDocument, KnowledgeBase

MANAGE_SCOPE = "kb:write"
# Staff read a new KB unless told otherwise; visitors only when a KB is added for them.
DEFAULT_READ_ROLES = ("agent", "member")
MAX_NAME_CHARS = 100


def kb_view(kb: KnowledgeBase, counts: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    return {
        "id": kb.id,
        "name": kb.name,
        "description": kb.description,
        "read_roles": list(kb.read_roles or []),
        "read_group_ids": list(kb.read_group_ids or []),
        "content_version": kb.content_version,
        "document_count": counts[0],
        "chunk_count": counts[1],
        "created_at": kb.created_at,
        "updated_at": kb.updated_at,
    }


async def load_managed(s: AsyncSession, principal: Principal, kb_id: str) -> KnowledgeBase:
    """A KB of the caller's tenant that the caller may manage (403 first, then 404)."""
    principal.require_admin(MANAGE_SCOPE)
    kb = await s.scalar(
        select(KnowledgeBase).where(
            KnowledgeBase.id == kb_id, KnowledgeBase.tenant_id == principal.tenant_id
        )
    )
    if kb is None:
        raise NotFound("no such knowledge base", details={"kb_id": kb_id})
    return kb


def _name(name: str) -> str:
    name = " ".join(name.split())
    if not 1 <= len(name) <= MAX_NAME_CHARS:
        raise InvalidRequest(
            f"a knowledge base name has 1 to {MAX_NAME_CHARS} characters", details={"field": "name"}
        )
    return name


def _roles(roles: Sequence[str]) -> list[str]:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise InvalidRequest(
            f"unknown roles: {', '.join(unknown)}",
            details={"field": "read_roles", "unknown": unknown, "known": list(ROLES)},
        )
    return sorted(set(roles), key=ROLES.index)


async def _groups(s: AsyncSession, tenant_id: str, group_ids: Sequence[str]) -> list[str]:
    wanted = list(dict.fromkeys(group_ids))
    if not wanted:
        return []
    found = set(
        (
            await s.scalars(
                select(Conversation.id).where(
                    Conversation.tenant_id == tenant_id,
                    Conversation.kind == "group",
                    Conversation.id.in_(wanted),
                )
            )
        ).all()
    )
    unknown = [g for g in wanted if g not in found]
    if unknown:
        raise InvalidRequest(
            "read_group_ids must be group conversations of this tenant",
            details={"field": "read_group_ids", "unknown": unknown},
        )
    return wanted


async def _counts(s: AsyncSession, kb_ids: list[str]) -> dict[str, tuple[int, int]]:
    if not kb_ids:
        return {}
    rows = await s.execute(
        select(KbDocument.kb_id, func.count(KbDocument.id), func.sum(KbDocument.chunk_count))
        .where(KbDocument.kb_id.in_(kb_ids))
        .group_by(KbDocument.kb_id)
    )
    return {kb_id: (int(docs), int(chunks or 0)) for kb_id, docs, chunks in rows.all()}


class KnowledgeBaseService:
    def __init__(self, db: Database, queue: JobQueue, blobs: FileStore) -> None:
        self.db = db
        self.queue = queue
        self.blobs = blobs

    async def create(
        self,
        principal: Principal,
        *,
        name: str,
        description: str = "",
        read_roles: Sequence[str] | None = None,
        read_group_ids: Sequence[str] = (),
    ) -> dict[str, Any]:
        principal.require_admin(MANAGE_SCOPE)
        name = _name(name)
        roles = _roles(DEFAULT_READ_ROLES if read_roles is None else read_roles)
        now = utcnow()
        try:
            async with self.db.write() as s:
                groups = await _groups(s, principal.tenant_id, read_group_ids)
                await self._check_free(s, principal.tenant_id, name)
                kb = KnowledgeBase(
                    id=new_id(), tenant_id=principal.tenant_id, name=name,
                    description=description.strip(), read_roles=roles, read_group_ids=groups,
                    content_version=0, created_at=now, updated_at=now,
                )  # fmt: skip
                s.add(kb)
        except IntegrityError:
            raise self._taken(name) from None
        return kb_view(kb)

    async def list(self, principal: Principal) -> list[dict[str, Any]]:
        """The KBs the caller may read, by name."""
        async with self.db.read() as s:
            kbs = await readable_kbs(s, principal)
            counts = await _counts(s, [kb.id for kb in kbs])
        return [kb_view(kb, counts.get(kb.id, (0, 0))) for kb in kbs]

    async def get(self, principal: Principal, kb_id: str) -> dict[str, Any]:
        async with self.db.read() as s:
            kb = await load_readable(s, principal, kb_id)
            counts = await _counts(s, [kb.id])
        return kb_view(kb, counts.get(kb.id, (0, 0)))

    async def by_name(self, tenant_id: str, name: str) -> KnowledgeBase | None:
        async with self.db.read() as s:
            found: KnowledgeBase | None = await s.scalar(
                select(KnowledgeBase).where(
                    KnowledgeBase.tenant_id == tenant_id, KnowledgeBase.name == _name(name)
                )
            )
        return found

    async def update(
        self, principal: Principal, kb_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Change ``name``, ``description``, ``read_roles`` or ``read_group_ids`` (keys
        absent from ``changes`` stay as they are)."""
        unknown = set(changes) - {"name", "description", "read_roles", "read_group_ids"}
        if unknown:
            raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))}")
        try:
            async with self.db.write() as s:
                kb = await load_managed(s, principal, kb_id)
                if changes.get("name") is not None:
                    name = _name(changes["name"])
                    if name != kb.name:
                        await self._check_free(s, principal.tenant_id, name)
                    kb.name = name
                if changes.get("description") is not None:
                    kb.description = str(changes["description"]).strip()
                if changes.get("read_roles") is not None:
                    kb.read_roles = _roles(changes["read_roles"])
                if changes.get("read_group_ids") is not None:
                    kb.read_group_ids = await _groups(
                        s, principal.tenant_id, changes["read_group_ids"]
                    )
                kb.updated_at = utcnow()
                counts = await _counts(s, [kb.id])
        except IntegrityError:
            raise self._taken(str(changes.get("name"))) from None
        return kb_view(kb, counts.get(kb.id, (0, 0)))

    async def delete(self, principal: Principal, kb_id: str) -> None:
        """Delete the KB with its documents, chunks, curated answers, jobs and stored bytes."""
        async with self.db.write() as s:
            kb = await load_managed(s, principal, kb_id)
            docs = (
                await s.execute(
                    select(KbDocument.id, KbDocument.file_id).where(KbDocument.kb_id == kb.id)
                )
            ).all()
            for doc_id, _ in docs:
                await self.queue.delete_for_ref(s, principal.tenant_id, doc_id)
            await self.queue.delete_for_ref(s, principal.tenant_id, kb.id)
            # The database cascades to documents, chunks and curated answers.
            await s.execute(delete(KnowledgeBase).where(KnowledgeBase.id == kb.id))
        for _, file_id in docs:
            if file_id:
                await self.blobs.delete(blob_key(principal.tenant_id, kb_id, file_id))

    async def _check_free(self, s: AsyncSession, tenant_id: str, name: str) -> None:
        taken = await s.scalar(
            select(KnowledgeBase.id).where(
                KnowledgeBase.tenant_id == tenant_id, KnowledgeBase.name == name
            )
        )
        if taken is not None:
            raise self._taken(name)

    @staticmethod
    def _taken(name: str) -> Conflict:
        return Conflict(
            f"a knowledge base named {name!r} already exists", details={"field": "name"}
        )
