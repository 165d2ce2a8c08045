"""Tenant isolation: a member of tenant A reaches nothing of tenant B through any endpoint.

Every route under /api/v1 must appear in ``ROUTES`` below, so a new route fails this test
until someone decides how it is checked. Each route is called with B's real ids in every
path parameter (and in the body where an id fits) by three callers of tenant A: the owner's
access token, A's admin API key acting as B's user, and A's admin API key as a service.
Each route is also called once with A's own ids by A's owner, which proves the body is valid
and the route works, so a refusal with B's ids means isolation and not a typo.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import httpx
import pytest
import websockets
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from sqlalchemy import select

from tests.conftest import API, group_of, seed_tenant, send
from warbler.ids import new_id
from warbler.store.models import Base

MARKERS = ("zebramarkerb", "斑马秘密", "B-group-title-quartz", "B-announcement-onyx")
PASSWORD = "correct horse battery"
# Columns whose values move on their own (touch timestamps, the webhook dispatcher's cursor,
# and a delivery job's progress while the runner retries it against a closed port).
VOLATILE_COLUMNS = {"last_used_at", "cursor"}
VOLATILE_JOB_COLUMNS = {"status", "attempts", "run_at", "locked_by", "locked_until",
                        "last_error", "result", "updated_at"}  # fmt: skip
REFUSED = {400, 403, 404, 422}


@dataclass
class Ids:
    """The ids a route's path parameters and bodies are filled with."""

    conversation_id: str
    message_id: str
    user_id: str
    token_id: str
    api_key_id: str
    file_id: str | None = None
    webhook_id: str | None = None
    delivery_id: str | None = None
    job_id: str | None = None
    direct_id: str | None = None  # no route takes it; it is checked for leaks only
    username: str = ""
    tenant_slug: str = ""

    def path(self, template: str) -> str:
        out = template
        for f in fields(self):
            placeholder = "{" + f.name + "}"
            if placeholder in out:
                value = getattr(self, f.name)
                assert value, f"no {f.name} to put in {template}"
                out = out.replace(placeholder, value)
        assert "{" not in out, f"unknown path parameter in {template}: extend Ids"
        return out


Body = Callable[[Ids], Any]


@dataclass(frozen=True)
class Spec:
    """How one route is exercised. ``expect``: "refuse" (4xx for B's ids) or "clean"
    (any non-5xx answer, 2xx for A's owner, with nothing of B in it)."""

    body: Body | None = None
    query: Callable[[Ids], dict[str, Any]] | None = None
    expect: str = "refuse"
    auth: bool = True
    ws: bool = False
    multipart: bool = False  # body returns (form fields, files)


def _no_body(_: Ids) -> None:
    return None


