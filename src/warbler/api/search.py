"""Full-text search of my visible history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from warbler.api.deps import Auth, Svc
from warbler.api.schemas import SearchOut

router = APIRouter(tags=["search"])


@router.get("/search", response_model=SearchOut)
async def search(
    principal: Auth,
    svc: Svc,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    conversation_id: Annotated[str | None, Query(max_length=26)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> dict[str, Any]:
    """Messages containing every word of ``q`` (Chinese or English), newest first."""
    return await svc.search.search(
        principal, q, conversation_id=conversation_id, limit=limit, offset=offset
    )
