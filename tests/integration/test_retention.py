"""Retention policies: tenant admins set how long messages, files, logs and the audit log
are kept; the sweep (background, on demand, or `warbler privacy sweep`) deletes what is
older, history keeps reading, and each sweep lands in the audit log.

Nothing here waits N days: the data is made, then its timestamps are moved into the past
with plain UPDATEs (test setup), and the real sweep runs over it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.conftest import backend_settings, group_of, send
from warbler.clock import utcnow
from warbler.ids import new_id
from warbler.security.encryption import tenant_scope
from warbler.store.models import Event, Job, Message, StoredFile
from warbler.store.models_ai import AiUsage
from warbler.store.models_audit import AuditEntry

OLD = timedelta(days=40)


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Any:
    return backend_settings(backend, request, tmp_path / "data")


async def age(
    services: Any, model: Any, *where: Any, by: timedelta = OLD, column: str = "created_at"
) -> None:
    """Move rows' timestamps into the past (what N days of waiting would do)."""
    async with services.db.write() as s:
        for row in (await s.scalars(select(model).where(*where))).all():
            setattr(row, column, getattr(row, column) - by)


async def audit_actions(services: Any, tenant_id: str, action: str) -> list[AuditEntry]:
    async with services.db.read() as s:
        rows = await s.scalars(
            select(AuditEntry)
            .where(AuditEntry.tenant_id == tenant_id, AuditEntry.action == action)
            .order_by(AuditEntry.id)
        )
        return list(rows.all())


async def test_only_admins_read_and_change_the_policy(client, make_tenant, services):
    t = await make_tenant()
    owner, member = await t.user("olive", role="owner"), await t.user("max")
    assert (await client.get("/privacy/retention", headers=member.headers)).status_code == 403
    r = await client.put("/privacy/retention", json={"messages_days": 1}, headers=member.headers)
    assert r.status_code == 403
    r = await client.get("/privacy/retention", headers=owner.headers)
    assert r.status_code == 200
    assert r.json()["messages_days"] is None and r.json()["last_sweep_at"] is None


async def test_a_new_policy_replaces_the_old_and_is_audited(client, make_tenant, services):
    t = await make_tenant()
    owner = await t.user("olive", role="owner")
    put = {"messages_days": 365, "files_days": 90, "logs_days": 30, "audit_days": 180}
    r = await client.put("/privacy/retention", json=put, headers=owner.headers)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in put} == put and r.json()["updated_by"] == owner.id
    # PUT replaces: what is left out is kept forever again.
    r = await client.put("/privacy/retention", json={"files_days": 7}, headers=owner.headers)
    assert {k: r.json()[k] for k in put} == {
        "messages_days": None, "files_days": 7, "logs_days": None, "audit_days": None,
    }  # fmt: skip
    entries = await audit_actions(services, t.id, "settings.retention")
    assert [e.data["after"]["files_days"] for e in entries] == [90, 7]
    assert entries[1].data["before"]["messages_days"] == 365
    assert all(e.actor_id == owner.id for e in entries)


@pytest.mark.parametrize("bad", [{"messages_days": 0}, {"files_days": 36_501},
                                 {"logs_days": "soon"}, {"weeks": 3}])  # fmt: skip
async def test_periods_out_of_range_are_refused(client, make_tenant, bad):
    owner = await (await make_tenant()).user("olive", role="owner")
    r = await client.put("/privacy/retention", json=bad, headers=owner.headers)
    assert r.status_code == 422, r.text


