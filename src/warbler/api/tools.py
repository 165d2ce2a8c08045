"""Tools for bots: HTTP tools and MCP servers (admin-defined), and the catalogue bots draw from.

Every route needs a tenant owner/admin or an API key with the ``bots:write`` scope. Secrets
(an HTTP tool's auth header value, an MCP server's env and headers) are write-only: responses
say which are set, never their values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from warbler.api.audit import record_change
from warbler.api.deps import Auth, Svc
from warbler.api.schemas import Request

router = APIRouter(prefix="/tools", tags=["tools"])

SCOPE = "bots:write"
_ROLES_HELP = (
    "Roles of the asking user that may have a bot run it (owner, admin, agent, member, "
    "visitor); owners and admins always may. Default: owner, admin, agent, member."
)
_NAME_HELP = "1-40 of a-z, 0-9, _ (starting with a letter): what the model calls it."


# -- HTTP tools -------------------------------------------------------------------------


class AuthHeaderIn(Request):
    name: str = Field(max_length=100, examples=["Authorization"])
    value: str = Field(max_length=8000, description="Stored encrypted; never shown again.")


class AuthHeaderOut(BaseModel):
    name: str
    set: bool


class HttpToolIn(Request):
    name: str = Field(max_length=40, description=_NAME_HELP)
    description: str = Field("", max_length=2000, description="What the model reads about it.")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url_template: str = Field(
        max_length=2000,
        description="http(s) URL; {arg} placeholders in the path or query are filled "
        "(URL-encoded) from the arguments. Other arguments go in the query (GET, DELETE) or "
        "as a JSON body.",
        examples=["https://api.example.com/orders/{order_id}"],
    )
    parameters: dict[str, Any] | None = Field(
        None, description='JSON Schema of the arguments ("type": "object").'
    )
    auth_header: AuthHeaderIn | None = None
    allowed_roles: list[str] | None = Field(None, max_length=10, description=_ROLES_HELP)
    timeout_seconds: float | None = Field(None, ge=1, le=120, description="Default 10.")
    enabled: bool = True


class HttpToolUpdateIn(Request):
    name: str | None = Field(None, max_length=40)
    description: str | None = Field(None, max_length=2000)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] | None = None
    url_template: str | None = Field(None, max_length=2000)
    parameters: dict[str, Any] | None = None
    auth_header: AuthHeaderIn | None = Field(None, description="null removes the header.")
    allowed_roles: list[str] | None = Field(None, max_length=10)
    timeout_seconds: float | None = Field(None, ge=1, le=120)
    enabled: bool | None = None


class HttpToolOut(BaseModel):
    id: str
    name: str
    ref: str = Field(description="What a bot's `tools` list names it by: http:<name>.")
    description: str
    method: str
    url_template: str
    parameters: dict[str, Any]
    auth_header: AuthHeaderOut | None
    allowed_roles: list[str]
    timeout_seconds: float
    enabled: bool
    created_by: str | None
    created_at: datetime
    updated_at: datetime


@router.post("/http", response_model=HttpToolOut, status_code=status.HTTP_201_CREATED)
async def create_http_tool(body: HttpToolIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Define an HTTP tool. Its host must be public, or allowed by the operator
    (``WARBLER_OUTBOUND_ALLOWED_HOSTS``)."""
    fields = body.model_dump()
    out = await svc.tools.http.create(principal, **fields)
    await record_change(svc, principal, "tool.http.created", "http_tool", out["id"],
                        name=out["name"])  # fmt: skip
    return out


@router.get("/http", response_model=list[HttpToolOut])
async def list_http_tools(principal: Auth, svc: Svc) -> list[dict[str, Any]]:
    return await svc.tools.http.list(principal)


