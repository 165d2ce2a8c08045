"""A user's data export: the user (or a tenant admin) asks, a durable job builds a zip of
JSON files and the user's own files, the user or an admin downloads it until it expires;
everyone else gets 404. Each request and download is audited."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import zipfile
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tests.conftest import group_of, send
from warbler.store.models_audit import AuditEntry
from warbler.store.models_privacy import PrivacyExport


async def ready(client: Any, actor: Any, export_id: str, within: float = 20.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            r = await client.get(f"/privacy/exports/{export_id}", headers=actor.headers)
            assert r.status_code == 200, r.text
            if r.json()["status"] in ("ready", "failed"):
                assert r.json()["status"] == "ready", r.text
                return dict(r.json())
            await asyncio.sleep(0.05)


async def download(client: Any, actor: Any, export_id: str) -> zipfile.ZipFile:
    r = await client.get(f"/privacy/exports/{export_id}/download", headers=actor.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(r.content))


def read_json(zf: zipfile.ZipFile, name: str) -> Any:
    return json.loads(zf.read(name))


async def test_a_user_exports_everything_they_wrote_and_uploaded(client, make_tenant, services):
    t = await make_tenant()
    ann, bo = await t.user("ann", role="owner"), await t.user("bo")
    group = await group_of(client, ann, bo, title="团队 team")
    direct = (await client.post("/conversations", json={"kind": "direct", "user_id": bo.id},
                                headers=ann.headers)).json()["id"]  # fmt: skip
    mine = [
        await send(client, ann, group, "hello team 大家好"),
        await send(client, ann, direct, "a private word 悄悄话"),
        await send(client, ann, group, None, kind="card", data={"title": "卡片 card"}),
    ]
    theirs = await send(client, bo, group, "bo's own words")
    await client.delete(f"/conversations/{group}/messages/{theirs['id']}", headers=ann.headers)
    await client.post(f"/conversations/{group}/read", json={"seq": theirs["seq"]},
                      headers=ann.headers)  # fmt: skip
    content = "报告 report bytes".encode()
    upload = await client.post("/files", data={"conversation_id": group},
                               files={"file": ("报告.txt", content, "text/plain")},
                               headers=ann.headers)  # fmt: skip
    assert upload.status_code == 201

    r = await client.post("/privacy/me/export", headers=ann.headers)
    assert r.status_code == 202, r.text
    assert r.json()["status"] in ("pending", "running", "ready") and r.json()["user_id"] == ann.id
    view = await ready(client, ann, r.json()["id"])
    assert view["expires_at"] is not None and view["counts"]["messages"] == 3

    raw = await client.get(f"/privacy/exports/{view['id']}/download", headers=ann.headers)
    assert len(raw.content) == view["size"] == int(raw.headers["content-length"])
    assert hashlib.sha256(raw.content).hexdigest() == view["sha256"]
    assert "attachment" in raw.headers["content-disposition"]
    zf = zipfile.ZipFile(io.BytesIO(raw.content))
    manifest = read_json(zf, "manifest.json")
    assert manifest["format"] == "warbler-export/1" and manifest["user_id"] == ann.id
    profile = read_json(zf, "profile.json")
    assert profile["user"]["username"] == "ann" and profile["sessions"]
    assert all("hash" not in str(k) for s in profile["sessions"] for k in s)
    messages = read_json(zf, "messages.json")
    assert sorted(m["id"] for m in messages) == sorted(m["id"] for m in mine)
    assert {m["text"] for m in messages} >= {"hello team 大家好", "a private word 悄悄话"}
    assert not any("bo's own words" in json.dumps(m) for m in messages)
    convs = {c["id"]: c for c in read_json(zf, "conversations.json")}
    assert set(convs) == {group, direct} and convs[group]["title"] == "团队 team"
    assert convs[group]["me"]["last_read_seq"] == theirs["seq"]
    assert [h["message_id"] for h in read_json(zf, "hidden_messages.json")] == [theirs["id"]]
    [entry] = read_json(zf, "files.json")
    assert entry["name"] == "报告.txt" and zf.read(entry["path"]) == content
    assert read_json(zf, "support.json")["visitor"] is None
    assert any(a["action"] == "privacy.export" for a in read_json(zf, "audit.json"))

    actions = await _actions(services, t.id)
    assert ("privacy.export", ann.id, ann.id) in actions
    assert ("privacy.export_download", ann.id, ann.id) in actions


async def test_nobody_else_sees_or_downloads_an_export(client, make_tenant, services):
    t = await make_tenant()
    ann, bo = await t.user("ann", role="owner"), await t.user("bo")
    mine = (await client.post("/privacy/me/export", headers=bo.headers)).json()
    await ready(client, bo, mine["id"])
    cy = await t.user("cy")
    for path in (f"/privacy/exports/{mine['id']}", f"/privacy/exports/{mine['id']}/download"):
        r = await client.get(path, headers=cy.headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", path
    assert (await client.get("/privacy/exports", headers=cy.headers)).json() == []
    # The tenant's admins see every export and may download it.
    assert [e["id"] for e in (await client.get("/privacy/exports", headers=ann.headers)).json()]\
        == [mine["id"]]  # fmt: skip
    assert "manifest.json" in (await download(client, ann, mine["id"])).namelist()
    other = await (await make_tenant("other")).user("oz", role="owner")
    r = await client.get(f"/privacy/exports/{mine['id']}", headers=other.headers)
    assert r.status_code == 404


async def test_an_admin_exports_any_user_and_the_user_may_download_it(
    client, make_tenant, services
):
    t = await make_tenant()
    ann, bo, cy = await t.user("ann", role="owner"), await t.user("bo"), await t.user("cy")
    conv = await group_of(client, ann, bo)
    await send(client, bo, conv, "bo wrote this")
    r = await client.post(f"/privacy/users/{bo.id}/export", headers=cy.headers)
    assert r.status_code == 403
    r = await client.post("/privacy/users/01HZZZZZZZZZZZZZZZZZZZZZZZ/export", headers=ann.headers)
    assert r.status_code == 404
    r = await client.post(f"/privacy/users/{bo.id}/export", headers=ann.headers)
    assert r.status_code == 202 and r.json()["requested_by"] == ann.id
    await ready(client, ann, r.json()["id"])
    texts = [
        m["text"] for m in read_json(await download(client, bo, r.json()["id"]), "messages.json")
    ]
    assert texts == ["bo wrote this"]
    assert ("privacy.export", ann.id, bo.id) in await _actions(services, t.id)


async def test_a_new_export_replaces_the_old_and_archives_expire(client, make_tenant, services):
    t = await make_tenant()
    ann = await t.user("ann", role="owner")
    first = (await client.post("/privacy/me/export", headers=ann.headers)).json()
    await ready(client, ann, first["id"])
    second = (await client.post("/privacy/me/export", headers=ann.headers)).json()
    assert second["id"] != first["id"]
    await ready(client, ann, second["id"])
    old = (await client.get(f"/privacy/exports/{first['id']}", headers=ann.headers)).json()
    assert old["status"] == "expired"
    r = await client.get(f"/privacy/exports/{first['id']}/download", headers=ann.headers)
    assert r.status_code == 404
    archives = services.settings.data_dir / "exports" / t.id
    assert sorted(p.name for p in archives.iterdir()) == [f"{second['id']}.zip"]

    # Past its expiry, the sweeper deletes the archive.
    async with services.db.write() as s:
        row = await s.get(PrivacyExport, second["id"])
        row.expires_at = row.expires_at - timedelta(days=30)
    result = await services.privacy.sweeper.run_once()
    assert result["exports"]["expired"] == 1
    assert list(archives.iterdir()) == []
    r = await client.get(f"/privacy/exports/{second['id']}/download", headers=ann.headers)
    assert r.status_code == 404


async def _actions(services: Any, tenant_id: str) -> list[tuple[str, str | None, str | None]]:
    async with services.db.read() as s:
        rows = (await s.scalars(select(AuditEntry).where(AuditEntry.tenant_id == tenant_id))).all()
    return [(e.action, e.actor_id, e.target_id) for e in rows]