async def test_old_messages_go_and_history_reads_what_is_left(client, make_tenant, services):
    t = await make_tenant()
    ann, bo = await t.user("ann", role="owner"), await t.user("bo")
    conv = await group_of(client, ann, bo)  # seq 1 is the "created" system message
    sent = [await send(client, ann, conv, f"message {i} 旧消息{i}") for i in range(5)]
    await client.post(f"/conversations/{conv}/read", json={"seq": 3}, headers=bo.headers)
    await client.delete(f"/conversations/{conv}/messages/{sent[0]['id']}", headers=bo.headers)
    old = [m["id"] for m in sent[:3]]
    await age(services, Message, Message.conversation_id == conv, Message.seq <= sent[2]["seq"])
    await client.put("/privacy/retention", json={"messages_days": 30}, headers=ann.headers)

    r = await client.post("/privacy/retention/sweep", headers=ann.headers)
    assert r.status_code == 200, r.text
    counts = r.json()["counts"]
    assert counts["messages"] == 4  # the system message and three texts
    assert counts["search_rows"] == 3 and counts["events"] >= 3

    page = (await client.get(f"/conversations/{conv}/messages", headers=bo.headers)).json()
    assert [m["seq"] for m in page["messages"]] == [sent[3]["seq"], sent[4]["seq"]]
    assert page["has_more"] is False
    before = await client.get(f"/conversations/{conv}/messages",
                              params={"before_seq": sent[3]["seq"]}, headers=bo.headers)  # fmt: skip
    assert before.status_code == 200 and before.json()["messages"] == []
    after = await client.get(f"/conversations/{conv}/messages", params={"after_seq": 0},
                             headers=bo.headers)  # fmt: skip
    assert [m["id"] for m in after.json()["messages"]] == [sent[3]["id"], sent[4]["id"]]
    # Numbers do not move: the conversation's last seq and bo's unread count are unchanged.
    info = (await client.get(f"/conversations/{conv}", headers=bo.headers)).json()
    assert info["last_seq"] == sent[4]["seq"] and info["me"]["unread"] == sent[4]["seq"] - 3
    gone = await client.get(f"/conversations/{conv}/messages/{old[1]}", headers=bo.headers)
    assert gone.status_code == 404
    found = await client.get("/search", params={"q": "旧消息"}, headers=bo.headers)
    assert [h["message"]["id"] for h in found.json()["results"]] == [sent[4]["id"], sent[3]["id"]]
    async with services.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(Event).where(
            Event.message_id.in_(old))) == 0  # fmt: skip
    [entry] = await audit_actions(services, t.id, "retention.sweep")
    assert entry.actor_id == ann.id and entry.data["counts"]["messages"] == 4


async def test_old_files_go_with_their_bytes(client, make_tenant, services):
    t = await make_tenant()
    ann = await t.user("ann", role="owner")
    conv = await group_of(client, ann)
    ids = []
    for name in ("old.txt", "new.txt"):
        r = await client.post("/files", data={"conversation_id": conv},
                              files={"file": (name, f"bytes of {name}".encode(), "text/plain")},
                              headers=ann.headers)  # fmt: skip
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    sent = await send(client, ann, conv, "", kind="file", file_id=ids[0])
    await age(services, StoredFile, StoredFile.id == ids[0])
    async with services.db.read() as s:
        old_path = services.settings.files_dir / (await s.get(StoredFile, ids[0])).storage_key
    assert old_path.is_file()
    await client.put("/privacy/retention", json={"files_days": 30}, headers=ann.headers)
    r = await client.post("/privacy/retention/sweep", headers=ann.headers)
    assert r.json()["counts"]["files"] == 1
    assert not old_path.exists()
    assert (await client.get(f"/files/{ids[0]}", headers=ann.headers)).status_code == 404
    assert (await client.get(f"/files/{ids[1]}/content", headers=ann.headers)).content == (
        b"bytes of new.txt"
    )
    # The message that showed the file stays, without it.
    msg = await client.get(f"/conversations/{conv}/messages/{sent['id']}", headers=ann.headers)
    assert msg.status_code == 200 and msg.json()["file"] is None


async def test_logs_and_the_audit_log_are_pruned(client, make_tenant, services):
    t = await make_tenant()
    ann = await t.user("ann", role="owner")
    conv = await group_of(client, ann)
    await send(client, ann, conv, "kept: messages have no period in this policy")
    now = utcnow()
    async with tenant_scope(t.id), services.db.write() as s:
        for days in (400, 1):
            s.add(AiUsage(id=new_id(), tenant_id=t.id, bot_id=new_id(), user_id=ann.id,
                          source="chat", status="answered", created_at=now - timedelta(days=days)))  # fmt: skip
            s.add(Job(id=new_id(), tenant_id=t.id, kind="test.kind", payload={}, status="done",
                      attempts=1, max_attempts=1, run_at=now, created_at=now,
                      updated_at=now - timedelta(days=days)))  # fmt: skip
            s.add(AuditEntry(tenant_id=t.id, actor_kind="system", action="test.old", data={},
                             created_at=now - timedelta(days=days)))  # fmt: skip
    await age(services, Event, Event.tenant_id == t.id)
    r = await client.put("/privacy/retention", json={"logs_days": 30, "audit_days": 30},
                         headers=ann.headers)  # fmt: skip
    assert r.status_code == 200
    counts = (await client.post("/privacy/retention/sweep", headers=ann.headers)).json()["counts"]
    assert counts["ai_usage"] == 1 and counts["jobs"] == 1 and counts["events"] >= 2
    assert counts["audit_entries"] == 1
    async with services.db.read() as s:
        usage = (await s.scalars(select(AiUsage.created_at).where(AiUsage.tenant_id == t.id))).all()
        assert len(usage) == 1 and usage[0] > now - timedelta(days=2)
        kinds = (await s.scalars(select(Job.kind).where(Job.tenant_id == t.id))).all()
        assert list(kinds) == ["test.kind"]
        actions = set((await s.scalars(select(AuditEntry.action).where(
            AuditEntry.tenant_id == t.id))).all())  # fmt: skip
        assert await s.scalar(select(func.count()).select_from(Message).where(
            Message.tenant_id == t.id)) == 2  # fmt: skip
    assert "test.old" in actions and "settings.retention" in actions
    assert {"retention.sweep", "audit.purged"} <= actions


