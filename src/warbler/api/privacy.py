"""Privacy: the tenant's retention policy, a user's data export, and erasure."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from warbler.api.deps import Auth, Svc
from warbler.api.schemas import Request
from warbler.privacy.retention import MAX_DAYS

router = APIRouter(prefix="/privacy", tags=["privacy"])

Days = Annotated[
    int | None, Field(ge=1, le=MAX_DAYS, description="Days to keep; null keeps forever.")
]


class RetentionIn(Request):
    """The whole policy: a field left out or null keeps that data forever."""

    messages_days: Days = None
    files_days: Days = None
    logs_days: Days = Field(
        None,
        description="Days to keep the event resume log, finished jobs (webhook deliveries), "
        "AI usage rows (never the current month's) and support state transitions.",
    )
    audit_days: Days = None


class RetentionOut(BaseModel):
    messages_days: int | None
    files_days: int | None
    logs_days: int | None
    audit_days: int | None
    updated_at: datetime | None
    updated_by: str | None
    last_sweep_at: datetime | None
    last_sweep: dict[str, int] = Field(description="What the last sweep deleted, by kind.")


class SweepOut(BaseModel):
    counts: dict[str, int]


class ExportOut(BaseModel):
    id: str
    user_id: str = Field(description="Whose data.")
    requested_by: str | None
    status: str = Field(description="pending | running | ready | failed | expired")
    size: int = Field(description="Bytes of the zip, once ready.")
    sha256: str | None
    counts: dict[str, int] = Field(description="What the archive holds, by file.")
    error: str | None
    created_at: datetime
    completed_at: datetime | None
    expires_at: datetime | None = Field(description="When the archive is deleted.")


class EraseIn(Request):
    confirm: str = Field(max_length=64, description="The user's username, to confirm.")


class EraseOut(BaseModel):
    user_id: str
    erased_at: datetime
    counts: dict[str, int] = Field(description="What was erased or removed, by kind.")


@router.get("/retention", response_model=RetentionOut)
async def get_retention(principal: Auth, svc: Svc) -> dict[str, Any]:
    """The tenant's retention policy (tenant admins)."""
    return await svc.privacy.retention.get(principal)


@router.put("/retention", response_model=RetentionOut)
async def put_retention(body: RetentionIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Replace the retention policy; the sweeper applies it within an interval."""
    return await svc.privacy.retention.put(principal, body.model_dump())


@router.post("/retention/sweep", response_model=SweepOut)
async def sweep_now(principal: Auth, svc: Svc) -> dict[str, Any]:
    """Apply the policy now and return what was deleted."""
    return {"counts": await svc.privacy.retention.sweep_now(principal)}


@router.post("/me/export", response_model=ExportOut, status_code=status.HTTP_202_ACCEPTED)
async def export_me(principal: Auth, svc: Svc) -> dict[str, Any]:
    """Export my data: a zip of JSON files and my files, built in the background."""
    return await svc.privacy.exports.request(principal)


@router.post(
    "/users/{user_id}/export", response_model=ExportOut, status_code=status.HTTP_202_ACCEPTED
)
async def export_user(user_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Export any user's data (tenant admins)."""
    principal.require_admin()
    return await svc.privacy.exports.request(principal, user_id)


@router.get("/exports", response_model=list[ExportOut])
async def list_exports(principal: Auth, svc: Svc) -> list[dict[str, Any]]:
    """My exports; for tenant admins, every export of the tenant (newest first)."""
    return await svc.privacy.exports.list_exports(principal)


@router.get("/exports/{export_id}", response_model=ExportOut)
async def get_export(export_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    return await svc.privacy.exports.get(principal, export_id)


@router.get(
    "/exports/{export_id}/download",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "The zip archive."}},
)
async def download_export(export_id: str, principal: Auth, svc: Svc) -> StreamingResponse:
    """The archive (once ``ready``, until ``expires_at``)."""
    view, chunks = await svc.privacy.exports.open(principal, export_id)
    headers = {
        "Content-Length": str(view["size"]),
        "Content-Disposition": f'attachment; filename="warbler-export-{view["id"]}.zip"',
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
    return StreamingResponse(chunks, media_type="application/zip", headers=headers)


@router.post("/users/{user_id}/erase", response_model=EraseOut)
async def erase_user(user_id: str, body: EraseIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Erase a user's personal data (tenant admins); the user becomes a tombstone."""
    return await svc.privacy.erasure.erase(principal, user_id, body.confirm)
