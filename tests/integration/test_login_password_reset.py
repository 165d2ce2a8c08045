"""The password policy at every door (user creation, own change, admin reset), and an admin's
reset: it revokes every session of the user, only an owner resets an owner, it is audited."""

from __future__ import annotations

import httpx

PASSWORD = "correct horse battery"


async def login(client: httpx.AsyncClient, username: str, password: str) -> int:
    r = await client.post(
        "/auth/login", json={"tenant": "acme", "username": username, "password": password}
    )
    return r.status_code


def assert_weak(r: httpx.Response, rule: str, field: str) -> None:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "weak_password"
    assert (error["details"]["rule"], error["details"]["field"]) == (rule, field)
    assert error["details"]["message_zh"]


async def test_weak_passwords_are_refused_at_every_door(client, make_tenant):
    t = await make_tenant()
    admin = await t.user("ann", role="admin")
    bo = await t.user("zhao")
    for password, rule in (("qwertyuiop", "too_common"), ("short", "too_short"),
                           ("my name is zhangwei ok", "contains_username")):  # fmt: skip
        r = await client.post("/users", json={"username": "zhangwei", "password": password},
                              headers=admin.headers)  # fmt: skip
        assert_weak(r, rule, "password")
    r = await client.post("/auth/password", json={"current_password": PASSWORD,
                          "new_password": "Zhao's own password"}, headers=bo.headers)  # fmt: skip
    assert_weak(r, "contains_username", "new_password")
    r = await client.post(f"/users/{bo.id}/password", json={"new_password": "1q2w3e4r5t"},
                          headers=admin.headers)  # fmt: skip
    assert_weak(r, "too_common", "new_password")
    # Nothing changed: bo's sessions and password still work.
    assert (await client.get("/users/me", headers=bo.headers)).status_code == 200
    assert await login(client, "zhao", PASSWORD) == 200


async def test_a_chinese_passphrase_is_a_good_password(client, make_tenant):
    t = await make_tenant()
    admin = await t.user("ann", role="admin")
    r = await client.post("/users", json={"username": "li", "password": "春眠不觉晓处处"},
                          headers=admin.headers)  # fmt: skip
    assert r.status_code == 201, r.text
    assert await login(client, "li", "春眠不觉晓处处") == 200


async def test_an_admin_reset_revokes_every_session_of_the_user(client, make_tenant, services):
    t = await make_tenant()
    admin = await t.user("ann", role="admin")
    bo = await t.user("bo")
    r = await client.post(f"/users/{bo.id}/password", json={"new_password": "reset by the admin"},
                          headers=admin.headers)  # fmt: skip
    assert r.status_code == 204
    assert (await client.get("/users/me", headers=bo.headers)).status_code == 401
    assert await login(client, "bo", PASSWORD) == 401
    assert await login(client, "bo", "reset by the admin") == 200
    assert (await client.get("/users/me", headers=admin.headers)).status_code == 200
    entries = await services.audit.query(t.id, action="user.password_reset")
    assert [(e["actor_id"], e["target_id"]) for e in entries] == [(admin.id, bo.id)]


async def test_only_an_owner_resets_an_owner_and_members_reset_nobody(client, make_tenant):
    t = await make_tenant()
    owner, admin = await t.user("olga", role="owner"), await t.user("ann", role="admin")
    member = await t.user("mo")
    r = await client.post(f"/users/{owner.id}/password", json={"new_password": "taken over now"},
                          headers=admin.headers)  # fmt: skip
    assert r.status_code == 403
    r = await client.post(f"/users/{admin.id}/password", json={"new_password": "taken over now"},
                          headers=member.headers)  # fmt: skip
    assert r.status_code == 403
    assert await login(client, "olga", PASSWORD) == 200
    r = await client.post(f"/users/{admin.id}/password", json={"new_password": "owner resets it"},
                          headers=owner.headers)  # fmt: skip
    assert r.status_code == 204
    # Your own password goes through /auth/password, with the current one.
    r = await client.post(f"/users/{owner.id}/password", json={"new_password": "no current one"},
                          headers=owner.headers)  # fmt: skip
    assert r.status_code == 403
