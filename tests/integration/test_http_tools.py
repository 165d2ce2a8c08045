"""HTTP tools: an admin defines an endpoint; the bot calls it through the outbound policy.

A real HTTP service on 127.0.0.1 (``tests/fakes/http_target.py``) receives the calls; the
operator allowed 127.0.0.1 (``WARBLER_OUTBOUND_ALLOWED_HOSTS``) except where a test says not.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import backend_settings
from tests.fakes.http_target import HttpTarget
from warbler.ai.providers.base import ToolCall
from warbler.ai.tools.base import ToolContext, ToolResult
from warbler.ai.tools.http_tool import MAX_RESPONSE_BYTES
from warbler.im.principal import Principal
from warbler.security.outbound import OutboundPolicy

SECRET = "Bearer sk-live-0123456789abcdef"


@pytest.fixture
def settings(tmp_path, backend, request):
    return backend_settings(
        backend, request, tmp_path / "data", outbound_allowed_hosts=["127.0.0.1"]
    )


@pytest.fixture
def target():
    with HttpTarget() as t:
        yield t


@pytest.fixture
async def people(make_tenant):
    tenant = await make_tenant()
    admin = await tenant.user("boss", role="admin")
    member = await tenant.user("ann", role="member")
    bot = await tenant.user("helper", kind="bot")
    return tenant, admin, member, bot


async def define(client: Any, admin: Any, **fields: Any) -> dict[str, Any]:
    r = await client.post("/tools/http", headers=admin.headers, json=fields)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def run(services: Any, people: Any, name: str, **arguments: Any) -> ToolResult:
    tenant, _, member, bot = people
    allowed = await services.tools.tools_for(tenant.id, [f"http:{name}"])
    asker = Principal(tenant_id=tenant.id, user_id=member.id, role="member")
    ctx = ToolContext(principal=asker, bot_user_id=bot.id, conversation_id=None, services=services)
    result: ToolResult = await services.tools.run(ctx, ToolCall("c1", name, arguments), allowed)
    return result


ORDER_SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}, "lang": {"type": "string"}},
    "required": ["order_id"],
}


async def test_a_get_tool_fills_the_url_sends_the_auth_header_and_returns_json(
    services, client, people, target
):
    _, admin, *_ = people
    await define(client, admin, name="order_status", description="Where is an order?",
                 url_template=f"{target.url}/echo/orders/{{order_id}}?src=bot",
                 parameters=ORDER_SCHEMA,
                 auth_header={"name": "Authorization", "value": SECRET})  # fmt: skip

    result = await run(services, people, "order_status", order_id="A/1 号", lang="zh")

    assert not result.is_error, result.content
    (seen,) = target.requests
    assert seen.method == "GET"
    assert seen.path == "/echo/orders/A%2F1%20%E5%8F%B7"  # one path segment, URL-encoded
    assert seen.query == {"src": ["bot"], "lang": ["zh"]}
    assert seen.headers["authorization"] == SECRET
    answer = json.loads(result.content)
    assert answer["status"] == 200 and answer["truncated"] is False
    assert answer["body"]["answer"] == "订单已发货"
    assert SECRET not in result.content


async def test_a_post_tool_sends_the_arguments_as_a_json_body(services, client, people, target):
    _, admin, *_ = people
    await define(client, admin, name="create_ticket", method="POST",
                 url_template=f"{target.url}/echo/tickets",
                 parameters={"type": "object", "required": ["title"], "properties": {
                     "title": {"type": "string"}, "tags": {"type": "array"}}})  # fmt: skip

    result = await run(services, people, "create_ticket", title="打印机坏了", tags=["it"])

    assert not result.is_error, result.content
    (seen,) = target.requests
    assert (seen.method, seen.body) == ("POST", {"title": "打印机坏了", "tags": ["it"]})


async def test_the_auth_header_is_sealed_at_rest_and_never_shown(services, client, people):
    _, admin, *_ = people
    created = await define(client, admin, name="crm", url_template="http://127.0.0.1:9/crm",
                           auth_header={"name": "X-Api-Key", "value": SECRET})  # fmt: skip
    assert created["auth_header"] == {"name": "X-Api-Key", "set": True}

    shown = [
        (await client.get(f"/tools/http/{created['id']}", headers=admin.headers)).text,
        (await client.get("/tools/http", headers=admin.headers)).text,
        (await client.get("/tools", headers=admin.headers)).text,
        (await client.patch(f"/tools/http/{created['id']}", headers=admin.headers,
                            json={"description": "CRM"})).text,
    ]  # fmt: skip
    assert not [s for s in shown if "sk-live" in s]
    async with services.db.read() as s:
        row = (await s.execute(text("SELECT * FROM ai_http_tools"))).mappings().one()
    assert not [k for k, v in row.items() if isinstance(v, str) and "sk-live" in v]
    assert row["auth_header_value_sealed"].startswith("enc1:")  # under the tenant's data key

    r = await client.patch(f"/tools/http/{created['id']}", headers=admin.headers,
                           json={"auth_header": None})  # fmt: skip
    assert r.json()["auth_header"] is None


async def test_loopback_is_refused_unless_the_operator_allowed_it(services, client, people, target):
    _, admin, *_ = people
    # "localhost" is not the allowed host "127.0.0.1": it resolves to loopback, refused.
    r = await client.post("/tools/http", headers=admin.headers,
                          json={"name": "sneaky", "url_template": "http://localhost:9/x"})  # fmt: skip
    assert r.status_code == 400
    assert "non-public" in r.json()["error"]["message"]

    await define(client, admin, name="local", url_template=f"{target.url}/echo")
    # The operator takes the allowance back: calls are checked again, every time.
    services.outbound = OutboundPolicy()
    result = await run(services, people, "local")

    assert json.loads(result.content)["error"] == "target_refused"
    assert target.requests == []


async def test_a_large_response_is_cut_for_the_model(services, client, people, target):
    _, admin, *_ = people
    await define(client, admin, name="dump", url_template=f"{target.url}/big")

    result = await run(services, people, "dump")

    assert not result.is_error
    answer = json.loads(result.content)
    assert answer["truncated"] is True
    assert 1000 < len(answer["body"]) <= 8000
    assert result.data["bytes"] == MAX_RESPONSE_BYTES


async def test_a_slow_service_times_out_and_a_failing_one_is_reported(
    services, client, people, target
):
    _, admin, *_ = people
    await define(client, admin, name="slow", url_template=f"{target.url}/slow?seconds=3",
                 timeout_seconds=1)  # fmt: skip
    await define(client, admin, name="broken", url_template=f"{target.url}/fail")

    started = time.monotonic()
    slow = await run(services, people, "slow")
    assert json.loads(slow.content)["error"] == "timeout"
    assert time.monotonic() - started < 2.5

    broken = json.loads((await run(services, people, "broken")).content)
    assert broken["error"] == "upstream_error"
    assert broken["details"]["status"] == 500 and "boom" in broken["details"]["body"]


async def test_bad_definitions_are_refused(client, people):
    _, admin, member, _ = people
    cases = [
        {"name": "Bad Name", "url_template": "http://127.0.0.1:9/"},
        {"name": "kb_search", "url_template": "http://127.0.0.1:9/"},
        {"name": "x", "url_template": "ftp://127.0.0.1/"},
        {"name": "x", "url_template": "http://{host}/"},
        {"name": "x", "url_template": "http://127.0.0.1:9/{id}"},  # not a required argument
        {"name": "x", "url_template": "http://127.0.0.1:9/", "parameters": {"type": "string"}},
        {"name": "x", "url_template": "http://127.0.0.1:9/", "allowed_roles": ["bot"]},
        {"name": "x", "url_template": "http://127.0.0.1:9/",
         "auth_header": {"name": "Bad Header", "value": "v"}},
    ]  # fmt: skip
    for fields in cases:
        r = await client.post("/tools/http", headers=admin.headers, json=fields)
        assert r.status_code in (400, 422), (fields, r.text)
    r = await client.post("/tools/http", headers=member.headers,
                          json={"name": "x", "url_template": "http://127.0.0.1:9/"})  # fmt: skip
    assert r.status_code == 403
    await define(client, admin, name="twice", url_template="http://127.0.0.1:9/")
    r = await client.post("/tools/http", headers=admin.headers,
                          json={"name": "twice", "url_template": "http://127.0.0.1:9/"})  # fmt: skip
    assert r.status_code == 409
