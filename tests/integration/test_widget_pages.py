"""The widget's files served by Warbler: the loader, the frame with the tenant's
frame-ancestors policy, the demo page, and the assets (nothing else under web/)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.integration.test_widget_sessions import make_widget


@pytest.fixture
async def web(app: FastAPI) -> Any:
    """A client at the server root (pages live outside /api/v1)."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        yield c


def csp(r: httpx.Response) -> dict[str, str]:
    directives = [d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";")]
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


async def test_the_loader_is_javascript_that_any_site_may_load(web):
    r = await web.get("/widget.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["cross-origin-resource-policy"] == "cross-origin"
    assert "max-age=" in r.headers["cache-control"]
    assert "window.Warbler" in r.text and "attachShadow" in r.text
    again = await web.get("/widget.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and not again.content
    head = await web.head("/widget.js")
    assert head.status_code == 200 and head.headers["etag"] == r.headers["etag"]


async def test_the_frame_may_be_embedded_where_the_tenant_allows(
    web, client, services, make_tenant
):
    widget = await make_widget(client, make_tenant)
    anywhere = await web.get("/widget/frame", params={"w": widget.id, "lang": "zh"})
    assert anywhere.status_code == 200
    assert anywhere.headers["content-type"].startswith("text/html")
    policy = csp(anywhere)
    assert policy["frame-ancestors"] == "*"
    assert policy["script-src"] == "'self'" and "unsafe-inline" not in str(policy)
    assert '<script type="module" src="/widget/frame.js">' in anywhere.text

    r = await client.put(
        "/support/settings", headers=widget.admin,
        json={"allowed_origins": ["https://shop.example.com", "http://localhost:3000"]},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    only = csp(await web.get("/widget/frame", params={"w": widget.id}))
    assert only["frame-ancestors"] == "https://shop.example.com http://localhost:3000"

    missing = await web.get("/widget/frame", params={"w": "no-such-widget"})
    assert missing.status_code == 404


async def test_the_demo_page_embeds_the_widget_with_one_script_tag(web):
    r = await web.get("/widget/demo")
    assert r.status_code == 200
    assert '<script src="/widget.js" data-widget="demo" async></script>' in r.text
    assert csp(r)["frame-ancestors"] == "'self'"


async def test_assets_are_served_and_nothing_else(web):
    for path, kind in (
        ("/widget/frame.js", "text/javascript"),
        ("/widget/frame.css", "text/css"),
        ("/widget/i18n.js", "text/javascript"),
    ):
        r = await web.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith(kind), path
        assert r.headers["x-content-type-options"] == "nosniff"
    for path in (
        "/widget/frame.html",  # pages only with their CSP, never as a bare file
        "/widget/..%2F__init__.py",
        "/widget/%2E%2E%2Fapi%2Fweb.py",
        "/widget/__init__.py",
        "/widget/missing.js",
    ):
        assert (await web.get(path)).status_code == 404, path
