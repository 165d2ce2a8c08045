"""Outgoing webhooks: subscribe a URL to events, manage it, see and retry its deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from warbler.api.audit import record_change
from warbler.api.deps import Auth, Svc
from warbler.api.schemas import Request
from warbler.webhooks.event_types import EVENT_TYPES

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

_TYPES_HELP = f"Event types to send; empty means all of: {', '.join(EVENT_TYPES)}."


class WebhookIn(Request):
    url: str = Field(max_length=2000, description="http(s) URL that receives the POSTs.")
    event_types: list[str] = Field(default_factory=list, max_length=50, description=_TYPES_HELP)
    description: str | None = Field(None, max_length=500)


class WebhookUpdateIn(Request):
    url: str | None = Field(None, max_length=2000)
    event_types: list[str] | None = Field(None, max_length=50, description=_TYPES_HELP)
    active: bool | None = Field(None, description="false pauses deliveries (events are skipped).")
    description: str | None = Field(None, max_length=500)


class WebhookOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str | None
    active: bool
    created_by: str | None
    created_at: datetime


class WebhookSecretOut(WebhookOut):
    secret: str = Field(description="The signing secret (whsec_…); shown only here.")


class DeliveryOut(BaseModel):
    id: str = Field(description="The delivery id: the X-Warbler-Delivery header, same on retries.")
    event_id: int | None
    event_type: str | None
    status: str = Field(description="pending | running | done | dead")
    attempts: int
    max_attempts: int
    status_code: int | None = Field(description="The receiver's last HTTP status, if any.")
    latency_ms: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


@router.post("", response_model=WebhookSecretOut, status_code=status.HTTP_201_CREATED)
async def create(body: WebhookIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Subscribe a URL. The response holds the signing secret: store it now."""
    out = await svc.webhooks.create(
        principal, url=body.url, event_types=body.event_types, description=body.description
    )
    await record_change(svc, principal, "webhook.created", "webhook", out["id"],
                        event_types=out["event_types"])  # fmt: skip
    return out


@router.get("", response_model=list[WebhookOut])
async def list_webhooks(principal: Auth, svc: Svc) -> list[dict[str, Any]]:
    return await svc.webhooks.list(principal)


@router.get("/{webhook_id}", response_model=WebhookOut)
async def get(webhook_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    return await svc.webhooks.get(principal, webhook_id)


@router.patch("/{webhook_id}", response_model=WebhookOut)
async def update(
    webhook_id: str, body: WebhookUpdateIn, principal: Auth, svc: Svc
) -> dict[str, Any]:
    """Change the URL, event types, description, or pause/resume (``active``)."""
    changes = body.model_dump(exclude_unset=True)
    out = await svc.webhooks.update(principal, webhook_id, changes)
    await record_change(svc, principal, "webhook.updated", "webhook", webhook_id, changes)
    return out


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(webhook_id: str, principal: Auth, svc: Svc) -> None:
    await svc.webhooks.delete(principal, webhook_id)
    await record_change(svc, principal, "webhook.deleted", "webhook", webhook_id)


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookSecretOut)
async def rotate_secret(webhook_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Replace the signing secret; every attempt from now on (retries too) uses the new one."""
    out = await svc.webhooks.rotate_secret(principal, webhook_id)
    await record_change(svc, principal, "webhook.secret_rotated", "webhook", webhook_id)
    return out


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryOut])
async def deliveries(
    webhook_id: str,
    principal: Auth,
    svc: Svc,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(max_length=26, description="A delivery id.")] = None,
) -> list[dict[str, Any]]:
    """Deliveries, newest first."""
    return await svc.webhooks.deliveries(principal, webhook_id, limit=limit, before=before)


@router.post("/{webhook_id}/deliveries/{delivery_id}/retry", response_model=DeliveryOut)
async def retry(webhook_id: str, delivery_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Send a delivery again now, with a fresh round of attempts and the same delivery id."""
    return await svc.webhooks.redeliver(principal, webhook_id, delivery_id)
