"""Encryption at rest, end to end: after real traffic through the API, the SQLite file (and its
WAL), every text/JSON column of every PostgreSQL table and the file stores hold no message
body, file content, provider key, webhook secret or tool secret — and the API reads them all
back. Data from before encryption at rest still reads, and ``reencrypt`` encrypts it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from tests.conftest import Tenant, backend_settings, group_of, send
from tests.integration.test_webhooks import Receiver
from warbler.ai.provider_configs import key_context
from warbler.ai.tools.http_tool import auth_context
from warbler.ai.tools.mcp_source import headers_context
from warbler.config import Settings
from warbler.search.tokenize import tokens
from warbler.security.crypto import SecretBox
from warbler.security.encryption import WrongTenant, tenant_scope
from warbler.security.encryption.keycache import CACHE
from warbler.security.encryption.reencrypt import reencrypt
from warbler.services import Services
from warbler.store.models import Job, Message, Webhook
from warbler.store.models_ai import AiProvider
from warbler.store.models_tools import HttpTool, McpServer
from warbler_client.webhooks import verify_signature

ZH = "绝密蓝鲸计划明天启动"
EN = "xylophonequartz"
EDITED = "zebracrumpet"
CARD_TITLE = "机密卡片标题"
CARD_BODY = "marmaladeoctopus"
FILE_MARK = "quokkafjord"
FILE_BYTES = f"quarterly numbers {FILE_MARK} 机密附件内容\n".encode() * 200
PROVIDER_KEY = "sk-narwhalpotion-0001"
HTTP_TOOL_SECRET = "Bearer wombatlantern"
MCP_SECRET = "kiwiparsnip-token"


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    return backend_settings(
        backend, request, tmp_path / "data", outbound_allowed_hosts=["127.0.0.1"]
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()
    r.thread.join(5)


def markers(extra: list[str]) -> list[str]:
    """Every plaintext that must not be at rest, and each search token of the Chinese ones
    (an index of words would hold those, not the sentence)."""
    out = [ZH, EN, EDITED, CARD_TITLE, CARD_BODY, FILE_MARK, "narwhalpotion", "wombatlantern",
           "kiwiparsnip", *extra]  # fmt: skip
    for phrase in (ZH, CARD_TITLE, "机密附件内容"):
        out += [t for t in tokens(phrase) if len(t) >= 2]
    return out


def leaks_in_files(root: Path, needles: list[str]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            found += [f"{path.name}: {n}" for n in needles if n.encode() in blob]
    return found


async def leaks_in_postgres(services: Services, needles: list[str]) -> list[str]:
    found = []
    async with services.db.read() as s:
        columns = (
            await s.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND data_type IN ('text', 'character "
                    "varying', 'json', 'jsonb', 'bytea', 'tsvector', 'character', 'ARRAY')"
                )
            )
        ).all()
        assert len(columns) > 50
        for table, column in columns:
            values = await s.scalars(text(f'SELECT "{column}"::text FROM "{table}"'))
            for value in values:
                found += [f"{table}.{column}: {n}" for n in needles if value and n in value]
    return found


async def eventually(check: Any, within: float = 15.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if value := await check():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def quoting() -> Iterator[Receiver]:
    """A receiver that refuses every delivery with a 500 quoting the message's text."""
    r = Receiver()
    r.always_fail = r.quote_on_failure = True
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()
    r.thread.join(5)


