"""The agent desk: canned replies, internal notes, suggested replies, saving an answer to the
knowledge base, the visitor's CSAT rating, and reports (``warbler/support/desk/``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field

from warbler.api.deps import Auth, Svc
from warbler.api.kb_curated import CuratedAnswerOut
from warbler.api.schemas import Request
from warbler.kb.curated import MAX_ANSWER_CHARS, MAX_QUESTION_CHARS
from warbler.support.desk.canned import MAX_QUERY_CHARS, MAX_TEXT_CHARS, MAX_TITLE_CHARS
from warbler.support.desk.csat import MAX_COMMENT_CHARS
from warbler.support.desk.notes import MAX_NOTE_CHARS, MAX_PAGE

router = APIRouter(prefix="/support", tags=["customer service"])

_SHORTCUT_HELP = "a-z, 0-9, '_' and '-', up to 40 (a leading '/' is dropped); unique in the tenant."


# -- canned replies ---------------------------------------------------------------------------


class CannedIn(Request):
    shortcut: str = Field(min_length=1, max_length=41, description=_SHORTCUT_HELP)
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    team_id: str | None = Field(None, max_length=26, description="None: every team.")


class CannedUpdateIn(Request):
    shortcut: str | None = Field(None, min_length=1, max_length=41, description=_SHORTCUT_HELP)
    title: str | None = Field(None, min_length=1, max_length=MAX_TITLE_CHARS)
    text: str | None = Field(None, min_length=1, max_length=MAX_TEXT_CHARS)
    team_id: str | None = Field(None, max_length=26, description="null: every team.")


class CannedOut(BaseModel):
    id: str
    shortcut: str
    title: str
    text: str
    team_id: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


@router.get("/canned", response_model=list[CannedOut])
async def list_canned(
    principal: Auth,
    svc: Svc,
    team_id: Annotated[
        str | None, Query(max_length=26, description="That team's replies and every team's.")
    ] = None,
    q: Annotated[
        str | None,
        Query(max_length=MAX_QUERY_CHARS, description="Prefix of the shortcut or the title."),
    ] = None,
) -> list[dict[str, Any]]:
    """Canned replies by shortcut (agents)."""
    return await svc.support_desk.canned.list(principal, team_id=team_id, q=q)


@router.post("/canned", response_model=CannedOut, status_code=status.HTTP_201_CREATED)
async def create_canned(body: CannedIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Add a canned reply (agents; 409 ``shortcut_taken`` when the shortcut is used)."""
    return await svc.support_desk.canned.create(
        principal, shortcut=body.shortcut, title=body.title, text=body.text,
        team_id=body.team_id,
    )  # fmt: skip


@router.patch("/canned/{canned_id}", response_model=CannedOut)
async def update_canned(
    canned_id: str, body: CannedUpdateIn, principal: Auth, svc: Svc
) -> dict[str, Any]:
    """Change a canned reply (its author, or an admin)."""
    fields = body.model_dump(exclude_unset=True)
    return await svc.support_desk.canned.update(
        principal, canned_id, shortcut=fields.get("shortcut"), title=fields.get("title"),
        text=fields.get("text"), team_id=fields.get("team_id"),
        clear_team="team_id" in fields and fields["team_id"] is None,
    )  # fmt: skip


