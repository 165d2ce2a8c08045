"""Outgoing webhooks, end to end: a real HTTP receiver on 127.0.0.1 gets signed deliveries."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import backend_settings, group_of, send
from warbler.config import Settings
from warbler.webhooks import delivery, targets
from warbler_client.webhooks import compute_signature, verify_signature

MAX_ATTEMPTS = 5


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    # Few attempts, so "always failing" ends dead quickly (backoff is already short in tests).
    return backend_settings(backend, request, tmp_path / "data", webhook_max_attempts=MAX_ATTEMPTS)


# -- a real receiver -----------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return dict(orjson.loads(self.body))


class Receiver:
    """An HTTP server in a thread that records every request. ``fail_next`` answers that
    many requests with 500 first; ``always_fail`` answers 500 until it is cleared;
    ``quote_on_failure`` makes a 500 quote the message's text, as some receivers do."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.fail_next = 0
        self.always_fail = False
        self.quote_on_failure = False
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    failing = receiver.always_fail or receiver.fail_next > 0
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                status, text = (500, b"receiver is down") if failing else (200, b"ok")
                if failing and receiver.quote_on_failure:
                    message = orjson.loads(body).get("data", {}).get("message") or {}
                    text = f"rejected: {message.get('text')}".encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *_args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def of_type(self, event_type: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.headers["x-warbler-event"] == event_type]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()
    r.thread.join(5)


