"""The tenant's redaction policy over HTTP: admins read, replace (audited) and preview it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from warbler.store.models_audit import AuditEntry

SECRET_WORD = "蓝海计划"


@pytest.fixture
async def people(make_tenant):
    tenant = await make_tenant()
    return tenant, await tenant.user("boss", role="admin"), await tenant.user("ann")


async def test_a_tenant_starts_with_the_default_policy(client, people):
    _, admin, _ = people
    r = await client.get("/security/redaction", headers=admin.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["default"] is True and body["mode"] == "redact" and body["restore"] is True
    assert body["detectors"] == body["available_detectors"]
    assert "cn_mobile" in body["detectors"] and body["patterns"] == body["keywords"] == []


async def test_an_admin_replaces_the_policy_and_the_change_is_audited(client, services, people):
    tenant, admin, _ = people
    policy = {
        "mode": "block", "detectors": ["email", "cn_mobile"], "restore": False,
        "patterns": [{"name": "employee_id", "pattern": r"EMP-\d{6}"}],
        "keywords": [SECRET_WORD, "Project Falcon", "project falcon"],
    }  # fmt: skip
    r = await client.put("/security/redaction", headers=admin.headers, json=policy)
    assert r.status_code == 200, r.text
    saved = (await client.get("/security/redaction", headers=admin.headers)).json()
    assert saved["default"] is False and saved["mode"] == "block" and saved["restore"] is False
    assert saved["detectors"] == ["cn_mobile", "email"]  # in the built-in order
    assert saved["keywords"] == [SECRET_WORD, "Project Falcon"]
    assert saved["patterns"] == policy["patterns"]

    async with services.db.read() as s:
        rows = (await s.scalars(select(AuditEntry).where(
            AuditEntry.tenant_id == tenant.id, AuditEntry.action == "settings.redaction"
        ))).all()  # fmt: skip
    (entry,) = rows
    assert entry.actor_id == admin.id and entry.target_id == tenant.id
    assert entry.data["mode"] == "block" and entry.data["patterns"] == ["employee_id"]
    assert entry.data["keywords"] == 2
    assert SECRET_WORD not in str(entry.data) and "EMP-" not in str(entry.data)

    # PUT replaces: what is left out goes back to its default.
    r = await client.put("/security/redaction", headers=admin.headers, json={"mode": "redact"})
    assert r.json()["keywords"] == [] and r.json()["restore"] is True


@pytest.mark.parametrize(
    ("patterns", "field"),
    [
        ([{"name": "emp", "pattern": "EMP-(\\d{6}"}], "patterns[0].pattern"),
        ([{"name": "emp", "pattern": "(a|aa)+b"}], "patterns[0].pattern"),
        ([{"name": "emp", "pattern": "x?"}], "patterns[0].pattern"),
        ([{"name": "phone", "pattern": "x"}], "patterns[0].name"),
        ([{"name": "a", "pattern": "x"}, {"name": "A", "pattern": "y"}], "patterns[1].name"),
    ],
)
async def test_a_bad_pattern_is_a_400_naming_the_field(client, people, patterns, field):
    _, admin, _ = people
    r = await client.put("/security/redaction", headers=admin.headers, json={"patterns": patterns})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["details"]["field"] == field
    assert (await client.get("/security/redaction", headers=admin.headers)).json()["default"]


async def test_oversized_input_is_refused(client, people):
    _, admin, _ = people
    for body in (
        {"patterns": [{"name": "p", "pattern": "x" * 501}]},
        {"keywords": ["x" * 101]},
        {"keywords": ["k"] * 501},
        {"detectors": ["passport"]},
        {"mode": "sometimes"},
    ):
        r = await client.put("/security/redaction", headers=admin.headers, json=body)
        assert r.status_code in (400, 422), (body, r.text)
    r = await client.post("/security/redaction/preview", headers=admin.headers,
                          json={"text": "x" * 20_001})  # fmt: skip
    assert r.status_code in (400, 422)


async def test_members_cannot_read_or_change_the_policy(client, people):
    _, _, member = people
    assert (await client.get("/security/redaction", headers=member.headers)).status_code == 403
    r = await client.put("/security/redaction", headers=member.headers, json={"mode": "allow"})
    assert r.status_code == 403
    r = await client.post("/security/redaction/preview", headers=member.headers,
                          json={"text": "13812345678"})  # fmt: skip
    assert r.status_code == 403


async def test_preview_shows_the_redacted_text_and_each_finding(client, people):
    _, admin, _ = people
    text = "我的手机号13812345678谢谢，工号 EMP-004211，邮箱 a.b@example.com，再打13812345678"
    r = await client.post("/security/redaction/preview", headers=admin.headers,
                          json={"text": text})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["text"] == (
        "我的手机号[PHONE_1]谢谢，工号 EMP-004211，邮箱 [EMAIL_1]，再打[PHONE_1]"
    )
    assert body["blocked"] is False
    first = body["findings"][0]
    assert first == {"detector": "cn_mobile", "placeholder": "[PHONE_1]", "start": 5,
                     "end": 16, "value": "13812345678"}  # fmt: skip

    # Trying a pattern before saving it (nothing is saved).
    r = await client.post("/security/redaction/preview", headers=admin.headers, json={
        "text": text, "mode": "block", "patterns": [{"name": "employee_id",
                                                     "pattern": r"EMP-\d{6}"}]})  # fmt: skip
    assert r.status_code == 200, r.text
    assert "[EMPLOYEE_ID_1]" in r.json()["text"] and r.json()["blocked"] is True
    assert (await client.get("/security/redaction", headers=admin.headers)).json()["default"]
    r = await client.post(
        "/security/redaction/preview",
        headers=admin.headers,
        json={"text": text, "patterns": [{"name": "x", "pattern": "("}]},
    )
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "patterns[0].pattern"