ROUTES: dict[tuple[str, str], Spec] = {
    # auth
    ("POST", "/auth/login"): Spec(
        body=lambda i: {"tenant": "tenant-a", "username": i.username, "password": PASSWORD},
        auth=False,
    ),
    ("POST", "/auth/logout"): Spec(expect="clean"),
    ("GET", "/auth/tokens"): Spec(expect="clean"),
    ("DELETE", "/auth/tokens/{token_id}"): Spec(),
    ("POST", "/auth/password"): Spec(
        body=lambda i: {"current_password": PASSWORD, "new_password": PASSWORD}, expect="clean"
    ),
    # users
    ("GET", "/users/me"): Spec(expect="clean"),
    ("PATCH", "/users/me"): Spec(body=lambda i: {"display_name": "Ann A"}, expect="clean"),
    ("GET", "/users"): Spec(query=lambda i: {"q": i.username[:3]}, expect="clean"),
    ("GET", "/users/{user_id}"): Spec(),
    ("POST", "/users"): Spec(body=lambda i: {"username": f"new-{new_id()}"}, expect="clean"),
    ("PATCH", "/users/{user_id}"): Spec(body=lambda i: {"display_name": "pwned", "disabled": True}),
    ("POST", "/users/{user_id}/tokens"): Spec(body=lambda i: {"device": "intruder"}),
    ("GET", "/presence"): Spec(query=lambda i: {"user_ids": [i.user_id]}, expect="clean"),
    # API keys
    ("POST", "/api-keys"): Spec(
        body=lambda i: {"name": "a-key", "scopes": ["users:read"]}, expect="clean"
    ),
    ("GET", "/api-keys"): Spec(expect="clean"),
    ("DELETE", "/api-keys/{api_key_id}"): Spec(),
    # conversations
    ("POST", "/conversations"): Spec(body=lambda i: {"kind": "direct", "user_id": i.user_id}),
    ("GET", "/conversations"): Spec(expect="clean"),
    ("GET", "/conversations/{conversation_id}"): Spec(),
    ("PATCH", "/conversations/{conversation_id}"): Spec(
        body=lambda i: {"title": "pwned", "announcement": "pwned"}
    ),
    ("GET", "/conversations/{conversation_id}/members"): Spec(),
    ("POST", "/conversations/{conversation_id}/members"): Spec(
        body=lambda i: {"user_ids": [i.user_id]}
    ),
    ("DELETE", "/conversations/{conversation_id}/members/{user_id}"): Spec(),
    ("PATCH", "/conversations/{conversation_id}/members/{user_id}"): Spec(
        body=lambda i: {"role": "owner"}
    ),
    ("PUT", "/conversations/{conversation_id}/settings"): Spec(body=lambda i: {"muted": True}),
    ("POST", "/conversations/{conversation_id}/read"): Spec(body=lambda i: {"seq": 1}),
    ("GET", "/conversations/{conversation_id}/receipts"): Spec(),
    ("POST", "/conversations/{conversation_id}/typing"): Spec(body=lambda i: {}),
    # messages
    ("POST", "/conversations/{conversation_id}/messages"): Spec(
        body=lambda i: {"text": "intrusion", "reply_to_id": i.message_id}
    ),
    ("GET", "/conversations/{conversation_id}/messages"): Spec(),
    ("GET", "/conversations/{conversation_id}/messages/{message_id}"): Spec(),
    ("PATCH", "/conversations/{conversation_id}/messages/{message_id}"): Spec(
        body=lambda i: {"text": "pwned"}
    ),
    ("DELETE", "/conversations/{conversation_id}/messages/{message_id}"): Spec(),
    ("POST", "/conversations/{conversation_id}/messages/{message_id}/recall"): Spec(),
    # search and events
    ("GET", "/search"): Spec(
        query=lambda i: {"q": MARKERS[0], "conversation_id": i.conversation_id}, expect="clean"
    ),
    ("GET", "/events"): Spec(query=lambda i: {"cursor": 0}, expect="clean"),
    # files (uploads are multipart: a conversation_id field and a file part)
    ("POST", "/files"): Spec(
        body=lambda i: (
            {"conversation_id": i.conversation_id},
            {"file": ("note.txt", b"hello there", "text/plain")},
        ),
        multipart=True,
    ),
    ("GET", "/files/{file_id}"): Spec(),
    ("GET", "/files/{file_id}/content"): Spec(),
    # webhooks and their deliveries (a delivery is a job)
    ("POST", "/webhooks"): Spec(
        body=lambda i: {"url": "http://127.0.0.1:9/a-hook", "description": "a hook"},
        expect="clean",
    ),
    ("GET", "/webhooks"): Spec(expect="clean"),
    ("GET", "/webhooks/{webhook_id}"): Spec(),
    ("PATCH", "/webhooks/{webhook_id}"): Spec(
        body=lambda i: {"url": "http://127.0.0.1:9/pwned", "active": False}
    ),
    ("DELETE", "/webhooks/{webhook_id}"): Spec(),
    ("POST", "/webhooks/{webhook_id}/rotate-secret"): Spec(),
    ("GET", "/webhooks/{webhook_id}/deliveries"): Spec(),
    ("POST", "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"): Spec(),
    ("GET", "/jobs"): Spec(query=lambda i: {"ref": i.webhook_id}, expect="clean"),
    ("POST", "/jobs/{job_id}/retry"): Spec(),
    # WebSocket: checked by the two gateway tests at the end of this file.
    ("WS", "/ws"): Spec(ws=True),
}

