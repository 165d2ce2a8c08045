"""AI usage: one row per bot reply (or OpenAI-compatible API call) with its tokens, cost,
latency and outcome; listing and summaries per bot, user or day for admins and quotas."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, String, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.ai.providers.base import Usage
from warbler.ai.providers.config import ProviderConfig
from warbler.clock import utcnow
from warbler.errors import InvalidRequest
from warbler.ids import new_id
from warbler.store.db import Database
from warbler.store.models_ai import AiUsage

# "suggestion": an agent's suggested reply in customer service (support/desk/suggestion.py).
SOURCES = ("chat", "openai_api", "suggestion")
STATUSES = ("answered", "fallback", "curated", "no_answer", "apology", "quota")
GroupBy = Literal["bot", "user", "day"]


def usage_view(row: AiUsage) -> dict[str, Any]:
    return {
        "id": row.id,
        "bot_id": row.bot_id,
        "user_id": row.user_id,
        "conversation_id": row.conversation_id,
        "trigger_message_id": row.trigger_message_id,
        "reply_message_id": row.reply_message_id,
        "source": row.source,
        "provider": row.provider,
        "model": row.model,
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "total_tokens": row.prompt_tokens + row.completion_tokens,
        "cost": row.cost,
        "latency_ms": row.latency_ms,
        "status": row.status,
        "created_at": row.created_at,
    }


class UsageService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def new_row(
        self,
        *,
        tenant_id: str,
        bot_id: str,
        source: str,
        status: str,
        provider: ProviderConfig | str | None = None,
        model: str | None = None,
        usage: Usage | None = None,
        latency_ms: int = 0,
        user_id: str | None = None,
        conversation_id: str | None = None,
        trigger_message_id: str | None = None,
        reply_message_id: str | None = None,
        created_at: datetime | None = None,
    ) -> AiUsage:
        """The row for one reply. ``provider``: the one that answered (its prices give the
        cost) or just a name (no cost, e.g. "extractive"); ``None`` when none was called."""
        if source not in SOURCES:
            raise InvalidRequest(f"usage source is one of {', '.join(SOURCES)}")
        if status not in STATUSES:
            raise InvalidRequest(f"usage status is one of {', '.join(STATUSES)}")
        usage = usage or Usage()
        if isinstance(provider, ProviderConfig):
            name: str | None = provider.label
            cost = provider.cost(usage)
            model = model or provider.model or None
        else:
            name, cost = provider, 0.0
        return AiUsage(
            id=new_id(), tenant_id=tenant_id, bot_id=bot_id, user_id=user_id,
            conversation_id=conversation_id, trigger_message_id=trigger_message_id,
            reply_message_id=reply_message_id, source=source, provider=name, model=model,
            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
            cost=cost, latency_ms=max(0, int(latency_ms)), status=status,
            created_at=created_at or utcnow(),
        )  # fmt: skip

    async def record(self, s: AsyncSession | None = None, **fields: Any) -> dict[str, Any]:
        """Store one usage row (arguments as ``new_row``), in ``s`` when the caller's
        transaction should hold it (the reply and its bill commit together), else on its own."""
        row = self.new_row(**fields)
        if s is not None:
            s.add(row)
        else:
            async with self.db.write() as session:
                session.add(row)
        return usage_view(row)

    async def list(
        self,
        tenant_id: str,
        *,
        bot_id: str | None = None,
        user_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> builtins.list[dict[str, Any]]:
        """Rows newest first; ``before`` (a row id) pages back."""
        query = select(AiUsage).where(*_filters(tenant_id, since, until))
        if bot_id:
            query = query.where(AiUsage.bot_id == bot_id)
        if user_id:
            query = query.where(AiUsage.user_id == user_id)
        query = query.order_by(AiUsage.created_at.desc(), AiUsage.id.desc()).limit(limit)
        async with self.db.read() as s:
            if before:
                at = await s.scalar(
                    select(AiUsage.created_at).where(
                        AiUsage.tenant_id == tenant_id, AiUsage.id == before
                    )
                )
                if at is None:
                    raise InvalidRequest(
                        "before is not a usage row id", details={"field": "before"}
                    )
                query = query.where(
                    or_(
                        AiUsage.created_at < at, and_(AiUsage.created_at == at, AiUsage.id < before)
                    )
                )
            return [usage_view(r) for r in await s.scalars(query)]

    async def summary(
        self, tenant_id: str, *, since: datetime, until: datetime, group_by: GroupBy = "bot"
    ) -> dict[str, Any]:
        """Replies, tokens, cost, mean latency and outcomes per bot, user or day (UTC) over
        ``[since, until)``, and the totals."""
        if until <= since:
            raise InvalidRequest("until must be after since", details={"field": "until"})
        key = self._key(group_by)
        measures = _measures()
        async with self.db.read() as s:
            rows = await s.execute(
                select(key.label("key"), *measures)
                .where(*_filters(tenant_id, since, until))
                .group_by(key)
                .order_by(key)
            )
            groups = [_group(r._mapping) for r in rows]
            total = await s.execute(select(*measures).where(*_filters(tenant_id, since, until)))
            totals = _group(total.one()._mapping)
        return {"since": since, "until": until, "group_by": group_by, "groups": groups,
                "total": totals}  # fmt: skip

    def _key(self, group_by: str) -> Any:
        if group_by == "bot":
            return AiUsage.bot_id
        if group_by == "user":
            return AiUsage.user_id
        if group_by == "day":
            if self.db.is_sqlite:  # stored as naive UTC
                return func.strftime("%Y-%m-%d", AiUsage.created_at, type_=String)
            return func.to_char(func.timezone("UTC", AiUsage.created_at), "YYYY-MM-DD",
                                type_=String)  # fmt: skip
        raise InvalidRequest("group_by is one of bot, user, day", details={"field": "group_by"})


def _filters(
    tenant_id: str, since: datetime | None, until: datetime | None
) -> builtins.list[ColumnElement[bool]]:
    out = [AiUsage.tenant_id == tenant_id]
    if since is not None:
        out.append(AiUsage.created_at >= since)
    if until is not None:
        out.append(AiUsage.created_at < until)
    return out


def _measures() -> builtins.list[Any]:
    return [
        func.count().label("replies"),
        func.coalesce(func.sum(AiUsage.prompt_tokens), 0).label("prompt_tokens"),
        func.coalesce(func.sum(AiUsage.completion_tokens), 0).label("completion_tokens"),
        func.coalesce(func.sum(AiUsage.cost), 0.0).label("cost"),
        func.coalesce(func.avg(AiUsage.latency_ms), 0.0).label("avg_latency_ms"),
        *(
            func.coalesce(func.sum(case((AiUsage.status == st, 1), else_=0)), 0).label(st)
            for st in STATUSES
        ),
    ]


def _group(m: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "key" in m:
        out["key"] = m["key"]
    prompt, completion = int(m["prompt_tokens"]), int(m["completion_tokens"])
    out.update(
        replies=int(m["replies"]),
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cost=round(float(m["cost"]), 6),
        avg_latency_ms=round(float(m["avg_latency_ms"]), 1),
        statuses={st: int(m[st]) for st in STATUSES},
    )
    return out
