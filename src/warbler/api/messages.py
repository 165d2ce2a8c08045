"""Messages in a conversation: send, history, one message, edit, recall, delete for me."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response, status

from warbler.api.deps import Auth, PrincipalOnly, Svc
from warbler.api.schemas import HistoryOut, MessageEditIn, MessageIn, MessageOut
from warbler.errors import InvalidRequest
from warbler.im.messages import Draft

router = APIRouter(prefix="/conversations/{conversation_id}/messages", tags=["messages"])


@router.post(
    "",
    response_model=MessageOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": MessageOut, "description": "already stored (same client_msg_id)"}},
)
async def send(
    conversation_id: str, body: MessageIn, principal: PrincipalOnly, svc: Svc
) -> Response:
    """Send a message. It is stored before this answers; resending the same
    ``client_msg_id`` returns the stored message with status 200."""
    message, created = await svc.messages.send(
        principal, conversation_id, Draft(**body.model_dump())
    )
    # The hot path: the view already has MessageOut's exact shape, so it is encoded directly
    # (the same bytes as through the model, ~60 µs a send cheaper; tests/integration/
    # test_send_batch.py compares the two).
    return Response(
        orjson.dumps(message, option=orjson.OPT_UTC_Z),
        status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        media_type="application/json",
    )


@router.get("", response_model=HistoryOut)
async def history(
    conversation_id: str,
    principal: Auth,
    svc: Svc,
    before_seq: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    after_seq: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """A page of history in ascending seq: the newest page by default, older with
    ``before_seq``, newer with ``after_seq``."""
    return await svc.messages.history(
        principal, conversation_id, before_seq=before_seq, after_seq=after_seq, limit=limit
    )


@router.get("/{message_id}", response_model=MessageOut)
async def get(conversation_id: str, message_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    return await svc.messages.get(principal, conversation_id, message_id)


@router.patch("/{message_id}", response_model=MessageOut)
async def edit(
    conversation_id: str, message_id: str, body: MessageEditIn, principal: Auth, svc: Svc
) -> dict[str, Any]:
    """The sender edits the text (or a card's data) of their message."""
    if body.text is None and body.data is None:
        raise InvalidRequest("give text or data to change")
    return await svc.messages.edit(
        principal, conversation_id, message_id, text=body.text, data=body.data
    )


@router.post("/{message_id}/recall", response_model=MessageOut)
async def recall(
    conversation_id: str, message_id: str, principal: Auth, svc: Svc
) -> dict[str, Any]:
    """Take a message back for everyone: the sender within the recall window, or a group
    owner/admin at any time. Its content is erased; its place in the sequence stays."""
    return await svc.messages.recall(principal, conversation_id, message_id)


@router.delete("/{message_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_for_me(conversation_id: str, message_id: str, principal: Auth, svc: Svc) -> None:
    """Hide a message from my own history, search and devices; others still see it."""
    await svc.messages.delete_for_me(principal, conversation_id, message_id)