# Body-level refusals inside A's own conversation: B's ids where an id fits.
MIXED: list[tuple[str, str, Body]] = [
    ("POST", "/conversations", lambda i: {"kind": "group", "title": "g", "member_ids": [i.user_id]}),
    ("POST", "/conversations/{conversation_id}/members", lambda i: {"user_ids": [i.user_id]}),
    ("POST", "/conversations/{conversation_id}/messages",
     lambda i: {"text": "re", "reply_to_id": i.message_id}),
    ("POST", "/conversations/{conversation_id}/messages",
     lambda i: {"text": "hi @b", "mentions": [i.user_id]}),
    ("GET", "/conversations/{conversation_id}/messages/{message_id}", _no_body),
    ("PATCH", "/conversations/{conversation_id}/messages/{message_id}",
     lambda i: {"text": "pwned"}),
    ("DELETE", "/conversations/{conversation_id}/messages/{message_id}", _no_body),
    ("POST", "/conversations/{conversation_id}/messages/{message_id}/recall", _no_body),
    ("DELETE", "/conversations/{conversation_id}/members/{user_id}", _no_body),
    ("PATCH", "/conversations/{conversation_id}/members/{user_id}", lambda i: {"role": "admin"}),
    ("POST", "/conversations/{conversation_id}/messages",
     lambda i: {"kind": "file", "file_id": i.file_id}),
]  # fmt: skip


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path without /api/v1) for every HTTP and WebSocket route under /api/v1."""
    out = set()
    for ctx in iter_route_contexts(app.routes):
        if not (ctx.path or "").startswith(API + "/"):
            continue
        path = ctx.path[len(API) :]
        if isinstance(ctx.original_route, APIRoute):
            out |= {(m, path) for m in (ctx.methods or set()) - {"HEAD", "OPTIONS"}}
        elif isinstance(ctx.original_route, APIWebSocketRoute):
            out.add(("WS", path))
    return out


# -- building the two tenants ------------------------------------------------------------


@dataclass
class World:
    a_owner: Any
    a_tenant: Any
    a_key: str
    b_tenant_id: str
    b_ids: Ids
    b_headers: dict[str, str]
    b_key: str
    b_tokens: list[dict[str, str]]


async def build_tenant_b(client: httpx.AsyncClient, make_tenant: Any, services: Any) -> tuple:
    b = await make_tenant("tenant-b")
    bea, bob = await b.user("bea", role="owner"), await b.user("bob")
    group = await group_of(client, bea, bob, title=MARKERS[2])
    r = await client.patch(
        f"/conversations/{group}", json={"announcement": MARKERS[3]}, headers=bea.headers
    )
    assert r.status_code == 200, r.text
    msg = await send(client, bea, group, f"{MARKERS[0]} {MARKERS[1]} 我想申请退款")
    await send(client, bob, group, f"reply {MARKERS[0]}", reply_to_id=msg["id"])
    r = await client.post("/conversations", json={"kind": "direct", "user_id": bob.id},
                          headers=bea.headers)  # fmt: skip
    assert r.status_code == 201, r.text
    direct = r.json()["id"]
    await send(client, bob, direct, f"direct {MARKERS[0]}")
    tokens = (await client.get("/auth/tokens", headers=bea.headers)).json()
    b_key = await b.api_key("admin")
    keys = (await client.get("/api-keys", headers={"Authorization": f"Bearer {b_key}"})).json()
    ids = Ids(
        conversation_id=group, message_id=msg["id"], user_id=bob.id, token_id=tokens[0]["id"],
        api_key_id=keys[0]["id"], direct_id=direct, username="bea", tenant_slug="tenant-b",
    )  # fmt: skip
    ids = replace(ids, file_id=await upload(client, bea, group, f"{MARKERS[0]}.txt"))
    hook, delivery = await webhook_with_a_delivery(
        client, {"Authorization": f"Bearer {b_key}"}, bea, group, f"hooked {MARKERS[0]}"
    )
    ids = replace(ids, webhook_id=hook, delivery_id=delivery, job_id=delivery)
    return b.id, ids, bea, bob, b_key


async def upload(client: httpx.AsyncClient, actor: Any, conv: str, name: str) -> str:
    r = await client.post(
        "/files", data={"conversation_id": conv},
        files={"file": (name, f"content of {name}".encode(), "text/plain")}, headers=actor.headers,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def webhook_with_a_delivery(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    actor: Any,
    conv: str,
    text: str,
    *,
    settled: bool = False,
) -> tuple[str, str]:
    """A real webhook (to a closed local port) and a real delivery of one message event.
    ``settled``: wait until the delivery has used up its attempts, so retrying it cannot
    meet it mid-attempt (409)."""  # fmt: skip
    r = await client.post("/webhooks", json={"url": "http://127.0.0.1:9/hook",
                          "event_types": ["message.new"], "description": text}, headers=headers)  # fmt: skip
    assert r.status_code == 201, r.text
    hook = r.json()["id"]
    await send(client, actor, conv, text)
    for _ in range(400):  # the dispatcher turns the event into a delivery in the background
        deliveries = (await client.get(f"/webhooks/{hook}/deliveries", headers=headers)).json()
        if deliveries and (not settled or deliveries[0]["status"] == "dead"):
            return hook, deliveries[0]["id"]
        await asyncio.sleep(0.05)
    raise AssertionError("the webhook never got a delivery")


async def a_victims(client: httpx.AsyncClient, services: Any, world: World, path: str = "") -> Ids:
    """Fresh A-owned things for one control call (calls may revoke, recall or remove them)."""
    t = world.a_tenant
    tok = await services.auth.issue_token(t.id, world.a_owner.id)
    owner = replace(world.a_owner, token=tok["access_token"])
    other = await services.users.create_user(t.id, username=f"v-{new_id()}")
    conv = await group_of(client, owner, _actor(other, t.id), title="a group")
    msg = await send(client, owner, conv, "a message")
    token = await services.auth.issue_token(t.id, owner.id, device="spare")
    key = await services.auth.create_api_key(t.id, name="spare", scopes=["users:read"],
                                             created_by=None)  # fmt: skip
    ids = Ids(
        conversation_id=conv, message_id=msg["id"], user_id=other["id"],
        token_id=token["token_id"], api_key_id=key["id"], username="ann", tenant_slug="tenant-a",
        file_id=await upload(client, owner, conv, "a.txt"),
    )  # fmt: skip
    if "webhook_id" in path or "job_id" in path:  # only where needed: it takes a moment
        headers = {"Authorization": f"Bearer {world.a_key}"}
        hook, delivery = await webhook_with_a_delivery(
            client, headers, owner, conv, "hooked", settled="retry" in path
        )
        ids = replace(ids, webhook_id=hook, delivery_id=delivery, job_id=delivery)
    return ids


def _actor(user: dict[str, Any], tenant_id: str) -> Any:
    from tests.conftest import Actor

    return Actor(user["id"], user["username"], "", tenant_id, user["role"])


@pytest.fixture
async def world(client: httpx.AsyncClient, make_tenant: Any, services: Any) -> World:
    a = await make_tenant("tenant-a")
    ann = await a.user("ann", role="owner")
    b_tenant_id, ids, bea, bob, b_key = await build_tenant_b(client, make_tenant, services)
    return World(
        a_owner=ann, a_tenant=a, a_key=await a.api_key("admin"), b_tenant_id=b_tenant_id,
        b_ids=ids,
        b_headers=bea.headers, b_key=b_key,
        b_tokens=[bea.headers, bob.headers],
    )  # fmt: skip


async def tenant_rows(services: Any, tenant_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every tenant-scoped table, minus columns that move on their own."""
    out: dict[str, list[dict[str, Any]]] = {}
    async with services.db.read() as s:
        for table in Base.metadata.sorted_tables:
            if "tenant_id" not in table.c:
                continue
            volatile = VOLATILE_COLUMNS | (VOLATILE_JOB_COLUMNS if table.name == "jobs" else set())
            cols = [c for c in table.c if c.name not in volatile]
            rows = (await s.execute(select(*cols).where(table.c.tenant_id == tenant_id))).all()
            out[table.name] = sorted((dict(r._mapping) for r in rows), key=repr)
    return out


