"""Customer-service administration: agents' availability and capacity, teams with office hours
and SLA targets, the tenant's support settings (docs/support.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from warbler.api.audit import record_change
from warbler.api.deps import Auth, Svc
from warbler.api.support_schemas import (
    AgentOut,
    AgentStatusIn,
    AgentUpdateIn,
    SettingsIn,
    SettingsOut,
    TeamIn,
    TeamOut,
    TeamUpdateIn,
)

router = APIRouter(prefix="/support", tags=["customer service"])


# -- agents -------------------------------------------------------------------------------


@router.get("/agents/me", response_model=AgentOut)
async def my_agent(principal: Auth, svc: Svc) -> dict[str, Any]:
    """Your availability, capacity and load (you become an agent on first use: role agent,
    admin or owner)."""
    return await svc.support.agents.me(principal)


@router.put("/agents/me", response_model=AgentOut)
async def set_my_status(body: AgentStatusIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Go online (waiting tickets are assigned to you at once, up to your capacity), away or
    offline (no new assignments; your open tickets stay yours)."""
    return await svc.support.agents.set_status(principal, body.status)


@router.get("/agents", response_model=list[AgentOut])
async def list_agents(principal: Auth, svc: Svc) -> list[dict[str, Any]]:
    return await svc.support.agents.list_agents(principal)


@router.put("/agents/{user_id}", response_model=AgentOut)
async def update_agent(
    user_id: str, body: AgentUpdateIn, principal: Auth, svc: Svc
) -> dict[str, Any]:
    """Set an agent's capacity and teams (admins)."""
    changes = body.model_dump(exclude_unset=True)
    out = await svc.support.agents.update(principal, user_id, **changes)
    await record_change(svc, principal, "support.agent_updated", "user", user_id, changes)
    return out


# -- teams --------------------------------------------------------------------------------


@router.get("/teams", response_model=list[TeamOut])
async def list_teams(principal: Auth, svc: Svc) -> list[dict[str, Any]]:
    return await svc.support.teams.list_teams(principal)


@router.post("/teams", response_model=TeamOut, status_code=status.HTTP_201_CREATED)
async def create_team(body: TeamIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    fields = body.model_dump()
    out = await svc.support.teams.create(principal, fields)
    await record_change(svc, principal, "support.team_created", "support_team", out["id"], fields)
    return out


@router.patch("/teams/{team_id}", response_model=TeamOut)
async def update_team(
    team_id: str, body: TeamUpdateIn, principal: Auth, svc: Svc
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    out = await svc.support.teams.update(principal, team_id, changes)
    await record_change(svc, principal, "support.team_updated", "support_team", team_id, changes)
    return out


@router.delete("/teams/{team_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_team(team_id: str, principal: Auth, svc: Svc) -> None:
    """Delete a team: its waiting tickets go to the team-less pool (any agent)."""
    await svc.support.teams.delete(principal, team_id)
    await record_change(svc, principal, "support.team_deleted", "support_team", team_id)


# -- settings -----------------------------------------------------------------------------


@router.get("/settings", response_model=SettingsOut)
async def get_settings(principal: Auth, svc: Svc) -> dict[str, Any]:
    """The tenant's support settings (created with a widget id on first read)."""
    return await svc.support.settings.get(principal)


@router.put("/settings", response_model=SettingsOut)
async def put_settings(body: SettingsIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Change the fields given (``identity_secret`` is write-only; the view says whether one
    is set)."""
    return await svc.support.settings.update(principal, body.model_dump(exclude_unset=True))
