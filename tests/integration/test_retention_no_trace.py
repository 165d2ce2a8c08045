"""Acceptance: after a retention sweep, nothing of the expired data is left in any column of
any table or in any file under DATA_DIR, on SQLite and on PostgreSQL; what is younger than
the policy stays; the audit log records the sweep.

Old data carries unique markers (Chinese and English): message text, card data, an edit
(the words before and after it), a file's name and bytes, a bot's answer that echoes it, a
webhook receiver's error answer stored with a failed delivery, a bot's running summary, a
support note and a resolved ticket's summary and CSAT comment, an audit entry, an expired
export archive. Then its timestamps are moved 40 days back (test setup), and the sweeper
applies a 30-day policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import backend_settings, group_of, send
from tests.integration.privacy_traces import table_traces, traces
from tests.integration.test_ai_replies import dm, finished_reply
from tests.integration.test_erasure_no_trace import (
    EchoReceiver,
    _delivery_failed_with,
    _export_ready,
    _settle,
    running_echo_receiver,
    until,
)
from warbler.clock import utcnow
from warbler.ids import new_id
from warbler.im.principal import Principal
from warbler.security.encryption import tenant_scope
from warbler.store.models import Event, Job, Message, StoredFile
from warbler.store.models_ai import AiConversationState, AiUsage
from warbler.store.models_audit import AuditEntry
from warbler.store.models_privacy import PrivacyExport
from warbler.store.models_support import SupportNote, SupportTicket

OLD = {
    "text": "oldtextqz 翡翠鹦鹉",
    "card": "oldcardqz 琥珀灯塔",
    "before_edit": "olddraftqz 青铜罗盘",
    "after_edit": "oldeditqz 珊瑚海湾",
    "file_name": "oldfilenameqz",
    "file_bytes": "oldfilebytesqz 玛瑙秘境",
    "bot": "oldbotqz 象牙折扇",
    "summary": "oldsummaryqz 松石书签",
    "note": "oldnoteqz 白玉茶杯",
    "ticket": "oldticketqz 朱砂印章",
    "csat": "oldcsatqz 紫檀木盒",
    "audit": "oldauditqz 铜镜",
}
YOUNG = "youngtextqz 青花瓷碗"
AGO = timedelta(days=40)


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Any:
    return backend_settings(
        backend, request, tmp_path / "data",
        outbound_allow_private=True, webhook_max_attempts=2,
        ai_user_messages_per_minute=0, ai_bot_messages_per_minute=0,
        ai_tenant_messages_per_minute=0,
    )  # fmt: skip


@pytest.fixture
def echo_receiver() -> Iterator[EchoReceiver]:
    with running_echo_receiver() as r:
        yield r


async def test_a_retention_sweep_leaves_no_trace_of_expired_data(
    client, services, make_tenant, fake_openai, echo_receiver
):
    t = await make_tenant()
    olive, bob = await t.user("olive", role="owner"), await t.user("bob")
    admin = Principal(tenant_id=t.id, user_id=olive.id, role="owner")
    r = await client.post("/webhooks", json={"url": echo_receiver.url,
                          "event_types": ["message.new", "message.edited"]},
                          headers=olive.headers)  # fmt: skip
    assert r.status_code == 201, r.text

    group = await group_of(client, olive, bob)
    await send(client, bob, group, OLD["text"])
    await send(client, bob, group, None, kind="card", data={"title": OLD["card"]})
    draft = await send(client, bob, group, OLD["before_edit"])
    await until(lambda: _delivery_failed_with(services, t.id, OLD["before_edit"]))
    await client.patch(f"/conversations/{group}/messages/{draft['id']}",
                       json={"text": OLD["after_edit"]}, headers=bob.headers)  # fmt: skip
    up = await client.post(
        "/files", data={"conversation_id": group},
        files={"file": (f"{OLD['file_name']}.txt", OLD["file_bytes"].encode(), "text/plain")},
        headers=bob.headers,
    )  # fmt: skip
    assert up.status_code == 201, up.text
    provider = await services.ai_providers.create(
        admin, {"name": "fake", "kind": "openai", "base_url": fake_openai.base_url,
                "model": "m"}, api_key="sk-test-0000",
    )  # fmt: skip
    bot = await services.bots.create(admin, {"name": "Echo", "provider_ids": [provider["id"]]})
    chat = await dm(client, bob, bot["user_id"])
    trigger = await send(client, bob, chat, OLD["bot"])
    await finished_reply(client, bob, chat, trigger["id"])
    export = (await client.post("/privacy/me/export", headers=bob.headers)).json()
    await until(lambda: _export_ready(client, bob, export["id"]))
    await _settle(services, t.id)
    await _old_extras(services, t.id, chat, bot["id"], bob.id, olive.id, group)

    # All of that is 40 days old; one message is sent today.
    await _age(services, t.id, export["id"])
    await send(client, bob, group, YOUNG)
    everything = list(OLD.values())
    planted = {hit.split(": ", 1)[1] for hit in await traces(services, everything)}
    assert planted == set(everything), "the markers were planted"

    put = {"messages_days": 30, "files_days": 30, "logs_days": 30, "audit_days": 30}
    r = await client.put("/privacy/retention", json=put, headers=olive.headers)
    assert r.status_code == 200, r.text
    result = await services.privacy.sweeper.run_once()
    assert result[t.id]["messages"] >= 5 and result["exports"]["expired"] == 1

    left = await traces(services, everything)
    assert left == [], f"the sweep left traces: {left}"
    assert await table_traces(services, [YOUNG]), "what is younger than the policy stays"
    history = (await client.get(f"/conversations/{group}/messages", headers=olive.headers)).json()
    assert [m["text"] for m in history["messages"]] == [YOUNG]
    async with services.db.read() as s:
        sweeps = (await s.scalars(select(AuditEntry).where(
            AuditEntry.tenant_id == t.id, AuditEntry.action == "retention.sweep"))).all()  # fmt: skip
    assert len(sweeps) == 1 and sweeps[0].actor_kind == "system"
    assert sweeps[0].data["counts"]["messages"] == result[t.id]["messages"]


async def _old_extras(
    services: Any, tenant_id: str, chat: str, bot_id: str, visitor: str, agent: str, conv: str
) -> None:
    """What other modules store about conversations: a bot's summary, a support note and
    a resolved ticket (rows as they store them), an audit entry."""
    now = utcnow()
    async with tenant_scope(tenant_id), services.db.write() as s:
        s.add(AiConversationState(conversation_id=chat, bot_id=bot_id, tenant_id=tenant_id,
                                  summary=f"bob: {OLD['summary']}", summary_upto_seq=1,
                                  updated_at=now))  # fmt: skip
        s.add(SupportNote(id=new_id(), tenant_id=tenant_id, conversation_id=conv,
                          author_id=agent, text=OLD["note"], created_at=now))  # fmt: skip
        s.add(SupportTicket(id=new_id(), tenant_id=tenant_id, conversation_id=conv,
                            state="resolved", reason="asked_for_person", summary=OLD["ticket"],
                            queued_at=now, resolved_at=now, csat_score=4,
                            csat_comment=OLD["csat"], created_at=now, updated_at=now))  # fmt: skip
        s.add(AuditEntry(tenant_id=tenant_id, actor_id=visitor, actor_kind="user",
                         action="test.old", target_id=OLD["audit"], data={}, created_at=now - AGO))  # fmt: skip


async def _age(services: Any, tenant_id: str, export_id: str) -> None:
    """Move the tenant's rows 40 days into the past (what waiting would do)."""
    moves: list[tuple[Any, str]] = [
        (Message, "created_at"), (Event, "created_at"), (StoredFile, "created_at"),
        (Job, "updated_at"), (AiUsage, "created_at"), (SupportNote, "created_at"),
        (SupportTicket, "resolved_at"),
    ]  # fmt: skip
    async with tenant_scope(tenant_id), services.db.write() as s:
        for model, column in moves:
            for row in (await s.scalars(select(model).where(model.tenant_id == tenant_id))).all():
                setattr(row, column, getattr(row, column) - AGO)
        export = await s.get(PrivacyExport, export_id)
        export.expires_at = utcnow() - timedelta(hours=1)