@router.get("/http/{tool_id}", response_model=HttpToolOut)
async def get_http_tool(tool_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    return await svc.tools.http.get(principal, tool_id)


@router.patch("/http/{tool_id}", response_model=HttpToolOut)
async def update_http_tool(
    tool_id: str, body: HttpToolUpdateIn, principal: Auth, svc: Svc
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    out = await svc.tools.http.update(principal, tool_id, changes)
    await record_change(svc, principal, "tool.http.updated", "http_tool", tool_id, changes)
    return out


@router.delete("/http/{tool_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_http_tool(tool_id: str, principal: Auth, svc: Svc) -> None:
    await svc.tools.http.delete(principal, tool_id)
    await record_change(svc, principal, "tool.http.deleted", "http_tool", tool_id)


# -- MCP servers ------------------------------------------------------------------------


class McpServerIn(Request):
    name: str = Field(max_length=40, description=_NAME_HELP)
    description: str = Field("", max_length=2000)
    transport: Literal["http", "stdio"] = Field(
        description="http: streamable HTTP at `url`. stdio: `command` started on the server "
        "host (only when the operator set WARBLER_AI_MCP_STDIO_ENABLED=true)."
    )
    url: str | None = Field(None, max_length=2000, examples=["https://mcp.example.com/mcp"])
    command: str | None = Field(None, max_length=1000)
    args: list[str] | None = Field(None, max_length=50)
    env: dict[str, str] | None = Field(None, description="stdio: stored encrypted, write-only.")
    headers: dict[str, str] | None = Field(
        None, description="http: sent with every request; stored encrypted, write-only."
    )
    allowed_roles: list[str] | None = Field(None, max_length=10, description=_ROLES_HELP)
    timeout_seconds: float | None = Field(None, ge=1, le=120, description="Default 20.")
    enabled: bool = True


class McpServerUpdateIn(Request):
    name: str | None = Field(None, max_length=40)
    description: str | None = Field(None, max_length=2000)
    url: str | None = Field(None, max_length=2000)
    command: str | None = Field(None, max_length=1000)
    args: list[str] | None = Field(None, max_length=50)
    env: dict[str, str] | None = Field(None, description="Replaces the whole set; {} clears.")
    headers: dict[str, str] | None = Field(None, description="Replaces the whole set; {} clears.")
    allowed_roles: list[str] | None = Field(None, max_length=10)
    timeout_seconds: float | None = Field(None, ge=1, le=120)
    enabled: bool | None = None


class SecretNamesOut(BaseModel):
    names: list[str] = Field(description="The names that are set; values are never shown.")


class McpServerOut(BaseModel):
    id: str
    name: str
    ref: str = Field(description="mcp:<name>:* offers every tool of the server to a bot.")
    description: str
    transport: str
    url: str | None
    command: str | None
    args: list[str]
    env: SecretNamesOut
    headers: SecretNamesOut
    allowed_roles: list[str]
    timeout_seconds: float
    enabled: bool
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class McpToolOut(BaseModel):
    name: str
    ref: str = Field(description="mcp:<server>:<tool>, for a bot's `tools` list.")
    model_name: str = Field(description="The name the model calls it by.")
    description: str
    parameters: dict[str, Any]


@router.post("/mcp", response_model=McpServerOut, status_code=status.HTTP_201_CREATED)
async def create_mcp_server(body: McpServerIn, principal: Auth, svc: Svc) -> dict[str, Any]:
    """Register an MCP server as a source of tools."""
    out = await svc.tools.mcp.create(principal, **body.model_dump())
    await record_change(svc, principal, "tool.mcp.created", "mcp_server", out["id"],
                        name=out["name"], transport=out["transport"])  # fmt: skip
    return out


@router.get("/mcp", response_model=list[McpServerOut])
async def list_mcp_servers(principal: Auth, svc: Svc) -> list[dict[str, Any]]:
    return await svc.tools.mcp.list(principal)


@router.get("/mcp/{server_id}", response_model=McpServerOut)
async def get_mcp_server(server_id: str, principal: Auth, svc: Svc) -> dict[str, Any]:
    return await svc.tools.mcp.get(principal, server_id)


@router.patch("/mcp/{server_id}", response_model=McpServerOut)
async def update_mcp_server(
    server_id: str, body: McpServerUpdateIn, principal: Auth, svc: Svc
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    out = await svc.tools.mcp.update(principal, server_id, changes)
    await record_change(svc, principal, "tool.mcp.updated", "mcp_server", server_id, changes)
    return out


@router.delete("/mcp/{server_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_mcp_server(server_id: str, principal: Auth, svc: Svc) -> None:
    await svc.tools.mcp.delete(principal, server_id)
    await record_change(svc, principal, "tool.mcp.deleted", "mcp_server", server_id)


@router.get("/mcp/{server_id}/tools", response_model=list[McpToolOut])
async def list_mcp_server_tools(server_id: str, principal: Auth, svc: Svc) -> list[dict[str, Any]]:
    """Ask the server for its tools now (400 ``tool_source_unavailable`` if it cannot be
    reached or refuses)."""
    return await svc.tools.mcp.live_tools(principal, server_id)


# -- the catalogue ----------------------------------------------------------------------


class ToolOut(BaseModel):
    ref: str = Field(description="The name a bot's `tools` list uses.")
    name: str = Field(description="The name the model calls it by.")
    source: Literal["builtin", "http", "mcp"]
    description: str
    parameters: dict[str, Any]
    permission: str | None = Field(description="What the asking user must hold.")
    allowed_roles: list[str] | None


class SourceErrorOut(BaseModel):
    source: str
    error: str
    message: str


class CatalogOut(BaseModel):
    tools: list[ToolOut]
    errors: list[SourceErrorOut] = Field(description="MCP servers that could not be asked.")


@router.get("", response_model=CatalogOut)
async def catalog(principal: Auth, svc: Svc) -> dict[str, Any]:
    """Every tool a bot of this tenant can be given: built-ins, enabled HTTP tools and the
    tools of enabled MCP servers."""
    principal.require_admin(SCOPE)
    tools, errors = await svc.tools.catalog(principal.tenant_id)
    return {
        "tools": [
            {
                "ref": t.ref,
                "name": t.spec.name,
                "source": t.ref.split(":", 1)[0] if ":" in t.ref else "builtin",
                "description": t.spec.description,
                "parameters": t.spec.parameters,
                "permission": t.permission,
                "allowed_roles": list(t.allowed_roles) if t.allowed_roles is not None else None,
            }
            for t in tools
        ],
        "errors": errors,
    }