# -- the checks --------------------------------------------------------------------------


def b_secrets(ids: Ids) -> list[str]:
    return [v for f in fields(ids) if (v := getattr(ids, f.name)) and f.name.endswith("id")]


def assert_nothing_of_b(r: httpx.Response, ids: Ids, where: str) -> None:
    if r.content and r.headers.get("content-type", "").startswith("application/json"):
        body = r.json()
        if isinstance(body, dict):
            body.pop("query_tokens", None)  # search echoes the query's own words
        text = json.dumps(body, ensure_ascii=False)
    else:
        text = r.text
    leaked = [m for m in MARKERS if m.lower() in text.lower()]
    if r.status_code < 300:
        leaked += [i for i in b_secrets(ids) if i in text]
    assert not leaked, f"{where} leaked {leaked}: {text[:500]}"


async def call(
    client: httpx.AsyncClient, method: str, path: str, spec: Spec, ids: Ids,
    headers: dict[str, str], body: Body | None = None,
) -> httpx.Response:  # fmt: skip
    body = body or spec.body or _no_body
    payload = body(ids)
    params = spec.query(ids) if spec.query else None
    headers = headers if spec.auth else {}
    if spec.multipart:
        data, files = payload
        return await client.request(
            method, ids.path(path), params=params, data=data, files=files, headers=headers
        )
    return await client.request(method, ids.path(path), params=params, json=payload,
                                headers=headers)  # fmt: skip


