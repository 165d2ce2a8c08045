"""Liveness (``GET /health``) and readiness (``GET /ready``) for load balancers and orchestrators.

Both live outside ``/api/v1`` and need no credentials. See docs/deploy.md.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from warbler import __version__
from warbler.ops.readiness import Readiness

router = APIRouter(tags=["ops"])


class HealthOut(BaseModel):
    status: Literal["ok"]
    node: str = Field(description="WARBLER_NODE_ID, or host:pid.")
    version: str


class ReadyOut(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, dict[str, Any]] = Field(
        description="lifecycle, database, migrations and (with WARBLER_REDIS_URL) redis; "
        "each has `ok`, and `latency_ms` or `error`."
    )
    node: str
    version: str


def install(app: FastAPI) -> None:
    """Mount the routes (no prefix) and give the app the readiness state they report."""
    services = app.state.services
    app.state.readiness = Readiness(services.db, services.settings)
    app.include_router(router)


def _node(request: Request) -> str:
    return str(request.app.state.services.settings.effective_node_id)


@router.get("/health", response_model=HealthOut)
async def health(request: Request) -> dict[str, Any]:
    """Liveness: the process answers. Touches no dependency, so a database outage never
    gets a node restarted; it stays 200 while the node drains."""
    return {"status": "ok", "node": _node(request), "version": __version__}


@router.get(
    "/ready",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "a check failed, or the node is draining"}},
)
async def ready(request: Request) -> JSONResponse:
    """Readiness: route traffic here. 503 while the database does not answer within
    WARBLER_READY_TIMEOUT_SECONDS, the schema is not at the code's migration head, Redis (when
    configured) does not answer PING, or the node is shutting down."""
    readiness: Readiness = request.app.state.readiness
    ok, checks = await readiness.report()
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": checks,
        "node": _node(request),
        "version": __version__,
    }
    # Never cached: a stale 200 would keep traffic on a node that has started draining.
    return JSONResponse(body, status_code=200 if ok else 503, headers={"Cache-Control": "no-store"})
