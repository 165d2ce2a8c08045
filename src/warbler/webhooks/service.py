"""Webhook subscriptions: create, list, change, delete, rotate the secret, see deliveries."""

from __future__ import annotations

import builtins
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.config import Settings
from warbler.errors import InvalidRequest, NotFound
from warbler.ids import new_id
from warbler.im.events import latest_seq
from warbler.im.principal import Principal
from warbler.jobs.queue import JobQueue, full_error
from warbler.security.encryption import tenant_scope
from warbler.store.db import Database
from warbler.store.models import Job, Webhook
from warbler.webhooks.event_types import EVENT_TYPES
from warbler.webhooks.targets import check_target

SECRET_PREFIX = "whsec_"
SCOPE = "webhooks:write"
DELIVERY_KIND = "webhook.delivery"
_UPDATABLE = ("url", "event_types", "active", "description")


def new_webhook_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def webhook_view(hook: Webhook, *, with_secret: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": hook.id,
        "url": hook.url,
        "event_types": list(hook.event_types),
        "description": hook.description,
        "active": hook.active,
        "created_by": hook.created_by,
        "created_at": hook.created_at,
    }
    if with_secret:
        out["secret"] = hook.secret
    return out


def delivery_view(job: Job) -> dict[str, Any]:
    result = job.result or {}
    return {
        "id": job.id,
        "event_id": job.payload.get("event_id"),
        "event_type": job.payload.get("event_type"),
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "status_code": result.get("status_code"),
        "latency_ms": result.get("latency_ms"),
        "last_error": full_error(job),
        "next_attempt_at": job.run_at if job.status == "pending" else None,
        "delivered_at": result.get("delivered_at") if job.status == "done" else None,
        "created_at": job.created_at,
    }


def check_event_types(event_types: list[str]) -> list[str]:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise InvalidRequest(
            f"unknown event types: {', '.join(unknown)}",
            details={"field": "event_types", "unknown": unknown, "known": list(EVENT_TYPES)},
        )
    return sorted(set(event_types))


class WebhookService:
    def __init__(self, db: Database, queue: JobQueue, settings: Settings) -> None:
        self.db = db
        self.queue = queue
        self.settings = settings

    async def create(
        self,
        principal: Principal,
        *,
        url: str,
        event_types: list[str],
        description: str | None = None,
    ) -> dict[str, Any]:
        """Subscribe ``url``; the answer holds the signing secret, shown only here and on
        rotation. Delivery starts with the next event (there is no backfill)."""
        principal.require_admin(SCOPE)
        url = await check_target(url, allow_private=self.settings.webhook_allow_private_targets)
        types = check_event_types(event_types)
        # The signing secret is stored encrypted under the tenant's data key.
        async with tenant_scope(principal.tenant_id), self.db.write() as s:
            hook = Webhook(
                id=new_id(), tenant_id=principal.tenant_id, url=url, secret=new_webhook_secret(),
                event_types=types, description=description, active=True,
                cursor=await latest_seq(s, principal.tenant_id), created_by=principal.user_id or principal.api_key_id,
                created_at=utcnow(),
            )  # fmt: skip
            s.add(hook)
        return webhook_view(hook, with_secret=True)

    async def list(self, principal: Principal) -> list[dict[str, Any]]:
        principal.require_admin(SCOPE)
        async with self.db.read() as s:
            hooks = await s.scalars(
                select(Webhook)
                .where(Webhook.tenant_id == principal.tenant_id)
                .order_by(Webhook.created_at, Webhook.id)
            )
            return [webhook_view(h) for h in hooks]

    async def get(self, principal: Principal, webhook_id: str) -> dict[str, Any]:
        principal.require_admin(SCOPE)
        async with self.db.read() as s:
            return webhook_view(await _load(s, principal.tenant_id, webhook_id))

    async def update(
        self, principal: Principal, webhook_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Change any of url, event_types, active, description (absent keys stay as they
        are). Re-activating a webhook skips the events that happened while it was off."""
        principal.require_admin(SCOPE)
        unknown = set(changes) - set(_UPDATABLE)
        if unknown:
            raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))}")
        if changes.get("url") is not None:
            changes["url"] = await check_target(
                changes["url"], allow_private=self.settings.webhook_allow_private_targets
            )
        if changes.get("event_types") is not None:
            changes["event_types"] = check_event_types(changes["event_types"])
        for field in ("url", "event_types", "active"):
            if field in changes and changes[field] is None:
                raise InvalidRequest(f"{field} cannot be null", details={"field": field})
        async with self.db.write() as s:
            hook = await _load(s, principal.tenant_id, webhook_id, for_update=True)
            if changes.get("active") and not hook.active:
                hook.cursor = await latest_seq(s, principal.tenant_id)
            for field, value in changes.items():
                setattr(hook, field, value)
        return webhook_view(hook)

    async def delete(self, principal: Principal, webhook_id: str) -> None:
        """Delete the webhook and its delivery history; queued deliveries are dropped."""
        principal.require_admin(SCOPE)
        async with self.db.write() as s:
            hook = await _load(s, principal.tenant_id, webhook_id, for_update=True)
            await self.queue.delete_for_ref(s, principal.tenant_id, hook.id)
            await s.delete(hook)

    async def rotate_secret(self, principal: Principal, webhook_id: str) -> dict[str, Any]:
        """A new secret, effective for every delivery attempt from now on (retries too)."""
        principal.require_admin(SCOPE)
        async with tenant_scope(principal.tenant_id), self.db.write() as s:
            hook = await _load(s, principal.tenant_id, webhook_id, for_update=True)
            hook.secret = new_webhook_secret()
        return webhook_view(hook, with_secret=True)

    async def deliveries(
        self, principal: Principal, webhook_id: str, *, limit: int = 50, before: str | None = None
    ) -> builtins.list[dict[str, Any]]:  # `list` is a method name here
        """The webhook's deliveries, newest first; ``before`` pages back by delivery id."""
        principal.require_admin(SCOPE)
        async with self.db.read() as s:
            await _load(s, principal.tenant_id, webhook_id)
        jobs = await self.queue.list(
            principal.tenant_id, kind=DELIVERY_KIND, ref=webhook_id, limit=limit, before=before
        )
        return [delivery_view(j) for j in jobs]

    async def redeliver(
        self, principal: Principal, webhook_id: str, delivery_id: str
    ) -> dict[str, Any]:
        """Send a delivery again now with a fresh round of attempts (same delivery id, so a
        receiver that already processed it can recognise the duplicate)."""
        principal.require_admin(SCOPE)
        async with self.db.read() as s:
            await _load(s, principal.tenant_id, webhook_id)
            job = await s.scalar(
                select(Job).where(
                    Job.id == delivery_id,
                    Job.tenant_id == principal.tenant_id,
                    Job.kind == DELIVERY_KIND,
                    Job.ref == webhook_id,
                )
            )
        if job is None:
            raise NotFound("no such delivery", details={"delivery_id": delivery_id})
        job = await self.queue.retry(principal.tenant_id, delivery_id, kind=DELIVERY_KIND)
        return delivery_view(job)


async def _load(
    s: AsyncSession, tenant_id: str, webhook_id: str, *, for_update: bool = False
) -> Webhook:
    query = select(Webhook).where(Webhook.id == webhook_id, Webhook.tenant_id == tenant_id)
    if for_update:
        query = query.with_for_update()
    hook = await s.scalar(query)
    if hook is None:
        raise NotFound("no such webhook", details={"webhook_id": webhook_id})
    return hook
