"""MCP servers as tool sources, over stdio and streamable HTTP, with a real MCP server
(``tests/fakes/mcp_server.py``: tools ``add`` and ``greet``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import backend_settings, free_port
from tests.fakes.mcp_process import serve_http
from warbler.ai.providers.base import ToolCall
from warbler.ai.tools.base import ToolContext, ToolResult
from warbler.im.principal import Principal

FAKE = str(Path(__file__).parents[1] / "fakes" / "mcp_server.py")
TOKEN = "mcp-secret-token-42"


@pytest.fixture
def settings(tmp_path, request):
    # SQLite only: what is under test is the MCP client and its subprocesses, which do not
    # depend on the store (the tables' CRUD runs on both stores in test_http_tools.py's twin
    # code paths and test_migrations.py), and each stdio call starts a Python process.
    return backend_settings(
        "sqlite", request, tmp_path / "data",
        outbound_allowed_hosts=["127.0.0.1"], ai_mcp_stdio_enabled=True,
    )  # fmt: skip


@pytest.fixture
def http_mcp() -> Iterator[str]:
    """The fake MCP server over streamable HTTP in its own process; stopped by PID."""
    with serve_http(TOKEN) as url:
        yield url


@pytest.fixture
async def people(make_tenant):
    tenant = await make_tenant()
    admin = await tenant.user("boss", role="admin")
    member = await tenant.user("ann", role="member")
    bot = await tenant.user("helper", kind="bot")
    return tenant, admin, member, bot


async def register(client: Any, admin: Any, **fields: Any) -> dict[str, Any]:
    r = await client.post("/tools/mcp", headers=admin.headers, json=fields)
    assert r.status_code == 201, r.text
    return dict(r.json())


def ctx_for(services: Any, people: Any, role: str = "member") -> ToolContext:
    tenant, _, member, bot = people
    asker = Principal(tenant_id=tenant.id, user_id=member.id, role=role)
    return ToolContext(principal=asker, bot_user_id=bot.id, conversation_id=None, services=services)


async def call(
    services: Any, ctx: ToolContext, allowed: list[Any], tool: str, /, **args: Any
) -> ToolResult:
    result: ToolResult = await services.tools.run(ctx, ToolCall("c1", tool, args), allowed)
    return result


@pytest.mark.slow
async def test_a_stdio_server_lists_and_runs_its_tools(services, client, people):
    tenant, admin, *_ = people
    server = await register(client, admin, name="local", transport="stdio",
                            command=sys.executable, args=[FAKE, "stdio"],
                            env={"GREETING": "你好"})  # fmt: skip
    assert server["env"] == {"names": ["GREETING"]} and "你好" not in json.dumps(server)

    r = await client.get(f"/tools/mcp/{server['id']}/tools", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert {(t["name"], t["ref"], t["model_name"]) for t in r.json()} == {
        ("add", "mcp:local:add", "local__add"), ("greet", "mcp:local:greet", "local__greet"),
    }  # fmt: skip

    allowed = await services.tools.tools_for(tenant.id, ["mcp:local:*"])
    assert sorted(t.spec.name for t in allowed) == ["local__add", "local__greet"]
    assert allowed[0].spec.parameters["type"] == "object"
    ctx = ctx_for(services, people)

    greet = await call(services, ctx, allowed, "local__greet", name="世界")
    assert (greet.is_error, greet.content) == (False, "你好, 世界!")  # the env reached it
    wrong = await call(services, ctx, allowed, "local__add", a=1)
    assert json.loads(wrong.content)["error"] == "invalid_arguments"


async def test_an_http_server_gets_its_headers_and_runs_tools(services, client, people, http_mcp):
    tenant, admin, *_ = people
    server = await register(client, admin, name="remote", transport="http", url=http_mcp,
                            headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert server["headers"] == {"names": ["Authorization"]} and TOKEN not in json.dumps(server)

    allowed = await services.tools.tools_for(tenant.id, ["mcp:remote:add"])
    assert [t.ref for t in allowed] == ["mcp:remote:add"]
    added = await call(services, ctx_for(services, people), allowed, "remote__add", a=2, b=40)
    assert (added.is_error, added.content) == (False, "42")

    # Without the header the server answers 401: listing fails, visibly, for the admin.
    await client.patch(f"/tools/mcp/{server['id']}", headers=admin.headers, json={"headers": {}})
    r = await client.get(f"/tools/mcp/{server['id']}/tools", headers=admin.headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "tool_source_unavailable"
    catalog = (await client.get("/tools", headers=admin.headers)).json()
    assert [e["source"] for e in catalog["errors"]] == ["mcp:remote"]


async def test_mcp_tools_obey_the_servers_allowed_roles(services, client, people):
    tenant, admin, *_ = people
    await register(client, admin, name="ops", transport="stdio", command=sys.executable,
                   args=[FAKE, "stdio"], allowed_roles=["agent"])  # fmt: skip
    allowed = await services.tools.tools_for(tenant.id, ["mcp:ops:greet"])

    refused = await call(services, ctx_for(services, people, "member"), allowed, "ops__greet",
                         name="x")  # fmt: skip
    assert json.loads(refused.content)["error"] == "permission_denied"
    done = await call(services, ctx_for(services, people, "agent"), allowed, "ops__greet", name="x")
    assert done.content == "Hello, x!"


async def test_stdio_servers_are_refused_when_the_operator_has_not_enabled_them(
    services, client, people
):
    tenant, admin, *_ = people
    await register(client, admin, name="local", transport="stdio", command=sys.executable,
                   args=[FAKE, "stdio"])  # fmt: skip
    allowed = await services.tools.tools_for(tenant.id, ["mcp:local:*"])
    assert allowed

    # The operator turns stdio off: registering is refused, and so is running.
    source = services.tools.mcp_source
    source.settings = source.settings.model_copy(update={"ai_mcp_stdio_enabled": False})
    services.tools.mcp.settings = source.settings
    r = await client.post("/tools/mcp", headers=admin.headers, json={
        "name": "other", "transport": "stdio", "command": sys.executable, "args": [FAKE, "stdio"],
    })  # fmt: skip
    assert r.status_code == 403
    result = await call(services, ctx_for(services, people), allowed, "local__greet", name="x")
    assert json.loads(result.content)["error"] == "mcp_stdio_disabled"
    source.forget(allowed[0].server.id)
    assert await services.tools.tools_for(tenant.id, ["mcp:local:*"]) == []


async def test_a_server_that_does_not_answer_leaves_the_bot_its_other_tools(
    services, client, people
):
    tenant, admin, *_ = people
    await register(client, admin, name="gone", transport="http",
                   url=f"http://127.0.0.1:{free_port()}/mcp", timeout_seconds=2)  # fmt: skip

    tools = await services.tools.tools_for(tenant.id, ["kb_search", "mcp:gone:*"])

    assert [t.ref for t in tools] == ["kb_search"]