async def test_nothing_sensitive_is_stored_in_plain_and_everything_reads_back(
    client, services, settings, make_tenant, receiver, quoting
):
    t: Tenant = await make_tenant()
    admin, ann, bo = await t.user("ada", role="admin"), await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)

    # A webhook first, so the messages below are delivered (and their jobs stored); and one
    # whose receiver refuses every delivery quoting the message (its answer is kept).
    r = await client.post("/webhooks", json={"url": receiver.url}, headers=admin.headers)
    assert r.status_code == 201, r.text
    hook = r.json()
    r = await client.post("/webhooks", json={"url": quoting.url, "event_types": ["message.new"]},
                          headers=admin.headers)  # fmt: skip
    assert r.status_code == 201, r.text
    refused_hook = r.json()

    zh = await send(client, ann, conv, ZH)
    en = await send(client, bo, conv, f"first draft {EN}")
    card = await send(client, ann, conv, None, kind="card",
                      data={"title": CARD_TITLE, "body": CARD_BODY})  # fmt: skip
    r = await client.patch(f"/conversations/{conv}/messages/{en['id']}",
                           json={"text": f"final {EDITED}"}, headers=bo.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    r = await client.post("/files", data={"conversation_id": conv},
                          files={"file": ("report.txt", FILE_BYTES, "text/plain")},
                          headers=ann.headers)  # fmt: skip
    assert r.status_code == 201, r.text
    file_id = r.json()["id"]
    await send(client, ann, conv, None, kind="file", file_id=file_id)

    r = await client.post("/ai/providers", headers=admin.headers, json={
        "name": "vendor", "kind": "openai", "base_url": "https://api.example.com/v1",
        "model": "m", "api_key": PROVIDER_KEY,
    })  # fmt: skip
    assert r.status_code == 201, r.text
    r = await client.post("/tools/http", headers=admin.headers, json={
        "name": "lookup", "method": "GET", "url_template": "http://127.0.0.1:9/orders",
        "auth_header": {"name": "Authorization", "value": HTTP_TOOL_SECRET},
    })  # fmt: skip
    assert r.status_code == 201, r.text
    r = await client.post("/tools/mcp", headers=admin.headers, json={
        "name": "crm", "transport": "http", "url": "http://127.0.0.1:9/mcp",
        "headers": {"X-Token": MCP_SECRET},
    })  # fmt: skip
    assert r.status_code == 201, r.text

    # Deliveries ran (their jobs hold payloads and results), signed with the stored secret.
    async def delivered() -> bool:
        r = await client.get(f"/webhooks/{hook['id']}/deliveries", headers=admin.headers)
        done = [d for d in r.json() if d["status"] == "done"]
        return len(done) >= 5

    await eventually(delivered)

    async def refusal_quoting_the_message_kept() -> bool:
        r = await client.get(f"/webhooks/{refused_hook['id']}/deliveries", headers=admin.headers)
        return any(ZH in (d["last_error"] or "") for d in r.json())

    await eventually(refusal_quoting_the_message_kept)
    bodies = [json.dumps(req.json, ensure_ascii=False) for req in receiver.requests]
    assert any(ZH in b for b in bodies) and any(EDITED in b for b in bodies)
    last = receiver.requests[-1]
    assert verify_signature(hook["secret"], last.body, last.headers["x-warbler-timestamp"],
                            last.headers["x-warbler-signature"])  # fmt: skip

    # -- the same data reads back through the API ---------------------------------------
    history = (await client.get(f"/conversations/{conv}/messages", headers=bo.headers)).json()
    by_id = {m["id"]: m for m in history["messages"]}
    assert by_id[zh["id"]]["text"] == ZH
    assert by_id[en["id"]]["text"] == f"final {EDITED}"
    assert by_id[card["id"]]["data"] == {"title": CARD_TITLE, "body": CARD_BODY}
    for query, expected in (("蓝鲸", zh["id"]), (EDITED, en["id"]), ("卡片", card["id"])):
        r = await client.get("/search", params={"q": query}, headers=bo.headers)
        assert [h["message"]["id"] for h in r.json()["results"]] == [expected], query
    r = await client.get("/search", params={"q": EN}, headers=bo.headers)
    assert r.json()["results"] == []  # the edit replaced the old words
    got = await client.get(f"/files/{file_id}/content", headers=bo.headers)
    assert got.status_code == 200 and got.content == FILE_BYTES
    async with services.db.read() as s:
        provider = await s.scalar(select(AiProvider))
        tool = await s.scalar(select(HttpTool))
        mcp = await s.scalar(select(McpServer))
        secret = await s.scalar(select(Webhook.secret).where(Webhook.id == hook["id"]))
    assert provider and tool and mcp
    assert services.secrets.open(provider.api_key_sealed or "", key_context(provider.id)) == (
        PROVIDER_KEY
    )
    assert services.secrets.open(tool.auth_header_value_sealed or "", auth_context(tool.id)) == (
        HTTP_TOOL_SECRET
    )
    opened = services.secrets.open(mcp.headers_sealed or "", headers_context(mcp.id))
    assert json.loads(opened) == {"X-Token": MCP_SECRET}
    assert secret == hook["secret"]

    # -- and none of it is at rest in plain ----------------------------------------------
    needles = markers([hook["secret"], refused_hook["secret"]])
    leaks = leaks_in_files(settings.data_dir, needles)  # SQLite file and WAL, file stores
    if services.db.dialect == "postgresql":
        leaks += await leaks_in_postgres(services, needles)
    else:
        assert (settings.data_dir / "warbler.db-wal").stat().st_size > 0
    assert not leaks, leaks
    # The scans find what is there in plain: a conversation title (not encrypted) and a
    # plaintext copy of the file.
    r = await client.patch(f"/conversations/{conv}", json={"title": "pangolin 穿山甲"},
                           headers=ann.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    (settings.data_dir / "control.txt").write_bytes(FILE_BYTES)
    controls = ["pangolin 穿山甲", FILE_MARK]
    found = leaks_in_files(settings.data_dir, controls)
    if services.db.dialect == "postgresql":
        found += await leaks_in_postgres(services, controls)
    assert f"control.txt: {FILE_MARK}" in found
    assert any(f.endswith("pangolin 穿山甲") for f in found), found


async def test_a_body_copied_into_another_tenants_row_does_not_open_there(
    app, client, services, make_tenant
):
    acme, globex = await make_tenant("acme"), await make_tenant("globex")
    ann, bo = await acme.user("ann"), await acme.user("bo")
    gus, hal = await globex.user("gus"), await globex.user("hal")
    theirs = await send(client, ann, await group_of(client, ann, bo), "acme's pricing plan")
    conv = await group_of(client, gus, hal)
    ours = await send(client, gus, conv, "globex hello")
    async with services.db.write() as s:
        stolen = await s.scalar(
            text("SELECT text FROM messages WHERE id = :i"), {"i": theirs["id"]}
        )
        await s.execute(
            text("UPDATE messages SET text = :t WHERE id = :i"), {"t": stolen, "i": ours["id"]}
        )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=str(client.base_url)) as c:
        r = await c.get(f"/conversations/{conv}/messages", headers=hal.headers)
    assert r.status_code == 500 and "pricing" not in r.text
    async with tenant_scope(globex.id), services.db.read() as s:
        with pytest.raises(WrongTenant):
            await s.scalar(select(Message.text).where(Message.id == ours["id"]))


async def test_data_from_before_encryption_reads_and_reencrypt_encrypts_it(
    client, services, make_tenant
):
    t = await make_tenant()
    admin, ann, bo = await t.user("ada", role="admin"), await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    msg = await send(client, ann, conv, "placeholder")
    r = await client.post("/ai/providers", headers=admin.headers, json={
        "name": "vendor", "kind": "openai", "base_url": "https://api.example.com/v1",
        "model": "m", "api_key": "sk-placeholder",
    })  # fmt: skip
    provider_id = r.json()["id"]
    r = await client.post("/files", data={"conversation_id": conv},
                          files={"file": ("old.txt", b"x", "text/plain")}, headers=ann.headers)  # fmt: skip
    file_id = r.json()["id"]
    # Make them look as an older Warbler stored them: plain text, a plain card, a v1 secret
    # under the master key, a plain file, no search entry.
    legacy_key = SecretBox(services.keyring.masters.current.key).seal(
        "sk-from-2024", key_context(provider_id)
    )
    async with services.db.write() as s:
        await s.execute(
            text("UPDATE messages SET text = :t, data = :d WHERE id = :i"),
            {"t": "legacy 老消息 walrusbanjo", "d": '{"title": "旧卡片"}', "i": msg["id"]},
        )
        await s.execute(text("DELETE FROM message_search WHERE message_id = :i"), {"i": msg["id"]})
        await s.execute(
            text("UPDATE ai_providers SET api_key_sealed = :k WHERE id = :i"),
            {"k": legacy_key, "i": provider_id},
        )
        storage_key = await s.scalar(
            text("SELECT storage_key FROM files WHERE id = :i"), {"i": file_id}
        )
    store = services.files.store
    await store.inner.put(storage_key, _one(b"plain bytes from 2024"))  # type: ignore[attr-defined]

    history = (await client.get(f"/conversations/{conv}/messages", headers=bo.headers)).json()
    (old,) = [m for m in history["messages"] if m["id"] == msg["id"]]
    assert (old["text"], old["data"]) == ("legacy 老消息 walrusbanjo", {"title": "旧卡片"})
    got = await client.get(f"/files/{file_id}/content", headers=bo.headers)
    assert got.content == b"plain bytes from 2024"

    moved = await reencrypt(
        services.keyring, files=services.files.store, kb_blobs=services.kb.blobs
    )
    assert moved["messages.text"] == 1 and moved["messages.data"] == 1
    assert moved["secrets"] == 1 and moved["files"] == 1
    async with services.db.read() as s:
        raw = await s.scalar(text("SELECT text FROM messages WHERE id = :i"), {"i": msg["id"]})
        sealed = await s.scalar(select(AiProvider.api_key_sealed))
    assert raw.startswith("enc1:") and sealed and sealed.startswith("enc1:")
    assert services.secrets.open(sealed, key_context(provider_id)) == "sk-from-2024"
    assert await store.key_id(storage_key) is not None  # type: ignore[attr-defined]
    history = (await client.get(f"/conversations/{conv}/messages", headers=bo.headers)).json()
    (old,) = [m for m in history["messages"] if m["id"] == msg["id"]]
    assert (old["text"], old["data"]) == ("legacy 老消息 walrusbanjo", {"title": "旧卡片"})
    r = await client.get("/search", params={"q": "老消息"}, headers=bo.headers)
    assert [h["message"]["id"] for h in r.json()["results"]] == [msg["id"]]
    got = await client.get(f"/files/{file_id}/content", headers=bo.headers)
    assert got.content == b"plain bytes from 2024"
    # Running it again finds nothing left to do.
    again = await reencrypt(services.keyring, files=services.files.store)
    assert again == {}


async def test_keys_not_in_memory_are_loaded_from_the_database_on_first_use(
    client, services, make_tenant
):
    """As on a node started before the tenant existed: background reads (no tenant bound,
    inside a query) and requests both load the tenant's keys from the database."""
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    await send(client, ann, conv, "written on another node 另一个节点")
    job = await services.jobs.queue.enqueue("test.unhandled", {"note": "秘密"}, tenant_id=t.id)
    for forget in (services.keyring.forget, CACHE.forget_tenant):
        forget(t.id)
    assert not CACHE.has_active(t.id)
    async with services.db.read() as s:
        texts = (await s.scalars(select(Message.text).where(Message.tenant_id == t.id))).all()
        stored = await s.get(Job, job.id)
    assert (
        "written on another node 另一个节点" in texts
        and stored
        and stored.payload == {"note": "秘密"}
    )
    CACHE.forget_tenant(t.id)
    services.keyring.forget(t.id)
    r = await client.get("/search", params={"q": "节点"}, headers=bo.headers)
    assert [h["message"]["text"] for h in r.json()["results"]] == [
        "written on another node 另一个节点"
    ]


async def _one(data: bytes) -> Any:
    yield data
