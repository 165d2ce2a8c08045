"""The knowledge-base API: admins manage KBs and upload documents (202, ingested by jobs);
readers see status, progress and errors; anyone else gets 404, exactly as for a missing KB."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import backend_settings, group_of
from tests.unit.test_parsers import make_pdf
from warbler.config import Settings
from warbler.store.models_kb import KbChunk

MAX_DOCUMENT_BYTES = 64 * 1024


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    return backend_settings(
        backend, request, tmp_path / "data", kb_max_document_bytes=MAX_DOCUMENT_BYTES
    )


@pytest.fixture
async def acme(make_tenant: Any) -> Any:
    tenant = await make_tenant("acme")
    await tenant.user("ada", role="admin")
    await tenant.user("mel", role="member")
    await tenant.user("vic", role="visitor", kind="visitor")
    return tenant


async def create_kb(client: Any, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await client.post("/kb", json={"name": "Help", **body}, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def upload(
    client: Any, headers: dict[str, str], kb_id: str, *files: tuple[str, bytes]
) -> Any:
    return await client.post(
        f"/kb/{kb_id}/documents",
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
        headers=headers,
    )


async def settled(client: Any, headers: dict[str, str], kb_id: str, within: float = 30.0) -> list:
    """The KB's documents once none is pending or processing."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        docs = (await client.get(f"/kb/{kb_id}/documents", headers=headers)).json()
        if all(d["status"] in ("ready", "failed") for d in docs):
            return list(docs)
        await asyncio.sleep(0.05)
    raise AssertionError("documents did not settle in time")


async def test_upload_returns_202_then_status_shows_each_documents_progress_and_error(client, acme):
    ada = acme.users["ada"].headers
    kb = await create_kb(client, ada)
    pdf = make_pdf([["Warranty covers two years."]])
    r = await upload(
        client, ada, kb["id"],
        ("退货.md", "# 退货\n\n七天无理由退货。".encode()),
        ("warranty.pdf", pdf),
        ("broken.pdf", pdf[:100]),
    )  # fmt: skip
    assert r.status_code == 202, r.text
    body = r.json()["documents"]
    assert [(d["outcome"], d["document"]["status"]) for d in body] == [("queued", "pending")] * 3

    docs = {d["source"]: d for d in await settled(client, ada, kb["id"])}
    assert docs["退货.md"]["status"] == "ready" and docs["退货.md"]["progress"] == 1.0
    assert docs["退货.md"]["chunk_count"] == 1 and docs["退货.md"]["title"] == "退货"
    assert docs["warranty.pdf"]["status"] == "ready"
    broken = docs["broken.pdf"]
    assert broken["status"] == "failed" and broken["error"].startswith("could not read PDF: ")
    assert broken["chunk_count"] == 0

    one = await client.get(f"/kb/{kb['id']}/documents/{broken['id']}", headers=ada)
    assert one.status_code == 200 and one.json()["error"] == broken["error"]
    failed_only = await client.get(f"/kb/{kb['id']}/documents?status=failed", headers=ada)
    assert [d["source"] for d in failed_only.json()] == ["broken.pdf"]
    listed = (await client.get(f"/kb/{kb['id']}", headers=ada)).json()
    assert (listed["document_count"], listed["chunk_count"]) == (3, 2)

    # Retrying the corrupt file fails again, alone; a ready file cannot be "retried".
    retried = await client.post(f"/kb/{kb['id']}/documents/{broken['id']}/retry", headers=ada)
    assert retried.status_code == 202 and retried.json()["status"] == "pending"
    docs = {d["source"]: d for d in await settled(client, ada, kb["id"])}
    assert docs["broken.pdf"]["status"] == "failed"
    ready_id = docs["warranty.pdf"]["id"]
    conflict = await client.post(f"/kb/{kb['id']}/documents/{ready_id}/retry", headers=ada)
    assert conflict.status_code == 409

    # The same bytes again: skipped, no job; a changed file is queued again.
    again = await upload(client, ada, kb["id"], ("warranty.pdf", pdf))
    assert again.json()["documents"][0]["outcome"] == "skipped"


async def test_uploads_are_checked_for_type_size_and_emptiness(client, acme):
    ada = acme.users["ada"].headers
    kb = await create_kb(client, ada)
    png = await upload(
        client, ada, kb["id"], ("ok.md", b"# fine"), ("logo.png", b"\x89PNG\r\n\x1a\n")
    )
    assert png.status_code == 415 and png.json()["error"]["code"] == "unsupported_type"
    big = await upload(client, ada, kb["id"], ("big.txt", b"x" * (MAX_DOCUMENT_BYTES + 1)))
    assert big.status_code == 413
    # Past the request limit too: refused before the body is read.
    huge = await upload(client, ada, kb["id"], ("huge.txt", b"x" * (MAX_DOCUMENT_BYTES * 3)))
    assert huge.status_code == 413
    empty = await upload(client, ada, kb["id"], ("empty.md", b""))
    assert empty.status_code == 400
    assert (await client.get(f"/kb/{kb['id']}/documents", headers=ada)).json() == []


