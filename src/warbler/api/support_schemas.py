"""Request and response bodies of the customer-service API (``api/support.py``,
``api/support_admin.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from warbler.api.schemas import Request
from warbler.support.handoff import MAX_NOTE_CHARS
from warbler.support.teams import MAX_NAME, MAX_SLA_SECONDS
from warbler.support.tenant_settings import MAX_ORIGINS, MAX_WORDS

State = Literal["bot", "waiting", "assigned", "resolved"]
TicketState = Literal["waiting", "assigned", "resolved"]
Status = Literal["online", "away", "offline"]


class PersonOut(BaseModel):
    id: str
    display_name: str


class OfficeOut(BaseModel):
    open: bool
    next_open_at: datetime | None = Field(description="When a person is next there (UTC).")
    timezone: str


class TicketBriefOut(BaseModel):
    id: str
    state: TicketState
    reason: str
    position: int | None = Field(description="Place in the queue while waiting (1: next).")
    expected_wait_seconds: int | None
    assignee: PersonOut | None


class VisitorStateOut(BaseModel):
    conversation_id: str
    state: State
    locale: str
    bot_user_id: str | None
    ticket: TicketBriefOut | None
    office: OfficeOut
    csat_pending: str | None = Field(description="A resolved ticket waiting for a rating.")


class TicketOut(BaseModel):
    id: str
    conversation_id: str
    team_id: str | None
    state: TicketState
    reason: str = Field(description="The reason code that opened it (docs/support.md).")
    reason_detail: dict[str, Any]
    summary: str | None
    assignee_id: str | None
    queued_at: datetime
    assigned_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    sla_first_response_due: datetime | None
    sla_resolution_due: datetime | None
    csat_score: int | None
    csat_comment: str | None
    csat_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TicketListOut(TicketOut):
    visitor: PersonOut | None
    assignee: PersonOut | None
    conversation_state: State | None
    position: int | None = None


class SupportStateOut(BaseModel):
    conversation_id: str
    visitor_id: str
    bot_user_id: str | None
    team_id: str | None
    state: State
    ticket_id: str | None
    failed_answers: int
    locale: str
    created_at: datetime
    updated_at: datetime


class TransitionOut(BaseModel):
    id: int
    conversation_id: str
    ticket_id: str | None
    from_state: State
    to_state: State
    reason: str = Field(description="A reason code, or the action (pick, round_robin, ...).")
    actor_id: str | None = Field(description="Who did it; null: the system.")
    data: dict[str, Any]
    created_at: datetime


class TicketDetailOut(TicketListOut):
    conversation: SupportStateOut
    transitions: list[TransitionOut]


class QueueEntryOut(BaseModel):
    ticket_id: str
    conversation_id: str
    position: int
    reason: str
    queued_at: datetime
    waited_seconds: int
    team_id: str | None
    visitor: PersonOut | None
    preview: str | None = Field(description="The visitor's last text, cut to 200 characters.")
    summary: str | None
    sla_first_response_due: datetime | None


class SupportConversationOut(SupportStateOut):
    visitor: PersonOut | None
    preview: str | None
    ticket: TicketOut | None


class TransferIn(Request):
    agent_id: str | None = Field(None, description="Hand it to this agent (assigned at once).")
    team_id: str | None = Field(None, description="Or queue it for this team.")
    note: str | None = Field(None, max_length=MAX_NOTE_CHARS, description="An internal note.")


# -- admin ------------------------------------------------------------------------------


class AgentOut(BaseModel):
    user_id: str
    username: str
    display_name: str
    role: str
    status: Status
    capacity: int
    open_count: int = Field(description="Tickets assigned to them now.")
    team_ids: list[str]
    last_assigned_at: datetime | None
    status_changed_at: datetime


class AgentStatusIn(Request):
    status: Status


class AgentUpdateIn(Request):
    capacity: int | None = Field(None, ge=0, le=100, description="Conversations at once.")
    team_ids: list[str] | None = Field(None, max_length=100, description="Replaces their teams.")
    status: Status | None = None


_Interval = list[str]


class TeamIn(Request):
    name: str = Field(min_length=1, max_length=MAX_NAME)
    timezone: str = Field("UTC", max_length=64, description="An IANA zone: Asia/Shanghai.")
    office_hours: dict[str, list[_Interval]] = Field(
        default_factory=dict,
        description='{"mon": [["09:00", "18:00"]], ...}; empty: always open.',
    )
    holidays: list[str] = Field(default_factory=list, max_length=366, description="2026-12-25")
    sla_first_response_seconds: int | None = Field(None, gt=0, le=MAX_SLA_SECONDS)
    sla_resolution_seconds: int | None = Field(None, gt=0, le=MAX_SLA_SECONDS)
    member_ids: list[str] = Field(default_factory=list, max_length=1000)


class TeamUpdateIn(Request):
    name: str | None = Field(None, min_length=1, max_length=MAX_NAME)
    timezone: str | None = Field(None, max_length=64)
    office_hours: dict[str, list[_Interval]] | None = None
    holidays: list[str] | None = Field(None, max_length=366)
    sla_first_response_seconds: int | None = Field(None, gt=0, le=MAX_SLA_SECONDS)
    sla_resolution_seconds: int | None = Field(None, gt=0, le=MAX_SLA_SECONDS)
    member_ids: list[str] | None = Field(None, max_length=1000)


class TeamOut(BaseModel):
    id: str
    name: str
    timezone: str
    office_hours: dict[str, list[_Interval]]
    holidays: list[str]
    sla_first_response_seconds: int | None
    sla_resolution_seconds: int | None
    member_ids: list[str]
    created_at: datetime
    updated_at: datetime


_Words = list[str]


class SettingsIn(Request):
    bot_user_id: str | None = Field(None, description="The support bot's user id.")
    default_team_id: str | None = None
    escalate_keywords: _Words | None = Field(None, max_length=MAX_WORDS)
    negative_words: _Words | None = Field(None, max_length=MAX_WORDS)
    escalate_on_no_answer: bool | None = None
    widget_title: dict[str, str] | None = Field(None, description='{"en": ..., "zh": ...}')
    widget_greeting: dict[str, str] | None = None
    widget_color: str | None = Field(None, pattern=r"^#[0-9a-fA-F]{6}$")
    allowed_origins: list[str] | None = Field(None, max_length=MAX_ORIGINS)
    identity_secret: str | None = Field(
        None, max_length=500, description="Write-only; empty string or null removes it."
    )
    identity_required: bool | None = None


class SettingsOut(BaseModel):
    tenant_id: str
    widget_id: str
    bot_user_id: str | None
    default_team_id: str | None
    escalate_keywords: list[str]
    negative_words: list[str]
    escalate_on_no_answer: bool
    widget_title: dict[str, str]
    widget_greeting: dict[str, str]
    widget_color: str
    allowed_origins: list[str]
    identity_secret_set: bool
    identity_required: bool
    created_at: datetime
    updated_at: datetime
