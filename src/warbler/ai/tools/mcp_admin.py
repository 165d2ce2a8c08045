"""MCP servers as tenant admins manage them: create, list, change, delete, list their tools."""

from __future__ import annotations

import builtins
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.ai.tools.base import ToolError
from warbler.ai.tools.fields import check_header, check_name, check_roles, check_timeout
from warbler.ai.tools.mcp_source import (
    McpServerDef,
    McpSource,
    env_context,
    headers_context,
    model_name,
)
from warbler.clock import utcnow
from warbler.config import Settings
from warbler.errors import Conflict, Forbidden, InvalidRequest, NotFound
from warbler.ids import new_id
from warbler.im.principal import Principal
from warbler.security.crypto import SecretBox
from warbler.security.encryption import bound_tenant
from warbler.security.encryption import ensure as ensure_keys
from warbler.security.outbound import OutboundPolicy
from warbler.store.db import Database
from warbler.store.models_tools import McpServer

SCOPE = "bots:write"
DEFAULT_TIMEOUT = 20.0
TRANSPORTS = ("stdio", "http")
MAX_ARGS = 50
_UPDATABLE = ("name", "description", "url", "command", "args", "env", "headers",
              "allowed_roles", "timeout_seconds", "enabled")  # fmt: skip


class ToolSourceUnavailable(InvalidRequest):
    """The MCP server could not be reached or refused (shown to the admin who asked)."""

    code = "tool_source_unavailable"


