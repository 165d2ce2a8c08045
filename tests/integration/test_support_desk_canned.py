"""Canned replies: agents add them by shortcut, find them by a prefix of the shortcut or title
(Chinese and English), per team; an agent changes only their own, an admin any."""

from __future__ import annotations

from tests.integration.support_world import support_world


async def _add(client, actor, status: int = 201, **body):
    r = await client.post("/support/canned", json=body, headers=actor.headers)
    assert r.status_code == status, r.text
    return r.json()


async def _list(client, actor, **params) -> list[str]:
    r = await client.get("/support/canned", params=params, headers=actor.headers)
    assert r.status_code == 200, r.text
    return [c["shortcut"] for c in r.json()]


async def test_agents_add_list_find_change_and_delete_canned_replies(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    amy = await w.agent("amy")
    sales = await services.support.teams.create(w.admin, {"name": "Sales 销售"})
    refund = await _add(
        client, amy, shortcut="/Refund", title="Refund policy", text="Refunds take 5 days."
    )
    assert refund["shortcut"] == "refund"  # the leading slash is dropped, lower-cased
    assert refund["created_by"] == amy.id and refund["team_id"] is None
    await _add(client, amy, shortcut="tuikuan", title="退款说明", text="退款五个工作日内到账。")
    await _add(client, amy, shortcut="ship-time", title="Shipping times", text="2-3 days.")
    await _add(
        client, amy, shortcut="discount", title="Sales discount", text="10% off.",
        team_id=sales["id"],
    )  # fmt: skip

    assert await _list(client, amy) == ["discount", "refund", "ship-time", "tuikuan"]
    # A prefix of the shortcut, of the title, of a word of the title; zh and en alike.
    assert await _list(client, amy, q="re") == ["refund"]
    assert await _list(client, amy, q="/sh") == ["ship-time"]
    assert await _list(client, amy, q="TIMES") == ["ship-time"]
    assert await _list(client, amy, q="退款") == ["tuikuan"]
    assert await _list(client, amy, q="说明") == ["tuikuan"]
    assert await _list(client, amy, q="policy") == ["refund"]
    assert await _list(client, amy, q="olicy") == []
    # A team sees its own replies and those for every team.
    assert await _list(client, amy, team_id=sales["id"]) == [
        "discount", "refund", "ship-time", "tuikuan",
    ]  # fmt: skip
    support_team = await services.support.teams.create(w.admin, {"name": "Support"})
    assert await _list(client, amy, team_id=support_team["id"]) == [
        "refund", "ship-time", "tuikuan",
    ]  # fmt: skip

    r = await client.patch(
        f"/support/canned/{refund['id']}",
        json={"title": "Refunds 退款", "text": "Refunds take 5 business days.",
              "team_id": support_team["id"]},
        headers=amy.headers,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["title"], changed["team_id"]) == ("Refunds 退款", support_team["id"])
    assert changed["updated_at"] >= refund["updated_at"]
    assert await _list(client, amy, q="退") == ["refund", "tuikuan"]
    assert await _list(client, amy, team_id=sales["id"]) == ["discount", "ship-time", "tuikuan"]
    r = await client.patch(
        f"/support/canned/{refund['id']}", json={"team_id": None}, headers=amy.headers
    )
    assert r.status_code == 200 and r.json()["team_id"] is None

    r = await client.delete(f"/support/canned/{refund['id']}", headers=amy.headers)
    assert r.status_code == 204
    assert "refund" not in await _list(client, amy)
    r = await client.delete(f"/support/canned/{refund['id']}", headers=amy.headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_shortcuts_are_unique_per_tenant_and_checked(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    amy = await w.agent("amy")
    first = await _add(client, amy, shortcut="hello", title="Hi", text="Hello!")
    taken = await _add(client, amy, 409, shortcut="HELLO", title="Hi again", text="Hello!")
    assert taken["error"]["code"] == "shortcut_taken"
    assert taken["error"]["details"]["shortcut"] == "hello"
    other = await _add(client, amy, shortcut="bye", title="Bye", text="Bye!")
    r = await client.patch(
        f"/support/canned/{other['id']}", json={"shortcut": "hello"}, headers=amy.headers
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "shortcut_taken"
    for bad in ("has space", "émoji", "a" * 41, "UPPER?", "/"):
        r = await client.post(
            "/support/canned", json={"shortcut": bad, "title": "t", "text": "x"},
            headers=amy.headers,
        )  # fmt: skip
        assert r.status_code in (400, 422), (bad, r.text)
        assert r.json()["error"]["code"] == "invalid_request", bad
    r = await client.post(
        "/support/canned", json={"shortcut": "big", "title": "t", "text": "x" * 5001},
        headers=amy.headers,
    )  # fmt: skip
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = await client.post(
        "/support/canned", json={"shortcut": "blank", "title": "  ", "text": "x"},
        headers=amy.headers,
    )  # fmt: skip
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "title"
    r = await client.post(
        "/support/canned", json={"shortcut": "team", "title": "t", "text": "x",
                                 "team_id": "01HZZZZZZZZZZZZZZZZZZZZZZZ"},
        headers=amy.headers,
    )  # fmt: skip
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    # The same shortcut in another tenant is another reply.
    w2 = await support_world(services, make_tenant, slug="other")
    bob = await w2.agent("bob")
    again = await _add(client, bob, shortcut="hello", title="Hi", text="Hello there!")
    assert again["id"] != first["id"]
    assert await _list(client, amy) == ["bye", "hello"]
    assert await _list(client, bob) == ["hello"]


async def test_only_agents_use_canned_replies_and_only_their_author_or_an_admin_changes_one(
    client, services, make_tenant
):
    w = await support_world(services, make_tenant)
    amy, bob = await w.agent("amy"), await w.agent("bob")
    mona = await w.tenant.user("mona")  # a member, not an agent
    vera, _ = await w.visitor("vera")
    mine = await _add(client, amy, shortcut="mine", title="Mine", text="Amy's words.")
    for outsider in (mona, vera):
        r = await client.get("/support/canned", headers=outsider.headers)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        r = await client.post(
            "/support/canned", json={"shortcut": "x", "title": "x", "text": "x"},
            headers=outsider.headers,
        )  # fmt: skip
        assert r.status_code == 403
    # Another agent reads it but may not change or delete it; the owner (an admin) may.
    assert await _list(client, bob) == ["mine"]
    r = await client.patch(f"/support/canned/{mine['id']}", json={"text": "Bob's"},
                           headers=bob.headers)  # fmt: skip
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = await client.delete(f"/support/canned/{mine['id']}", headers=bob.headers)
    assert r.status_code == 403
    r = await client.patch(f"/support/canned/{mine['id']}", json={"text": "Edited by olive."},
                           headers=w.owner.headers)  # fmt: skip
    assert r.status_code == 200 and r.json()["text"] == "Edited by olive."
    # API keys: support:read lists, support:write also writes.
    reader = {"Authorization": f"Bearer {await w.tenant.api_key('support:read')}"}
    writer = {"Authorization": f"Bearer {await w.tenant.api_key('support:write')}"}
    assert (await client.get("/support/canned", headers=reader)).status_code == 200
    body = {"shortcut": "bykey", "title": "Key", "text": "From a key."}
    assert (await client.post("/support/canned", json=body, headers=reader)).status_code == 403
    r = await client.post("/support/canned", json=body, headers=writer)
    assert r.status_code == 201 and r.json()["created_by"] is None