async def test_every_route_is_in_the_isolation_table(app):
    present = app_routes(app)
    missing = sorted(present - ROUTES.keys())
    stale = sorted(ROUTES.keys() - present)
    assert not missing, f"routes with no isolation check; add them to ROUTES: {missing}"
    assert not stale, f"ROUTES lists routes the app no longer has: {stale}"


async def test_a_member_of_tenant_a_reaches_nothing_of_tenant_b(app, client, services, world):
    ids = world.b_ids
    before = await tenant_rows(services, world.b_tenant_id)
    failures: list[str] = []
    for method, path in sorted(k for k in app_routes(app) & ROUTES.keys() if not ROUTES[k].ws):
        spec = ROUTES[(method, path)]
        for name, headers in await callers(services, world):
            r = await call(client, method, path, spec, ids, headers)
            where = f"{method} {path} as {name} -> {r.status_code}"
            refuse = spec.expect == "refuse" or name == "A key as B's user"
            allowed = REFUSED if spec.auth else REFUSED | {401}
            if r.status_code >= 500:
                failures.append(f"{where}: server error {r.text[:200]}")
            elif refuse and r.status_code not in allowed:
                failures.append(f"{where}: expected a refusal, got {r.text[:300]}")
            elif not refuse and name == "owner token" and r.status_code >= 300:
                failures.append(f"{where}: a list or self route should answer 2xx: {r.text[:300]}")
            try:
                assert_nothing_of_b(r, ids, where)
            except AssertionError as exc:
                failures.append(str(exc))
    assert not failures, "\n".join(failures)
    assert await tenant_rows(services, world.b_tenant_id) == before, "tenant B's data changed"
    await assert_b_still_works(client, world)


async def test_b_ids_in_bodies_of_a_own_conversation_are_refused(client, services, world):
    before = await tenant_rows(services, world.b_tenant_id)
    failures = []
    for method, path, body in MIXED:
        victims = await a_victims(client, services, world)
        # A's own conversation (the caller owns it) with B's message and user ids.
        ids = replace(world.b_ids, conversation_id=victims.conversation_id)
        headers = (await callers(services, world))[0][1]
        r = await call(client, method, path, Spec(body=body), ids, headers)
        if r.status_code not in REFUSED:
            failures.append(f"{method} {path} {body(ids)} -> {r.status_code} {r.text[:300]}")
        assert_nothing_of_b(r, ids, f"{method} {path}")
    assert not failures, "\n".join(failures)
    assert await tenant_rows(services, world.b_tenant_id) == before


async def test_every_route_works_for_a_with_a_own_ids(app, client, services, world):
    """The control: the same calls with A's own ids succeed, so the bodies above are valid
    and a refusal with B's ids comes from isolation, not from a malformed request."""
    failures = []
    for method, path in sorted(k for k in app_routes(app) & ROUTES.keys() if not ROUTES[k].ws):
        spec = ROUTES[(method, path)]
        victims = await a_victims(client, services, world, path)
        headers = (await callers(services, world))[0][1]
        r = await call(client, method, path, spec, victims, headers)
        if r.status_code >= 300:
            failures.append(f"{method} {path} -> {r.status_code} {r.text[:300]}")
    assert not failures, "\n".join(failures)


async def callers(services: Any, world: World) -> list[tuple[str, dict[str, str]]]:
    """Tenant A's three ways in. The owner gets a fresh token per call, since some calls
    (logout, password change) revoke the token they were made with."""
    tok = await services.auth.issue_token(world.a_tenant.id, world.a_owner.id)
    key = {"Authorization": f"Bearer {world.a_key}"}
    return [
        ("owner token", {"Authorization": f"Bearer {tok['access_token']}"}),
        ("A key as B's user", {**key, "X-Warbler-User": world.b_ids.user_id}),
        ("A key as service", key),
    ]


