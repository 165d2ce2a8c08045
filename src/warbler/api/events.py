"""The event log over plain HTTP: what a cursor missed, for clients that cannot hold a socket."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from warbler.api.deps import Auth, Svc
from warbler.api.schemas import EventsOut
from warbler.errors import Gone
from warbler.im.events import cursor_is_resumable, latest_seq, replay

router = APIRouter(tags=["events"])


@router.get("/events", response_model=EventsOut)
async def events(
    principal: Auth,
    svc: Svc,
    cursor: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """Events after ``cursor``, oldest first. Without a cursor: none, and the current cursor.
    A cursor too old to resume answers 410 ``gone``: reload state, then use the new cursor."""
    user = principal.require_user()
    async with svc.db.read() as s:
        tenant = principal.tenant_id
        if cursor is None:
            return {"events": [], "cursor": await latest_seq(s, tenant), "has_more": False}
        if not await cursor_is_resumable(s, tenant, cursor):
            raise Gone("this cursor can no longer be resumed; reload and start from 'cursor'",
                       details={"cursor": await latest_seq(s, tenant)})  # fmt: skip
        page, position, more = await replay(
            s, tenant_id=tenant, user_id=user, after_seq=cursor, limit=limit
        )
    return {"events": [e.to_wire() for e in page], "cursor": position, "has_more": more}
