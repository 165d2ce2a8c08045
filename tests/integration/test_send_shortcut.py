"""The send shortcut (api/send_shortcut.py) answers exactly as the FastAPI route does.

Each request goes once through the app as served (shortcut first) and once through the same
app built without the shortcut (the route alone), on the same store; the answers must match
byte for byte, headers included. A counter on the route's services dependency shows which
requests the shortcut served itself: a parity test where the shortcut always stepped aside
would prove nothing. (Answers that store a message differ only in its id, seq and time.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.middleware import Middleware

from tests.conftest import API, Actor, group_of
from warbler.api.send_shortcut import SendShortcut

VOLATILE = {"date", "x-request-id"}


class _Counter:
    """Innermost: counts the requests the shortcut passed on to the router."""

    def __init__(self, app: Any, calls: list[int]) -> None:
        self.app, self.calls = app, calls

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls.append(1)
        await self.app(scope, receive, send)


def _stack(app: FastAPI, middleware: list[Middleware]) -> Any:
    """The app served through ``middleware`` (outermost first), on the same state."""
    saved = list(app.user_middleware)
    app.user_middleware = middleware
    stack = app.build_middleware_stack()
    app.user_middleware = saved

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        scope["app"] = app
        await stack(scope, receive, send)

    return asgi


@pytest.fixture
async def both(app: FastAPI) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, list]]:
    calls: list[int] = []
    served = _stack(app, [*app.user_middleware, Middleware(_Counter, calls=calls)])
    route = _stack(app, [m for m in app.user_middleware if m.cls is not SendShortcut])
    url = f"http://test{API}"
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=served), base_url=url) as a,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=route), base_url=url) as b,
    ):
        yield a, b, calls


def _headers(r: httpx.Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in r.headers.multi_items() if k not in VOLATILE]


def _answer(r: httpx.Response) -> tuple[int, Any, list[tuple[str, str]]]:
    """What must match: status, headers, and the body (a stored message's own id, seq and
    time aside)."""
    body: Any = r.content
    if r.status_code in (200, 201):
        body = {k: v for k, v in r.json().items() if k not in ("id", "seq", "created_at")}
        length = ("content-length", "")
        return r.status_code, body, [length if k == "content-length" else (k, v)
                                     for k, v in _headers(r)]  # fmt: skip
    return r.status_code, body, _headers(r)


async def _pair(
    both: tuple[httpx.AsyncClient, httpx.AsyncClient, list], path: str, **kw: Any
) -> tuple[httpx.Response, httpx.Response, bool]:
    served, route, calls = both
    before = len(calls)
    a = await served.post(path, **kw)
    shortcut_served = len(calls) == before
    b = await route.post(path, **kw)
    return a, b, shortcut_served


@pytest.fixture
async def world(make_tenant: Any, client: httpx.AsyncClient) -> dict[str, Any]:
    t = await make_tenant()
    ann, bob, eve = await t.user("ann"), await t.user("bob"), await t.user("eve")
    conv = await group_of(client, ann, bob)
    return {"tenant": t, "ann": ann, "bob": bob, "eve": eve, "conv": conv}


async def test_a_send_is_served_by_the_shortcut_and_reads_like_the_routes(both, world) -> None:
    ann: Actor = world["ann"]
    path = f"/conversations/{world['conv']}/messages"
    a, b, served = await _pair(both, path, json={"text": "你好 hello"}, headers=ann.headers)
    assert served, "the shortcut stepped aside on a plain send"
    assert (a.status_code, b.status_code) == (201, 201)
    assert _headers(a) == _headers(b)
    first, second = a.json(), b.json()
    assert second["seq"] == first["seq"] + 1
    volatile = {"id", "seq", "created_at"}
    assert {k: v for k, v in first.items() if k not in volatile} == {
        k: v for k, v in second.items() if k not in volatile
    }


@pytest.mark.parametrize("first_via", ["served", "route"])
async def test_a_retry_returns_the_same_bytes_either_way(both, world, first_via: str) -> None:
    ann: Actor = world["ann"]
    served, route, _ = both
    path = f"/conversations/{world['conv']}/messages"
    body = {"text": "once", "client_msg_id": f"c-{first_via}"}
    one, other = (served, route) if first_via == "served" else (route, served)
    created = await one.post(path, json=body, headers=ann.headers)
    again = await other.post(path, json=body, headers=ann.headers)
    assert (created.status_code, again.status_code) == (201, 200)
    assert again.content == created.content
    assert _headers(again) == _headers(created)


# (body bytes, content type, headers key, whether the shortcut itself answers)
CASES: dict[str, tuple[bytes, str | None, str, bool]] = {
    "malformed json": (b'{"text": ', "application/json", "ann", False),
    "invalid utf-8": (b'{"text": "\xff"}', "application/json", "ann", False),
    "empty body": (b"", "application/json", "ann", False),
    "unknown field": (b'{"txt": "x"}', "application/json", "ann", False),
    "wrong kind": (b'{"kind": "video", "text": "x"}', "application/json", "ann", False),
    "nul in text": (b'{"text": "a\\u0000b"}', "application/json", "ann", False),
    "lone surrogate": (b'{"text": "\\ud800"}', "application/json", "ann", False),
    "not an object": (b'["text"]', "application/json", "ann", False),
    "NaN": (b'{"text": "x", "data": {"n": NaN}}', "application/json", "ann", True),
    "text/plain": (b'{"text": "x"}', "text/plain", "ann", False),
    "no content type": (b'{"text": "x"}', None, "ann", False),
    "no auth": (b'{"text": "x"}', "application/json", "none", False),
    "bad token": (b'{"text": "x"}', "application/json", "bad", True),
    "basic auth": (b'{"text": "x"}', "application/json", "basic", False),
    "not a member": (b'{"text": "x"}', "application/json", "eve", True),
    "empty text": (b'{"text": ""}', "application/json", "ann", True),
    "reply to nothing": (b'{"text": "x", "reply_to_id": "nope"}', "application/json", "ann", True),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_every_refusal_reads_exactly_like_the_routes(both, world, case: str) -> None:
    body, content_type, who, answered_by_shortcut = CASES[case]
    headers: dict[str, str] = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if who in ("ann", "eve"):
        headers.update(world[who].headers)
    elif who == "bad":
        headers["Authorization"] = "Bearer wbt_not_a_token"
    elif who == "basic":
        headers["Authorization"] = "Basic YW5uOnB3"
    path = f"/conversations/{world['conv']}/messages"
    a, b, served = await _pair(both, path, content=body, headers=headers)
    assert a.status_code < 500, a.text
    assert _answer(a) == _answer(b)
    assert served == answered_by_shortcut, a.text


async def test_an_unknown_conversation_and_an_impersonation_read_the_same(both, world) -> None:
    t = world["tenant"]
    key = await t.api_key("users:read")  # no 'impersonate' scope
    for path, headers in [
        ("/conversations/nope/messages", world["ann"].headers),
        (
            f"/conversations/{world['conv']}/messages",
            {"Authorization": f"Bearer {key}", "X-Warbler-User": world["bob"].id},
        ),
    ]:
        a, b, served = await _pair(both, path, json={"text": "x"}, headers=headers)
        assert served
        assert a.status_code >= 400
        assert _answer(a) == _answer(b)


async def test_a_body_over_the_limit_is_refused_alike(app: FastAPI, both, world) -> None:
    limit = app.state.services.settings.max_request_bytes
    body = b'{"text": "' + b"x" * limit + b'"}'
    path = f"/conversations/{world['conv']}/messages"
    a, b, _ = await _pair(
        both,
        path,
        content=body,
        headers={**world["ann"].headers, "Content-Type": "application/json"},
    )
    assert a.status_code == 413
    assert _answer(a) == _answer(b)


async def test_other_methods_and_paths_are_not_the_shortcuts(both, world) -> None:
    served_client, route_client, calls = both
    ann: Actor = world["ann"]
    before = len(calls)
    r = await served_client.get(f"/conversations/{world['conv']}/messages", headers=ann.headers)
    assert r.status_code == 200
    assert len(calls) > before
    path = f"/conversations/{world['conv']}/messages/"  # the router's redirect, not a send
    a = await served_client.post(path, json={"text": "x"}, headers=ann.headers)
    b = await route_client.post(path, json={"text": "x"}, headers=ann.headers)
    assert a.status_code == b.status_code != 201