async def test_the_sweep_touches_only_tenants_with_a_policy(client, make_tenant, services):
    a, b = await make_tenant("tenant-a"), await make_tenant("tenant-b")
    ann, bea = await a.user("ann", role="owner"), await b.user("bea", role="owner")
    conv_a, conv_b = await group_of(client, ann), await group_of(client, bea)
    await send(client, ann, conv_a, "a's old news")
    await send(client, bea, conv_b, "b's old news")
    await age(services, Message, Message.tenant_id.in_([a.id, b.id]))
    await client.put("/privacy/retention", json={"messages_days": 30}, headers=ann.headers)
    result = await services.privacy.sweeper.run_once()
    assert result[a.id]["messages"] == 2 and b.id not in result
    async with services.db.read() as s:
        left = (await s.scalars(select(Message.tenant_id))).all()
    assert set(left) == {b.id}


@pytest.fixture
def fast_sweeper(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Any:
    return backend_settings(backend, request, tmp_path / "data", privacy_sweep_interval_seconds=0.2)


async def test_the_background_sweeper_applies_the_policy_and_audits_it(fast_sweeper, make_tenant):
    from warbler.app import create_app

    app = create_app(fast_sweeper)
    async with app.router.lifespan_context(app):
        services = app.state.services
        tenant = await services.users.create_tenant(slug="acme", name="Acme")
        user = await services.users.create_user(tenant["id"], username="ann", role="owner")
        conv = await services.conversations.create_group(
            _owner(tenant["id"], user["id"]), title="g", member_ids_=[]
        )
        await age(services, Message, Message.conversation_id == conv["id"])
        await services.privacy.retention.put(
            _owner(tenant["id"], user["id"]), {"messages_days": 10}
        )
        for _ in range(100):
            entries = await audit_actions(services, tenant["id"], "retention.sweep")
            if entries:
                break
            await asyncio.sleep(0.1)
        assert entries and entries[0].actor_kind == "system"
        assert entries[0].data["counts"]["messages"] == 1
        policy = await services.privacy.retention.get(_owner(tenant["id"], user["id"]))
        assert policy["last_sweep"]["messages"] == 1 and policy["last_sweep_at"] is not None


def _owner(tenant_id: str, user_id: str) -> Any:
    from warbler.im.principal import Principal

    return Principal(tenant_id=tenant_id, user_id=user_id, role="owner")


def test_warbler_privacy_sweep_runs_one_pass(tmp_path, monkeypatch):
    from tests.conftest import make_settings
    from warbler.cli import app as cli
    from warbler.services import build_services
    from warbler.store.migrate import upgrade

    data = tmp_path / "data"
    monkeypatch.setenv("WARBLER_DATA_DIR", str(data))

    async def seed() -> str:
        svc = build_services(make_settings(data))
        try:
            await upgrade(svc.db)
            tenant = await svc.users.create_tenant(slug="globex", name="Globex")
            user = await svc.users.create_user(tenant["id"], username="ann", role="owner")
            owner = _owner(tenant["id"], user["id"])
            await svc.conversations.create_group(owner, title="g", member_ids_=[])
            await age(svc, Message, Message.tenant_id == tenant["id"])
            await svc.privacy.retention.put(owner, {"messages_days": 30})
            return str(tenant["id"])
        finally:
            await svc.close()

    tenant_id = asyncio.run(seed())
    result = CliRunner().invoke(cli, ["privacy", "sweep", "--tenant", "globex"])
    assert result.exit_code == 0, result.output
    assert "messages=1" in result.output
    unknown = CliRunner().invoke(cli, ["privacy", "sweep", "--tenant", "nope"])
    assert unknown.exit_code == 1 and "not_found" in unknown.output

    async def check() -> list[str]:
        svc = build_services(make_settings(data))
        try:
            return [e.action for e in await audit_actions(svc, tenant_id, "retention.sweep")]
        finally:
            await svc.close()

    assert asyncio.run(check()) == ["retention.sweep"]
