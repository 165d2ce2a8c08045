"""Acceptance: after a user is erased, nothing of what they wrote or uploaded is left in any
column of any table or in any file under DATA_DIR, on SQLite and on PostgreSQL, and the
audit log records the erasure.

Alice puts unique markers (Chinese and English) everywhere her data travels: message text,
card data, an edit (the words before and after it), a file's name and bytes, a bot's answer
that echoes her, a webhook receiver's error answer (stored with the failed delivery), a
search query, a bot's running summary of her conversation, an export archive of her data;
as a widget visitor, the support ticket's summary, CSAT comment and a note. Bob's words, in
the same conversations, must survive: the scan that finds nothing of Alice finds Bob.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import backend_settings, group_of, send
from tests.integration.privacy_traces import table_traces, traces
from tests.integration.test_ai_replies import dm, finished_reply
from warbler.clock import utcnow
from warbler.ids import new_id
from warbler.im.principal import Principal
from warbler.jobs.queue import full_error
from warbler.security.encryption import tenant_scope
from warbler.store.models import Conversation, Job, Member
from warbler.store.models_ai import AiConversationState
from warbler.store.models_audit import AuditEntry
from warbler.store.models_support import (
    SupportConversation,
    SupportNote,
    SupportTicket,
    SupportVisitor,
)

ALICE = {
    "text": "alicetextqz 翡翠鹦鹉",
    "card": "alicecardqz 琥珀灯塔",
    "before_edit": "alicedraftqz 青铜罗盘",
    "after_edit": "aliceeditqz 珊瑚海湾",
    "file_name": "alicefilenameqz",
    "file_bytes": "alicefilebytesqz 玛瑙秘境",
    "query": "alicequeryqz",
    "summary": "alicesummaryqz 松石书签",
    "bot": "alicebotqz 象牙折扇",
    "visitor_text": "visitortextqz 玳瑁发簪",
    "ticket": "ticketsummaryqz 朱砂印章",
    "csat": "csatcommentqz 紫檀木盒",
    "note": "agentnoteqz 白玉茶杯",
    "email": "visitoremailqz@example.com",
}
BOB = "bobkeepsqz 青花瓷碗"


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Any:
    return backend_settings(
        backend, request, tmp_path / "data",
        outbound_allow_private=True,  # the fake model vendor listens on 127.0.0.1
        webhook_max_attempts=2,
        ai_user_messages_per_minute=0, ai_bot_messages_per_minute=0,
        ai_tenant_messages_per_minute=0,
    )  # fmt: skip


class EchoReceiver:
    """A webhook receiver that fails every delivery, answering with the message's text:
    the delivery's stored error then quotes it."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                message = (body.get("data") or {}).get("message") or {}
                answer = f"cannot take: {message.get('text')}".encode()
                self.send_response(500)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@contextlib.contextmanager
def running_echo_receiver() -> Iterator[EchoReceiver]:
    r = EchoReceiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


@pytest.fixture
def echo_receiver() -> Iterator[EchoReceiver]:
    with running_echo_receiver() as r:
        yield r


async def until(check: Any, within: float = 15.0) -> Any:
    async with asyncio.timeout(within):
        while not (found := await check()):  # noqa: ASYNC110  (polling the database)
            await asyncio.sleep(0.05)
    return found


