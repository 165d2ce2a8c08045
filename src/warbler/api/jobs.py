"""Background jobs for tenant admins: what is queued, what failed and why, retry a job."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from warbler.api.deps import Auth, Svc
from warbler.jobs.queue import job_view

router = APIRouter(prefix="/jobs", tags=["jobs"])


class JobOut(BaseModel):
    id: str
    kind: str
    ref: str | None
    status: str
    attempts: int
    max_attempts: int
    run_at: datetime
    locked_by: str | None
    locked_until: datetime | None
    last_error: str | None
    result: dict[str, Any] | None
    payload: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@router.get("", response_model=list[JobOut])
async def list_jobs(
    principal: Auth,
    svc: Svc,
    status: Literal["pending", "running", "done", "dead"] | None = None,
    kind: Annotated[str | None, Query(max_length=60)] = None,
    ref: Annotated[str | None, Query(max_length=60)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[str | None, Query(max_length=26, description="A job id.")] = None,
) -> list[dict[str, Any]]:
    """The tenant's jobs, newest first."""
    principal.require_admin()
    jobs = await svc.jobs.queue.list(
        principal.tenant_id, status=status, kind=kind, ref=ref, limit=limit, before=before
    )
    return [job_view(j) for j in jobs]


@router.post("/{job_id}/retry", response_model=JobOut)
async def retry(job_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Run a job again now with a fresh round of attempts (not while it is running)."""
    principal.require_admin()
    return job_view(await svc.jobs.queue.retry(principal.tenant_id, job_id))
