"""Per-tenant API keys with scopes, for server-to-server use."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from warbler.api.deps import Auth, Svc
from warbler.api.schemas import ApiKeyCreatedOut, ApiKeyIn, ApiKeyOut

router = APIRouter(prefix="/api-keys", tags=["api keys"])


@router.post("", response_model=ApiKeyCreatedOut, status_code=status.HTTP_201_CREATED)
async def create(body: ApiKeyIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Create a key; its secret is in this response only."""
    principal.require_admin()
    return await svc.auth.create_api_key(
        principal.tenant_id, name=body.name, scopes=body.scopes,
        created_by=principal.user_id or principal.api_key_id, actor=principal,
    )  # fmt: skip


@router.get("", response_model=list[ApiKeyOut])
async def list_keys(principal: Auth, svc: Svc) -> list[dict[str, Any]]:
    principal.require_admin()
    return await svc.auth.list_api_keys(principal.tenant_id)


@router.delete("/{api_key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke(api_key_id: str, principal: Auth, svc: Svc) -> None:
    principal.require_admin()
    await svc.auth.revoke_api_key(principal.tenant_id, api_key_id, actor=principal)