async def test_erasure_leaves_no_trace_in_any_table_or_file(
    client, services, make_tenant, fake_openai, echo_receiver
):
    t = await make_tenant()
    olive = await t.user("olive", role="owner")
    alice, bob = await t.user("alice"), await t.user("bob")
    admin = Principal(tenant_id=t.id, user_id=olive.id, role="owner")
    hook = await client.post("/webhooks", json={"url": echo_receiver.url,
                             "event_types": ["message.new", "message.edited"]},
                             headers=olive.headers)  # fmt: skip
    assert hook.status_code == 201, hook.text

    # A group with Bob: text, a card, an edit, a file; Bob talks too.
    group = await group_of(client, olive, alice, bob)
    await send(client, alice, group, ALICE["text"])
    await send(client, bob, group, BOB)
    await send(client, alice, group, None, kind="card", data={"title": ALICE["card"]})
    draft = await send(client, alice, group, ALICE["before_edit"])
    upload = await client.post(
        "/files", data={"conversation_id": group},
        files={"file": (f"{ALICE['file_name']}.txt", ALICE["file_bytes"].encode(), "text/plain")},
        headers=alice.headers,
    )  # fmt: skip
    assert upload.status_code == 201, upload.text
    await send(client, alice, group, None, kind="file", file_id=upload.json()["id"])
    await until(lambda: _delivery_failed_with(services, t.id, ALICE["before_edit"]))
    r = await client.patch(f"/conversations/{group}/messages/{draft['id']}",
                           json={"text": ALICE["after_edit"]}, headers=alice.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    await until(lambda: _delivery_failed_with(services, t.id, ALICE["after_edit"]))
    r = await client.get("/search", params={"q": ALICE["query"]}, headers=alice.headers)
    assert r.status_code == 200

    # A bot that echoes her (its answer quotes her), and its running summary of the chat.
    provider = await services.ai_providers.create(
        admin, {"name": "fake", "kind": "openai", "base_url": fake_openai.base_url,
                "model": "m"}, api_key="sk-test-0000",
    )  # fmt: skip
    bot = await services.bots.create(admin, {"name": "Echo", "provider_ids": [provider["id"]]})
    chat = await dm(client, alice, bot["user_id"])
    trigger = await send(client, alice, chat, ALICE["bot"])
    reply = await finished_reply(client, alice, chat, trigger["id"])
    assert ALICE["bot"] in reply["text"]
    async with tenant_scope(t.id), services.db.write() as s:
        s.add(AiConversationState(conversation_id=chat, bot_id=bot["id"], tenant_id=t.id,
                                  summary=f"alice: {ALICE['summary']}", summary_upto_seq=1,
                                  updated_at=utcnow()))  # fmt: skip

    # Her data exported once already: the archive holds all of it.
    export = (await client.post("/privacy/me/export", headers=alice.headers)).json()
    await until(lambda: _export_ready(client, alice, export["id"]))

    # Alice as a widget visitor too: a support conversation, a ticket, a rating, a note.
    support = await _support_conversation(services, t.id, alice.id, olive.id)
    await send(client, alice, support, ALICE["visitor_text"])
    await send(client, olive, support, f"{BOB} (the agent answers)")

    everything = list(ALICE.values())
    planted = {hit.split(": ", 1)[1] for hit in await traces(services, everything)}
    # Every marker was stored somewhere (a search query is stored nowhere: it stays out).
    assert planted == set(everything) - {ALICE["query"]}, "the markers were planted"

    r = await client.post(f"/privacy/users/{alice.id}/erase", json={"confirm": "alice"},
                          headers=olive.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    await _settle(services, t.id)

    left = await traces(services, everything)
    assert left == [], f"erasure left traces: {left}"
    assert await table_traces(services, [BOB]), "the scan finds data that should stay"
    async with services.db.read() as s:
        entries = (await s.scalars(select(AuditEntry).where(
            AuditEntry.tenant_id == t.id, AuditEntry.action == "privacy.erase"))).all()  # fmt: skip
    assert [(e.actor_id, e.target_id) for e in entries] == [(olive.id, alice.id)]
    assert entries[0].data["counts"]["messages"] >= 7


async def _delivery_failed_with(services: Any, tenant_id: str, text: str) -> bool:
    """A delivery used up its attempts, the receiver's last answer quoting ``text`` (done
    retrying, so a later edit cannot change what it stored)."""
    async with tenant_scope(tenant_id), services.db.read() as s:
        jobs = (
            await s.scalars(select(Job).where(Job.tenant_id == tenant_id, Job.status == "dead"))
        ).all()
    return any(text in (full_error(j) or "") for j in jobs)


async def _export_ready(client: Any, actor: Any, export_id: str) -> bool:
    r = await client.get(f"/privacy/exports/{export_id}", headers=actor.headers)
    assert r.json()["status"] != "failed", r.text
    return bool(r.json()["status"] == "ready")


async def _support_conversation(services: Any, tenant_id: str, visitor: str, agent: str) -> str:
    """A support conversation of ``visitor`` handled by ``agent`` (rows as the support
    module stores them), with a ticket summary, a CSAT comment and an agent's note."""
    now = utcnow()
    conv, ticket = new_id(), new_id()
    async with tenant_scope(tenant_id), services.db.write() as s:
        s.add(Conversation(id=conv, tenant_id=tenant_id, kind="support", title=None,
                           created_by=visitor, last_seq=0, created_at=now, updated_at=now))  # fmt: skip
        await s.flush()
        for user, role in ((visitor, "member"), (agent, "member")):
            s.add(Member(conversation_id=conv, user_id=user, tenant_id=tenant_id, role=role,
                         muted=False, last_read_seq=0, joined_at=now))  # fmt: skip
        s.add(SupportVisitor(user_id=visitor, tenant_id=tenant_id, external_id="crm-alice-77",
                             email=ALICE["email"], locale="zh", created_at=now, last_seen_at=now))  # fmt: skip
        s.add(SupportConversation(conversation_id=conv, tenant_id=tenant_id, visitor_id=visitor,
                                  state="resolved", ticket_id=ticket, locale="zh",
                                  created_at=now, updated_at=now))  # fmt: skip
        s.add(SupportTicket(id=ticket, tenant_id=tenant_id, conversation_id=conv,
                            state="resolved", reason="asked_for_person",
                            reason_detail={"question": ALICE["visitor_text"]},
                            summary=ALICE["ticket"], assignee_id=agent, queued_at=now,
                            resolved_at=now, resolved_by=agent, csat_score=2,
                            csat_comment=ALICE["csat"], csat_at=now, created_at=now,
                            updated_at=now))  # fmt: skip
        s.add(SupportNote(id=new_id(), tenant_id=tenant_id, conversation_id=conv,
                          ticket_id=ticket, author_id=agent, text=ALICE["note"], created_at=now))  # fmt: skip
    return conv


async def _settle(services: Any, tenant_id: str) -> None:
    """Let background work that erasure started (webhook deliveries of the recall events)
    finish, so the scan sees the resting state."""

    async def idle() -> bool:
        async with services.db.read() as s:
            busy = await s.scalar(select(Job.id).where(
                Job.tenant_id == tenant_id, Job.status.in_(("pending", "running"))).limit(1))  # fmt: skip
        return busy is None

    await until(idle, within=20)
