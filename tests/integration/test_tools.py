"""Tools for bots: the registry, the built-ins, and refusals the model is told about.

A bot acts with the permissions of the user who asked it, never more: a call that needs a
permission the asker lacks comes back to the model as ``{"error": "permission_denied"}`` and
the tool's side effect does not happen.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import backend_settings
from tests.fakes.http_target import HttpTarget
from warbler.ai.providers.base import ToolCall, ToolSpec
from warbler.ai.tools.base import ToolContext, ToolResult
from warbler.im.principal import Principal
from warbler.store.models import Event, Message


@pytest.fixture
def settings(tmp_path, backend, request):
    # HTTP tools in these tests call a local target on 127.0.0.1.
    return backend_settings(
        backend, request, tmp_path / "data", outbound_allowed_hosts=["127.0.0.1"]
    )


def principal_of(actor: Any, kind: str = "human") -> Principal:
    return Principal(tenant_id=actor.tenant_id, user_id=actor.id, role=actor.role, kind=kind)


def ctx(services: Any, asker: Principal, bot: Any, conversation_id: str | None = None,
        kb_ids: tuple[str, ...] = ()) -> ToolContext:  # fmt: skip
    return ToolContext(principal=asker, bot_user_id=bot.id, conversation_id=conversation_id,
                       services=services, kb_ids=kb_ids)  # fmt: skip


def call(name: str, /, **arguments: Any) -> ToolCall:
    return ToolCall(id="call_1", name=name, arguments=arguments)


def body(result: ToolResult) -> dict[str, Any]:
    return dict(json.loads(result.content))


async def count(services: Any, model: Any, **where: Any) -> int:
    async with services.db.read() as s:
        query = select(func.count()).select_from(model)
        for column, value in where.items():
            query = query.where(getattr(model, column) == value)
        return int(await s.scalar(query) or 0)


@pytest.fixture
async def world(make_tenant):
    tenant = await make_tenant()
    admin = await tenant.user("boss", role="admin")
    member = await tenant.user("ann", role="member")
    agent = await tenant.user("zhang", role="agent")
    visitor = await tenant.user("guest", kind="visitor")
    bot = await tenant.user("helper", kind="bot")
    await tenant.services.users.update(
        principal_of(admin), agent.id, {"display_name": "张伟 Zhang Wei"}
    )
    return tenant, admin, member, agent, visitor, bot


# -- the acceptance point: refusals reach the model, side effects do not happen -----------


async def test_a_visitor_asking_for_a_colleague_is_refused_and_the_model_is_told(services, world):
    tenant, _, member, agent, visitor, bot = world
    allowed = await services.tools.tools_for(tenant.id, ["lookup_colleague"])

    refused = await services.tools.run(
        ctx(services, principal_of(visitor, "visitor"), bot), call("lookup_colleague", query="张伟"),
        allowed,
    )  # fmt: skip
    assert refused.is_error
    assert body(refused)["error"] == "permission_denied"
    assert "not allowed" in body(refused)["message"]
    assert "directory:read" in body(refused)["message"]
    assert "Zhang" not in refused.content and agent.id not in refused.content

    found = await services.tools.run(
        ctx(services, principal_of(member), bot), call("lookup_colleague", query="张伟"), allowed
    )
    assert not found.is_error
    (colleague,) = body(found)["colleagues"]
    assert colleague["username"] == "zhang" and colleague["role"] == "agent"
    assert colleague["online"] is False


async def test_a_hand_off_refused_to_an_api_key_records_nothing(services, client, world):
    tenant, _, _, _, visitor, bot = world
    r = await client.post("/conversations", json={"kind": "direct", "user_id": bot.id},
                          headers=visitor.headers)  # fmt: skip
    conv = r.json()["id"]
    allowed = await services.tools.tools_for(tenant.id, ["handoff"])
    key = Principal(tenant_id=tenant.id, api_key_id="k1", scopes=frozenset({"bots:use"}))
    before = await count(services, Message, conversation_id=conv)

    result = await services.tools.run(
        ctx(services, key, bot, conv), call("handoff", reason="user_requested"), allowed
    )

    assert result.is_error and body(result)["error"] == "permission_denied"
    assert result.handoff is None
    assert await count(services, Event, type="support.handoff_requested") == 0
    assert await count(services, Message, conversation_id=conv) == before


async def test_an_http_tool_for_agents_is_refused_to_a_member_and_never_called(
    services, client, world
):
    tenant, admin, member, agent, _, bot = world
    with HttpTarget() as target:
        r = await client.post("/tools/http", headers=admin.headers, json={
            "name": "refund_order", "method": "POST", "url_template": f"{target.url}/refunds",
            "parameters": {"type": "object", "properties": {"order": {"type": "string"}},
                           "required": ["order"]},
            "allowed_roles": ["agent"],
        })  # fmt: skip
        assert r.status_code == 201, r.text
        allowed = await services.tools.tools_for(tenant.id, ["http:refund_order"])

        refused = await services.tools.run(
            ctx(services, principal_of(member), bot), call("refund_order", order="A1"), allowed
        )
        assert body(refused)["error"] == "permission_denied"
        assert target.requests == []

        done = await services.tools.run(
            ctx(services, principal_of(agent), bot), call("refund_order", order="A1"), allowed
        )
        assert not done.is_error, done.content
        assert [(s.method, s.body) for s in target.requests] == [("POST", {"order": "A1"})]


# -- the registry never raises ----------------------------------------------------------


class _Slow:
    ref = "slow"
    permission = None
    allowed_roles = None
    timeout_seconds = 0.2
    spec = ToolSpec("slow", "sleeps", {"type": "object", "properties": {}})

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        await asyncio.sleep(10)
        return ToolResult("late")


class _Broken(_Slow):
    ref = "broken"
    spec = ToolSpec("broken", "raises", {"type": "object", "properties": {}})

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult:
        raise RuntimeError("secret internal detail")


async def test_every_failure_becomes_an_error_result_for_the_model(services, world):
    tenant, _, member, _, _, bot = world
    c = ctx(services, principal_of(member), bot)
    allowed = [*await services.tools.tools_for(tenant.id, ["lookup_colleague"]), _Slow(), _Broken()]

    unknown = await services.tools.run(c, call("handoff", reason="other"), allowed)
    assert body(unknown)["error"] == "unknown_tool"
    assert "lookup_colleague" in body(unknown)["message"]  # the model learns what it can use

    wrong = await services.tools.run(c, call("lookup_colleague", name="ann"), allowed)
    assert body(wrong)["error"] == "invalid_arguments"
    assert "query" in body(wrong)["message"]

    started = asyncio.get_running_loop().time()
    slow = await services.tools.run(c, call("slow"), allowed)
    assert body(slow)["error"] == "timeout"
    assert asyncio.get_running_loop().time() - started < 3

    broken = await services.tools.run(c, call("broken"), allowed)
    assert body(broken)["error"] == "tool_failed"
    assert "secret internal detail" not in broken.content


async def test_tools_for_resolves_a_bots_names_and_skips_what_is_gone(services, client, world):
    tenant, admin, *_ = world
    for name, enabled in (("weather", True), ("old_api", False)):
        r = await client.post("/tools/http", headers=admin.headers, json={
            "name": name, "url_template": "http://127.0.0.1:9/x", "enabled": enabled,
        })  # fmt: skip
        assert r.status_code == 201, r.text

    tools = await services.tools.tools_for(
        tenant.id,
        ["kb_search", "http:weather", "http:old_api", "http:deleted", "nonsense", "kb_search"],
    )

    assert [t.spec.name for t in tools] == ["kb_search", "weather"]
    assert [t.ref for t in tools] == ["kb_search", "http:weather"]


# -- built-ins --------------------------------------------------------------------------


async def test_hand_off_records_the_event_and_tells_the_conversation(services, client, world):
    tenant, _, _, _, visitor, bot = world
    r = await client.post("/conversations", json={"kind": "direct", "user_id": bot.id},
                          headers=visitor.headers)  # fmt: skip
    conv = r.json()["id"]
    allowed = await services.tools.tools_for(tenant.id, ["handoff"])

    result = await services.tools.run(
        ctx(services, principal_of(visitor, "visitor"), bot, conv),
        call("handoff", reason="user_requested", summary="想和真人客服聊退款"),
        allowed,
    )

    assert not result.is_error, result.content
    assert result.handoff == {"reason": "user_requested", "summary": "想和真人客服聊退款"}
    async with services.db.read() as s:
        (event,) = (await s.scalars(
            select(Event).where(Event.type == "support.handoff_requested")
        )).all()  # fmt: skip
    assert event.conversation_id == conv and event.tenant_id == tenant.id
    assert event.payload["requested_by"] == visitor.id
    assert event.payload["bot_user_id"] == bot.id
    assert event.payload["reason"] == "user_requested"
    history = (await client.get(f"/conversations/{conv}/messages", headers=visitor.headers)).json()
    notice = history["messages"][-1]
    assert notice["kind"] == "system" and notice["id"] == event.payload["message_id"]
    assert notice["data"]["event"] == "support.handoff_requested"
    assert "human agent" in notice["text"]


async def test_hand_off_outside_a_conversation_is_an_error_not_an_event(services, world):
    tenant, _, member, _, _, bot = world
    allowed = await services.tools.tools_for(tenant.id, ["handoff"])
    result = await services.tools.run(
        ctx(services, principal_of(member), bot), call("handoff", reason="no_answer"), allowed
    )
    assert body(result)["error"] == "no_conversation"
    assert await count(services, Event, type="support.handoff_requested") == 0


async def test_colleague_lookup_finds_people_by_name_or_email_and_shows_presence(services, world):
    tenant, _, member, agent, _, bot = world
    await tenant.user("li.na@corp.example", role="member")
    await services.presence.device_online(tenant.id, agent.id, [])
    allowed = await services.tools.tools_for(tenant.id, ["lookup_colleague"])
    c = ctx(services, principal_of(member), bot)

    by_name = body(
        await services.tools.run(c, call("lookup_colleague", query="zhang wei"), allowed)
    )
    assert [(p["display_name"], p["online"]) for p in by_name["colleagues"]] == [
        ("张伟 Zhang Wei", True)
    ]
    by_mail = body(await services.tools.run(
        c, call("lookup_colleague", query="li.na@corp.example"), allowed
    ))  # fmt: skip
    assert [p["username"] for p in by_mail["colleagues"]] == ["li.na@corp.example"]
    # Bots and visitors are not colleagues.
    bots = body(await services.tools.run(c, call("lookup_colleague", query="guest"), allowed))
    assert bots["colleagues"] == []


async def test_kb_search_reads_only_what_the_asking_user_may_read(services, world):
    tenant, admin, member, agent, _, bot = world
    kb = await services.kb.create(principal_of(admin), name="internal", read_roles=["agent"])
    await services.curated.create(
        principal_of(admin), kb["id"], questions=["What is the VPN address?", "VPN 地址是什么?"],
        answer="Connect to vpn.corp.example with your SSO login.",
    )  # fmt: skip
    allowed = await services.tools.tools_for(tenant.id, ["kb_search"])

    as_agent = await services.tools.run(
        ctx(services, principal_of(agent), bot, kb_ids=(kb["id"],)),
        call("kb_search", query="VPN 地址是什么?"), allowed,
    )  # fmt: skip
    assert not as_agent.is_error, as_agent.content
    assert "vpn.corp.example" in as_agent.content
    assert [c.kb_id for c in as_agent.citations] == [kb["id"]]

    as_member = await services.tools.run(
        ctx(services, principal_of(member), bot, kb_ids=(kb["id"],)),
        call("kb_search", query="VPN 地址是什么?"), allowed,
    )  # fmt: skip
    assert not as_member.is_error
    assert "vpn.corp.example" not in as_member.content
    assert as_member.citations == []


# -- the admin API ----------------------------------------------------------------------


async def test_the_catalogue_lists_every_tool_a_bot_can_be_given(client, world):
    tenant, admin, member, *_ = world
    r = await client.post("/tools/http", headers=admin.headers, json={
        "name": "weather", "url_template": "http://127.0.0.1:9/w/{city}",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    })  # fmt: skip
    assert r.status_code == 201, r.text

    catalog = (await client.get("/tools", headers=admin.headers)).json()

    by_ref = {t["ref"]: t for t in catalog["tools"]}
    assert list(by_ref) == ["kb_search", "lookup_colleague", "handoff", "http:weather"]
    assert by_ref["lookup_colleague"]["permission"] == "directory:read"
    assert by_ref["http:weather"]["source"] == "http"
    assert by_ref["http:weather"]["allowed_roles"] == ["owner", "admin", "agent", "member"]
    assert catalog["errors"] == []
    assert (await client.get("/tools", headers=member.headers)).status_code == 403
    key = await tenant.api_key("bots:write")
    r = await client.get("/tools", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200


async def test_another_tenants_tools_are_not_found(client, make_tenant, world):
    _, admin, *_ = world
    other = await make_tenant("other")
    other_admin = await other.user("root", role="admin")
    r = await client.post("/tools/http", headers=admin.headers,
                          json={"name": "mine", "url_template": "http://127.0.0.1:9/"})  # fmt: skip
    tool_id = r.json()["id"]

    for method in ("GET", "PATCH", "DELETE"):
        kwargs = {"json": {"enabled": False}} if method == "PATCH" else {}
        r = await client.request(method, f"/tools/http/{tool_id}", headers=other_admin.headers,
                                 **kwargs)  # fmt: skip
        assert r.status_code == 404, (method, r.text)
    assert (await client.get("/tools/http", headers=other_admin.headers)).json() == []
    assert (await client.get(f"/tools/http/{tool_id}", headers=admin.headers)).json()["enabled"]
