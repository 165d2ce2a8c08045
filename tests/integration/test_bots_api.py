"""Bots over the API: admins configure them, every user sees who they are, tenants never meet."""

from __future__ import annotations

import pytest

from warbler.clock import utcnow
from warbler.errors import InvalidRequest, NotFound
from warbler.ids import new_id
from warbler.store.models_kb import KnowledgeBase

SALES = {"name": "sales", "persona": "You sell.", "temperature": 0.9}


async def add_kb(services, tenant_id: str, name: str = "handbook") -> str:
    now = utcnow()
    kb = KnowledgeBase(id=new_id(), tenant_id=tenant_id, name=name, description="",
                       read_roles=[], read_group_ids=[], content_version=0,
                       created_at=now, updated_at=now)  # fmt: skip
    async with services.db.write() as s:
        s.add(kb)
    return kb.id


async def add_provider(client, admin, name: str = "deepseek", key: str | None = None) -> str:
    body = {"name": name, "kind": "openai", "base_url": "https://api.deepseek.com/v1"}
    if key:
        body["api_key"] = key
    r = await client.post("/ai/providers", json=body, headers=admin.headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
async def acme(make_tenant):
    tenant = await make_tenant("acme")
    tenant.admin = await tenant.user("ada", role="admin")
    tenant.member = await tenant.user("mo")
    return tenant


async def test_admin_creates_a_bot_that_is_a_user_of_kind_bot(client, services, acme):
    kb = await add_kb(services, acme.id)
    provider = await add_provider(client, acme.admin)
    r = await client.post("/bots", json={
        "name": "Helper 小助手", "avatar_url": "https://cdn.example/h.png", "persona": "Be kind.",
        "presets": [SALES], "provider_ids": [provider], "kb_ids": [kb], "tools": ["kb_search"],
        "temperature": 0.3, "max_tokens": 800, "quotas": {"messages_per_minute": 10},
    }, headers=acme.admin.headers)  # fmt: skip
    assert r.status_code == 201, r.text
    bot = r.json()
    assert bot["persona"] == "Be kind." and bot["provider_ids"] == [provider]
    assert bot["presets"] == [{**SALES, "model": None, "max_tokens": None}]
    assert bot["quotas"] == {"messages_per_minute": 10, "user_messages_per_minute": None,
                             "tokens_per_month": None}  # fmt: skip
    # Defaults: answer every DM, only @-mentions in groups.
    assert (bot["dm_policy"], bot["group_policy"], bot["context_tokens"]) == (
        "always",
        "mention",
        4000,
    )
    user = (await client.get(f"/users/{bot['user_id']}", headers=acme.member.headers)).json()
    assert (user["kind"], user["role"], user["display_name"]) == ("bot", "bot", "Helper 小助手")
    assert user["avatar_url"] == "https://cdn.example/h.png"


async def test_members_see_a_bots_name_and_avatar_but_not_its_configuration(client, acme):
    created = (await client.post("/bots", json={"name": "Helper", "description": "Asks nothing",
               "persona": "SECRET PERSONA"}, headers=acme.admin.headers)).json()  # fmt: skip
    listed = await client.get("/bots", headers=acme.member.headers)
    one = await client.get(f"/bots/{created['id']}", headers=acme.member.headers)
    assert listed.status_code == one.status_code == 200
    for view in (listed.json()[0], one.json()):
        assert set(view) == {"id", "user_id", "name", "description", "avatar_url", "enabled"}
    assert "SECRET PERSONA" not in listed.text + one.text
    full = await client.get(f"/bots/{created['id']}", headers=acme.admin.headers)
    assert full.json()["persona"] == "SECRET PERSONA"


async def test_only_admins_and_bots_write_keys_configure_bots(client, acme):
    bot = (await client.post("/bots", json={"name": "B"}, headers=acme.admin.headers)).json()
    member = acme.member.headers
    for r in (
        await client.post("/bots", json={"name": "Mine"}, headers=member),
        await client.patch(f"/bots/{bot['id']}", json={"persona": "x"}, headers=member),
        await client.delete(f"/bots/{bot['id']}", headers=member),
    ):
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    reader = {"Authorization": f"Bearer {await acme.api_key('kb:read')}"}
    assert (await client.post("/bots", json={"name": "K"}, headers=reader)).status_code == 403
    writer = {"Authorization": f"Bearer {await acme.api_key('bots:write')}"}
    r = await client.post("/bots", json={"name": "K"}, headers=writer)
    assert r.status_code == 201
    assert "persona" in (await client.get(f"/bots/{r.json()['id']}", headers=writer)).json()


INVALID_BOTS = [
    ({"temperature": 2.5}, 422, "temperature"),
    ({"context_tokens": 499}, 422, "context_tokens"),
    ({"context_tokens": 200_001}, 422, "context_tokens"),
    ({"dm_policy": "sometimes"}, 422, "dm_policy"),
    ({"presets": [{"name": "sales"}, {"name": "Sales"}]}, 400, "presets"),
    ({"presets": [{"name": "two words"}]}, 400, "presets"),
    ({"tools": ["kb_search", "no spaces allowed"]}, 400, "tools"),
    ({"tools": ["kb_search", "kb_search"]}, 400, "tools"),
    ({"kb_ids": ["01NOSUCHKB0000000000000000"]}, 400, "kb_ids"),
    ({"provider_ids": ["01NOSUCHPROVIDER0000000000"]}, 400, "provider_ids"),
    ({"quotas": {"per_hour": 5}}, 422, "quotas"),
    ({"colour": "blue"}, 422, "colour"),
]


async def test_invalid_bot_configurations_are_refused_with_a_typed_error(client, acme):
    for body, status, field in INVALID_BOTS:
        r = await client.post("/bots", json={"name": "B", **body}, headers=acme.admin.headers)
        assert r.status_code == status, (body, r.text)
        error = r.json()["error"]
        assert error["code"] == "invalid_request", body
        if status == 400:
            assert error["details"]["field"] == field, body
        else:
            assert any(field in p["loc"] for p in error["details"]["errors"]), body
    assert (await client.get("/bots", headers=acme.admin.headers)).json() == []
    users = (await client.get("/users", params={"kind": "bot"}, headers=acme.admin.headers)).json()
    assert users == [], "a refused bot leaves no user behind"


async def test_a_bot_cannot_use_another_tenants_knowledge_base_or_provider(
    client, services, acme, make_tenant
):
    other = await make_tenant("globex")
    other_admin = await other.user("gus", role="admin")
    their_kb = await add_kb(services, other.id)
    their_provider = await add_provider(client, other_admin)
    for body in ({"kb_ids": [their_kb]}, {"provider_ids": [their_provider]}):
        r = await client.post("/bots", json={"name": "B", **body}, headers=acme.admin.headers)
        assert r.status_code == 400 and r.json()["error"]["details"]["missing"]


async def test_renaming_a_bot_renames_its_user_and_changes_apply(client, services, acme):
    bot = (await client.post("/bots", json={"name": "Old"}, headers=acme.admin.headers)).json()
    kb = await add_kb(services, acme.id)
    r = await client.patch(f"/bots/{bot['id']}", json={
        "name": "New 新", "avatar_url": "https://cdn.example/n.png", "kb_ids": [kb],
        "group_policy": "always", "enabled": False,
    }, headers=acme.admin.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    assert (r.json()["kb_ids"], r.json()["group_policy"], r.json()["enabled"]) == (
        [kb],
        "always",
        False,
    )
    user = (await client.get(f"/users/{bot['user_id']}", headers=acme.admin.headers)).json()
    assert (user["display_name"], user["avatar_url"]) == ("New 新", "https://cdn.example/n.png")
    r = await client.patch(
        f"/bots/{bot['id']}", json={"context_tokens": 10}, headers=acme.admin.headers
    )
    assert r.status_code == 422


async def test_deleting_a_bot_disables_its_user_and_forgets_it(client, acme):
    bot = (await client.post("/bots", json={"name": "Gone"}, headers=acme.admin.headers)).json()
    r = await client.delete(f"/bots/{bot['id']}", headers=acme.admin.headers)
    assert r.status_code == 204
    assert (await client.get(f"/bots/{bot['id']}", headers=acme.admin.headers)).status_code == 404
    user = (await client.get(f"/users/{bot['user_id']}", headers=acme.admin.headers)).json()
    assert user["disabled"] is True


async def test_another_tenant_cannot_see_or_touch_a_bot(client, acme, make_tenant):
    bot = (await client.post("/bots", json={"name": "Ours"}, headers=acme.admin.headers)).json()
    other = await make_tenant("globex")
    them = (await other.user("gus", role="admin")).headers
    assert (await client.get("/bots", headers=them)).json() == []
    for r in (
        await client.get(f"/bots/{bot['id']}", headers=them),
        await client.patch(f"/bots/{bot['id']}", json={"persona": "pwned"}, headers=them),
        await client.delete(f"/bots/{bot['id']}", headers=them),
    ):
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert (await client.get(f"/bots/{bot['id']}", headers=acme.admin.headers)).status_code == 200


async def test_bot_usernames_come_from_the_name_or_are_given(client, acme):
    a = (await client.post("/bots", json={"name": "Help Desk"}, headers=acme.admin.headers)).json()
    b = (await client.post("/bots", json={"name": "Help Desk"}, headers=acme.admin.headers)).json()
    users = {u["id"]: u["username"] for u in (await client.get(
        "/users", params={"kind": "bot"}, headers=acme.admin.headers)).json()}  # fmt: skip
    assert users[a["user_id"]] == "help-desk"
    assert users[b["user_id"]].startswith("help-desk-") and users[b["user_id"]] != "help-desk"
    r = await client.post("/bots", json={"name": "X", "username": "help-desk"},
                          headers=acme.admin.headers)  # fmt: skip
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"


async def test_load_gives_the_reply_engine_the_bot_with_opened_keys_in_order(
    client, services, acme
):
    first = await add_provider(client, acme.admin, "first", key="sk-first-0123456789abcdef")
    second = await add_provider(client, acme.admin, "second", key="sk-second-0123456789abcdef")
    bot = (await client.post("/bots", json={
        "name": "B", "provider_ids": [second, first], "presets": [SALES], "tools": ["mcp:files:read"],
        "quotas": {"tokens_per_month": 5000},
    }, headers=acme.admin.headers)).json()  # fmt: skip
    config = await services.bots.load(acme.id, bot["id"])
    assert [p.name for p in config.providers] == ["second", "first"]
    assert config.providers[0].api_key == "sk-second-0123456789abcdef"
    assert config.quotas.tokens_per_month == 5000 and config.tools == ("mcp:files:read",)
    assert config.with_preset("sales").temperature == 0.9
    assert (await services.bots.load(acme.id, bot["user_id"])).id == bot["id"]
    with pytest.raises(NotFound):
        await services.bots.load("01OTHERTENANT0000000000000", bot["id"])


async def test_preset_chosen_in_a_conversation_sticks_and_unknown_names_list_the_choices(
    client, services, acme
):
    bot = (await client.post("/bots", json={"name": "B", "presets": [SALES, {"name": "售后"}]},
                             headers=acme.admin.headers)).json()  # fmt: skip
    r = await client.post("/conversations", json={"kind": "group", "title": "G",
                          "member_ids": [acme.member.id, bot["user_id"]]},
                          headers=acme.admin.headers)  # fmt: skip
    conv = r.json()["id"]
    assert await services.bots.get_preset(acme.id, conv, bot["id"]) is None
    assert await services.bots.set_preset(acme.id, conv, bot["id"], "SALES") == "sales"
    assert await services.bots.get_preset(acme.id, conv, bot["id"]) == "sales"
    assert await services.bots.set_preset(acme.id, conv, bot["id"], "售后") == "售后"
    with pytest.raises(InvalidRequest) as err:
        await services.bots.set_preset(acme.id, conv, bot["id"], "marketing")
    assert err.value.details["available"] == ["sales", "售后"]
    assert "sales, 售后" in err.value.message
    assert await services.bots.get_preset(acme.id, conv, bot["id"]) == "售后"
    assert await services.bots.set_preset(acme.id, conv, bot["id"], None) is None
    assert await services.bots.get_preset(acme.id, conv, bot["id"]) is None
    assert await services.bots.get_preset("01OTHERTENANT0000000000000", conv, bot["id"]) is None


async def test_bots_among_a_conversations_members_are_the_enabled_bots(client, services, acme):
    on = (await client.post("/bots", json={"name": "On"}, headers=acme.admin.headers)).json()
    off = (await client.post("/bots", json={"name": "Off", "enabled": False},
                             headers=acme.admin.headers)).json()  # fmt: skip
    members = [acme.member.id, on["user_id"], off["user_id"]]
    async with services.db.read() as s:
        found = await services.bots.bots_among(s, acme.id, members)
        elsewhere = await services.bots.bots_among(s, "01OTHERTENANT0000000000000", members)
    assert [(b.id, b.dm_policy, b.group_policy) for b in found] == [(on["id"], "always", "mention")]
    assert elsewhere == []
