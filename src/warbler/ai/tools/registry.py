"""The tool registry (``services.tools``): which tools a bot gets, and running a tool call.

The reply engine's model → tool → model loop uses two calls::

    allowed = await services.tools.tools_for(bot.tenant_id, list(bot.tools))
    request = ChatRequest(..., tools=tuple(t.spec for t in allowed))
    ...  # the model answers with ToolCallsReady(calls)
    ctx = ToolContext(principal=asker, bot_user_id=bot.user_id,
                      conversation_id=conv_id, services=services, kb_ids=bot.kb_ids)
    for call in calls:
        result = await services.tools.run(ctx, call, allowed)
        messages.append(ChatMessage(role="tool", tool_call_id=call.id, name=call.name,
                                    content=result.content))
        if result.handoff: ...  # stop answering: a human takes over

Names a bot configuration lists: ``kb_search``, ``lookup_colleague``, ``handoff``,
``http:<name>`` (an HTTP tool), ``mcp:<server>:<tool>`` or ``mcp:<server>:*`` (every tool of an
MCP server). ``run`` never raises (except on cancellation): an unknown tool, a permission the
asking user lacks, arguments that do not fit the schema, a timeout or a failing service all
come back as ``ToolResult(is_error=True)`` with ``{"error": code, "message": ...}`` for the model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.ai.providers.base import ToolCall
from warbler.ai.tools import permissions
from warbler.ai.tools.base import Tool, ToolContext, ToolError, ToolResult, clip
from warbler.ai.tools.builtin import Handoff, KbSearch, LookupColleague
from warbler.ai.tools.http_admin import HttpToolAdmin
from warbler.ai.tools.http_tool import DefinedHttpTool
from warbler.ai.tools.mcp_admin import McpServerAdmin
from warbler.ai.tools.mcp_source import McpServerDef, McpSource, McpTool
from warbler.ai.tools.schema import argument_problem
from warbler.config import Settings
from warbler.errors import WarblerError
from warbler.security.crypto import SecretBox
from warbler.security.outbound import OutboundPolicy
from warbler.store.db import Database
from warbler.store.models_tools import HttpTool, McpServer

log = logging.getLogger("warbler.ai.tools")

BUILTINS: dict[str, Tool] = {t.ref: t for t in (KbSearch(), LookupColleague(), Handoff())}


class ToolRegistry:
    def __init__(
        self, db: Database, settings: Settings, secrets: SecretBox, outbound: OutboundPolicy
    ) -> None:
        self.db = db
        self.default_timeout = settings.ai_tool_timeout_seconds
        self.mcp_source = McpSource(settings, secrets, outbound)
        # The admin side (the /api/v1/tools routes).
        self.http = HttpToolAdmin(db, secrets, outbound)
        self.mcp = McpServerAdmin(db, settings, secrets, outbound, self.mcp_source)

    # -- which tools --------------------------------------------------------------------

    async def tools_for(self, tenant_id: str, names: Sequence[str]) -> list[Tool]:
        """The tools behind a bot's configured names, in order. Names that resolve to
        nothing (a deleted or disabled tool, an MCP server that does not answer) are left
        out and logged: the bot still answers, without them."""
        http_names = {n[5:] for n in names if n.startswith("http:")}
        mcp_wanted: dict[str, set[str]] = {}
        for n in names:
            if n.startswith("mcp:") and n.count(":") == 2:
                server, tool_name = n[4:].split(":", 1)
                mcp_wanted.setdefault(server, set()).add(tool_name)
        http_tools, mcp_tools = await asyncio.gather(
            self._http_tools(tenant_id, http_names), self._mcp_tools(tenant_id, mcp_wanted)
        )
        out: list[Tool] = []
        for n in names:
            if n in BUILTINS:
                out.append(BUILTINS[n])
            elif n.startswith("http:") and n[5:] in http_tools:
                out.append(http_tools[n[5:]])
            elif n.startswith("mcp:"):
                out.extend(t for t in mcp_tools if n in (t.ref, f"mcp:{t.server.name}:*"))
            else:
                log.warning("tool %r of a bot in tenant %s is not available", n, tenant_id)
        seen: set[str] = set()
        unique: list[Tool] = []
        for tool in out:  # a tool listed twice (by name and by "*") is offered once
            if tool.spec.name not in seen:
                seen.add(tool.spec.name)
                unique.append(tool)
        return unique

    async def catalog(self, tenant_id: str) -> tuple[list[Tool], list[dict[str, str]]]:
        """Every tool a bot of this tenant could be given, and the MCP servers that could not
        be asked for theirs ({"source", "error", "message"})."""
        async with self.db.read() as s:
            http_names = set(
                (
                    await s.scalars(
                        select(HttpTool.name).where(
                            HttpTool.tenant_id == tenant_id, HttpTool.enabled.is_(True)
                        )
                    )
                ).all()
            )
            servers = [McpServerDef.from_row(r) for r in await self._servers(s, tenant_id, None)]
        errors: list[dict[str, str]] = []
        names = list(BUILTINS) + sorted(f"http:{n}" for n in http_names)
        listed = await asyncio.gather(
            *(self.mcp_source.list_tools(server) for server in servers), return_exceptions=True
        )
        for server, tools in zip(servers, listed, strict=True):
            if isinstance(tools, ToolError):
                errors.append(
                    {"source": f"mcp:{server.name}", "error": tools.code, "message": tools.message}
                )
            elif isinstance(tools, BaseException):
                raise tools
            else:
                names.extend(f"mcp:{server.name}:{t.name}" for t in tools)
        return await self.tools_for(tenant_id, names), errors

    async def _http_tools(self, tenant_id: str, names: set[str]) -> dict[str, Tool]:
        if not names:
            return {}
        async with self.db.read() as s:
            rows = await s.scalars(
                select(HttpTool).where(
                    HttpTool.tenant_id == tenant_id,
                    HttpTool.name.in_(names),
                    HttpTool.enabled.is_(True),
                )
            )
            return {r.name: DefinedHttpTool.from_row(r) for r in rows}

    async def _mcp_tools(self, tenant_id: str, wanted: dict[str, set[str]]) -> list[McpTool]:
        if not wanted:
            return []
        async with self.db.read() as s:
            servers = [McpServerDef.from_row(r) for r in await self._servers(s, tenant_id, wanted)]

        async def of(server: McpServerDef) -> list[McpTool]:
            try:
                infos = await self.mcp_source.list_tools(server)
            except ToolError as exc:
                log.warning("MCP server %r (tenant %s): %s", server.name, tenant_id, exc.message)
                return []
            names = wanted[server.name]
            return [
                McpTool(server, info, self.mcp_source)
                for info in infos
                if "*" in names or info.name in names
            ]

        found = await asyncio.gather(*(of(server) for server in servers))
        return [tool for tools in found for tool in tools]

    @staticmethod
    async def _servers(
        s: AsyncSession, tenant_id: str, names: dict[str, set[str]] | None
    ) -> list[McpServer]:
        query = select(McpServer).where(
            McpServer.tenant_id == tenant_id, McpServer.enabled.is_(True)
        )
        if names is not None:
            query = query.where(McpServer.name.in_(list(names)))
        return list((await s.scalars(query.order_by(McpServer.name))).all())

    # -- running a call -----------------------------------------------------------------

    async def run(self, ctx: ToolContext, call: ToolCall, allowed: Sequence[Tool]) -> ToolResult:
        """Run one tool call for the user in ``ctx``; every failure becomes an error result."""
        started = time.perf_counter()
        try:
            result = await self._run(ctx, call, allowed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("tool %r failed (tenant %s)", call.name, ctx.principal.tenant_id)
            result = ToolResult.error(
                "tool_failed", "the tool failed unexpectedly; answer without it"
            )
        result.content, cut = clip(result.content)
        took_ms = round((time.perf_counter() - started) * 1000, 1)
        result.data = {**result.data, "tool": call.name, "took_ms": took_ms}
        if cut:
            result.data["content_truncated"] = True
        # Names and outcomes only: arguments and results may hold personal data or secrets.
        log.info(
            "tool call %s tenant=%s user=%s bot=%s ok=%s error=%s took_ms=%s",
            call.name, ctx.principal.tenant_id, ctx.principal.user_id, ctx.bot_user_id,
            not result.is_error, result.data.get("error"), took_ms,
        )  # fmt: skip
        return result

    async def _run(self, ctx: ToolContext, call: ToolCall, allowed: Sequence[Tool]) -> ToolResult:
        tool = next((t for t in allowed if t.spec.name == call.name), None)
        if tool is None:
            offered = ", ".join(t.spec.name for t in allowed) or "none"
            return ToolResult.error(
                "unknown_tool",
                f"there is no tool named '{call.name}' here (tools you can use: {offered})",
            )
        # Permission first: no point asking the model to fix arguments it may not send.
        if not permissions.allowed(ctx.principal, tool.permission, tool.allowed_roles):
            assert tool.permission is not None
            return ToolResult.error(
                "permission_denied", permissions.refusal(tool.permission, call.name)
            )
        problem = argument_problem(tool.spec.parameters, call.arguments)
        if problem is not None:
            return ToolResult.error("invalid_arguments", f"the arguments do not fit: {problem}")
        timeout = tool.timeout_seconds or self.default_timeout
        try:
            # A tool with its own timeout (an HTTP tool, an MCP server) gets a second more,
            # so its own clearer error wins the race.
            async with asyncio.timeout(timeout + (1.0 if tool.timeout_seconds else 0.0)):
                return await tool.run(ctx, dict(call.arguments))
        except TimeoutError:
            return ToolResult.error(
                "timeout", f"the tool '{call.name}' did not finish within {timeout:g} seconds"
            )
        except ToolError as exc:
            return exc.result()
        except WarblerError as exc:
            return ToolResult.error(exc.code, exc.message)