@router.delete("/canned/{canned_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_canned(canned_id: str, principal: Auth, svc: Svc) -> None:
    await svc.support_desk.canned.delete(principal, canned_id)


# -- internal notes ---------------------------------------------------------------------------


class NoteIn(Request):
    text: str = Field(min_length=1, max_length=MAX_NOTE_CHARS)


class PersonOut(BaseModel):
    id: str
    display_name: str | None


class NoteOut(BaseModel):
    id: str
    conversation_id: str
    ticket_id: str | None
    author: PersonOut
    text: str
    created_at: datetime


@router.get("/conversations/{conversation_id}/notes", response_model=list[NoteOut])
async def list_notes(
    conversation_id: str,
    principal: Auth,
    svc: Svc,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> list[dict[str, Any]]:
    """The newest notes, oldest first (agents; never shown to the visitor)."""
    return await svc.support_desk.notes.list(principal, conversation_id, limit=limit)


@router.post(
    "/conversations/{conversation_id}/notes",
    response_model=NoteOut,
    status_code=status.HTTP_201_CREATED,
)
async def add_note(conversation_id: str, body: NoteIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """An internal note on the conversation (agents only; the visitor never sees it)."""
    return await svc.support_desk.notes.add(principal, conversation_id, body.text)


# -- suggested reply and saving an answer -------------------------------------------------


class CitationOut(BaseModel):
    kb_id: str
    document_id: str | None
    title: str
    title_path: str
    link: str | None
    chunk_id: str | None
    curated_answer_id: str | None


class QuestionOut(BaseModel):
    message_id: str
    text: str | None


class SuggestionOut(BaseModel):
    ticket_id: str
    question: QuestionOut = Field(description="The visitor's message it answers.")
    text: str
    sources: list[CitationOut]
    grounded: bool = Field(description="Backed by the knowledge base (cited, not a refusal).")
    status: str = Field(description="answered | fallback | curated | no_answer | apology")
    curated_answer_id: str | None


@router.get("/tickets/{ticket_id}/suggestion", response_model=SuggestionOut)
async def suggestion(ticket_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    """What the support bot would answer the visitor's last question; not posted. Counts
    against the bot's quotas (429 ``quota_exceeded``)."""
    return await svc.support_desk.suggestions.suggest(principal, ticket_id)


class CuratedSaveIn(Request):
    kb_id: str = Field(max_length=26)
    question: str | None = Field(
        None, min_length=1, max_length=MAX_QUESTION_CHARS,
        description="Default: the visitor's question before the agent's answer.",
    )  # fmt: skip
    answer: str | None = Field(None, min_length=1, max_length=MAX_ANSWER_CHARS)
    answer_message_id: str | None = Field(
        None, max_length=26, description="Default (with no answer): the agent's last message."
    )


@router.post(
    "/tickets/{ticket_id}/curated",
    response_model=CuratedAnswerOut,
    status_code=status.HTTP_201_CREATED,
)
async def save_curated(
    ticket_id: str, body: CuratedSaveIn, principal: Auth, svc: Svc
) -> dict[str, Any]:
    """Save the agent's answer as a curated answer (agents: to the support bot's knowledge
    bases; admins: any). 409 ``already_curated`` when the question already has one."""
    return await svc.support_desk.curated.save(
        principal, ticket_id, kb_id=body.kb_id, question=body.question, answer=body.answer,
        answer_message_id=body.answer_message_id,
    )  # fmt: skip


# -- CSAT -------------------------------------------------------------------------------------


class CsatIn(Request):
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(None, max_length=MAX_COMMENT_CHARS)


class CsatOut(BaseModel):
    ticket_id: str
    conversation_id: str
    score: int
    comment: str | None
    rated_at: datetime


@router.post("/tickets/{ticket_id}/csat", response_model=CsatOut, status_code=201)
async def rate(ticket_id: str, body: CsatIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """The ticket's visitor rates it 1-5, once it is resolved (409 ``not_resolved``), once
    (409 ``already_rated``)."""
    return await svc.support_desk.csat.submit(
        principal, ticket_id, score=body.score, comment=body.comment
    )


# -- reports ----------------------------------------------------------------------------------


class DurationsOut(BaseModel):
    median: float | None
    average: float | None
    p90: float | None
    count: int = Field(description="Tickets measured.")


class CsatSummaryOut(BaseModel):
    average: float | None
    count: int
    distribution: dict[str, int] = Field(description='{"1": n, ..., "5": n}')


class SlaOut(BaseModel):
    first_response_met: int
    first_response_breached: int
    resolution_met: int
    resolution_breached: int


class AgentFiguresOut(BaseModel):
    agent_id: str
    display_name: str | None
    tickets: int
    resolved: int
    first_response_median: float | None
    resolution_median: float | None
    csat_average: float | None
    csat_count: int


class TeamFiguresOut(BaseModel):
    team_id: str | None = Field(description="null: tickets of no team.")
    name: str | None
    tickets: int
    resolved: int
    first_response_seconds: DurationsOut
    resolution_seconds: DurationsOut
    csat: CsatSummaryOut
    sla: SlaOut


class ReportOut(BaseModel):
    since: datetime
    until: datetime
    team_id: str | None
    tickets: int = Field(description="Tickets queued in [since, until).")
    resolved: int
    first_response_seconds: DurationsOut
    resolution_seconds: DurationsOut
    csat: CsatSummaryOut
    sla: SlaOut
    reasons: dict[str, int]
    agents: list[AgentFiguresOut]
    teams: list[TeamFiguresOut]


@router.get("/reports", response_model=ReportOut)
async def reports(
    principal: Auth,
    svc: Svc,
    since: Annotated[datetime | None, Query(description="Default: until - 30 days.")] = None,
    until: Annotated[datetime | None, Query(description="Default: now.")] = None,
    team_id: Annotated[str | None, Query(max_length=26)] = None,
) -> dict[str, Any]:
    """First-response and resolution times, SLA, CSAT, reasons, per agent and team, over
    the tickets queued in ``[since, until)`` (at most 366 days)."""
    return await svc.support_desk.reports.get(principal, since=since, until=until, team_id=team_id)
