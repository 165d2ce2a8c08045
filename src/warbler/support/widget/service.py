"""The web widget's public side (``services.support_widget``): its configuration, the CSP of
its frame, and visitor sessions (anonymous by resume key, or identified by a signed token).

A session is the visitor's way in: it finds or creates the visitor, opens (or finds again)
their support conversation through ``services.support.open_for_visitor`` and hands back a
short-lived access token for the ordinary messaging API and the WebSocket.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from warbler.errors import InvalidRequest, NotFound, RateLimited
from warbler.im.ratelimit import MemoryRateLimiter, RateLimiter
from warbler.security.crypto import SecretError
from warbler.security.encryption import tenant_scope
from warbler.store.models import User
from warbler.store.models_support import SupportSettings
from warbler.support.widget.identity import (
    IdentityRequired,
    InvalidIdentityToken,
    verify_identity_token,
)
from warbler.support.widget.visitors import Who, start_session

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from warbler.config import Settings
    from warbler.services import Services

LOCALES = ("en", "zh")
DEFAULT_TITLE = {"en": "Chat with us", "zh": "在线客服"}
DEFAULT_GREETING = {
    "en": "Hi! Ask us anything. Our assistant answers right away, and a person is one "
    "message away.",
    "zh": "您好！有什么可以帮您？智能助手马上为您解答，也可以随时转人工客服。",
}


def session_limiter(settings: Settings, redis: aioredis.Redis | None) -> RateLimiter:
    """Session creations per client IP: one bucket per IP, cluster-wide with Redis."""
    per_minute = max(settings.support_widget_sessions_per_minute, 1)
    rate, burst = per_minute / 60.0, per_minute
    if redis is None:
        return MemoryRateLimiter(rate, burst)
    from warbler.im.ratelimit_redis import RedisRateLimiter

    return RedisRateLimiter(redis, rate, burst, prefix=settings.redis_prefix, name="widget")


def pick_locale(value: str | None) -> str:
    """en or zh from ``zh``, ``zh-CN``, ``en-US``...; English otherwise."""
    return "zh" if (value or "").lower().startswith("zh") else "en"


class WidgetService:
    def __init__(self, services: Services, limiter: RateLimiter) -> None:
        self.services = services
        self.settings = services.settings
        self.limiter = limiter

    async def _widget(self, widget_id: str) -> SupportSettings:
        async with self.services.db.read() as s:
            row = await s.scalar(
                select(SupportSettings).where(SupportSettings.widget_id == widget_id)
            )
        if row is None:
            raise NotFound("no such widget", details={"widget_id": widget_id})
        return row

    async def config(self, widget_id: str, lang: str | None = None) -> dict[str, Any]:
        """What the widget shows before a session: title, greeting, colour, office hours."""
        row = await self._widget(widget_id)
        locale = pick_locale(lang)
        office = await self.services.support.office(row.tenant_id, row.default_team_id)
        return {
            "widget_id": row.widget_id,
            "lang": locale,
            "title": _localized(row.widget_title, locale, DEFAULT_TITLE),
            "greeting": _localized(row.widget_greeting, locale, DEFAULT_GREETING),
            "color": row.widget_color,
            "identity_required": row.identity_required,
            "office": {
                "open": office["open"],
                "next_open_at": office.get("next_open_at"),
                "timezone": office.get("timezone"),
            },
        }

    async def frame_ancestors(self, widget_id: str) -> list[str]:
        """The sites that may embed this widget's frame (empty: any)."""
        row = await self._widget(widget_id)
        return [str(o) for o in row.allowed_origins or []]

    async def create_session(
        self,
        widget_id: str,
        *,
        client_ip: str,
        visitor_key: str | None = None,
        identity_token: str | None = None,
        name: str | None = None,
        locale: str | None = None,
    ) -> dict[str, Any]:
        await self._limit(client_ip)
        row = await self._widget(widget_id)
        # No credentials name the tenant here (the API's auth does elsewhere): the widget
        # does, and what the session writes is encrypted under that tenant's keys.
        async with tenant_scope(row.tenant_id):
            return await self._create_session(
                row, visitor_key=visitor_key, identity_token=identity_token, name=name,
                locale=locale,
            )  # fmt: skip

    async def _create_session(
        self,
        row: SupportSettings,
        *,
        visitor_key: str | None,
        identity_token: str | None,
        name: str | None,
        locale: str | None,
    ) -> dict[str, Any]:
        widget_id = row.widget_id
        if row.bot_user_id is None:
            raise InvalidRequest(
                "customer service is not set up for this widget (no support bot)",
                details={"widget_id": widget_id},
            )
        lang = pick_locale(locale)
        if identity_token:
            identity = verify_identity_token(
                identity_token,
                await self._identity_secret(row),
                max_lifetime_seconds=self.settings.support_identity_token_max_seconds,
            )
            who = Who(
                external_id=identity.sub, name=identity.name, email=identity.email, locale=lang
            )
        elif row.identity_required:
            raise IdentityRequired(
                "this widget serves identified visitors only: pass identity_token",
                details={"widget_id": widget_id},
            )
        else:
            who = Who(visitor_key=visitor_key, name=name, locale=lang)
        session = await start_session(
            self.services.db, row.tenant_id, who, self.settings.support_visitor_token_ttl_seconds
        )
        conversation = await self.services.support.open_for_visitor(
            row.tenant_id, session.user["id"], locale=lang
        )
        out: dict[str, Any] = {
            "access_token": session.access_token,
            "token_type": "bearer",
            "expires_at": session.expires_at,
            "user": session.user,
            "identified": who.external_id is not None,
            "conversation_id": conversation["conversation_id"],
            "bot": await self._bot(row),
        }
        if session.visitor_key is not None:
            out["visitor_key"] = session.visitor_key
        return out

    async def _bot(self, row: SupportSettings) -> dict[str, Any] | None:
        """The support bot's id and name, so the widget can label its answers."""
        async with self.services.db.read() as s:
            bot = await s.scalar(
                select(User).where(User.tenant_id == row.tenant_id, User.id == row.bot_user_id)
            )
        return None if bot is None else {"id": bot.id, "display_name": bot.display_name}

    async def _identity_secret(self, row: SupportSettings) -> str:
        try:
            secret = await self.services.support.identity_secret(row.tenant_id)
        except SecretError as exc:
            raise InvalidIdentityToken("this widget's identity secret cannot be opened") from exc
        if not secret:
            raise InvalidIdentityToken(
                "this widget has no identity secret: set one in the support settings "
                "before signing visitor tokens"
            )
        return secret

    async def _limit(self, client_ip: str) -> None:
        if self.settings.support_widget_sessions_per_minute <= 0:
            return
        wait = await self.limiter.hit(f"widget-session:{client_ip}")
        if wait > 0:
            raise RateLimited(
                f"too many chat sessions from this address; try again in {wait:.1f} s",
                details={"retry_after_seconds": math.ceil(wait * 10) / 10},
            )


def _localized(values: dict[str, Any] | None, locale: str, default: dict[str, str]) -> str:
    values = values or {}
    text = values.get(locale) or default[locale]
    return str(text)
