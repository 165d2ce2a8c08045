"""Customer service for visitors and agents: the visitor's state, the queue, tickets, histories,
pick / take over / transfer / resolve (docs/support.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from warbler.api.deps import Auth, Svc
from warbler.api.schemas import HistoryOut
from warbler.api.support_schemas import (
    QueueEntryOut,
    State,
    SupportConversationOut,
    TicketDetailOut,
    TicketListOut,
    TicketOut,
    TicketState,
    TransferIn,
    TransitionOut,
    VisitorStateOut,
)

router = APIRouter(prefix="/support", tags=["customer service"])
Limit = Annotated[int, Query(ge=1, le=200)]


@router.get("/me", response_model=VisitorStateOut)
async def me(principal: Auth, svc: Svc) -> dict[str, Any]:
    """The visitor's own support conversation: who has it, their place in the queue, whether
    the team is open, a rating still to give (a visitor's token)."""
    return await svc.support.me(principal)


@router.get("/queue", response_model=list[QueueEntryOut])
async def waiting_queue(principal: Auth, svc: Svc, limit: Limit = 100) -> list[dict[str, Any]]:
    """Waiting tickets in the order they will be served (positions count per team)."""
    return await svc.support.tickets.queue(principal, limit=limit)


@router.get("/tickets", response_model=list[TicketListOut])
async def list_tickets(
    principal: Auth,
    svc: Svc,
    state: TicketState | None = None,
    assignee_id: Annotated[str | None, Query(description='A user id, or "me".')] = None,
    team_id: str | None = None,
    limit: Limit = 50,
) -> list[dict[str, Any]]:
    """Tickets, newest first."""
    return await svc.support.tickets.list_tickets(
        principal, state=state, assignee_id=assignee_id, team_id=team_id, limit=limit
    )


@router.get("/tickets/{ticket_id}", response_model=TicketDetailOut)
async def get_ticket(ticket_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    """A ticket with its conversation's state and the whole transition history (audited as
    ``support.read``)."""
    return await svc.support.tickets.detail(principal, ticket_id)


@router.post("/tickets/{ticket_id}/pick", response_model=TicketOut)
async def pick(ticket_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Assign a waiting ticket to yourself; you join the conversation."""
    return await svc.support.pick(principal, ticket_id)


@router.post("/tickets/{ticket_id}/transfer", response_model=TicketOut)
async def transfer(ticket_id: str, body: TransferIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Hand the ticket to another agent (assigned at once) or queue it for a team."""
    return await svc.support.transfer(
        principal, ticket_id, agent_id=body.agent_id, team_id=body.team_id, note=body.note
    )


@router.post("/tickets/{ticket_id}/resolve", response_model=TicketOut)
async def resolve(ticket_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Close the ticket: the visitor is asked for a rating and the bot answers again."""
    return await svc.support.resolve(principal, ticket_id)


@router.get("/conversations", response_model=list[SupportConversationOut])
async def list_conversations(
    principal: Auth, svc: Svc, state: State | None = None, limit: Limit = 50
) -> list[dict[str, Any]]:
    """Support conversations, most recently changed first; ``state=bot`` lists those the bot
    handles (to take over)."""
    return await svc.support.tickets.conversations(principal, state=state, limit=limit)


@router.get("/conversations/{conversation_id}/messages", response_model=HistoryOut)
async def history(
    conversation_id: str,
    principal: Auth,
    svc: Svc,
    before_seq: Annotated[int | None, Query(ge=1)] = None,
    limit: Limit = 50,
) -> dict[str, Any]:
    """The full history, the bot's turns with their sources (``data.ai``), for any agent,
    member or not (audited as ``support.read``)."""
    return await svc.support.tickets.history(
        principal, conversation_id, before_seq=before_seq, limit=limit
    )


@router.get("/conversations/{conversation_id}/transitions", response_model=list[TransitionOut])
async def transitions(conversation_id: str, principal: Auth, svc: Svc) -> list[dict[str, Any]]:
    """Every change of state: from, to, reason, who, when."""
    return await svc.support.tickets.transitions(principal, conversation_id)


@router.post("/conversations/{conversation_id}/takeover", response_model=TicketOut)
async def takeover(conversation_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Take the conversation from the bot (or the queue): assigned to you at once."""
    return await svc.support.takeover(principal, conversation_id)
