"""Login, sessions (access tokens), password changes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from warbler.api.deps import Auth, Svc
from warbler.api.schemas import LoginIn, PasswordIn, SessionOut, TokenOut
from warbler.errors import InvalidRequest

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", response_model=TokenOut)
async def login(body: LoginIn, svc: Svc, request: Request) -> dict[str, Any]:
    """Exchange a tenant slug, username and password for an access token."""
    device = body.device or request.headers.get("user-agent", "")[:200] or None
    return await svc.auth.login(
        tenant_slug=body.tenant, username=body.username, password=body.password, device=device
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(principal: Auth, svc: Svc) -> None:
    """Revoke the access token this request was made with."""
    if principal.token_id is None:
        raise InvalidRequest("logout revokes an access token; API keys are revoked by admins")
    await svc.auth.revoke_token(principal, principal.token_id)


@router.get("/tokens", response_model=list[SessionOut])
async def my_sessions(principal: Auth, svc: Svc) -> list[dict[str, Any]]:
    """My active sessions (one access token each)."""
    return await svc.auth.list_tokens(principal)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_session(token_id: str, principal: Auth, svc: Svc) -> None:
    await svc.auth.revoke_token(principal, token_id)


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(body: PasswordIn, principal: Auth, svc: Svc) -> None:
    """Change my password; every session of mine, this one included, is revoked."""
    await svc.users.change_password(principal, current=body.current_password, new=body.new_password)
