"""MCP servers as tool sources: list a server's tools and call them (the ``mcp`` client).

Two transports: ``stdio`` (the server is a local command this node starts; only when the
operator set ``WARBLER_AI_MCP_STDIO_ENABLED=true``, since it runs a program on the host) and
``http`` (streamable HTTP; the URL goes through the outbound policy first). Each operation opens
a session, does its work and closes it, so no server process or connection outlives a call.
Tool lists are cached for ``LIST_TTL_SECONDS`` per server version.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx2
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from warbler.ai.providers.base import ToolSpec
from warbler.ai.tools.base import ToolContext, ToolError, ToolResult, clip
from warbler.config import Settings
from warbler.security.crypto import SecretBox
from warbler.security.outbound import OutboundPolicy, TargetRejected
from warbler.store.models_tools import McpServer

LIST_TTL_SECONDS = 60.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def env_context(server_id: str) -> str:
    return f"mcp_server:{server_id}:env"


def headers_context(server_id: str) -> str:
    return f"mcp_server:{server_id}:headers"


def model_name(server: str, tool: str) -> str:
    """The name the model calls an MCP tool by: ``<server>__<tool>``, vendor-safe."""
    return f"{server}__{_UNSAFE.sub('_', tool)}"[:64]


@dataclass(frozen=True, slots=True)
class McpServerDef:
    """A snapshot of one ``ai_mcp_servers`` row."""

    id: str
    tenant_id: str
    name: str
    transport: str
    url: str | None
    command: str | None
    args: tuple[str, ...]
    env_sealed: str | None
    headers_sealed: str | None
    allowed_roles: tuple[str, ...]
    timeout_seconds: float
    updated_at: datetime

    @classmethod
    def from_row(cls, row: McpServer) -> McpServerDef:
        return cls(
            id=row.id, tenant_id=row.tenant_id, name=row.name, transport=row.transport,
            url=row.url, command=row.command, args=tuple(str(a) for a in row.args or ()),
            env_sealed=row.env_sealed, headers_sealed=row.headers_sealed,
            allowed_roles=tuple(row.allowed_roles or ()), timeout_seconds=row.timeout_seconds,
            updated_at=row.updated_at,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class McpToolInfo:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class McpTool:
    """One tool of one MCP server, runnable as a ``Tool``."""

    server: McpServerDef
    info: McpToolInfo
    source: McpSource

    @property
    def spec(self) -> ToolSpec:
        schema = self.info.input_schema or {"type": "object", "properties": {}}
        return ToolSpec(model_name(self.server.name, self.info.name), self.info.description, schema)

    @property
    def ref(self) -> str:
        return f"mcp:{self.server.name}:{self.info.name}"

    @property
    def permission(self) -> str:
        return f"mcp:{self.server.name}"

    @property
    def allowed_roles(self) -> tuple[str, ...]:
        return self.server.allowed_roles

    @property
    def timeout_seconds(self) -> float:
        return self.server.timeout_seconds

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        return await self.source.call(self.server, self.info.name, args)


class McpSource:
    def __init__(self, settings: Settings, secrets: SecretBox, outbound: OutboundPolicy) -> None:
        self.settings = settings
        self.secrets = secrets
        self.outbound = outbound
        self._cache: dict[str, tuple[float, datetime, list[McpToolInfo]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def forget(self, server_id: str) -> None:
        """Drop a server's cached tool list (it changed or was deleted)."""
        self._cache.pop(server_id, None)

    async def list_tools(self, server: McpServerDef, *, fresh: bool = False) -> list[McpToolInfo]:
        """The server's tools (cached briefly). Raises ``ToolError`` when it cannot be asked."""
        lock = self._locks.setdefault(server.id, asyncio.Lock())
        async with lock:  # one listing at a time per server: no stampede on a cold cache
            cached = self._cache.get(server.id)
            if (
                not fresh
                and cached is not None
                and cached[1] == server.updated_at
                and time.monotonic() - cached[0] < LIST_TTL_SECONDS
            ):
                return cached[2]
            try:
                async with asyncio.timeout(server.timeout_seconds):
                    async with self._connect(server) as client:
                        listed = await client.list_tools()
            except TimeoutError:
                raise ToolError(
                    "timeout", f"the MCP server '{server.name}' did not list its tools in time"
                ) from None
            except ToolError:
                raise
            except Exception as exc:
                raise _upstream(server, exc) from None
            tools = [
                McpToolInfo(t.name, t.description or t.name, dict(t.input_schema or {}))
                for t in listed.tools
            ]
            self._cache[server.id] = (time.monotonic(), server.updated_at, tools)
            return tools

    async def call(self, server: McpServerDef, tool: str, args: dict[str, Any]) -> ToolResult:
        try:
            async with self._connect(server) as client:
                result = await client.call_tool(
                    tool, args, read_timeout_seconds=server.timeout_seconds
                )
        except ToolError:
            raise
        except TimeoutError:
            raise ToolError(
                "timeout", f"the MCP server '{server.name}' did not answer in time"
            ) from None
        except Exception as exc:
            raise _upstream(server, exc) from None
        parts: list[str] = []
        for block in result.content:
            if block.type == "text":
                parts.append(block.text)
            else:
                parts.append(f"[{block.type} content omitted]")
        text = "\n".join(parts)
        if not text and result.structured_content is not None:
            text = json.dumps(result.structured_content, ensure_ascii=False)
        text, cut = clip(text)
        facts = {"server": server.name, "tool": tool, "truncated": cut}
        if result.is_error:
            return ToolResult(
                content=json.dumps({"error": "tool_error", "message": text}, ensure_ascii=False),
                is_error=True,
                data={**facts, "error": "tool_error"},
            )
        return ToolResult(content=text, data=facts)

    @asynccontextmanager
    async def _connect(self, server: McpServerDef) -> AsyncIterator[Client]:
        if server.transport == "stdio":
            if not self.settings.ai_mcp_stdio_enabled:
                raise ToolError(
                    "mcp_stdio_disabled",
                    "MCP servers started as local commands are turned off on this server",
                )
            if not server.command:
                raise ToolError("misconfigured", f"the MCP server '{server.name}' has no command")
            params = StdioServerParameters(
                command=server.command,
                args=list(server.args),
                env=self._open_json(server.env_sealed, env_context(server.id)) or None,
            )
            async with Client(
                stdio_client(params), read_timeout_seconds=server.timeout_seconds
            ) as client:
                yield client
            return
        if not server.url:
            raise ToolError("misconfigured", f"the MCP server '{server.name}' has no URL")
        try:
            await self.outbound.check(server.url)
        except TargetRejected as exc:
            raise ToolError(
                "target_refused", f"the MCP server's address is not allowed: {exc.message}"
            ) from None
        headers = self._open_json(server.headers_sealed, headers_context(server.id))
        http = httpx2.AsyncClient(
            headers=headers, timeout=httpx2.Timeout(server.timeout_seconds), follow_redirects=False
        )
        async with (
            http,
            Client(
                streamable_http_client(server.url, http_client=http),
                read_timeout_seconds=server.timeout_seconds,
            ) as client,
        ):
            yield client

    def _open_json(self, sealed: str | None, context: str) -> dict[str, str]:
        if not sealed:
            return {}
        return dict(json.loads(self.secrets.open(sealed, context)))


def _upstream(server: McpServerDef, exc: BaseException) -> ToolError:
    """A short, secret-free message for a failure deep inside the MCP client (often an
    exception group wrapping the real cause)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return ToolError("upstream_error", f"the MCP server '{server.name}' failed: {detail}")
