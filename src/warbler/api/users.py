"""The tenant's user directory, profiles, presence, and admin user management."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import Field

from warbler.api.deps import Auth, Svc
from warbler.api.schemas import (
    ErrorResponse,
    IssueTokenIn,
    MeUpdateIn,
    PresenceOut,
    TokenOut,
    UserCreateIn,
    UserOut,
    UserUpdateIn,
)
from warbler.api.schemas import Request as RequestModel
from warbler.im.principal import Principal
from warbler.services import Services

router = APIRouter(tags=["users"])


class PasswordResetIn(RequestModel):
    new_password: str = Field(max_length=256)


@router.get("/users/me", response_model=UserOut)
async def me(principal: Auth, svc: Svc) -> dict[str, Any]:
    return await svc.users.get(principal.tenant_id, principal.require_user())


@router.patch("/users/me", response_model=UserOut)
async def update_me(body: MeUpdateIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    return await svc.users.update(
        principal, principal.require_user(), body.model_dump(exclude_unset=True)
    )


@router.get("/users", response_model=list[UserOut])
async def directory(
    principal: Auth,
    svc: Svc,
    q: Annotated[str | None, Query(max_length=100)] = None,
    kind: Annotated[str | None, Query(pattern="^(human|bot|visitor)$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Users of my tenant, filtered by a substring of username or display name."""
    if principal.user_id is None:
        principal.require_admin("users:read")
    return await svc.users.directory(
        principal.tenant_id, query=q, kind=kind, limit=limit, offset=offset
    )


@router.get("/users/{user_id}", response_model=UserOut)
async def get_user(user_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    if principal.user_id is None:
        principal.require_admin("users:read")
    return await svc.users.get(principal.tenant_id, user_id)


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED)
async def create_user(body: UserCreateIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Admins (or API keys with users:write) create humans, bots and visitors."""
    principal.require_admin("users:write")
    out = await svc.users.create_user(principal.tenant_id, actor=principal, **body.model_dump())
    await svc.audit.record(
        tenant_id=principal.tenant_id, actor=principal, action="user.created",
        target_type="user", target_id=out["id"], data={"kind": out["kind"], "role": out["role"]},
    )  # fmt: skip
    return out


@router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(
    user_id: str, body: UserUpdateIn, principal: Auth, svc: Svc
) -> dict[str, Any]:
    """Change a user's names, role, or disable them (which revokes their sessions)."""
    changes = body.model_dump(exclude_unset=True)
    before = None
    if {"role", "disabled"} & changes.keys():
        principal.require_admin("users:write")
        before = await svc.users.get(principal.tenant_id, user_id)
    out = await svc.users.update(principal, user_id, changes)
    if before is not None:
        await _audit_admin_changes(svc, principal, before, out)
    return out


async def _audit_admin_changes(
    svc: Services, principal: Principal, before: dict[str, Any], after: dict[str, Any]
) -> None:
    """``user.role_changed`` and ``user.disabled`` / ``user.enabled``, when they changed."""
    target = {"target_type": "user", "target_id": after["id"]}
    if before["role"] != after["role"]:
        await svc.audit.record(
            tenant_id=principal.tenant_id, actor=principal, action="user.role_changed",
            data={"from": before["role"], "to": after["role"]}, **target,
        )  # fmt: skip
    if before["disabled"] != after["disabled"]:
        action = "user.disabled" if after["disabled"] else "user.enabled"
        await svc.audit.record(
            tenant_id=principal.tenant_id, actor=principal, action=action, **target
        )


@router.post(
    "/users/{user_id}/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        400: {"model": ErrorResponse, "description": "`weak_password`: details.rule says why"},
        403: {"model": ErrorResponse, "description": "needs an admin (an owner for an owner)"},
    },
)
async def reset_password(user_id: str, body: PasswordResetIn, principal: Auth, svc: Svc) -> None:
    """Admins (or API keys with users:write) set another user's password; every session of
    that user is revoked. Only an owner resets an owner's. Your own: ``POST /auth/password``."""
    principal.require_admin("users:write")
    await svc.users.change_password(principal, current=None, new=body.new_password, user_id=user_id)
    await svc.audit.record(
        tenant_id=principal.tenant_id, actor=principal, action="user.password_reset",
        target_type="user", target_id=user_id, data={"sessions_revoked": "all"},
    )  # fmt: skip


@router.post("/users/{user_id}/tokens", response_model=TokenOut, status_code=201)
async def issue_token(
    user_id: str, body: IssueTokenIn, principal: Auth, svc: Svc
) -> dict[str, Any]:
    """Server-to-server: issue an access token for one of the tenant's users (tokens:write)."""
    principal.require_admin("tokens:write")
    await svc.users.get(principal.tenant_id, user_id)
    return await svc.auth.issue_token(
        principal.tenant_id, user_id, device=body.device, actor=principal
    )


@router.get("/presence", response_model=dict[str, PresenceOut])
async def presence(
    principal: Auth,
    svc: Svc,
    user_ids: Annotated[list[str], Query(min_length=1, max_length=200)],
) -> dict[str, Any]:
    """Who of these users is online now (any device), and when each was last seen."""
    known = await svc.users.existing_ids(principal.tenant_id, user_ids)
    return await svc.presence.status(principal.tenant_id, known)
