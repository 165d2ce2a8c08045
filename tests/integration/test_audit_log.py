"""The audit log on SQLite and PostgreSQL: sensitive actions are recorded with actor, tenant,
time, target and source IP (never secrets); admins list it with filters and export it (the
export is audited too); only admins and ``audit:read`` keys may; each tenant sees its own."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from tests.conftest import group_of
from warbler.clock import utcnow
from warbler.store.models_audit import AuditEntry

PASSWORD = "correct horse battery"
CLIENT = {"X-Forwarded-For": "203.0.113.50", "User-Agent": "audit-test/1.0"}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", **CLIENT}


async def entries(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> list[dict]:
    r = await client.get("/audit", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return list(r.json())


async def all_rows(services: Any) -> list[AuditEntry]:
    async with services.db.read() as s:
        return list((await s.scalars(select(AuditEntry).order_by(AuditEntry.id))).all())


async def test_sensitive_actions_are_recorded_with_who_what_where(client, make_tenant, services):
    t = await make_tenant()
    ann = await t.user("ann", role="owner")
    admin = {**ann.headers, **CLIENT}
    # Logins, good and bad.
    r = await client.post("/auth/login", json={"tenant": "acme", "username": "ann",
                          "password": "not the password"}, headers=CLIENT)  # fmt: skip
    assert r.status_code == 401
    r = await client.post("/auth/login", json={"tenant": "acme", "username": "ann",
                          "password": PASSWORD}, headers=CLIENT)  # fmt: skip
    session = r.json()
    # Users, roles, API keys.
    r = await client.post("/users", json={"username": "bo", "password": PASSWORD}, headers=admin)
    bo = r.json()["id"]
    await client.patch(f"/users/{bo}", json={"role": "agent"}, headers=admin)
    await client.patch(f"/users/{bo}", json={"disabled": True}, headers=admin)
    r = await client.post("/api-keys", json={"name": "ci", "scopes": ["users:read"]}, headers=admin)
    key = r.json()
    await client.delete(f"/api-keys/{key['id']}", headers=admin)
    # Settings: a webhook, a provider with a key, a KB's readers.
    r = await client.post("/webhooks", json={"url": "http://127.0.0.1:9/h"}, headers=admin)
    hook = r.json()
    await client.patch(f"/webhooks/{hook['id']}", json={"active": False}, headers=admin)
    await client.delete(f"/webhooks/{hook['id']}", headers=admin)
    provider_key = "sk-audit-secret-0123456789abcdef"
    r = await client.post("/ai/providers", json={"name": "p1", "kind": "openai",
                          "api_key": provider_key}, headers=admin)  # fmt: skip
    assert r.status_code == 201, r.text
    r = await client.post("/kb", json={"name": "help"}, headers=admin)
    kb = r.json()["id"]
    await client.patch(f"/kb/{kb}", json={"read_roles": ["agent"]}, headers=admin)
    # Sessions: logout, password change.
    await client.post("/auth/logout", headers=bearer(session["access_token"]))
    r = await client.post("/auth/password", json={"current_password": PASSWORD,
                          "new_password": "a brand new passphrase"}, headers=admin)  # fmt: skip
    assert r.status_code == 204

    rows = await all_rows(services)
    by_action = {row.action: row for row in rows}
    assert [row.action for row in rows] == [
        "auth.login_failed", "auth.login", "user.created", "user.role_changed", "user.disabled",
        "api_key.created", "api_key.revoked", "webhook.created", "webhook.updated",
        "webhook.deleted", "ai.provider.created", "kb.created", "kb.updated", "auth.logout",
        "auth.password_changed",
    ]  # fmt: skip
    assert all(row.tenant_id == t.id for row in rows)
    assert all(row.ip == "203.0.113.50" and row.user_agent == "audit-test/1.0" for row in rows)
    assert all(row.created_at > utcnow() - timedelta(minutes=5) for row in rows)
    failed = by_action["auth.login_failed"]
    assert (failed.actor_kind, failed.target_id, failed.data) == (
        "anonymous",
        ann.id,
        {"reason": "wrong_password"},
    )
    login = by_action["auth.login"]
    assert (login.actor_id, login.target_id) == (ann.id, ann.id)
    assert login.data == {"token_id": session["token_id"]}
    role = by_action["user.role_changed"]
    assert (role.actor_id, role.actor_kind, role.target_type, role.target_id, role.data) == (
        ann.id, "user", "user", bo, {"from": "member", "to": "agent"}
    )  # fmt: skip
    assert by_action["api_key.created"].data == {"name": "ci", "scopes": ["users:read"]}
    assert by_action["webhook.updated"].data == {"fields": ["active"]}
    assert by_action["kb.updated"].data == {"fields": ["read_roles"], "read_roles": ["agent"]}
    assert by_action["auth.logout"].target_id == session["token_id"]
    # No secret, password or key value anywhere in the log.
    text = json.dumps([[r.data, r.target_id, r.user_agent] for r in rows], default=str)
    for secret in (PASSWORD, "not the password", "a brand new passphrase", provider_key,
                   key["key"], hook["secret"], session["access_token"]):  # fmt: skip
        assert secret not in text


async def test_admins_list_entries_with_filters_and_pages(client, make_tenant):
    t = await make_tenant()
    ann = await t.user("ann", role="admin")
    for name in ("k1", "k2", "k3"):
        r = await client.post("/api-keys", json={"name": name, "scopes": ["kb:read"]},
                              headers=ann.headers)  # fmt: skip
        assert r.status_code == 201
    bo = (await client.post("/users", json={"username": "bo"}, headers=ann.headers)).json()["id"]
    await client.patch(f"/users/{bo}", json={"role": "agent"}, headers=ann.headers)

    newest = await entries(client, ann.headers)
    assert [e["action"] for e in newest] == [
        "user.role_changed", "user.created", "api_key.created", "api_key.created",
        "api_key.created",
    ]  # fmt: skip
    assert newest[0]["actor_id"] == ann.id and newest[0]["actor_kind"] == "user"
    assert [e["data"]["name"] for e in await entries(client, ann.headers,
            action="api_key.created")] == ["k3", "k2", "k1"]  # fmt: skip
    assert len(await entries(client, ann.headers, action="user.*")) == 2
    assert len(await entries(client, ann.headers, action="user")) == 0  # exact unless .*
    assert [e["action"] for e in await entries(client, ann.headers, target_type="user",
            target_id=bo)] == ["user.role_changed", "user.created"]  # fmt: skip
    assert len(await entries(client, ann.headers, actor_id=ann.id)) == 5
    assert await entries(client, ann.headers, actor_id="someone-else") == []
    # Pages: limit, then before_id.
    first = await entries(client, ann.headers, limit=2)
    rest = await entries(client, ann.headers, before_id=first[-1]["id"])
    assert [e["id"] for e in first + rest] == [e["id"] for e in newest]
    # Time range: since inclusive, until exclusive.
    middle = newest[2]["created_at"]
    assert all(e["created_at"] >= middle for e in await entries(client, ann.headers, since=middle))
    assert all(e["created_at"] < middle for e in await entries(client, ann.headers, until=middle))
    assert await entries(client, ann.headers, since="2999-01-01T00:00:00") == []


async def test_only_admins_and_audit_read_keys_may_read_the_log(client, make_tenant):
    t = await make_tenant()
    await t.user("ann", role="owner")
    member = await t.user("mo")
    for headers in (member.headers, {"Authorization": f"Bearer {await t.api_key('users:read')}"}):
        for path in ("/audit", "/audit/export"):
            r = await client.get(path, headers=headers)
            assert r.status_code == 403 and r.json()["error"]["details"] == {
                "required": "audit:read"
            }
    assert (await client.get("/audit")).status_code == 401
    reader = {"Authorization": f"Bearer {await t.api_key('audit:read')}"}
    assert (await client.get("/audit", headers=reader)).status_code == 200
    assert (await client.get("/audit/export", headers=reader)).status_code == 200


async def test_each_tenant_reads_only_its_own_log(client, make_tenant):
    a, b = await make_tenant("tenant-a"), await make_tenant("tenant-b")
    ann, bea = await a.user("ann", role="owner"), await b.user("bea", role="owner")
    await client.post("/api-keys", json={"name": "a-key", "scopes": ["kb:read"]},
                      headers=ann.headers)  # fmt: skip
    await client.post("/api-keys", json={"name": "b-key", "scopes": ["kb:read"]},
                      headers=bea.headers)  # fmt: skip
    seen_by_a = await entries(client, ann.headers)
    assert [e["data"]["name"] for e in seen_by_a] == ["a-key"]
    r = await client.get("/audit/export", headers=ann.headers)
    assert "b-key" not in r.text and bea.id not in r.text


async def test_the_export_streams_jsonl_and_csv_and_is_itself_audited(client, make_tenant):
    t = await make_tenant()
    ann = await t.user("ann", role="owner")
    # A user agent that a spreadsheet would run as a formula.
    evil = {**ann.headers, "User-Agent": '=HYPERLINK("http://evil.example")'}
    for i in range(3):
        await client.post("/api-keys", json={"name": f"k{i}", "scopes": ["kb:read"]}, headers=evil)

    r = await client.get("/audit/export", params={"format": "jsonl"}, headers=ann.headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert r.headers["content-disposition"].startswith('attachment; filename="audit-')
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [e["action"] for e in lines] == ["api_key.created"] * 3 + ["audit.export"]
    assert [e["id"] for e in lines] == sorted(e["id"] for e in lines)  # oldest first
    assert lines[-1]["data"] == {"format": "jsonl", "since": None, "until": None}

    r = await client.get("/audit/export", params={"format": "csv"}, headers=ann.headers)
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["action"] for row in rows] == ["api_key.created"] * 3 + ["audit.export"] * 2
    assert rows[0]["user_agent"].startswith("'=HYPERLINK")
    assert json.loads(rows[0]["data"])["name"] == "k0"

    since = lines[1]["created_at"]
    r = await client.get("/audit/export", params={"since": since}, headers=ann.headers)
    assert [json.loads(x)["data"].get("name") for x in r.text.splitlines()][:2] == ["k1", "k2"]
    exports = await entries(client, ann.headers, action="audit.export")
    assert [e["data"]["format"] for e in exports] == ["jsonl", "csv", "jsonl"]
    assert exports[0]["data"]["since"] is not None


async def test_a_large_export_is_complete_and_in_order(client, make_tenant, services):
    t = await make_tenant()
    ann = await t.user("ann", role="owner")
    async with services.db.write() as s:  # more than two export batches (500 each)
        for i in range(1_203):
            await services.audit.record_in(
                s, tenant_id=t.id, actor=ann.id, action="test.bulk", data={"i": i}
            )
    r = await client.get("/audit/export", headers=ann.headers)
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert [e["data"]["i"] for e in lines[:-1]] == list(range(1_203))
    assert lines[-1]["action"] == "audit.export"


async def test_an_agent_group_admin_is_not_an_audit_reader(client, make_tenant):
    """Owning a group is not being a tenant admin."""
    t = await make_tenant()
    agent, other = await t.user("ag", role="agent"), await t.user("ot")
    await group_of(client, agent, other)
    assert (await client.get("/audit", headers=agent.headers)).status_code == 403


async def test_odd_query_values_are_typed_errors_not_crashes(client, make_tenant):
    ann = await (await make_tenant()).user("ann", role="owner")
    r = await client.get("/audit", params={"since": "0001-01-01T00:00:00+01:00"},
                         headers=ann.headers)  # fmt: skip
    assert r.status_code == 400 and r.json()["error"]["details"] == {"field": "since"}
    r = await client.get("/audit", params={"before_id": 2**63}, headers=ann.headers)
    assert r.status_code == 422
    r = await client.get("/audit/export", params={"format": "xml"}, headers=ann.headers)
    assert r.status_code == 422
    r = await client.get("/audit", params={"action": "100%_sure.*"}, headers=ann.headers)
    assert r.status_code == 200 and r.json() == []
