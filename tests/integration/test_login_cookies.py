"""Cookie sessions for browsers: login sets an HttpOnly session cookie and a CSRF cookie;
unsafe requests authenticated by the cookie need the CSRF token echoed in X-CSRF-Token;
bearer-token requests are unaffected; logout and password changes end the session."""

from __future__ import annotations

from http.cookies import SimpleCookie

import httpx

PASSWORD = "correct horse battery"


def set_cookies(r: httpx.Response) -> dict[str, SimpleCookie]:
    out = {}
    for header in r.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        for name in jar:
            out[name] = jar
    return out


def cookie_header(**cookies: str) -> dict[str, str]:
    """An explicit Cookie header (the client's own cookie jar then stays out of it)."""
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


async def cookie_login(client: httpx.AsyncClient, **headers: str) -> httpx.Response:
    r = await client.post(
        "/auth/login",
        json={"tenant": "acme", "username": "ann", "password": PASSWORD, "cookie": True},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return r


async def test_a_cookie_login_sets_an_httponly_session_and_a_readable_csrf_cookie(
    client, make_tenant
):
    await (await make_tenant()).user("ann")
    r = await cookie_login(client)
    body = r.json()
    assert body["token_type"] == "cookie" and "access_token" not in body
    cookies = set_cookies(r)
    session = cookies["warbler_session"]["warbler_session"]
    csrf = cookies["warbler_csrf"]["warbler_csrf"]
    assert session.value.startswith("wbt_")
    assert session["httponly"] and session["samesite"].lower() == "lax" and session["path"] == "/"
    assert not session["secure"]  # plain HTTP
    assert not csrf["httponly"] and csrf.value == body["csrf_token"]
    assert session["expires"]  # as long as the token lives
    # The session works, as the cookie alone.
    r = await client.get("/users/me")
    assert r.status_code == 200 and r.json()["username"] == "ann"
    assert r.headers["cache-control"] == "no-store"


async def test_secure_cookies_when_the_request_came_over_https(client, make_tenant):
    await (await make_tenant()).user("ann")
    r = await cookie_login(client, **{"X-Forwarded-Proto": "https"})
    cookies = set_cookies(r)
    assert cookies["warbler_session"]["warbler_session"]["secure"]
    assert cookies["warbler_csrf"]["warbler_csrf"]["secure"]
    assert r.headers["strict-transport-security"].startswith("max-age=")


async def test_unsafe_cookie_requests_need_the_csrf_token(client, make_tenant):
    await (await make_tenant()).user("ann", role="owner")
    csrf = (await cookie_login(client)).json()["csrf_token"]
    create = {"name": "k", "scopes": ["kb:read"]}
    # No header, a wrong one, or one that only matches a planted csrf cookie: refused.
    for headers in ({}, {"X-CSRF-Token": "0" * 64}):
        r = await client.post("/api-keys", json=create, headers=headers)
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    planted = cookie_header(warbler_session=client.cookies["warbler_session"],
                            warbler_csrf="0" * 64)  # fmt: skip
    r = await client.post("/api-keys", json=create, headers={**planted, "X-CSRF-Token": "0" * 64})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    assert (await client.get("/api-keys")).json() == []  # nothing was created
    # The right token: accepted.
    r = await client.post("/api-keys", json=create, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201
    # Safe methods need none.
    assert (await client.get("/api-keys")).status_code == 200


async def test_a_csrf_token_of_another_session_is_refused(app, client, make_tenant):
    t = await make_tenant()
    await t.user("ann")
    first = (await cookie_login(client)).json()["csrf_token"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=client.base_url) as other:
        second = (await cookie_login(other)).json()["csrf_token"]
    assert first != second
    mixed = cookie_header(warbler_session=client.cookies["warbler_session"], warbler_csrf=second)
    r = await client.patch("/users/me", json={"display_name": "A"},
                           headers={**mixed, "X-CSRF-Token": second})  # fmt: skip
    assert r.status_code == 403
    r = await client.patch("/users/me", json={"display_name": "A"}, headers={"X-CSRF-Token": first})
    assert r.status_code == 200


async def test_bearer_requests_are_unaffected_by_csrf(client, make_tenant):
    ann = await (await make_tenant()).user("ann", role="owner")
    await cookie_login(client)  # the client now also holds a session cookie
    r = await client.post("/api-keys", json={"name": "k", "scopes": ["kb:read"]},
                          headers=ann.headers)  # fmt: skip
    assert r.status_code == 201  # the Authorization header decides, no CSRF token needed


async def test_logout_ends_the_cookie_session_and_clears_the_cookies(client, make_tenant):
    await (await make_tenant()).user("ann")
    session = (await cookie_login(client)).cookies["warbler_session"]
    csrf = client.cookies["warbler_csrf"]
    r = await client.post("/auth/logout")
    assert r.status_code == 403  # logout is unsafe too: a third site cannot log you out
    r = await client.post("/auth/logout", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204
    assert set_cookies(r)["warbler_session"]["warbler_session"]["max-age"] == "0"
    assert "warbler_session" not in client.cookies
    # The token itself is revoked: replaying the old cookie fails.
    r = await client.get("/users/me", headers=cookie_header(warbler_session=session))
    assert r.status_code == 401


async def test_a_password_change_ends_every_session_including_the_cookie_one(client, make_tenant):
    ann = await (await make_tenant()).user("ann")
    csrf = (await cookie_login(client)).json()["csrf_token"]
    r = await client.post(
        "/auth/password", json={"current_password": PASSWORD, "new_password": "brand new words"},
        headers={"X-CSRF-Token": csrf},
    )  # fmt: skip
    assert r.status_code == 204
    assert "warbler_session" not in client.cookies
    assert (await client.get("/users/me", headers=ann.headers)).status_code == 401


async def test_an_api_key_in_the_session_cookie_is_not_accepted(client, make_tenant):
    t = await make_tenant()
    key = await t.api_key("admin")
    r = await client.get("/api-keys", headers=cookie_header(warbler_session=key))
    assert r.status_code == 401
