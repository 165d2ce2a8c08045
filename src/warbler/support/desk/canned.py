"""Canned replies: texts agents insert by shortcut ("/refund"), shared by a tenant or a team.

Every agent reads them; an agent changes and deletes the ones they wrote, admins any.
A tenant holds at most ``MAX_PER_TENANT``, so listing filters them in memory (case-folded,
Chinese and English alike) instead of needing a search index.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.errors import Conflict, Forbidden, InvalidRequest, NotFound
from warbler.ids import new_id
from warbler.im.principal import Principal
from warbler.store.db import Database
from warbler.store.models_support import CannedReply
from warbler.support.desk.access import is_support_admin, load_team, require_agent

SHORTCUT = re.compile(r"^[a-z0-9_-]{1,40}$")
MAX_TITLE_CHARS = 200
MAX_TEXT_CHARS = 5_000
MAX_PER_TENANT = 1_000
MAX_QUERY_CHARS = 100


class ShortcutTaken(Conflict):
    code = "shortcut_taken"


def canned_view(row: CannedReply) -> dict[str, Any]:
    return {
        "id": row.id,
        "shortcut": row.shortcut,
        "title": row.title,
        "text": row.text,
        "team_id": row.team_id,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def clean_shortcut(shortcut: str) -> str:
    value = shortcut.strip().removeprefix("/").lower()
    if not SHORTCUT.match(value):
        raise InvalidRequest(
            "a shortcut is 1 to 40 characters: a-z, 0-9, '_' and '-'",
            details={"field": "shortcut", "pattern": SHORTCUT.pattern},
        )
    return value


def _clean_text(value: str, field: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise InvalidRequest(f"{field} is empty", details={"field": field})
    if len(value) > limit:
        raise InvalidRequest(
            f"{field} is longer than {limit} characters", details={"field": field, "limit": limit}
        )
    return value


def matches(row: CannedReply, query: str) -> bool:
    """``query`` is a prefix of the shortcut, of the title, or of a word of the title.
    Case-folded; a Chinese title matches on its leading characters ("退款" finds
    "退款说明") and, having no spaces between words, on any part of it."""
    q = query.casefold()
    title = row.title.casefold()
    if row.shortcut.startswith(q) or title.startswith(q):
        return True
    if any(word.startswith(q) for word in re.split(r"[\s\-_/·,，。:：]+", title) if word):
        return True
    return not q.isascii() and q in title


class CannedReplies:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(
        self, principal: Principal, *, team_id: str | None = None, q: str | None = None
    ) -> list[dict[str, Any]]:
        """By shortcut. ``team_id``: that team's and every team's (no team) replies."""
        require_agent(principal, write=False)
        query = select(CannedReply).where(CannedReply.tenant_id == principal.tenant_id)
        async with self.db.read() as s:
            if team_id:
                await load_team(s, principal.tenant_id, team_id)
                query = query.where(
                    (CannedReply.team_id == team_id) | CannedReply.team_id.is_(None)
                )
            rows = (await s.scalars(query.order_by(CannedReply.shortcut))).all()
        needle = (q or "").strip().removeprefix("/")[:MAX_QUERY_CHARS]
        return [canned_view(r) for r in rows if not needle or matches(r, needle)]

    async def get(self, principal: Principal, canned_id: str) -> dict[str, Any]:
        require_agent(principal, write=False)
        async with self.db.read() as s:
            return canned_view(await self._load(s, principal.tenant_id, canned_id))

    async def create(
        self,
        principal: Principal,
        *,
        shortcut: str,
        title: str,
        text: str,
        team_id: str | None = None,
    ) -> dict[str, Any]:
        require_agent(principal, write=True)
        now = utcnow()
        row = CannedReply(
            id=new_id(),
            tenant_id=principal.tenant_id,
            team_id=team_id or None,
            shortcut=clean_shortcut(shortcut),
            title=_clean_text(title, "title", MAX_TITLE_CHARS),
            text=_clean_text(text, "text", MAX_TEXT_CHARS),
            created_by=principal.user_id,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self.db.write() as s:
                if row.team_id:
                    await load_team(s, principal.tenant_id, row.team_id)
                count = await s.scalar(
                    select(func.count()).where(CannedReply.tenant_id == principal.tenant_id)
                )
                if (count or 0) >= MAX_PER_TENANT:
                    raise InvalidRequest(
                        f"a tenant has at most {MAX_PER_TENANT} canned replies",
                        details={"limit": MAX_PER_TENANT},
                    )
                await self._check_free(s, principal.tenant_id, row.shortcut)
                s.add(row)
        except IntegrityError:  # two creates raced for the same shortcut
            raise self._taken(row.shortcut) from None
        return canned_view(row)

    async def update(
        self,
        principal: Principal,
        canned_id: str,
        *,
        shortcut: str | None = None,
        title: str | None = None,
        text: str | None = None,
        team_id: str | None = None,
        clear_team: bool = False,
    ) -> dict[str, Any]:
        require_agent(principal, write=True)
        try:
            async with self.db.write() as s:
                row = await self._load(s, principal.tenant_id, canned_id)
                self._require_owner(principal, row)
                if shortcut is not None:
                    value = clean_shortcut(shortcut)
                    if value != row.shortcut:
                        await self._check_free(s, principal.tenant_id, value)
                        row.shortcut = value
                if title is not None:
                    row.title = _clean_text(title, "title", MAX_TITLE_CHARS)
                if text is not None:
                    row.text = _clean_text(text, "text", MAX_TEXT_CHARS)
                if team_id:
                    await load_team(s, principal.tenant_id, team_id)
                    row.team_id = team_id
                elif clear_team:
                    row.team_id = None
                row.updated_at = utcnow()
                view = canned_view(row)
        except IntegrityError:
            raise self._taken(str(shortcut)) from None
        return view

    async def delete(self, principal: Principal, canned_id: str) -> None:
        require_agent(principal, write=True)
        async with self.db.write() as s:
            row = await self._load(s, principal.tenant_id, canned_id)
            self._require_owner(principal, row)
            await s.delete(row)

    # -- helpers ------------------------------------------------------------------------

    @staticmethod
    async def _load(s: AsyncSession, tenant_id: str, canned_id: str) -> CannedReply:
        row = await s.scalar(
            select(CannedReply).where(
                CannedReply.tenant_id == tenant_id, CannedReply.id == canned_id
            )
        )
        if row is None:
            raise NotFound("no such canned reply", details={"canned_id": canned_id})
        return row

    async def _check_free(self, s: AsyncSession, tenant_id: str, shortcut: str) -> None:
        taken = await s.scalar(
            select(CannedReply.id).where(
                CannedReply.tenant_id == tenant_id, CannedReply.shortcut == shortcut
            )
        )
        if taken is not None:
            raise self._taken(shortcut)

    @staticmethod
    def _taken(shortcut: str) -> ShortcutTaken:
        return ShortcutTaken(
            f"the shortcut /{shortcut} is already used", details={"shortcut": shortcut}
        )

    @staticmethod
    def _require_owner(principal: Principal, row: CannedReply) -> None:
        """Agents change their own replies; admins (and support keys) any."""
        if principal.user_id is None or is_support_admin(principal):
            return
        if row.created_by != principal.user_id:
            raise Forbidden(
                "only the agent who wrote a canned reply, or an admin, can change it",
                details={"canned_id": row.id},
            )
