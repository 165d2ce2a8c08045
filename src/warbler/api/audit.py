"""The audit log, read-only: list with filters, and a streamed export (JSON Lines or CSV).

Tenant owners and admins, or an API key with the ``audit:read`` scope. Every export is itself
audited (``audit.export``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from warbler.api.deps import Auth, Svc
from warbler.api.schemas import ErrorResponse
from warbler.clock import utcnow
from warbler.errors import InvalidRequest
from warbler.im.principal import Principal
from warbler.services import Services

router = APIRouter(prefix="/audit", tags=["audit"])

SCOPE = "audit:read"
MAX_ID = 2**63 - 1  # ids are BIGINT
CSV_COLUMNS = ("id", "created_at", "actor_kind", "actor_id", "action", "target_type",
               "target_id", "ip", "user_agent", "data")  # fmt: skip
_FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorResponse, "description": "needs an owner/admin or the audit:read scope"}
}


class AuditEntryOut(BaseModel):
    id: int = Field(description="Increasing; pass the last one as before_id for the next page.")
    created_at: datetime
    actor_id: str | None = Field(description="A user id, an API key id, or null (system).")
    actor_kind: str = Field(description="user | api_key | system | anonymous")
    action: str = Field(examples=["auth.login", "api_key.created", "support.read"])
    target_type: str | None
    target_id: str | None
    ip: str | None = Field(description="The client address (see WARBLER_TRUSTED_PROXIES).")
    user_agent: str | None
    data: dict[str, Any] = Field(description="Identifiers and setting names; never secrets.")


def _utc(at: datetime | None, name: str) -> datetime | None:
    """Query times without a zone are UTC; a time that does not exist in UTC is a 400."""
    if at is None:
        return None
    try:
        return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+01:00 is before year 1 in UTC
        raise InvalidRequest(f"{name} is out of range", details={"field": name}) from exc


@router.get("", response_model=list[AuditEntryOut], responses=_FORBIDDEN)
async def list_entries(
    principal: Auth,
    svc: Svc,
    action: Annotated[
        str | None, Query(max_length=60, description="Exact, or a prefix: `auth.*`.")
    ] = None,
    actor_id: Annotated[str | None, Query(max_length=26)] = None,
    target_type: Annotated[str | None, Query(max_length=40)] = None,
    target_id: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[datetime | None, Query(description="Inclusive (UTC if no zone).")] = None,
    until: Annotated[datetime | None, Query(description="Exclusive.")] = None,
    before_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Entries older than this id.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """The tenant's audit entries, newest first."""
    principal.require_admin(SCOPE)
    return await svc.audit.query(
        principal.tenant_id, action=action, actor_id=actor_id, target_type=target_type,
        target_id=target_id, since=_utc(since, "since"), until=_utc(until, "until"),
        before_id=before_id,
        limit=limit,
    )  # fmt: skip


@router.get(
    "/export",
    responses={
        **_FORBIDDEN,
        200: {
            "description": "JSON Lines (one entry per line) or CSV (header row; `data` as JSON)",
            "content": {"application/x-ndjson": {}, "text/csv": {}},
        },
    },
)
async def export(
    principal: Auth,
    svc: Svc,
    format: Literal["jsonl", "csv"] = "jsonl",
    since: Annotated[datetime | None, Query(description="Inclusive (UTC if no zone).")] = None,
    until: Annotated[datetime | None, Query(description="Exclusive.")] = None,
) -> StreamingResponse:
    """Every entry of the range, oldest first, streamed. The export is itself audited."""
    principal.require_admin(SCOPE)
    since, until = _utc(since, "since"), _utc(until, "until")
    await svc.audit.record(
        tenant_id=principal.tenant_id, actor=principal, action="audit.export",
        target_type="audit_log", data={"format": format, "since": _iso(since),
                                       "until": _iso(until)},
    )  # fmt: skip
    entries = svc.audit.export(principal.tenant_id, since=since, until=until)
    lines = _jsonl(entries) if format == "jsonl" else _csv(entries)
    media = "application/x-ndjson" if format == "jsonl" else "text/csv; charset=utf-8"
    name = f"audit-{utcnow():%Y%m%dT%H%M%SZ}.{format}"
    return StreamingResponse(
        lines, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


async def _jsonl(entries: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async for entry in entries:
        yield orjson.dumps(entry) + b"\n"


async def _csv(entries: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    yield _csv_row(CSV_COLUMNS)
    async for entry in entries:
        row = {**entry, "created_at": entry["created_at"].isoformat(),
               "data": orjson.dumps(entry["data"]).decode()}  # fmt: skip
        yield _csv_row(_cell(row[c]) for c in CSV_COLUMNS)


def _csv_row(cells: Iterable[Any]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow(list(cells))
    return out.getvalue().encode()


def _cell(value: Any) -> str:
    """A spreadsheet must not run a user agent as a formula (CSV injection): text that
    starts with = + - @ or a control character is prefixed with a quote."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


async def record_change(
    svc: Services,
    principal: Principal,
    action: str,
    target_type: str,
    target_id: str | None,
    fields: Iterable[str] | None = None,
    **data: Any,
) -> None:
    """Audit a settings change made through the API (webhooks, AI providers, bots, tools,
    knowledge-base permissions): who, what, which fields; never the values of secrets."""
    if fields is not None:
        data["fields"] = sorted(fields)
    await svc.audit.record(
        tenant_id=principal.tenant_id, actor=principal, action=action,
        target_type=target_type, target_id=target_id, data=data,
    )  # fmt: skip
