"""Bots: create, list, read, change and delete a tenant's AI assistants."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from warbler.api.ai_schemas import BotIn, BotOut, BotPublicOut, BotUpdateIn
from warbler.api.audit import record_change
from warbler.api.deps import Auth, Svc

router = APIRouter(prefix="/bots", tags=["bots"])


@router.post("", response_model=BotOut, status_code=status.HTTP_201_CREATED)
async def create(body: BotIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Create a bot and its user (kind "bot"); add that user to conversations to talk to it."""
    fields = body.model_dump(exclude_unset=True, exclude={"username"})
    out = await svc.bots.create(principal, fields, username=body.username)
    await record_change(svc, principal, "bot.created", "bot", out["id"], fields)
    return out


@router.get("", response_model=list[BotOut | BotPublicOut])
async def list_bots(principal: Auth, svc: Svc) -> list[dict[str, Any]]:
    """Every bot of the tenant. Admins see the configuration; others name, description, avatar."""
    return await svc.bots.list(principal)


@router.get("/{bot_id}", response_model=BotOut | BotPublicOut)
async def get(bot_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    return await svc.bots.get(principal, bot_id)


@router.patch("/{bot_id}", response_model=BotOut)
async def update(bot_id: str, body: BotUpdateIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Change the fields given; the bot user's display name and avatar follow."""
    changes = body.model_dump(exclude_unset=True)
    out = await svc.bots.update(principal, bot_id, changes)
    await record_change(svc, principal, "bot.updated", "bot", bot_id, changes)
    return out


@router.delete("/{bot_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(bot_id: str, principal: Auth, svc: Svc) -> None:
    """Delete the bot's configuration; its user is disabled (past messages keep their sender)."""
    await svc.bots.delete(principal, bot_id)
    await record_change(svc, principal, "bot.deleted", "bot", bot_id)
