"""Login, sessions, passwords, disabling, API keys with scopes, impersonation, and who may
grant which role."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import group_of

PASSWORD = "correct horse battery"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD,
                tenant: str = "acme") -> httpx.Response:  # fmt: skip
    return await client.post(
        "/auth/login", json={"tenant": tenant, "username": username, "password": password}
    )


async def works(client: httpx.AsyncClient, headers: dict[str, str]) -> bool:
    r = await client.get("/users/me", headers=headers)
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


# -- login and sessions -----------------------------------------------------------------


async def test_login_returns_a_working_token(client, make_tenant):
    t = await make_tenant()
    ann = await t.user("ann")
    r = await login(client, "ann")
    assert r.status_code == 200
    body = r.json()
    assert (body["user_id"], body["tenant_id"], body["token_type"]) == (ann.id, t.id, "bearer")
    me = (await client.get("/users/me", headers=bearer(body["access_token"]))).json()
    assert me["id"] == ann.id


async def test_login_failures_all_say_the_same_thing(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann", role="owner"), await t.user("bo")
    await client.patch(f"/users/{bo.id}", json={"disabled": True}, headers=ann.headers)
    failures = [
        await login(client, "ann", "wrong password!"),
        await login(client, "nobody"),
        await login(client, "ann", tenant="no-such-tenant"),
        await login(client, "bo"),  # disabled
    ]
    assert {r.status_code for r in failures} == {401}
    assert len({r.json()["error"]["message"] for r in failures}) == 1
    assert all(r.headers["www-authenticate"] == "Bearer" for r in failures)


async def test_my_tokens_are_listed_and_one_can_be_revoked(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    phone = (await login(client, "ann")).json()
    sessions = (await client.get("/auth/tokens", headers=ann.headers)).json()
    assert len(sessions) == 2
    current = [s["id"] for s in sessions if s["current"]]
    others = [s["id"] for s in sessions if not s["current"]]
    assert len(current) == 1 and others == [phone["token_id"]]
    # Someone else's token is not mine to revoke.
    r = await client.delete(f"/auth/tokens/{phone['token_id']}", headers=bo.headers)
    assert r.status_code == 404
    assert await works(client, bearer(phone["access_token"]))
    r = await client.delete(f"/auth/tokens/{phone['token_id']}", headers=ann.headers)
    assert r.status_code == 204
    assert not await works(client, bearer(phone["access_token"]))
    assert await works(client, ann.headers)
    assert len((await client.get("/auth/tokens", headers=ann.headers)).json()) == 1


async def test_logout_revokes_only_the_token_it_was_made_with(client, make_tenant):
    t = await make_tenant()
    ann = await t.user("ann")
    other = (await login(client, "ann")).json()
    r = await client.post("/auth/logout", headers=ann.headers)
    assert r.status_code == 204
    assert not await works(client, ann.headers)
    assert await works(client, bearer(other["access_token"]))
    key = await t.api_key("admin")
    r = await client.post("/auth/logout", headers=bearer(key))
    assert r.status_code == 400  # API keys are revoked by admins, not logged out


async def test_changing_my_password_revokes_every_token_of_mine(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    other = (await login(client, "ann")).json()
    r = await client.post("/auth/password", json={"current_password": "nope nope",
                          "new_password": "a new long password"}, headers=ann.headers)  # fmt: skip
    assert r.status_code == 403 and await works(client, ann.headers)
    r = await client.post("/auth/password", json={"current_password": PASSWORD,
                          "new_password": "short"}, headers=ann.headers)  # fmt: skip
    assert r.status_code == 400 and await works(client, ann.headers)
    r = await client.post("/auth/password", json={"current_password": PASSWORD,
                          "new_password": "a new long password"}, headers=ann.headers)  # fmt: skip
    assert r.status_code == 204
    assert not await works(client, ann.headers)
    assert not await works(client, bearer(other["access_token"]))
    assert await works(client, bo.headers)
    assert (await login(client, "ann")).status_code == 401
    assert (await login(client, "ann", "a new long password")).status_code == 200


async def test_a_disabled_user_is_locked_out_until_enabled(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann", role="admin"), await t.user("bo")
    r = await client.patch(f"/users/{bo.id}", json={"disabled": True}, headers=ann.headers)
    assert r.status_code == 200 and r.json()["disabled"] is True
    assert not await works(client, bo.headers)
    assert (await login(client, "bo")).status_code == 401
    r = await client.patch(f"/users/{ann.id}", json={"disabled": True}, headers=ann.headers)
    assert r.status_code == 400  # nobody disables themselves
    await client.patch(f"/users/{bo.id}", json={"disabled": False}, headers=ann.headers)
    assert not await works(client, bo.headers)  # old tokens stay revoked
    assert (await login(client, "bo")).status_code == 200


# -- API keys ---------------------------------------------------------------------------


async def test_an_api_key_secret_is_shown_once_and_scopes_are_checked(client, make_tenant):
    t = await make_tenant()
    ann = await t.user("ann", role="admin")
    r = await client.post("/api-keys", json={"name": "crm", "scopes": ["users:write"]},
                          headers=ann.headers)  # fmt: skip
    assert r.status_code == 201 and r.json()["key"].startswith(r.json()["prefix"])
    listed = (await client.get("/api-keys", headers=ann.headers)).json()
    assert [k["name"] for k in listed] == ["crm"] and "key" not in listed[0]
    r = await client.post("/api-keys", json={"name": "x", "scopes": ["everything"]},
                          headers=ann.headers)  # fmt: skip
    assert r.status_code == 400
    assert len((await client.get("/api-keys", headers=ann.headers)).json()) == 1


async def test_users_write_creates_users_but_not_webhooks_or_api_keys(client, make_tenant):
    t = await make_tenant()
    key = bearer(await t.api_key("users:write"))
    r = await client.post("/users", json={"username": "newbie", "password": PASSWORD},
                          headers=key)  # fmt: skip
    assert r.status_code == 201
    assert (await login(client, "newbie")).status_code == 200
    r = await client.post("/api-keys", json={"name": "more", "scopes": ["admin"]}, headers=key)
    assert r.status_code == 403
    r = await client.post("/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers=key)
    assert r.status_code in (403, 404)  # 404 only where the webhooks API is not mounted
    # A service key is not a user: user endpoints need impersonation.
    assert (await client.get("/users/me", headers=key)).status_code == 403
    assert (await client.get("/conversations", headers=key)).status_code == 403


async def test_users_read_lists_users_but_cannot_create_them(client, make_tenant):
    t = await make_tenant()
    await t.user("ann")
    key = bearer(await t.api_key("users:read"))
    r = await client.get("/users", headers=key)
    assert r.status_code == 200 and [u["username"] for u in r.json()] == ["ann"]
    r = await client.post("/users", json={"username": "eve"}, headers=key)
    assert r.status_code == 403
    assert len((await client.get("/users", headers=key)).json()) == 1


async def test_impersonate_acts_as_the_user_and_other_keys_cannot(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    key = bearer(await t.api_key("impersonate"))
    as_bo = {**key, "X-Warbler-User": bo.id}
    assert (await client.get("/users/me", headers=as_bo)).json()["id"] == bo.id
    r = await client.post(f"/conversations/{conv}/messages", json={"text": "from the CRM"},
                          headers=as_bo)  # fmt: skip
    assert r.status_code == 201 and r.json()["sender_id"] == bo.id
    # impersonation does not make a key an admin
    assert (await client.post("/users", json={"username": "x"}, headers=key)).status_code == 403
    plain = bearer(await t.api_key("users:read"))
    r = await client.get("/users/me", headers={**plain, "X-Warbler-User": bo.id})
    assert r.status_code == 403
    r = await client.get(
        "/users/me", headers={**key, "X-Warbler-User": "01J00000000000000000000000"}
    )
    assert r.status_code == 404


async def test_a_revoked_api_key_is_401(client, make_tenant):
    t = await make_tenant()
    ann = await t.user("ann", role="owner")
    created = (await client.post("/api-keys", json={"name": "k", "scopes": ["users:read"]},
                                 headers=ann.headers)).json()  # fmt: skip
    key = bearer(created["key"])
    assert (await client.get("/users", headers=key)).status_code == 200
    r = await client.delete(f"/api-keys/{created['id']}", headers=ann.headers)
    assert r.status_code == 204
    r = await client.get("/users", headers=key)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert (
        await client.delete(f"/api-keys/{created['id']}", headers=ann.headers)
    ).status_code == 404


async def test_an_api_key_with_tokens_write_issues_tokens_for_users(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann", role="admin"), await t.user("bo")
    key = bearer(await t.api_key("tokens:write"))
    r = await client.post(f"/users/{bo.id}/tokens", json={"device": "crm"}, headers=key)
    assert r.status_code == 201 and r.json()["user_id"] == bo.id
    issued = bearer(r.json()["access_token"])
    assert (await client.get("/users/me", headers=issued)).json()["id"] == bo.id
    devices = [s["device"] for s in (await client.get("/auth/tokens", headers=issued)).json()]
    assert "crm" in devices
    await client.patch(f"/users/{bo.id}", json={"disabled": True}, headers=ann.headers)
    r = await client.post(f"/users/{bo.id}/tokens", json={}, headers=key)
    assert r.status_code == 403  # no tokens for a disabled user
    no_scope = bearer(await t.api_key("users:read"))
    r = await client.post(f"/users/{ann.id}/tokens", json={}, headers=no_scope)
    assert r.status_code == 403


# -- roles ------------------------------------------------------------------------------


async def _role(client: httpx.AsyncClient, actor: Any, user_id: str) -> str:
    return str((await client.get(f"/users/{user_id}", headers=actor.headers)).json()["role"])


async def test_only_an_owner_grants_or_takes_away_the_owner_role(client, make_tenant):
    t = await make_tenant()
    own, adm, bo = (
        await t.user("own", role="owner"),
        await t.user("adm", role="admin"),
        (await t.user("bo")),
    )
    r = await client.patch(f"/users/{bo.id}", json={"role": "owner"}, headers=adm.headers)
    assert r.status_code == 403
    r = await client.patch(f"/users/{own.id}", json={"role": "member"}, headers=adm.headers)
    assert r.status_code == 403
    r = await client.patch(f"/users/{adm.id}", json={"role": "owner"}, headers=adm.headers)
    assert r.status_code == 403
    r = await client.post("/users", json={"username": "boss", "role": "owner"},
                          headers=adm.headers)  # fmt: skip
    assert r.status_code == 403
    assert [await _role(client, own, u.id) for u in (own, adm, bo)] == ["owner", "admin", "member"]
    # An admin may make admins; the owner may make owners.
    r = await client.patch(f"/users/{bo.id}", json={"role": "admin"}, headers=adm.headers)
    assert r.status_code == 200 and r.json()["role"] == "admin"
    r = await client.patch(f"/users/{bo.id}", json={"role": "owner"}, headers=own.headers)
    assert r.status_code == 200 and r.json()["role"] == "owner"
    r = await client.post("/users", json={"username": "boss", "role": "owner"},
                          headers=own.headers)  # fmt: skip
    assert r.status_code == 201


async def test_members_change_their_own_profile_but_not_their_role(client, make_tenant):
    t = await make_tenant()
    bo = await t.user("bo")
    r = await client.patch("/users/me", json={"display_name": "Bo B."}, headers=bo.headers)
    assert r.status_code == 200 and r.json()["display_name"] == "Bo B."
    r = await client.patch(f"/users/{bo.id}", json={"role": "admin"}, headers=bo.headers)
    assert r.status_code == 403
    r = await client.patch("/users/me", json={"role": "admin"}, headers=bo.headers)
    assert r.status_code == 422  # not a field of one's own profile
    assert (await client.get("/users/me", headers=bo.headers)).json()["role"] == "member"


async def test_bots_and_visitors_have_fixed_roles(client, make_tenant):
    t = await make_tenant()
    ann = await t.user("ann", role="admin")
    r = await client.post("/users", json={"username": "helper", "kind": "bot"},
                          headers=ann.headers)  # fmt: skip
    assert r.status_code == 201 and r.json()["role"] == "bot"
    r = await client.post("/users", json={"username": "v1", "kind": "visitor", "role": "admin"},
                          headers=ann.headers)  # fmt: skip
    assert r.status_code == 400
    r = await client.post("/users", json={"username": "ann"}, headers=ann.headers)
    assert r.status_code == 409
