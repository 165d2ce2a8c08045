"""Security headers on every response, never overriding a route's own; HSTS only over HTTPS
(here: a trusted proxy's X-Forwarded-Proto); no-store on authenticated answers."""

from __future__ import annotations

from fastapi import Response

HTTPS = {"X-Forwarded-Proto": "https"}  # the test client's peer, 127.0.0.1, is a trusted proxy


async def test_json_answers_carry_the_default_headers(client, make_tenant):
    ann = await (await make_tenant()).user("ann")
    r = await client.get("/users/me", headers=ann.headers)
    assert r.status_code == 200
    h = r.headers
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert h["x-frame-options"] == "DENY"
    assert h["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert "camera=()" in h["permissions-policy"] and "microphone=()" in h["permissions-policy"]
    assert h["cache-control"] == "no-store"  # authenticated
    assert "strict-transport-security" not in h  # plain HTTP


async def test_errors_and_unauthenticated_answers_get_them_too(client):
    r = await client.get("/users/me")
    assert r.status_code == 401
    assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"]
    r = await client.get("/openapi.json")
    assert r.headers["content-security-policy"].endswith("frame-ancestors 'none'")
    assert "cache-control" not in r.headers  # public, not authenticated: cacheable
    r = await client.post("/auth/login", content=b"{" * 2_000_000,
                          headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 413 and r.headers["x-frame-options"] == "DENY"


async def test_html_pages_may_be_styled_but_not_framed(client):
    r = await client.get("/docs")  # Swagger UI: scripts of its own, so no default-src
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert r.headers["x-frame-options"] == "DENY"


async def test_headers_a_route_sets_itself_are_never_overridden(app, client):
    async def framed() -> Response:
        return Response(
            "<p>embed me</p>", media_type="text/html",
            headers={"Content-Security-Policy": "frame-ancestors https://shop.example",
                     "Referrer-Policy": "strict-origin", "Cache-Control": "max-age=60",
                     "Strict-Transport-Security": "max-age=5"},
        )  # fmt: skip

    app.add_api_route("/test-framed", framed)
    r = await client.get("http://test/test-framed", headers={**HTTPS, "Authorization": "x"})
    assert r.headers["content-security-policy"] == "frame-ancestors https://shop.example"
    assert "x-frame-options" not in r.headers  # it would contradict the route's policy
    assert r.headers["referrer-policy"] == "strict-origin"
    assert r.headers["cache-control"] == "max-age=60"
    assert r.headers["strict-transport-security"] == "max-age=5"
    assert r.headers["x-content-type-options"] == "nosniff"  # what it did not set is added


async def test_the_widget_frame_keeps_its_own_policy(client):
    r = await client.get("http://test/widget/frame")
    if r.status_code != 200:  # the support widget is not part of this build
        return
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors" in csp and "frame-ancestors 'none'" not in csp
    assert "x-frame-options" not in r.headers


async def test_hsts_is_sent_over_https_only(client, settings):
    r = await client.get("http://test/health", headers=HTTPS)
    assert r.headers["strict-transport-security"] == f"max-age={settings.hsts_max_age_seconds}"
    assert "strict-transport-security" not in (await client.get("http://test/health")).headers


async def test_streamed_answers_still_stream_through_the_middlewares(client, make_tenant):
    ann = await (await make_tenant()).user("ann", role="owner")
    async with client.stream("GET", "/audit/export", headers=ann.headers) as r:
        assert r.headers["x-content-type-options"] == "nosniff"
        body = b"".join([chunk async for chunk in r.aiter_bytes()])
    assert b"audit.export" in body