class McpServerAdmin:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        secrets: SecretBox,
        outbound: OutboundPolicy,
        source: McpSource,
    ) -> None:
        self.db = db
        self.settings = settings
        self.secrets = secrets
        self.outbound = outbound
        self.source = source

    def view(self, row: McpServer) -> dict[str, Any]:
        return {
            "id": row.id,
            "name": row.name,
            "ref": f"mcp:{row.name}:*",
            "description": row.description,
            "transport": row.transport,
            "url": row.url,
            "command": row.command,
            "args": list(row.args),
            # Write-only: the names that are set, never the values.
            "env": {"names": sorted(self._open(row.env_sealed, env_context(row.id)))},
            "headers": {"names": sorted(self._open(row.headers_sealed, headers_context(row.id)))},
            "allowed_roles": list(row.allowed_roles),
            "timeout_seconds": row.timeout_seconds,
            "enabled": row.enabled,
            "created_by": row.created_by,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
        }

    async def create(
        self,
        principal: Principal,
        *,
        name: str,
        transport: str,
        description: str = "",
        url: str | None = None,
        command: str | None = None,
        args: builtins.list[str] | None = None,
        env: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        allowed_roles: builtins.list[str] | None = None,
        timeout_seconds: float | None = None,
        enabled: bool = True,
    ) -> dict[str, Any]:
        principal.require_admin(SCOPE)
        if transport not in TRANSPORTS:
            raise InvalidRequest("transport is 'stdio' or 'http'", details={"field": "transport"})
        if url:
            url = str(await self.outbound.check(url))
        now = utcnow()
        row = McpServer(
            id=new_id(), tenant_id=principal.tenant_id, name=check_name(name),
            description=description.strip(), transport=transport, url=None, command=None,
            args=[], allowed_roles=check_roles(allowed_roles),
            timeout_seconds=check_timeout(timeout_seconds, DEFAULT_TIMEOUT), enabled=enabled,
            created_by=principal.user_id or principal.api_key_id, created_at=now, updated_at=now,
        )  # fmt: skip
        await ensure_keys(principal.tenant_id)  # secrets are sealed under the tenant's key
        with bound_tenant(principal.tenant_id):
            self._apply_target(row, {"url": url, "command": command, "args": args,
                                     "env": env, "headers": headers})  # fmt: skip
        try:
            async with self.db.write() as s:
                s.add(row)
        except IntegrityError as exc:
            raise Conflict("an MCP server with this name exists", details={"name": name}) from exc
        return self.view(row)

    async def list(self, principal: Principal) -> builtins.list[dict[str, Any]]:
        principal.require_admin(SCOPE)
        async with self.db.read() as s:
            rows = await s.scalars(
                select(McpServer)
                .where(McpServer.tenant_id == principal.tenant_id)
                .order_by(McpServer.name)
            )
            return [self.view(r) for r in rows]

    async def get(self, principal: Principal, server_id: str) -> dict[str, Any]:
        principal.require_admin(SCOPE)
        async with self.db.read() as s:
            return self.view(await _load(s, principal.tenant_id, server_id))

    async def update(
        self, principal: Principal, server_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Change any field (absent keys stay); ``env``/``headers`` replace the whole set
        (``{}`` or null clears it)."""
        principal.require_admin(SCOPE)
        unknown = set(changes) - set(_UPDATABLE)
        if unknown:
            raise InvalidRequest(f"cannot change {', '.join(sorted(unknown))}")
        for field in ("name", "enabled", "allowed_roles"):
            if field in changes and changes[field] is None:
                raise InvalidRequest(f"{field} cannot be null", details={"field": field})
        target: dict[str, Any] = {
            k: changes[k] for k in ("url", "command", "args", "env", "headers") if k in changes
        }
        if target.get("url"):
            # Resolved before the transaction: no DNS wait while holding the write lock.
            target["url"] = str(await self.outbound.check(target["url"]))
        try:
            async with self.db.write() as s:
                row = await _load(s, principal.tenant_id, server_id, for_update=True)
                if target:
                    await ensure_keys(principal.tenant_id)
                    with bound_tenant(principal.tenant_id):
                        self._apply_target(row, target)
                if "name" in changes:
                    row.name = check_name(changes["name"])
                if "description" in changes:
                    row.description = (changes["description"] or "").strip()
                if "allowed_roles" in changes:
                    row.allowed_roles = check_roles(changes["allowed_roles"])
                if "timeout_seconds" in changes:
                    row.timeout_seconds = check_timeout(changes["timeout_seconds"], DEFAULT_TIMEOUT)
                if "enabled" in changes:
                    row.enabled = bool(changes["enabled"])
                row.updated_at = utcnow()
                await s.flush()
        except IntegrityError as exc:
            raise Conflict("an MCP server with this name exists") from exc
        self.source.forget(server_id)
        return self.view(row)

    async def delete(self, principal: Principal, server_id: str) -> None:
        principal.require_admin(SCOPE)
        async with self.db.write() as s:
            await s.delete(await _load(s, principal.tenant_id, server_id, for_update=True))
        self.source.forget(server_id)

    async def live_tools(
        self, principal: Principal, server_id: str
    ) -> builtins.list[dict[str, Any]]:
        """Ask the server for its tools now (no cache): what bots would be offered."""
        principal.require_admin(SCOPE)
        async with self.db.read() as s:
            server = McpServerDef.from_row(await _load(s, principal.tenant_id, server_id))
        try:
            tools = await self.source.list_tools(server, fresh=True)
        except ToolError as exc:
            raise ToolSourceUnavailable(exc.message, details={"reason": exc.code}) from None
        return [
            {
                "name": t.name,
                "ref": f"mcp:{server.name}:{t.name}",
                "model_name": model_name(server.name, t.name),
                "description": t.description,
                "parameters": t.input_schema,
            }
            for t in tools
        ]

    def _apply_target(self, row: McpServer, given: dict[str, Any]) -> None:
        """Check and set what the server is (URL or command) and its sealed env/headers.
        A URL given here has passed the outbound policy already."""
        if row.transport == "stdio":
            if not self.settings.ai_mcp_stdio_enabled:
                raise Forbidden(
                    "MCP servers started as local commands (stdio) are turned off on this "
                    "server; the operator can set WARBLER_AI_MCP_STDIO_ENABLED=true",
                    details={"field": "transport"},
                )
            if given.get("url") or given.get("headers"):
                raise InvalidRequest("a stdio server takes command, args and env",
                                     details={"field": "url"})  # fmt: skip
            command = given["command"] if "command" in given else row.command
            if not command or len(command) > 1000:
                raise InvalidRequest("a stdio server needs a command (at most 1000 characters)",
                                     details={"field": "command"})  # fmt: skip
            row.command = command
            if "args" in given:
                args = [str(a) for a in given["args"] or []]
                if len(args) > MAX_ARGS or any(len(a) > 1000 for a in args):
                    raise InvalidRequest(f"at most {MAX_ARGS} args of 1000 characters",
                                         details={"field": "args"})  # fmt: skip
                row.args = args
            if "env" in given:
                row.env_sealed = self._seal(given["env"], env_context(row.id), "env")
        else:
            if given.get("command") or given.get("args") or given.get("env"):
                raise InvalidRequest("an http server takes url and headers",
                                     details={"field": "command"})  # fmt: skip
            url = given["url"] if "url" in given else row.url
            if not url:
                raise InvalidRequest("an http server needs a url", details={"field": "url"})
            row.url = url
            if "headers" in given:
                for name, value in (given["headers"] or {}).items():
                    check_header(name, str(value), field="headers")
                row.headers_sealed = self._seal(
                    given["headers"], headers_context(row.id), "headers"
                )

    def _seal(self, values: dict[str, str] | None, context: str, field: str) -> str | None:
        if not values:
            return None
        if len(values) > 50 or not all(isinstance(v, str) for v in values.values()):
            raise InvalidRequest(f"{field} is at most 50 string values", details={"field": field})
        return self.secrets.seal(json.dumps(values), context)

    def _open(self, sealed: str | None, context: str) -> dict[str, str]:
        return dict(json.loads(self.secrets.open(sealed, context))) if sealed else {}


async def _load(
    s: AsyncSession, tenant_id: str, server_id: str, *, for_update: bool = False
) -> McpServer:
    query = select(McpServer).where(McpServer.id == server_id, McpServer.tenant_id == tenant_id)
    if for_update:
        query = query.with_for_update()
    row = await s.scalar(query)
    if row is None:
        raise NotFound("no such MCP server", details={"server_id": server_id})
    return row
