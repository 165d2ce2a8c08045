"""Tenants and users: creation, the directory, roles, passwords, disabling."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.errors import Conflict, Forbidden, InvalidRequest, NotFound
from warbler.ids import new_id
from warbler.im.auth import AuthService
from warbler.im.principal import HUMAN_ROLES, KIND_ROLE, KINDS, Principal
from warbler.im.views import user_view
from warbler.security.passwords import check_policy, hash_password, verify_password
from warbler.store.db import Database
from warbler.store.models import Tenant, User

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
USERNAME = re.compile(r"^[\w.\-@]{1,64}$")


# Called in the transaction that creates a tenant, after its row is flushed, with
# (session, tenant id): what every tenant must have from the start (its data keys).
TenantHook = Callable[[AsyncSession, str], None]


class UserService:
    def __init__(self, db: Database, auth: AuthService) -> None:
        self.db = db
        self.auth = auth
        self.tenant_hooks: list[TenantHook] = []

    async def create_tenant(self, *, slug: str, name: str) -> dict[str, Any]:
        if not SLUG.match(slug):
            raise InvalidRequest("tenant slug must be 2-63 of a-z, 0-9 and '-'")
        row = Tenant(id=new_id(), slug=slug, name=name, created_at=utcnow())
        try:
            async with self.db.write() as s:
                s.add(row)
                await s.flush()
                for hook in self.tenant_hooks:
                    hook(s, row.id)
        except IntegrityError as exc:
            raise Conflict("a tenant with this slug exists", details={"slug": slug}) from exc
        return {"id": row.id, "slug": row.slug, "name": row.name, "created_at": row.created_at}

    async def tenant_by_slug(self, slug: str) -> Tenant | None:
        async with self.db.read() as s:
            return await s.scalar(select(Tenant).where(Tenant.slug == slug))

    async def create_user(
        self,
        tenant_id: str,
        *,
        username: str,
        display_name: str | None = None,
        kind: str = "human",
        role: str | None = None,
        password: str | None = None,
        avatar_url: str | None = None,
        actor: Principal | None = None,
    ) -> dict[str, Any]:
        if not USERNAME.match(username):
            raise InvalidRequest(
                "username must be 1-64 letters, digits or . _ - @", details={"field": "username"}
            )
        role = _check_kind_role(kind, role)
        if actor is not None and role == "owner" and actor.role != "owner" and not actor.api_key_id:
            raise Forbidden("only an owner can create another owner")
        now = utcnow()
        row = User(
            id=new_id(),
            tenant_id=tenant_id,
            username=username,
            display_name=display_name or username,
            kind=kind,
            role=role,
            password_hash=hash_password(password, username=username) if password else None,
            avatar_url=avatar_url,
            disabled=False,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self.db.write() as s:
                s.add(row)
        except IntegrityError as exc:
            raise Conflict("username taken", details={"username": username}) from exc
        return user_view(row)

    async def get(self, tenant_id: str, user_id: str) -> dict[str, Any]:
        async with self.db.read() as s:
            user = await s.scalar(
                select(User).where(User.tenant_id == tenant_id, User.id == user_id)
            )
        if user is None:
            raise NotFound("no such user", details={"user_id": user_id})
        return user_view(user)

    async def existing_ids(self, tenant_id: str, user_ids: list[str]) -> list[str]:
        """The subset of ``user_ids`` that are users of this tenant, in the order given."""
        async with self.db.read() as s:
            found = set(
                (
                    await s.scalars(
                        select(User.id).where(User.tenant_id == tenant_id, User.id.in_(user_ids))
                    )
                ).all()
            )
        return [u for u in dict.fromkeys(user_ids) if u in found]

    async def directory(
        self, tenant_id: str, *, query: str | None, kind: str | None, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        stmt = select(User).where(User.tenant_id == tenant_id)
        if query:
            like = f"%{_escape_like(query)}%"
            stmt = stmt.where(
                or_(
                    User.username.ilike(like, escape="\\"),
                    User.display_name.ilike(like, escape="\\"),
                )
            )
        if kind:
            stmt = stmt.where(User.kind == kind)
        stmt = stmt.order_by(User.username).limit(limit).offset(offset)
        async with self.db.read() as s:
            return [user_view(u) for u in (await s.scalars(stmt)).all()]

    async def update(
        self, actor: Principal, user_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Admins change role/disabled/names; a user changes their own names and avatar."""
        is_self = actor.user_id == user_id
        admin_fields = {"role", "disabled"}
        if not is_self or admin_fields & changes.keys():
            actor.require_admin("users:write")
        revoke = False
        async with self.db.write() as s:
            user = await s.scalar(
                select(User).where(User.tenant_id == actor.tenant_id, User.id == user_id)
            )
            if user is None:
                raise NotFound("no such user", details={"user_id": user_id})
            if "role" in changes:
                new_role = _check_kind_role(user.kind, changes["role"])
                if (
                    "owner" in (new_role, user.role)
                    and actor.role != "owner"
                    and not actor.api_key_id
                ):
                    raise Forbidden("only an owner can grant or take away the owner role")
                user.role = new_role
            if "disabled" in changes:
                if is_self and changes["disabled"]:
                    raise InvalidRequest("you cannot disable yourself")
                user.disabled = bool(changes["disabled"])
                revoke = user.disabled
            for name in ("display_name", "avatar_url"):
                if name in changes:
                    setattr(user, name, changes[name])
            user.updated_at = utcnow()
        if revoke:
            await self.auth.revoke_all_tokens(actor.tenant_id, user_id)
        return user_view(user)

    async def change_password(
        self, actor: Principal, *, current: str | None, new: str, user_id: str | None = None
    ) -> None:
        """Own password (needs the current one) or, for admins, anyone's. Revokes all tokens."""
        target = user_id or actor.require_user()
        if target != actor.user_id:
            actor.require_admin("users:write")
        async with self.db.write() as s:
            user = await s.scalar(
                select(User).where(User.tenant_id == actor.tenant_id, User.id == target)
            )
            if user is None:
                raise NotFound("no such user", details={"user_id": target})
            if (
                target != actor.user_id
                and user.role == "owner"
                and actor.role != "owner"
                and not actor.api_key_id
            ):
                raise Forbidden("only an owner can reset an owner's password")
            check_policy(new, username=user.username, field="new_password")
            if target == actor.user_id and not verify_password(user.password_hash, current or ""):
                raise Forbidden("the current password is wrong")
            user.password_hash = hash_password(new)
            user.updated_at = utcnow()
        await self.auth.revoke_all_tokens(actor.tenant_id, target)


def _check_kind_role(kind: str, role: str | None) -> str:
    if kind not in KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(KINDS)}", details={"field": "kind"})
    if kind in KIND_ROLE:
        if role not in (None, KIND_ROLE[kind]):
            raise InvalidRequest(f"a {kind} user has the role '{KIND_ROLE[kind]}'")
        return KIND_ROLE[kind]
    role = role or "member"
    if role not in HUMAN_ROLES:
        raise InvalidRequest(
            f"a human user's role is one of {', '.join(HUMAN_ROLES)}", details={"field": "role"}
        )
    return role


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
