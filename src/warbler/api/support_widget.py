"""The web widget's public API: its configuration and visitor sessions (no credentials: the
widget id in the path names the tenant; an identified visitor brings a signed token)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, status
from pydantic import BaseModel, Field

from warbler.api.deps import Svc
from warbler.api.schemas import ErrorResponse, UserOut
from warbler.api.schemas import Request as Body
from warbler.support.widget.identity import MAX_TOKEN_CHARS

router = APIRouter(prefix="/support/widget", tags=["support widget"])

WidgetId = Annotated[str, Path(max_length=40, description="The widget id of the <script> tag.")]


class OfficeOut(BaseModel):
    open: bool = Field(description="Whether people are answering now (the default team's hours).")
    next_open_at: datetime | None = Field(description="When people answer next, if closed.")
    timezone: str | None


class WidgetConfigOut(BaseModel):
    widget_id: str
    lang: Literal["en", "zh"]
    title: str
    greeting: str
    color: str
    identity_required: bool
    office: OfficeOut


class SessionIn(Body):
    visitor_key: str | None = Field(
        None, max_length=100,
        description="An anonymous visitor's resume key from an earlier session: the same "
        "visitor and conversation come back. Omit on a first visit.",
    )  # fmt: skip
    identity_token: str | None = Field(
        None, max_length=MAX_TOKEN_CHARS,
        description="An HS256 JWT signed by your backend with the tenant's identity secret "
        "(claims sub, exp, optional name, email, iat): an identified visitor.",
    )  # fmt: skip
    name: str | None = Field(None, max_length=100, description="An anonymous visitor's name.")
    locale: Literal["en", "zh"] | None = None


class BotOut(BaseModel):
    id: str
    display_name: str


class VisitorSessionOut(BaseModel):
    access_token: str = Field(description="The visitor's bearer token (REST and WebSocket).")
    token_type: str
    expires_at: datetime
    user: UserOut
    identified: bool
    conversation_id: str = Field(description="The visitor's support conversation.")
    bot: BotOut | None = Field(description="The support bot that answers first.")
    visitor_key: str | None = Field(
        None, description="Anonymous visitors: keep it (localStorage) and present it next time."
    )


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "invalid_identity_token, "
          "identity_token_expired or identity_required"},
    404: {"model": ErrorResponse, "description": "no such widget"},
    429: {"model": ErrorResponse, "description": "too many sessions from this IP"},
}  # fmt: skip


@router.get("/{widget_id}/config", response_model=WidgetConfigOut, responses=_ERRORS)
async def widget_config(
    widget_id: WidgetId,
    svc: Svc,
    lang: Annotated[str | None, Query(max_length=20, description="en or zh (zh-CN...)")] = None,
) -> dict[str, Any]:
    """What the widget shows before a visitor writes: title, greeting, colour, office hours."""
    return await svc.support_widget.config(widget_id, lang)


@router.post(
    "/{widget_id}/sessions",
    response_model=VisitorSessionOut,
    status_code=status.HTTP_201_CREATED,
    responses=_ERRORS,
)
async def start_session(
    widget_id: WidgetId, body: SessionIn, svc: Svc, request: Request
) -> dict[str, Any]:
    """Start a visitor session: an access token for the visitor and their support
    conversation (the same one again for a returning visitor)."""
    return await svc.support_widget.create_session(
        widget_id,
        client_ip=request.client.host if request.client else "unknown",
        visitor_key=body.visitor_key,
        identity_token=body.identity_token,
        name=body.name,
        locale=body.locale,
    )
