"""Conversations, their members, my settings in them, read markers and typing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from warbler.api.deps import Auth, Svc
from warbler.api.schemas import (
    ConversationCreateIn,
    ConversationOut,
    ConversationUpdateIn,
    MemberOut,
    MemberRoleIn,
    MembersAddIn,
    ReadIn,
    ReadOut,
    ReceiptOut,
    SettingsIn,
    TypingIn,
)
from warbler.errors import InvalidRequest

router = APIRouter(prefix="/conversations", tags=["conversations"])


@router.post(
    "",
    response_model=ConversationOut,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": ConversationOut, "description": "the existing direct conversation"}},
)
async def create(
    body: ConversationCreateIn, principal: Auth, svc: Svc, response: Response
) -> dict[str, Any]:
    """A direct conversation with ``user_id`` (the existing one is returned with 200), or a
    group with ``title`` and ``member_ids`` (the creator becomes its owner)."""
    if body.kind == "direct":
        if not body.user_id or body.member_ids or body.title:
            raise InvalidRequest("a direct conversation takes only user_id")
        view, created = await svc.conversations.open_direct(principal, body.user_id)
        if not created:
            response.status_code = status.HTTP_200_OK
        return view
    if body.user_id:
        raise InvalidRequest("a group takes title and member_ids, not user_id")
    return await svc.conversations.create_group(
        principal, title=body.title or "", member_ids_=body.member_ids
    )


@router.get("", response_model=list[ConversationOut])
async def list_mine(
    principal: Auth,
    svc: Svc,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    """My conversations, most recently active first, with unread counts and last message."""
    return await svc.conversations.list_mine(principal, limit=limit, offset=offset)


@router.get("/{conversation_id}", response_model=ConversationOut)
async def get(conversation_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    return await svc.conversations.get(principal, conversation_id)


@router.patch("/{conversation_id}", response_model=ConversationOut)
async def update(
    conversation_id: str, body: ConversationUpdateIn, principal: Auth, svc: Svc
) -> dict[str, Any]:
    """Group owner/admins change the title or announcement."""
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise InvalidRequest("nothing to change")
    return await svc.conversations.update(principal, conversation_id, changes)


@router.get("/{conversation_id}/members", response_model=list[MemberOut])
async def members(conversation_id: str, principal: Auth, svc: Svc) -> list[dict[str, Any]]:
    return await svc.conversations.members(principal, conversation_id)


@router.post("/{conversation_id}/members", response_model=list[MemberOut], status_code=201)
async def add_members(
    conversation_id: str, body: MembersAddIn, principal: Auth, svc: Svc
) -> list[dict[str, Any]]:
    """Group owner/admins add members; those already in are skipped."""
    return await svc.conversations.add_members(principal, conversation_id, body.user_ids)


@router.delete("/{conversation_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(conversation_id: str, user_id: str, principal: Auth, svc: Svc) -> None:
    """Remove a member (group owner/admins), or leave: use your own user id."""
    await svc.conversations.remove_member(principal, conversation_id, user_id)


@router.patch("/{conversation_id}/members/{user_id}", response_model=MemberOut)
async def set_role(
    conversation_id: str, user_id: str, body: MemberRoleIn, principal: Auth, svc: Svc
) -> dict[str, Any]:
    """The owner promotes, demotes, or hands ownership over (role = owner)."""
    return await svc.conversations.set_role(principal, conversation_id, user_id, body.role)


@router.put("/{conversation_id}/settings", response_model=ConversationOut)
async def my_settings(
    conversation_id: str, body: SettingsIn, principal: Auth, svc: Svc
) -> dict[str, Any]:
    """My own settings in this conversation (muted)."""
    return await svc.conversations.set_muted(principal, conversation_id, body.muted)


@router.post("/{conversation_id}/read", response_model=ReadOut)
async def mark_read(
    conversation_id: str, body: ReadIn, principal: Auth, svc: Svc
) -> dict[str, Any]:
    """Move my read marker to ``seq``; members get a receipt event."""
    return await svc.receipts.mark_read(principal, conversation_id, body.seq)


@router.get("/{conversation_id}/receipts", response_model=list[ReceiptOut])
async def receipts(conversation_id: str, principal: Auth, svc: Svc) -> list[dict[str, Any]]:
    """Each member's read marker."""
    return await svc.receipts.receipts(principal, conversation_id)


@router.post("/{conversation_id}/typing", status_code=status.HTTP_204_NO_CONTENT)
async def typing(conversation_id: str, body: TypingIn, principal: Auth, svc: Svc) -> None:
    """Tell the other members I am typing (throttled to one event per 2 s)."""
    await svc.conversations.get(principal, conversation_id)
    svc.presence.typing(principal.tenant_id, principal.require_user(), conversation_id, body.state)
