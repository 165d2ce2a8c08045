"""Authentication: password login, access tokens, API keys, and resolving a bearer secret."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.errors import Forbidden, InvalidRequest, NotFound, Unauthenticated
from warbler.ids import new_id
from warbler.im.principal import SCOPES, Principal
from warbler.im.principal_cache import TOUCH, PrincipalCache
from warbler.security.audit import AuditLog, request_context
from warbler.security.passwords import verify_password
from warbler.security.secrets import API_KEY_PREFIX, TOKEN_PREFIX, digest, new_secret
from warbler.security.throttle import LoginThrottle, locked_error
from warbler.store.db import Database
from warbler.store.models import AccessToken, ApiKey, Tenant, User

# last_used_at is a write; refreshing it at most this often keeps reads cheap.
_TOUCH_EVERY = timedelta(minutes=1)


class AuthService:
    def __init__(
        self,
        db: Database,
        token_ttl_seconds: int,
        *,
        throttle: LoginThrottle | None = None,
        cache_seconds: float = 1.0,
    ) -> None:
        self.db = db
        self.cache = PrincipalCache(cache_seconds)
        self.token_ttl = timedelta(seconds=token_ttl_seconds)
        self.throttle = throttle or LoginThrottle(db)
        self.audit = AuditLog(db)

    async def login(
        self, *, tenant_slug: str, username: str, password: str, device: str | None
    ) -> dict[str, Any]:
        """A token for the right password; throttled per account and client IP
        (``security/throttle.py``). Every failure answers alike, whatever was wrong."""
        ip = request_context.get().ip
        await self.throttle.check(tenant_slug, username, ip)
        async with self.db.read() as s:
            user = await s.scalar(
                select(User)
                .join(Tenant, Tenant.id == User.tenant_id)
                .where(Tenant.slug == tenant_slug, User.username == username)
            )
        ok = verify_password(user.password_hash if user else None, password)
        if not ok or user is None or user.disabled:
            await self._login_failed(tenant_slug, username, ip, user)
            raise Unauthenticated("wrong tenant, username or password")
        return await self.issue_token(
            user.tenant_id, user.id, device=device, actor=user.id, action="auth.login",
            on_success=lambda s: self.throttle.succeeded(s, tenant_slug, username),
        )  # fmt: skip

    async def _login_failed(
        self, tenant_slug: str, username: str, ip: str | None, user: User | None
    ) -> None:
        """Count the failure, and audit it in the tenant when there is one. An unknown
        username is not recorded (people type passwords into the username field)."""
        async with self.db.write() as s:
            locked = await self.throttle.failed(s, tenant_slug, username, ip)
            tenant_id = (
                user.tenant_id
                if user is not None
                else await s.scalar(select(Tenant.id).where(Tenant.slug == tenant_slug))
            )
            if tenant_id is not None:
                # Nobody is authenticated yet: the actor is anonymous, not the system.
                anonymous = Principal(tenant_id=tenant_id)
                target = {"target_type": "user", "target_id": user.id} if user else {}
                reason = "unknown_user" if user is None else "disabled" if user.disabled else (
                    "wrong_password"
                )  # fmt: skip
                await self.audit.record_in(
                    s, tenant_id=tenant_id, actor=anonymous, action="auth.login_failed",
                    data={"reason": reason}, **target,
                )  # fmt: skip
                for scope, until in locked:
                    await self.audit.record_in(
                        s, tenant_id=tenant_id, actor=anonymous, action="auth.lockout",
                        data={"scope": scope, "until": until.isoformat()}, **target,
                    )  # fmt: skip
        if locked:
            raise locked_error(max(until for _, until in locked), utcnow())

    async def issue_token(
        self,
        tenant_id: str,
        user_id: str,
        *,
        device: str | None = None,
        actor: Principal | str | None = None,
        action: str = "auth.token_issued",
        on_success: Callable[[AsyncSession], Awaitable[None]] | None = None,
    ) -> dict[str, Any]:
        """A new access token. With an ``actor`` (a login, an admin or service issuing one),
        the issue is audited as ``action`` in the same transaction."""
        secret = new_secret(TOKEN_PREFIX)
        now = utcnow()
        row = AccessToken(
            id=new_id(),
            tenant_id=tenant_id,
            user_id=user_id,
            token_hash=digest(secret),
            device=device,
            created_at=now,
            expires_at=now + self.token_ttl,
        )
        async with self.db.write() as s:
            user = await s.scalar(
                select(User).where(User.id == user_id, User.tenant_id == tenant_id)
            )
            if user is None:
                raise NotFound("no such user", details={"user_id": user_id})
            if user.disabled:
                raise Forbidden("the user is disabled")
            s.add(row)
            if on_success is not None:
                await on_success(s)
            if actor is not None:
                await self.audit.record_in(
                    s, tenant_id=tenant_id, actor=actor, action=action, target_type="user",
                    target_id=user_id, data={"token_id": row.id},
                )  # fmt: skip
        return {
            "access_token": secret,
            "token_type": "bearer",
            "token_id": row.id,
            "expires_at": row.expires_at,
            "user_id": user_id,
            "tenant_id": tenant_id,
        }

    async def authenticate(self, secret: str, act_as: str | None = None) -> Principal:
        """Resolve an access token or API key (optionally impersonating a user) to a Principal."""
        if secret.startswith(API_KEY_PREFIX):
            return await self._authenticate_api_key(secret, act_as)
        if act_as is not None:
            raise InvalidRequest("X-Warbler-User is only accepted with an API key")
        now = utcnow()
        token_hash = digest(secret)
        cached = self.cache.get(token_hash, now)
        if cached is not None:
            return cached
        generation = self.cache.generation
        async with self.db.read() as s:
            found = (
                await s.execute(
                    select(AccessToken, User)
                    .join(User, User.id == AccessToken.user_id)
                    .where(AccessToken.token_hash == token_hash)
                )
            ).first()
        if found is None:
            raise Unauthenticated("invalid access token")
        token, user = found
        if token.revoked_at is not None or token.expires_at <= now or user.disabled:
            raise Unauthenticated("the access token is expired or revoked")
        if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
            async with self.db.write() as s:
                await s.execute(
                    update(AccessToken)
                    .where(AccessToken.id == token.id)
                    .values(last_used_at=now)
                    .execution_options(**{TOUCH: True})
                )
        principal = Principal(
            tenant_id=user.tenant_id,
            user_id=user.id,
            role=user.role,
            kind=user.kind,
            token_id=token.id,
        )
        self.cache.put(token_hash, principal, token.expires_at, generation)
        return principal

    async def _authenticate_api_key(self, secret: str, act_as: str | None) -> Principal:
        now = utcnow()
        async with self.db.read() as s:
            key = await s.scalar(select(ApiKey).where(ApiKey.key_hash == digest(secret)))
        if key is None or key.revoked_at is not None:
            raise Unauthenticated("invalid or revoked API key")
        if key.last_used_at is None or now - key.last_used_at > _TOUCH_EVERY:
            async with self.db.write() as s:
                await s.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        scopes = frozenset(key.scopes)
        if act_as is None:
            return Principal(
                tenant_id=key.tenant_id, role="service", kind="service",
                api_key_id=key.id, scopes=scopes,
            )  # fmt: skip
        if not ("admin" in scopes or "impersonate" in scopes):
            raise Forbidden("acting as a user needs an API key with the 'impersonate' scope")
        async with self.db.read() as s:
            user = await s.scalar(
                select(User).where(User.tenant_id == key.tenant_id, User.id == act_as)
            )
        if user is None or user.disabled:
            raise NotFound("no such user to act as", details={"user_id": act_as})
        return Principal(
            tenant_id=key.tenant_id, user_id=user.id, role=user.role, kind=user.kind,
            api_key_id=key.id, scopes=scopes,
        )  # fmt: skip

    # -- sessions (my tokens) ----------------------------------------------------------

    async def list_tokens(self, principal: Principal) -> list[dict[str, Any]]:
        user_id = principal.require_user()
        async with self.db.read() as s:
            rows = (
                await s.scalars(
                    select(AccessToken)
                    .where(
                        AccessToken.tenant_id == principal.tenant_id,
                        AccessToken.user_id == user_id,
                        AccessToken.revoked_at.is_(None),
                        AccessToken.expires_at > utcnow(),
                    )
                    .order_by(AccessToken.created_at)
                )
            ).all()
        return [
            {
                "id": t.id,
                "device": t.device,
                "created_at": t.created_at,
                "expires_at": t.expires_at,
                "last_used_at": t.last_used_at,
                "current": t.id == principal.token_id,
            }
            for t in rows
        ]

    async def revoke_token(
        self, principal: Principal, token_id: str, *, action: str = "auth.token_revoked"
    ) -> None:
        """Revoke one of my tokens (``auth.logout`` when it is the one in use)."""
        user_id = principal.require_user()
        async with self.db.write() as s:
            result = await s.execute(
                update(AccessToken)
                .where(
                    AccessToken.id == token_id,
                    AccessToken.tenant_id == principal.tenant_id,
                    AccessToken.user_id == user_id,
                    AccessToken.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            )
            if result.rowcount:  # type: ignore[attr-defined]
                await self.audit.record_in(
                    s, tenant_id=principal.tenant_id, actor=principal, action=action,
                    target_type="access_token", target_id=token_id,
                )  # fmt: skip
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound("no such active token", details={"token_id": token_id})

    async def revoke_all_tokens(self, tenant_id: str, user_id: str) -> None:
        async with self.db.write() as s:
            await s.execute(
                update(AccessToken)
                .where(
                    AccessToken.tenant_id == tenant_id,
                    AccessToken.user_id == user_id,
                    AccessToken.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            )

    # -- API keys ------------------------------------------------------------------------

    async def create_api_key(
        self,
        tenant_id: str,
        *,
        name: str,
        scopes: list[str],
        created_by: str | None,
        actor: Principal | None = None,
    ) -> dict[str, Any]:
        """A new key (audited as ``api_key.created``; ``actor`` None: the CLI, "system")."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise InvalidRequest(
                "unknown or missing scopes", details={"unknown": unknown, "allowed": list(SCOPES)}
            )
        secret = new_secret(API_KEY_PREFIX)
        row = ApiKey(
            id=new_id(),
            tenant_id=tenant_id,
            name=name,
            key_hash=digest(secret),
            prefix=secret[:12],
            scopes=sorted(set(scopes)),
            created_by=created_by,
            created_at=utcnow(),
        )
        async with self.db.write() as s:
            s.add(row)
            await self.audit.record_in(
                s, tenant_id=tenant_id, actor=actor, action="api_key.created",
                target_type="api_key", target_id=row.id,
                data={"name": name, "scopes": row.scopes},
            )  # fmt: skip
        return {**api_key_view(row), "key": secret}

    async def list_api_keys(self, tenant_id: str) -> list[dict[str, Any]]:
        async with self.db.read() as s:
            rows = (
                await s.scalars(
                    select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at)
                )
            ).all()
        return [api_key_view(k) for k in rows]

    async def revoke_api_key(
        self, tenant_id: str, key_id: str, *, actor: Principal | None = None
    ) -> None:
        async with self.db.write() as s:
            result = await s.execute(
                update(ApiKey)
                .where(
                    ApiKey.id == key_id, ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None)
                )
                .values(revoked_at=utcnow())
            )
            if result.rowcount:  # type: ignore[attr-defined]
                await self.audit.record_in(
                    s, tenant_id=tenant_id, actor=actor, action="api_key.revoked",
                    target_type="api_key", target_id=key_id,
                )  # fmt: skip
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound("no such active API key", details={"api_key_id": key_id})


def api_key_view(k: ApiKey) -> dict[str, Any]:
    return {
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "scopes": k.scopes,
        "created_at": k.created_at,
        "revoked_at": k.revoked_at,
        "last_used_at": k.last_used_at,
    }