async def assert_b_still_works(client: httpx.AsyncClient, world: World) -> None:
    ids = world.b_ids
    for headers in world.b_tokens:
        assert (await client.get("/users/me", headers=headers)).status_code == 200
    key = {"Authorization": f"Bearer {world.b_key}"}
    keys = (await client.get("/api-keys", headers=key)).json()
    assert [k["revoked_at"] for k in keys] == [None]
    conv = (await client.get(f"/conversations/{ids.conversation_id}",
                             headers=world.b_headers)).json()  # fmt: skip
    assert (conv["title"], conv["announcement"]) == (MARKERS[2], MARKERS[3])
    history = (await client.get(f"/conversations/{ids.conversation_id}/messages",
                                headers=world.b_headers)).json()  # fmt: skip
    texts = [m["text"] for m in history["messages"] if m["kind"] == "text"]
    assert texts == [
        f"{MARKERS[0]} {MARKERS[1]} 我想申请退款", f"reply {MARKERS[0]}", f"hooked {MARKERS[0]}",
    ]  # fmt: skip
    hooks = (await client.get("/webhooks", headers=key)).json()
    assert [(h["id"], h["active"]) for h in hooks] == [(ids.webhook_id, True)]
    login = await client.post(
        "/auth/login", json={"tenant": "tenant-b", "username": "bea", "password": PASSWORD}
    )
    assert login.status_code == 200


# -- the WebSocket gateway ---------------------------------------------------------------


async def _frames_until(ws: Any, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    frames = []
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await ws.recv())
            frames.append(frame)
            if done(frame):
                return frames


async def test_websocket_of_a_user_never_carries_an_event_of_tenant_b(tmp_path, server_factory):
    data = tmp_path / "ws-data"
    a = await asyncio.to_thread(seed_tenant, data, "tenant-a", [("ann", "owner"), ("al", "member")])
    b = await asyncio.to_thread(
        seed_tenant, data, "tenant-b", [("bea", "owner"), ("bob", "member")]
    )
    server = server_factory(data_dir=data)
    ann, al = a["users"]["ann"], a["users"]["al"]
    bea, bob = b["users"]["bea"], b["users"]["bob"]

    def auth(u: dict[str, str]) -> dict[str, str]:
        return {"Authorization": f"Bearer {u['token']}"}

    async with httpx.AsyncClient(base_url=server.api, timeout=10) as http:
        b_conv = (await http.post("/conversations", json={"kind": "group", "title": MARKERS[2],
                  "member_ids": [bob["id"]]}, headers=auth(bea))).json()["id"]  # fmt: skip
        await http.post(f"/conversations/{b_conv}/messages", json={"text": MARKERS[0]},
                        headers=auth(bea))  # fmt: skip
        a_conv = (await http.post("/conversations", json={"kind": "direct",
                  "user_id": al["id"]}, headers=auth(ann))).json()["id"]  # fmt: skip
        url = server.api.replace("http", "ws", 1) + "/ws?cursor=0"
        async with websockets.connect(url, additional_headers=auth(ann)) as ws:
            seen = await _frames_until(ws, lambda f: f["type"] == "synced")
            # Live: B talks, then A does; events arrive in commit order, so by the time
            # A's own message arrives, any B event would have arrived before it.
            await http.post(f"/conversations/{b_conv}/messages", json={"text": MARKERS[1]},
                            headers=auth(bob))  # fmt: skip
            await http.post(f"/conversations/{b_conv}/typing", json={}, headers=auth(bob))
            await http.post(f"/conversations/{a_conv}/messages", json={"text": "for ann"},
                            headers=auth(al))  # fmt: skip
            seen += await _frames_until(
                ws, lambda f: f.get("event") == "message.new"
                and f["data"]["message"]["text"] == "for ann",
            )  # fmt: skip
    text = json.dumps(seen, ensure_ascii=False)
    assert any(f.get("conversation_id") == a_conv for f in seen), "A's own events arrive"
    for secret in (b_conv, bea["id"], bob["id"], b["tenant_id"], *MARKERS):
        assert secret not in text


async def test_a_token_with_x_warbler_user_is_refused(tmp_path, server_factory, client, world):
    tok = world.a_owner.headers
    r = await client.get("/users/me", headers={**tok, "X-Warbler-User": world.b_ids.user_id})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    data = tmp_path / "ws-data"
    a = await asyncio.to_thread(seed_tenant, data, "tenant-a", [("ann", "owner")])
    b = await asyncio.to_thread(seed_tenant, data, "tenant-b", [("bea", "owner")])
    server = server_factory(data_dir=data)
    url = server.api.replace("http", "ws", 1) + "/ws?cursor=0"
    headers = {"Authorization": f"Bearer {a['users']['ann']['token']}",
               "X-Warbler-User": b["users"]["bea"]["id"]}  # fmt: skip
    async with websockets.connect(url, additional_headers=headers) as ws:
        async with asyncio.timeout(10):
            frame = json.loads(await ws.recv())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
    assert frame["type"] == "error" and frame["error"]["code"] == "invalid_request"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
