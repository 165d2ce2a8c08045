"""AI administration: a tenant's model providers (write-only keys), usage and quotas."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status

from warbler.ai.quotas import SCOPE, month_start
from warbler.api.ai_schemas import (
    ProviderIn,
    ProviderOut,
    ProviderUpdateIn,
    TenantQuotasIn,
    TenantQuotasOut,
    UsageOut,
    UsageSummaryOut,
)
from warbler.api.audit import record_change
from warbler.api.deps import Auth, Svc
from warbler.clock import utcnow

router = APIRouter(prefix="/ai", tags=["ai"])


def _utc(at: datetime | None) -> datetime | None:
    """Query times without a zone are UTC."""
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def _key(body: ProviderIn | ProviderUpdateIn) -> str | None:
    return body.api_key.get_secret_value() if body.api_key is not None else None


@router.post("/providers", response_model=ProviderOut, status_code=status.HTTP_201_CREATED)
async def create_provider(body: ProviderIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Add a provider. The key is sealed at rest and never shown again (only its last 4)."""
    fields = body.model_dump(exclude_unset=True, exclude={"api_key"})
    out = await svc.ai_providers.create(principal, fields, api_key=_key(body))
    await record_change(svc, principal, "ai.provider.created", "ai_provider", out["id"],
                        kind=out.get("kind"), api_key_set=body.api_key is not None)  # fmt: skip
    return out


@router.get("/providers", response_model=list[ProviderOut])
async def list_providers(principal: Auth, svc: Svc) -> list[dict[str, Any]]:
    return await svc.ai_providers.list(principal)


@router.get("/providers/{provider_id}", response_model=ProviderOut)
async def get_provider(provider_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    return await svc.ai_providers.get(principal, provider_id)


@router.patch("/providers/{provider_id}", response_model=ProviderOut)
async def update_provider(
    provider_id: str, body: ProviderUpdateIn, principal: Auth, svc: Svc
) -> dict[str, Any]:
    """Change the fields given; ``api_key`` replaces the key (null or "" removes it)."""
    changes = body.model_dump(exclude_unset=True, exclude={"api_key"})
    if "api_key" in body.model_fields_set:
        changes["api_key"] = _key(body)
    out = await svc.ai_providers.update(principal, provider_id, changes)
    await record_change(svc, principal, "ai.provider.updated", "ai_provider", provider_id, changes)
    return out


@router.delete("/providers/{provider_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_provider(provider_id: str, principal: Auth, svc: Svc) -> None:
    """Refused (409, naming the bots) while a bot lists the provider."""
    await svc.ai_providers.delete(principal, provider_id)
    await record_change(svc, principal, "ai.provider.deleted", "ai_provider", provider_id)


@router.get("/usage", response_model=list[UsageOut])
async def list_usage(
    principal: Auth,
    svc: Svc,
    bot_id: Annotated[str | None, Query(max_length=26)] = None,
    user_id: Annotated[str | None, Query(max_length=26)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: Annotated[str | None, Query(max_length=26, description="A usage row id.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """One row per bot reply, newest first."""
    principal.require_admin(SCOPE)
    return await svc.ai_usage.list(
        principal.tenant_id, bot_id=bot_id, user_id=user_id, since=_utc(since), until=_utc(until),
        before=before, limit=limit,
    )  # fmt: skip


@router.get("/usage/summary", response_model=UsageSummaryOut)
async def usage_summary(
    principal: Auth,
    svc: Svc,
    group_by: Literal["bot", "user", "day"] = "bot",
    since: Annotated[datetime | None, Query(description="Default: this month's start.")] = None,
    until: Annotated[datetime | None, Query(description="Default: now.")] = None,
) -> dict[str, Any]:
    """Replies, tokens, cost, latency and outcomes per bot, user or day (UTC)."""
    principal.require_admin(SCOPE)
    now = utcnow()
    return await svc.ai_usage.summary(
        principal.tenant_id, since=_utc(since) or month_start(now), until=_utc(until) or now,
        group_by=group_by,
    )  # fmt: skip


@router.get("/quotas", response_model=TenantQuotasOut)
async def get_quotas(principal: Auth, svc: Svc) -> dict[str, Any]:
    """The tenant's AI limits: its own, the defaults, what applies, this month's tokens."""
    return await svc.ai_quotas.tenant_quotas(principal)


@router.put("/quotas", response_model=TenantQuotasOut)
async def put_quotas(body: TenantQuotasIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Set the tenant's own limits (null: back to the default; 0: unlimited)."""
    quotas = body.model_dump()
    out = await svc.ai_quotas.set_tenant_quotas(principal, quotas)
    await record_change(svc, principal, "ai.quotas.updated", "tenant", principal.tenant_id,
                        quotas=quotas)  # fmt: skip
    return out
