"""The audit log: who did what to what, when, from where. Append-only.

Domain services call ``record_in`` inside the transaction that performs the action, so an
action and its audit row commit together or not at all::

    await services.audit.record_in(
        s, tenant_id=principal.tenant_id, actor=principal, action="support.read",
        target_type="conversation", target_id=conversation_id,
    )

The source IP and user agent come from the request being served (``request_context``, set
by the API middleware); jobs and CLI commands record none. ``data`` holds identifiers and
settings names, never secrets or message bodies.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from warbler.clock import utcnow
from warbler.im.principal import Principal
from warbler.store.db import Database
from warbler.store.models_audit import AuditEntry


@dataclass(frozen=True, slots=True)
class RequestInfo:
    ip: str | None = None
    user_agent: str | None = None


# Set per request by the API middleware; empty outside a request.
request_context: contextvars.ContextVar[RequestInfo] = contextvars.ContextVar(
    "warbler_request_context", default=RequestInfo()  # noqa: B039 (frozen)
)


def actor_of(actor: Principal | str | None) -> tuple[str | None, str]:
    """(actor_id, actor_kind) for a principal, a bare user id, or the system (None)."""
    if actor is None:
        return None, "system"
    if isinstance(actor, str):
        return actor, "user"
    if actor.user_id is not None:
        return actor.user_id, "user"
    if actor.api_key_id is not None:
        return actor.api_key_id, "api_key"
    return None, "anonymous"


class AuditLog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record_in(
        self,
        s: AsyncSession,
        *,
        tenant_id: str,
        actor: Principal | str | None,
        action: str,
        target_type: str | None = None,
        target_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Add one entry to the caller's transaction."""
        actor_id, actor_kind = actor_of(actor)
        info = request_context.get()
        s.add(
            AuditEntry(
                tenant_id=tenant_id, actor_id=actor_id, actor_kind=actor_kind, action=action,
                target_type=target_type, target_id=target_id, ip=info.ip,
                user_agent=(info.user_agent or None) and info.user_agent[:300],
                data=data or {}, created_at=utcnow(),
            )
        )  # fmt: skip

    async def record(self, **kwargs: Any) -> None:
        """Record in a transaction of its own (when the action itself wrote nothing, e.g. a
        failed login or an agent reading a conversation)."""
        async with self.db.write() as s:
            await self.record_in(s, **kwargs)
