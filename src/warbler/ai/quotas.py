"""AI quotas: bot answers per minute (per tenant, bot, and user of a bot) and tokens per
calendar month (per tenant and bot), checked before any provider is called.

Per-minute limits are token buckets in the node's AI rate limiter (in memory, or Redis when
configured, so a cluster shares them): a limit of N lets N answers through at once and refills
N a minute. Monthly limits sum the ``ai_usage`` rows of the current calendar month (UTC).
``None`` in a bot's ``Quotas`` takes the default (settings ``ai_*``); 0 means unlimited.
A tenant's own limits (``ai_tenant_quotas``) override the settings defaults for that tenant.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.ai.bot_config import BotConfig
from warbler.clock import utcnow
from warbler.config import Settings
from warbler.errors import InvalidRequest, QuotaExceeded
from warbler.im.principal import Principal
from warbler.im.ratelimit import RateLimiter
from warbler.store.db import Database
from warbler.store.models_ai import AiTenantQuotas, AiUsage

SCOPE = "bots:write"
TENANT_KEYS = ("messages_per_minute", "tokens_per_month")


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(now: datetime) -> datetime:
    start = month_start(now)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


class QuotaService:
    def __init__(
        self,
        db: Database,
        limiter: RateLimiter,
        settings: Settings,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.limiter = limiter
        self.settings = settings
        self.now = now  # replaceable in tests (month boundaries)

    async def check(self, bot: BotConfig, asker_user_id: str | None) -> None:
        """Raise ``QuotaExceeded`` if answering now would pass a limit; else count the answer
        against the per-minute limits. Monthly limits are checked first: they take nothing."""
        async with self.db.read() as s:
            tenant = await self._tenant_limits(s, bot.tenant_id)
            await self._check_month(s, bot, tenant["tokens_per_month"])
        q = bot.quotas
        t = bot.tenant_id
        # Narrowest first, so one user's burst does not use up the bot's or tenant's budget.
        if asker_user_id is not None:
            user_limit = _pick(
                q.user_messages_per_minute, self.settings.ai_user_messages_per_minute
            )
            await self._per_minute(f"{t}:u:{bot.id}:{asker_user_id}", user_limit, "user")
        bot_limit = _pick(q.messages_per_minute, self.settings.ai_bot_messages_per_minute)
        await self._per_minute(f"{t}:b:{bot.id}", bot_limit, "bot")
        await self._per_minute(f"{t}:t", tenant["messages_per_minute"], "tenant")

    async def tokens_used(self, s: AsyncSession, tenant_id: str, bot_id: str | None = None) -> int:
        """Prompt + completion tokens recorded this calendar month (UTC)."""
        query = select(
            func.coalesce(func.sum(AiUsage.prompt_tokens + AiUsage.completion_tokens), 0)
        ).where(AiUsage.tenant_id == tenant_id, AiUsage.created_at >= month_start(self.now()))
        if bot_id is not None:
            query = query.where(AiUsage.bot_id == bot_id)
        return int(await s.scalar(query) or 0)

    # -- the tenant's own limits (admin) -----------------------------------------------------

    async def tenant_quotas(self, principal: Principal) -> dict[str, Any]:
        """The tenant's overrides (None: the default), what applies, and this month's use."""
        principal.require_admin(SCOPE)
        async with self.db.read() as s:
            row = await s.get(AiTenantQuotas, principal.tenant_id)
            effective = await self._tenant_limits(s, principal.tenant_id, row)
            used = await self.tokens_used(s, principal.tenant_id)
        return {
            "overrides": {k: getattr(row, k) if row else None for k in TENANT_KEYS},
            "defaults": {k: getattr(self.settings, f"ai_tenant_{k}") for k in TENANT_KEYS},
            "effective": effective,
            "tokens_used_this_month": used,
            "month_resets_at": next_month_start(self.now()),
        }

    async def set_tenant_quotas(
        self, principal: Principal, changes: dict[str, int | None]
    ) -> dict[str, Any]:
        """Set the fields given (``None``: back to the default; 0: unlimited)."""
        principal.require_admin(SCOPE)
        for key, value in changes.items():
            if key not in TENANT_KEYS:
                raise InvalidRequest(f"unknown quota {key!r}", details={"field": key})
            if value is not None and (isinstance(value, bool) or value < 0):
                raise InvalidRequest(f"{key} is 0 or more (0: unlimited)", details={"field": key})
        async with self.db.write() as s:
            row = await s.get(AiTenantQuotas, principal.tenant_id)
            if row is None:
                row = AiTenantQuotas(tenant_id=principal.tenant_id, updated_at=utcnow())
                s.add(row)
            for key, value in changes.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
        return await self.tenant_quotas(principal)

    # -- helpers -------------------------------------------------------------------------------

    async def _tenant_limits(
        self, s: AsyncSession, tenant_id: str, row: AiTenantQuotas | None = None
    ) -> dict[str, int]:
        row = row or await s.get(AiTenantQuotas, tenant_id)
        return {
            key: _pick(
                getattr(row, key) if row else None, getattr(self.settings, f"ai_tenant_{key}")
            )
            for key in TENANT_KEYS
        }

    async def _check_month(self, s: AsyncSession, bot: BotConfig, tenant_limit: int) -> None:
        now = self.now()
        retry = (next_month_start(now) - now).total_seconds()
        if tenant_limit:
            used = await self.tokens_used(s, bot.tenant_id)
            if used >= tenant_limit:
                raise _exceeded("tenant", "tokens_per_month", tenant_limit, retry, used=used)
        bot_limit = bot.quotas.tokens_per_month or 0
        if bot_limit:
            used = await self.tokens_used(s, bot.tenant_id, bot.id)
            if used >= bot_limit:
                raise _exceeded("bot", "tokens_per_month", bot_limit, retry, used=used)

    async def _per_minute(self, key: str, limit: int, scope: str) -> None:
        if not limit:
            return
        wait = await self.limiter.hit(key, rate_per_second=limit / 60.0, burst=limit)
        if wait > 0:
            raise _exceeded(scope, "messages_per_minute", limit, wait)


def _pick(value: int | None, default: int) -> int:
    return default if value is None else value


def _exceeded(
    scope: str, limit_name: str, limit: int, retry_after: float, **extra: Any
) -> QuotaExceeded:
    what = "answers per minute" if limit_name == "messages_per_minute" else "tokens this month"
    return QuotaExceeded(
        f"the {scope}'s limit of {limit} {what} is reached",
        details={
            "scope": scope,
            "limit_name": limit_name,
            "limit": limit,
            "retry_after_seconds": math.ceil(retry_after * 10) / 10,
            **extra,
        },
    )


_MESSAGES = {
    ("en", "month"): "This assistant has reached its usage limit for this month. Please try "
    "again later or ask for a human agent.",
    ("zh", "month"): "本助手本月的使用额度已用完，请稍后再试，或联系人工客服。",
    ("en", "user"): "You are asking faster than this assistant can answer. Please wait "
    "{seconds} seconds and try again.",
    ("zh", "user"): "您提问太频繁了，请等待 {seconds} 秒后再试。",
    ("en", "busy"): "This assistant is busy right now. Please try again in {seconds} seconds "
    "or ask for a human agent.",
    ("zh", "busy"): "本助手当前繁忙，请 {seconds} 秒后再试，或联系人工客服。",
}


def user_message(exc: QuotaExceeded, language: str | None) -> str:
    """What the person who asked is told, in Chinese (``language`` "zh…") or English."""
    lang = "zh" if (language or "").lower().startswith("zh") else "en"
    details = exc.details
    if details.get("limit_name") == "tokens_per_month":
        case = "month"
    else:
        case = "user" if details.get("scope") == "user" else "busy"
    seconds = max(1, math.ceil(float(details.get("retry_after_seconds", 1))))
    return _MESSAGES[(lang, case)].format(seconds=seconds)