async def eventually(check: Callable[[], Any], within: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def eventually_async(check: Callable[[], Any], within: float = 10.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def create_hook(client: Any, admin: Any, url: str, **extra: Any) -> dict[str, Any]:
    r = await client.post("/webhooks", json={"url": url, **extra}, headers=admin.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def deliveries(client: Any, admin: Any, hook_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"/webhooks/{hook_id}/deliveries", headers=admin.headers)
    assert r.status_code == 200, r.text
    return list(r.json())


# -- tests --------------------------------------------------------------------------------


async def test_a_sent_message_reaches_the_receiver_signed_with_the_webhook_secret(
    client, make_tenant, receiver
):
    t = await make_tenant()
    admin, bo = await t.user("ann", role="admin"), await t.user("bo")
    hook = await create_hook(client, admin, receiver.url, description="crm")
    assert hook["secret"].startswith("whsec_")
    conv = await group_of(client, admin, bo)
    sent = await send(client, bo, conv, "hello hook")

    def mine() -> list[Received]:
        return [
            r
            for r in receiver.of_type("message.new")
            if r.json["data"]["message"]["id"] == sent["id"]
        ]

    got = (await eventually(mine))[0]
    body = got.json
    assert got.path == "/hook"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"].startswith("Warbler-Webhooks/")
    assert got.headers["x-warbler-delivery"] == body["id"]
    assert body["type"] == "message.new" and body["tenant_id"] == t.id
    assert body["data"]["message"]["id"] == sent["id"]
    assert body["data"]["message"]["text"] == "hello hook"
    assert isinstance(body["event_id"], int) and body["created_at"]

    ts, sig = got.headers["x-warbler-timestamp"], got.headers["x-warbler-signature"]
    assert sig.startswith("v1=")
    assert verify_signature(hook["secret"], got.body, ts, sig)
    assert not verify_signature(hook["secret"], got.body.replace(b"hello", b"HELLO"), ts, sig)
    assert not verify_signature("whsec_wrong", got.body, ts, sig)
    assert not verify_signature(hook["secret"], got.body, ts, sig, now=int(ts) + 301)
    assert not verify_signature(hook["secret"], got.body, str(int(ts) + 1), sig)

    # The secret is shown at creation only.
    listed = (await client.get("/webhooks", headers=admin.headers)).json()
    one = (await client.get(f"/webhooks/{hook['id']}", headers=admin.headers)).json()
    assert "secret" not in listed[0] and "secret" not in one
    assert one["description"] == "crm"


async def test_a_receiver_failing_three_times_gets_the_event_with_one_delivery_id(
    client, make_tenant, receiver
):
    t = await make_tenant()
    admin = await t.user("ann", role="admin")
    conv = await group_of(client, admin, await t.user("bo"))
    hook = await create_hook(client, admin, receiver.url, event_types=["message.new"])
    receiver.fail_next = 3
    await send(client, admin, conv, "persist")

    attempts = await eventually(lambda: len(receiver.requests) >= 4 and receiver.requests)
    await asyncio.sleep(0.3)  # nothing more should arrive once it succeeded
    assert len(receiver.requests) == 4
    assert len({r.headers["x-warbler-delivery"] for r in attempts}) == 1
    assert len({r.body for r in attempts}) == 1  # the same payload every time

    async def done() -> Any:
        rows = await deliveries(client, admin, hook["id"])
        return rows if rows and rows[0]["status"] == "done" else None

    [row] = await eventually_async(done)
    assert row["id"] == attempts[0].headers["x-warbler-delivery"]
    assert (row["attempts"], row["status_code"], row["event_type"]) == (4, 200, "message.new")
    assert row["last_error"] is None and row["delivered_at"] is not None


async def test_an_always_failing_receiver_ends_dead_and_a_retry_delivers_it(
    client, make_tenant, receiver
):
    t = await make_tenant()
    admin = await t.user("ann", role="admin")
    conv = await group_of(client, admin, await t.user("bo"))
    hook = await create_hook(client, admin, receiver.url)
    receiver.always_fail = True
    await send(client, admin, conv, "will fail")

    async def dead() -> Any:
        rows = [
            d
            for d in await deliveries(client, admin, hook["id"])
            if d["event_type"] == "message.new"
        ]
        return rows if rows and rows[0]["status"] == "dead" else None

    [row] = await eventually_async(dead)
    assert row["attempts"] == MAX_ATTEMPTS and row["status_code"] == 500
    assert row["last_error"] == "HTTP 500: receiver is down"
    assert row["next_attempt_at"] is None
    assert len(receiver.of_type("message.new")) == MAX_ATTEMPTS

    # It is dead: nothing more is attempted until an admin retries it.
    await asyncio.sleep(0.4)
    assert len(receiver.of_type("message.new")) == MAX_ATTEMPTS

    receiver.always_fail = False
    r = await client.post(
        f"/webhooks/{hook['id']}/deliveries/{row['id']}/retry", headers=admin.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending"
    got = await eventually(lambda: len(receiver.of_type("message.new")) > MAX_ATTEMPTS)
    assert got
    last = receiver.of_type("message.new")[-1]
    assert last.headers["x-warbler-delivery"] == row["id"]
    assert verify_signature(
        hook["secret"], last.body, last.headers["x-warbler-timestamp"],
        last.headers["x-warbler-signature"],
    )  # fmt: skip

    async def done() -> Any:
        rows = await deliveries(client, admin, hook["id"])
        return [d for d in rows if d["id"] == row["id"] and d["status"] == "done"]

    assert await eventually_async(done)
    # The dead delivery also shows in the admin job listing, filtered by status.
    r = await client.get("/jobs?status=done&kind=webhook.delivery", headers=admin.headers)
    assert row["id"] in [j["id"] for j in r.json()]


async def test_private_and_loopback_targets_are_refused_when_not_allowed(
    client, make_tenant, receiver, services
):
    t = await make_tenant()
    admin = await t.user("ann", role="admin")
    # Made while private targets are allowed, so the delivery-time check can be seen too.
    allowed = await create_hook(client, admin, receiver.url)
    services.settings.webhook_allow_private_targets = False

    for url in (receiver.url, "http://10.0.0.1/", "http://localhost:9/x", "http://[::1]/",
                "http://169.254.169.254/latest/meta-data"):  # fmt: skip
        r = await client.post("/webhooks", json={"url": url}, headers=admin.headers)
        assert r.status_code == 400, (url, r.text)
        assert r.json()["error"]["code"] == "invalid_request"
    r = await client.patch(
        f"/webhooks/{allowed['id']}", json={"url": "http://10.0.0.1/"}, headers=admin.headers
    )
    assert r.status_code == 400
    for url in ("ftp://example.com/", "not a url", "http:///nohost"):
        r = await client.post("/webhooks", json={"url": url}, headers=admin.headers)
        assert r.status_code == 400, (url, r.text)

    # The existing webhook to 127.0.0.1 is re-checked when delivering: nothing is sent.
    conv = await group_of(client, admin, await t.user("bo"))
    await send(client, admin, conv, "to nowhere")

    async def refused() -> Any:
        rows = await deliveries(client, admin, allowed["id"])
        return [d for d in rows if d["last_error"] and "non-public address" in d["last_error"]]

    assert await eventually_async(refused)
    assert receiver.requests == []


async def test_event_types_filter_what_a_webhook_receives(client, make_tenant, receiver):
    t = await make_tenant()
    admin, bo, cy = await t.user("ann", role="admin"), await t.user("bo"), await t.user("cy")
    members_only = await create_hook(
        client, admin, receiver.url + "?only=members", event_types=["member.added"]
    )
    everything = await create_hook(client, admin, receiver.url + "?all=1")
    conv = await group_of(client, admin, bo)
    msg = await send(client, admin, conv, "first")
    r = await client.post(
        f"/conversations/{conv}/members", json={"user_ids": [cy.id]}, headers=admin.headers
    )
    assert r.status_code in (200, 201), r.text
    # Delete-for-me is private to ann's devices: never sent to a webhook.
    r = await client.delete(f"/conversations/{conv}/messages/{msg['id']}", headers=admin.headers)
    assert r.status_code == 204
    await send(client, admin, conv, "last")

    def all_last() -> bool:
        return any(
            r.path.endswith("all=1") and r.json["data"]["message"]["text"] == "last"
            for r in receiver.of_type("message.new")
        )

    await eventually(all_last)
    await asyncio.sleep(0.2)
    to_all = [r.headers["x-warbler-event"] for r in receiver.requests if r.path.endswith("all=1")]
    to_members = [r for r in receiver.requests if r.path.endswith("only=members")]
    assert "message.hidden" not in to_all and "member.settings" not in to_all
    # Parallel sending may reorder deliveries (docs/webhooks.md): the seq orders them.
    texts = [
        m["text"]
        for m in sorted(
            (r.json["data"]["message"] for r in receiver.of_type("message.new")
             if r.path.endswith("all=1") and r.json["data"]["message"]["kind"] == "text"),
            key=lambda m: m["seq"],
        )
    ]  # fmt: skip
    assert texts == ["first", "last"] and "member.added" in to_all
    assert to_members and {r.headers["x-warbler-event"] for r in to_members} == {"member.added"}
    assert any(cy.id in orjson.dumps(r.json["data"]).decode() for r in to_members)

    listed = await deliveries(client, admin, members_only["id"])
    assert {d["event_type"] for d in listed} == {"member.added"}
    assert everything["event_types"] == []

    r = await client.patch(
        f"/webhooks/{members_only['id']}", json={"event_types": ["message.hidden"]},
        headers=admin.headers,
    )  # fmt: skip
    assert r.status_code == 400 and "message.hidden" in r.json()["error"]["message"]
    r = await client.post(
        "/webhooks", json={"url": receiver.url, "event_types": ["no.such"]}, headers=admin.headers
    )
    assert r.status_code == 400


async def test_a_new_webhook_gets_no_backfill_and_a_deleted_one_gets_nothing_more(
    client, make_tenant, receiver
):
    t = await make_tenant()
    admin = await t.user("ann", role="admin")
    conv = await group_of(client, admin, await t.user("bo"))
    await send(client, admin, conv, "before the webhook")
    hook = await create_hook(client, admin, receiver.url, event_types=["message.new"])
    await send(client, admin, conv, "after the webhook")
    await eventually(lambda: receiver.of_type("message.new"))
    await asyncio.sleep(0.2)
    texts = [r.json["data"]["message"]["text"] for r in receiver.of_type("message.new")]
    assert texts == ["after the webhook"]

    r = await client.delete(f"/webhooks/{hook['id']}", headers=admin.headers)
    assert r.status_code == 204
    await send(client, admin, conv, "after delete")
    await asyncio.sleep(0.3)
    assert len(receiver.requests) == 1
    assert (await client.get(f"/webhooks/{hook['id']}", headers=admin.headers)).status_code == 404


async def test_a_paused_webhook_skips_events_and_resumes_from_now(client, make_tenant, receiver):
    t = await make_tenant()
    admin = await t.user("ann", role="admin")
    conv = await group_of(client, admin, await t.user("bo"))
    hook = await create_hook(client, admin, receiver.url, event_types=["message.new"])
    r = await client.patch(f"/webhooks/{hook['id']}", json={"active": False}, headers=admin.headers)
    assert r.json()["active"] is False
    await send(client, admin, conv, "while paused")
    await asyncio.sleep(0.3)
    assert receiver.requests == []
    r = await client.patch(f"/webhooks/{hook['id']}", json={"active": True}, headers=admin.headers)
    assert r.json()["active"] is True
    await send(client, admin, conv, "resumed")
    await eventually(lambda: receiver.requests)
    await asyncio.sleep(0.2)
    assert [r.json["data"]["message"]["text"] for r in receiver.requests] == ["resumed"]


async def test_rotating_the_secret_signs_later_deliveries_with_the_new_one(
    client, make_tenant, receiver
):
    t = await make_tenant()
    admin = await t.user("ann", role="admin")
    hook = await create_hook(client, admin, receiver.url, event_types=["message.new"])
    r = await client.post(f"/webhooks/{hook['id']}/rotate-secret", headers=admin.headers)
    assert r.status_code == 200
    new_secret = r.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != hook["secret"]
    conv = await group_of(client, admin, await t.user("bo"))
    await send(client, admin, conv, "rotated")
    got = (await eventually(lambda: receiver.requests))[0]
    ts, sig = got.headers["x-warbler-timestamp"], got.headers["x-warbler-signature"]
    assert verify_signature(new_secret, got.body, ts, sig)
    assert not verify_signature(hook["secret"], got.body, ts, sig)


async def test_another_tenants_admin_cannot_see_or_change_the_webhook(
    client, make_tenant, receiver
):
    acme, other = await make_tenant("acme"), await make_tenant("other")
    admin, member = await acme.user("ann", role="admin"), await acme.user("bo")
    intruder = await other.user("eve", role="admin")
    hook = await create_hook(client, admin, receiver.url)
    conv = await group_of(client, admin, member)
    await send(client, admin, conv, "private")
    delivery = (await eventually_async(lambda: deliveries(client, admin, hook["id"])))[0]
    base = f"/webhooks/{hook['id']}"

    h = intruder.headers
    assert (await client.get("/webhooks", headers=h)).json() == []
    for method, path, body in [
        ("GET", base, None),
        ("PATCH", base, {"active": False}),
        ("DELETE", base, None),
        ("POST", f"{base}/rotate-secret", None),
        ("GET", f"{base}/deliveries", None),
        ("POST", f"{base}/deliveries/{delivery['id']}/retry", None),
        ("POST", f"/jobs/{delivery['id']}/retry", None),
    ]:
        r = await client.request(method, path, json=body, headers=h)
        assert r.status_code == 404, (method, path, r.text)
    assert delivery["id"] not in [j["id"] for j in (await client.get("/jobs", headers=h)).json()]

    # Plain members may not manage webhooks; an API key needs the webhooks:write scope.
    assert (await client.get("/webhooks", headers=member.headers)).status_code == 403
    reader = await acme.api_key("users:read")
    writer = await acme.api_key("webhooks:write")
    r = await client.get("/webhooks", headers={"Authorization": f"Bearer {reader}"})
    assert r.status_code == 403
    r = await client.get("/webhooks", headers={"Authorization": f"Bearer {writer}"})
    assert r.status_code == 200 and [w["id"] for w in r.json()] == [hook["id"]]
    still = (await client.get(base, headers=admin.headers)).json()
    assert still["active"] is True


async def test_unknown_fields_are_rejected(client, make_tenant):
    t = await make_tenant()
    admin = await t.user("ann", role="admin")
    r = await client.post(
        "/webhooks", json={"url": "https://example.com/h", "secret": "mine"}, headers=admin.headers
    )
    assert r.status_code == 422


async def test_a_delivery_connects_to_the_checked_address_keeping_the_host_name(
    client, make_tenant, receiver, services, monkeypatch
):
    # DNS for a made-up public name answers with our receiver's address; the SSRF check is
    # on, so the request must go to exactly the address that check approved.
    real = targets.resolve_public
    checked: list[str] = []

    async def resolve(url: Any) -> str:
        if url.host == "hooks.example.test":
            checked.append(url.host)
            return "127.0.0.1"
        return await real(url)

    monkeypatch.setattr(targets, "resolve_public", resolve)
    monkeypatch.setattr(delivery, "resolve_public", resolve)
    services.settings.webhook_allow_private_targets = False
    t = await make_tenant()
    admin = await t.user("ann", role="admin")
    conv = await group_of(client, admin, await t.user("bo"))
    port = receiver.server.server_address[1]
    await create_hook(
        client, admin, f"http://hooks.example.test:{port}/in", event_types=["message.new"]
    )
    await send(client, admin, conv, "pinned")
    got = (await eventually(lambda: receiver.requests))[0]
    assert got.path == "/in" and got.headers["host"] == f"hooks.example.test:{port}"
    assert got.json["data"]["message"]["text"] == "pinned"
    assert len(checked) == 2  # at creation, and again at delivery


def test_verify_signature_accepts_any_listed_v1_signature_and_rejects_junk():
    secret, body, ts = "whsec_test", b'{"id":"x"}', "1700000000"
    good = compute_signature(secret, body, ts)
    assert verify_signature(secret, body, ts, good, now=1700000000)
    assert verify_signature(secret, body, ts, f"v1=00ff, {good}", now=1700000100)
    assert not verify_signature(secret, body, ts, good.replace("v1=", "v0="), now=1700000000)
    assert not verify_signature(secret, body, "17e8", good, now=1700000000)
    assert not verify_signature(secret, body, ts, "", now=1700000000)
    assert not verify_signature(secret, body, ts, good, now=1700000000 - 301)
