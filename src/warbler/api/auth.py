"""Login, sessions (access tokens, or a browser's cookie session), password changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field

from warbler.api.deps import Auth, Svc
from warbler.api.schemas import ErrorResponse, LoginIn, PasswordIn, SessionOut, TokenOut
from warbler.errors import InvalidRequest
from warbler.security.csrf import clear_session_cookies, set_session_cookies

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginCookieIn(LoginIn):
    cookie: bool = Field(
        False,
        description="true: for browsers. The token goes into an HttpOnly `warbler_session` "
        "cookie (not the body) and a `warbler_csrf` cookie holds the CSRF token that "
        "unsafe requests must echo in `X-CSRF-Token` (docs/security.md).",
    )


class CookieSessionOut(BaseModel):
    token_type: str = Field(description='"cookie"')
    token_id: str
    expires_at: datetime
    user_id: str
    tenant_id: str
    csrf_token: str = Field(description="The `warbler_csrf` cookie's value, for X-CSRF-Token.")


_LOGIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "wrong tenant, username or password"},
    429: {
        "model": ErrorResponse,
        "description": "`login_locked`: too many failed logins for this account or client "
        "address; retry after the Retry-After header's seconds",
    },
}


@router.post("/login", response_model=TokenOut | CookieSessionOut, responses=_LOGIN_ERRORS)
async def login(
    body: LoginCookieIn, svc: Svc, request: Request, response: Response
) -> dict[str, Any]:
    """Exchange a tenant slug, username and password for an access token (or, with
    ``"cookie": true``, a cookie session). Failed logins are throttled per account and per
    client address (429 ``login_locked``)."""
    device = body.device or request.headers.get("user-agent", "")[:200] or None
    token = await svc.auth.login(
        tenant_slug=body.tenant, username=body.username, password=body.password, device=device
    )
    if not body.cookie:
        return token
    csrf = set_session_cookies(
        response, token["access_token"], expires_at=token["expires_at"], secure=_https(request)
    )
    return {**{k: v for k, v in token.items() if k != "access_token"},
            "token_type": "cookie", "csrf_token": csrf}  # fmt: skip


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(principal: Auth, svc: Svc, request: Request, response: Response) -> None:
    """Revoke the access token this request was made with (and clear a cookie session)."""
    if principal.token_id is None:
        raise InvalidRequest("logout revokes an access token; API keys are revoked by admins")
    await svc.auth.revoke_token(principal, principal.token_id, action="auth.logout")
    clear_session_cookies(response, secure=_https(request))


@router.get("/tokens", response_model=list[SessionOut])
async def my_sessions(principal: Auth, svc: Svc) -> list[dict[str, Any]]:
    """My active sessions (one access token each)."""
    return await svc.auth.list_tokens(principal)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_session(token_id: str, principal: Auth, svc: Svc) -> None:
    await svc.auth.revoke_token(principal, token_id)


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        400: {"model": ErrorResponse, "description": "`weak_password`: details.rule says why"},
        403: {"model": ErrorResponse, "description": "the current password is wrong"},
    },
)
async def change_password(
    body: PasswordIn, principal: Auth, svc: Svc, request: Request, response: Response
) -> None:
    """Change my password. Every session of mine, this one included, is revoked: log in
    again with the new password (a cookie session's cookies are cleared)."""
    await svc.users.change_password(principal, current=body.current_password, new=body.new_password)
    await svc.audit.record(
        tenant_id=principal.tenant_id, actor=principal, action="auth.password_changed",
        target_type="user", target_id=principal.user_id, data={"sessions_revoked": "all"},
    )  # fmt: skip
    clear_session_cookies(response, secure=_https(request))


def _https(request: Request) -> bool:
    """Served over TLS, directly or behind a trusted proxy (``security/proxy.py`` sets it)."""
    return request.url.scheme == "https"
