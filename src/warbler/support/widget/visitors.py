"""Widget visitors: a ``users`` row (kind and role ``visitor``) plus the ``support_visitors`` row
that finds it again, by the hash of an anonymous browser's key or by the company's own id.

Each session also gets a fresh access token (the visitor's bearer for the ordinary messaging
API and the WebSocket), written in the same transaction as the visitor it belongs to.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.errors import Forbidden
from warbler.ids import new_id
from warbler.im.views import user_view
from warbler.security.secrets import TOKEN_PREFIX, digest, new_secret
from warbler.store.db import Database
from warbler.store.models import AccessToken, User
from warbler.store.models_support import SupportVisitor

TOKEN_DEVICE = "support widget"
MAX_NAME_CHARS = 100


def new_visitor_key() -> str:
    """32 random bytes, urlsafe: the anonymous browser's resume key (kept in localStorage)."""
    return secrets.token_urlsafe(32)


def key_hash(visitor_key: str) -> str:
    return hashlib.sha256(visitor_key.encode()).hexdigest()


def default_name(user_id: str) -> str:
    """The default name, "Visitor 访客 #1234": four digits from the id, stable per visitor."""
    number = int(hashlib.sha256(user_id.encode()).hexdigest(), 16) % 10_000
    return f"Visitor 访客 #{number:04d}"


@dataclass(frozen=True, slots=True)
class Who:
    """Who is asking for a session: an identified visitor (``external_id``) or an anonymous
    one (``visitor_key``, None for a first visit)."""

    external_id: str | None = None
    visitor_key: str | None = None
    name: str | None = None
    email: str | None = None
    locale: str = "en"


@dataclass(frozen=True, slots=True)
class Session:
    user: dict[str, Any]
    access_token: str
    expires_at: Any
    visitor_key: str | None  # anonymous visitors only: the key to present next time
    created: bool  # a new visitor


async def start_session(db: Database, tenant_id: str, who: Who, token_ttl: int) -> Session:
    """Find or create the visitor ``who`` names, and issue it an access token."""
    for _ in range(3):  # two first sessions of one identified visitor may race: retry
        try:
            async with db.write() as s:
                return await _start(s, tenant_id, who, token_ttl)
        except IntegrityError:
            continue
    raise RuntimeError("could not create the visitor (repeated conflicts)")


async def _start(s: AsyncSession, tenant_id: str, who: Who, token_ttl: int) -> Session:
    now = utcnow()
    key = None
    found: tuple[SupportVisitor, User] | None = None
    where = SupportVisitor.tenant_id == tenant_id
    if who.external_id is not None:
        where &= SupportVisitor.external_id == who.external_id
    elif who.visitor_key:
        where &= SupportVisitor.key_hash == key_hash(who.visitor_key)
        key = who.visitor_key
    if who.external_id is not None or key is not None:
        row = (
            await s.execute(
                select(SupportVisitor, User)
                .join(User, User.id == SupportVisitor.user_id)
                .where(where, User.tenant_id == tenant_id)
            )
        ).first()
        found = (row[0], row[1]) if row is not None else None
    if found is not None and found[1].disabled:
        if who.external_id is not None:
            raise Forbidden("this visitor is blocked")
        found = None  # a blocked anonymous browser starts over as a new visitor
    if found is None:
        key = None if who.external_id is not None else new_visitor_key()
        visitor, user = _new_visitor(tenant_id, who, key, now)
        s.add(user)
        await s.flush()
        s.add(visitor)
        created = True
    else:
        visitor, user = found
        _refresh(visitor, user, who, now)
        created = False
    secret = new_secret(TOKEN_PREFIX)
    token = AccessToken(
        id=new_id(), tenant_id=tenant_id, user_id=user.id, token_hash=digest(secret),
        device=TOKEN_DEVICE, created_at=now, expires_at=now + timedelta(seconds=token_ttl),
    )  # fmt: skip
    s.add(token)
    await s.flush()
    return Session(user_view(user), secret, token.expires_at, key, created)


def _new_visitor(
    tenant_id: str, who: Who, key: str | None, now: Any
) -> tuple[SupportVisitor, User]:
    user_id = new_id()
    name = (who.name or "").strip()[:MAX_NAME_CHARS] or default_name(user_id)
    user = User(
        id=user_id, tenant_id=tenant_id, username=f"visitor-{user_id.lower()}",
        display_name=name, kind="visitor", role="visitor", password_hash=None,
        avatar_url=None, disabled=False, created_at=now, updated_at=now,
    )  # fmt: skip
    visitor = SupportVisitor(
        user_id=user_id, tenant_id=tenant_id, external_id=who.external_id,
        key_hash=key_hash(key) if key else None, email=who.email, locale=who.locale,
        created_at=now, last_seen_at=now,
    )  # fmt: skip
    return visitor, user


def _refresh(visitor: SupportVisitor, user: User, who: Who, now: Any) -> None:
    """A returning visitor: the company's latest name and email win; the locale follows the
    page they are on now."""
    visitor.last_seen_at = now
    visitor.locale = who.locale
    if who.email and who.email != visitor.email:
        visitor.email = who.email
    name = (who.name or "").strip()[:MAX_NAME_CHARS]
    if name and name != user.display_name:
        user.display_name = name
        user.updated_at = now