async def test_only_admins_or_kb_write_keys_manage_and_names_roles_groups_are_validated(
    client, acme
):
    ada, mel = acme.users["ada"].headers, acme.users["mel"].headers
    assert (await client.post("/kb", json={"name": "X"}, headers=mel)).status_code == 403
    kb = await create_kb(client, ada, description="FAQ", read_roles=["visitor", "member"])
    assert kb["read_roles"] == ["member", "visitor"] and kb["content_version"] == 0
    assert (await client.post("/kb", json={"name": " Help "}, headers=ada)).status_code == 409
    bad_role = await client.post("/kb", json={"name": "Y", "read_roles": ["boss"]}, headers=ada)
    assert bad_role.status_code == 400 and bad_role.json()["error"]["details"]["unknown"] == [
        "boss"
    ]
    bad_group = await client.post(
        "/kb", json={"name": "Y", "read_group_ids": ["nope"]}, headers=ada
    )
    assert bad_group.status_code == 400

    writer = {"Authorization": f"Bearer {await acme.api_key('kb:write')}"}
    made = await client.post("/kb", json={"name": "Via key"}, headers=writer)
    assert made.status_code == 201
    assert made.json()["read_roles"] == ["agent", "member"]  # the default
    reader = {"Authorization": f"Bearer {await acme.api_key('kb:read')}"}
    assert (await client.post("/kb", json={"name": "Z"}, headers=reader)).status_code == 403
    assert {k["name"] for k in (await client.get("/kb", headers=reader)).json()} == {
        "Help",
        "Via key",
    }
    assert (await upload(client, mel, kb["id"], ("a.md", b"# a\n\nb"))).status_code == 403
    patched = await client.patch(f"/kb/{kb['id']}", json={"name": "Help 2"}, headers=mel)
    assert patched.status_code == 403


async def test_readers_are_decided_by_role_and_group_and_others_get_404(client, acme, make_tenant):
    ada, mel, vic = (acme.users[n].headers for n in ("ada", "mel", "vic"))
    staff = await create_kb(client, ada, name="Staff", read_roles=["member"])
    private = await create_kb(client, ada, name="Private", read_roles=[])
    await upload(client, ada, private["id"], ("secret.md", b"# Secret\n\nThe safe code is 1234."))
    docs = await settled(client, ada, private["id"])

    assert [k["name"] for k in (await client.get("/kb", headers=mel)).json()] == ["Staff"]
    assert (await client.get("/kb", headers=vic)).json() == []
    for path in (f"/kb/{private['id']}", f"/kb/{private['id']}/documents",
                 f"/kb/{private['id']}/documents/{docs[0]['id']}"):  # fmt: skip
        r = await client.get(path, headers=mel)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", path

    # Membership of a group listed in read_group_ids opens it.
    group = await group_of(client, acme.users["ada"], acme.users["mel"])
    r = await client.patch(f"/kb/{private['id']}", json={"read_group_ids": [group]}, headers=ada)
    assert r.status_code == 200 and r.json()["read_group_ids"] == [group]
    seen = await client.get(f"/kb/{private['id']}/documents", headers=mel)
    assert seen.status_code == 200 and [d["source"] for d in seen.json()] == ["secret.md"]
    # Taking the role away closes the other one.
    await client.patch(f"/kb/{staff['id']}", json={"read_roles": ["agent"]}, headers=ada)
    assert (await client.get(f"/kb/{staff['id']}", headers=mel)).status_code == 404

    other = await make_tenant("globex")
    boss = (await other.user("boss", role="owner")).headers
    assert (await client.get("/kb", headers=boss)).json() == []
    for method, path in (
        ("GET", f"/kb/{private['id']}"),
        ("GET", f"/kb/{private['id']}/documents"),
        ("PATCH", f"/kb/{private['id']}"),
        ("DELETE", f"/kb/{private['id']}/documents/{docs[0]['id']}"),
        ("POST", f"/kb/{private['id']}/reindex"),
        ("DELETE", f"/kb/{private['id']}"),
    ):
        r = await client.request(method, path, headers=boss, json={} if method == "PATCH" else None)
        assert r.status_code == 404, (method, path, r.text)
    # Another tenant's group cannot be used to read it either.
    their_group = await group_of(client, other.users["boss"], title="Theirs")
    r = await client.patch(
        f"/kb/{private['id']}", json={"read_group_ids": [their_group]}, headers=ada
    )
    assert r.status_code == 400


async def test_deleting_documents_and_kbs_removes_their_chunks(client, acme, services):
    ada = acme.users["ada"].headers
    kb = await create_kb(client, ada)
    await upload(client, ada, kb["id"], ("a.md", b"# A\n\nAlpha."), ("b.md", b"# B\n\nBeta."))
    a, _b = await settled(client, ada, kb["id"])
    version = (await client.get(f"/kb/{kb['id']}", headers=ada)).json()["content_version"]

    r = await client.delete(f"/kb/{kb['id']}/documents/{a['id']}", headers=ada)
    assert r.status_code == 204
    assert (await client.get(f"/kb/{kb['id']}/documents/{a['id']}", headers=ada)).status_code == 404
    after = (await client.get(f"/kb/{kb['id']}", headers=ada)).json()
    assert after["content_version"] == version + 1 and after["document_count"] == 1

    assert (await client.delete(f"/kb/{kb['id']}", headers=ada)).status_code == 204
    assert (await client.get(f"/kb/{kb['id']}", headers=ada)).status_code == 404
    async with services.db.read() as s:
        assert (await s.scalars(select(KbChunk.id))).all() == []


async def test_reindex_queues_a_job_and_urls_obey_the_outbound_policy(client, acme):
    ada = acme.users["ada"].headers
    kb = await create_kb(client, ada)
    r = await client.post(f"/kb/{kb['id']}/reindex", json={"force": True}, headers=ada)
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        jobs = (await client.get("/jobs?kind=kb.reindex", headers=ada)).json()
        if jobs and jobs[0]["status"] == "done":
            break
        await asyncio.sleep(0.05)
    assert jobs[0]["id"] == job_id and jobs[0]["status"] == "done"

    for url in ("http://127.0.0.1:9/x.html", "http://localhost/x", "ftp://example.com/a"):
        refused = await client.post(f"/kb/{kb['id']}/documents/url", json={"url": url}, headers=ada)
        assert refused.status_code == 400, url
    assert (await client.get(f"/kb/{kb['id']}/documents", headers=ada)).json() == []
