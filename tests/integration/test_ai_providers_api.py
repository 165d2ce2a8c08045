"""Provider keys: write-only over the API, sealed at rest, bound to their row, never logged."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select, text

from warbler.security.crypto import SecretBox, SecretError, decode_key, new_key_text
from warbler.store.models_ai import AiProvider

KEY = "sk-live-TOPSECRET-4f8a9b2c7d1e6f30"
NEW_KEY = "sk-live-ROTATED-99aa88bb77cc66dd"


@pytest.fixture
async def acme(make_tenant):
    tenant = await make_tenant("acme")
    tenant.admin = await tenant.user("ada", role="admin")
    return tenant


async def create(client, admin, **extra):
    body = {"name": "deepseek", "kind": "openai", "base_url": "https://api.deepseek.com/v1",
            "model": "deepseek-chat", "api_key": KEY, "price_prompt": 0.27,
            "price_completion": 1.1, **extra}  # fmt: skip
    return await client.post("/ai/providers", json=body, headers=admin.headers)


async def test_the_key_is_never_returned_by_any_endpoint(client, acme):
    created = await create(client, acme.admin)
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    assert created.json()["api_key"] == {"set": True, "last4": "6f30"}
    responses = [
        created,
        await client.get("/ai/providers", headers=acme.admin.headers),
        await client.get(f"/ai/providers/{pid}", headers=acme.admin.headers),
        await client.patch(
            f"/ai/providers/{pid}", json={"model": "deepseek-reasoner"}, headers=acme.admin.headers
        ),
        await client.patch(
            f"/ai/providers/{pid}", json={"api_key": NEW_KEY}, headers=acme.admin.headers
        ),
        await client.get("/openapi.json"),
    ]
    for r in responses:
        assert r.status_code == 200 or r.status_code == 201, r.text
        assert KEY not in r.text and NEW_KEY not in r.text
        assert "TOPSECRET" not in r.text and "ROTATED" not in r.text
    assert responses[-2].json()["api_key"] == {"set": True, "last4": "66dd"}


async def test_the_key_is_sealed_at_rest_and_bound_to_its_row(client, services, acme):
    first = (await create(client, acme.admin)).json()["id"]
    second = (await create(client, acme.admin, name="other", api_key=NEW_KEY)).json()["id"]
    async with services.db.read() as s:
        rows = (await s.execute(text("SELECT * FROM ai_providers"))).all()
        sealed = {r.id: r.api_key_sealed for r in await s.scalars(select(AiProvider))}
    dump = repr(rows)
    assert KEY not in dump and "TOPSECRET" not in dump and NEW_KEY not in dump
    assert sealed[first].startswith("enc1:")  # under the tenant's data key
    assert services.secrets.open(sealed[first], f"ai_provider:{first}:api_key") == KEY
    # Copied into another provider's row, or opened under another master key, it stays shut.
    with pytest.raises(SecretError):
        services.secrets.open(sealed[first], f"ai_provider:{second}:api_key")
    with pytest.raises(SecretError):
        SecretBox(decode_key(new_key_text())).open(sealed[first], f"ai_provider:{first}:api_key")


async def test_the_key_never_reaches_the_logs(client, services, acme, caplog):
    caplog.set_level(logging.DEBUG)
    pid = (await create(client, acme.admin)).json()["id"]
    await client.patch(
        f"/ai/providers/{pid}", json={"api_key": NEW_KEY}, headers=acme.admin.headers
    )
    # A refused request carrying a key does not echo it either.
    bad = await create(client, acme.admin, name="bad", base_url="ftp://x", api_key=KEY)
    assert bad.status_code == 400 and KEY not in bad.text
    invalid = await create(client, acme.admin, name="x" * 80, api_key=KEY)
    assert invalid.status_code == 422 and KEY not in invalid.text
    bot = await client.post("/bots", json={"name": "B", "provider_ids": [pid]},
                            headers=acme.admin.headers)  # fmt: skip
    config = await services.bots.load(acme.id, bot.json()["id"])
    assert config.providers[0].api_key == NEW_KEY
    assert NEW_KEY not in repr(config)
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert KEY not in logged and NEW_KEY not in logged


async def test_a_key_is_replaced_or_removed_and_credentials_stay_out_of_headers(client, acme):
    pid = (await create(client, acme.admin)).json()["id"]
    r = await client.patch(
        f"/ai/providers/{pid}", json={"api_key": None}, headers=acme.admin.headers
    )
    assert r.json()["api_key"] == {"set": False, "last4": None}
    short = await client.patch(f"/ai/providers/{pid}", json={"api_key": "abc123"},
                               headers=acme.admin.headers)  # fmt: skip
    assert short.json()["api_key"] == {"set": True, "last4": None}, "short keys show nothing"
    r = await create(client, acme.admin, name="h", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 400 and r.json()["error"]["details"]["field"] == "headers"
    assert KEY not in r.text
    ok = await create(client, acme.admin, name="h", headers={"X-Title": "Warbler"})
    assert ok.json()["headers"] == {"X-Title": "Warbler"}


INVALID_PROVIDERS = [
    ({"base_url": "file:///etc/passwd"}, 400, "base_url"),
    ({"base_url": "https://"}, 400, "base_url"),
    ({"kind": "gemini"}, 422, "kind"),
    ({"name": "has space"}, 400, "name"),
    ({"price_prompt": -1}, 422, "price_prompt"),
    ({"timeout_seconds": 0}, 422, "timeout_seconds"),
]


async def test_invalid_providers_are_refused(client, acme):
    for body, status, field in INVALID_PROVIDERS:
        r = await create(client, acme.admin, **body)
        assert r.status_code == status, (body, r.text)
        error = r.json()["error"]
        assert error["code"] == "invalid_request", body
        if status == 400:
            assert error["details"]["field"] == field, body
        else:
            assert any(field in p["loc"] for p in error["details"]["errors"]), body
    assert (await client.get("/ai/providers", headers=acme.admin.headers)).json() == []


async def test_every_provider_field_reaches_the_reply_engine(client, services, acme):
    pid = (await create(client, acme.admin, stream=False, timeout_seconds=30,
                        idle_timeout_seconds=5, max_retries=0, headers={"X-Title": "W"},
                        extra_body={"enable_thinking": False})).json()["id"]  # fmt: skip
    bot = (await client.post("/bots", json={"name": "B", "provider_ids": [pid]},
                             headers=acme.admin.headers)).json()  # fmt: skip
    (p,) = (await services.bots.load(acme.id, bot["id"])).providers
    assert (p.kind, p.name, p.base_url, p.model) == (
        "openai", "deepseek", "https://api.deepseek.com/v1", "deepseek-chat")  # fmt: skip
    assert (p.stream, p.timeout_seconds, p.idle_timeout_seconds, p.max_retries) == (False, 30, 5, 0)
    assert (p.price_prompt, p.price_completion) == (0.27, 1.1)
    assert p.headers == {"X-Title": "W"} and p.extra_body == {"enable_thinking": False}
    r = await client.patch(f"/ai/providers/{pid}", json={"model": None, "max_retries": None},
                           headers=acme.admin.headers)  # fmt: skip
    assert (r.json()["model"], r.json()["max_retries"]) == ("", None)


async def test_provider_names_are_unique_per_tenant(client, acme, make_tenant):
    assert (await create(client, acme.admin)).status_code == 201
    again = await create(client, acme.admin)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    other = await make_tenant("globex")
    assert (await create(client, await other.user("gus", role="admin"))).status_code == 201


async def test_a_provider_in_use_cannot_be_deleted_until_no_bot_lists_it(client, acme):
    pid = (await create(client, acme.admin)).json()["id"]
    bot = (await client.post("/bots", json={"name": "Sales Bot", "provider_ids": [pid]},
                             headers=acme.admin.headers)).json()  # fmt: skip
    r = await client.delete(f"/ai/providers/{pid}", headers=acme.admin.headers)
    assert r.status_code == 409
    assert r.json()["error"]["details"]["bots"] == [{"id": bot["id"], "name": "Sales Bot"}]
    await client.patch(f"/bots/{bot['id']}", json={"provider_ids": []}, headers=acme.admin.headers)
    assert (
        await client.delete(f"/ai/providers/{pid}", headers=acme.admin.headers)
    ).status_code == 204
    assert (await client.get(f"/ai/providers/{pid}", headers=acme.admin.headers)).status_code == 404


async def test_members_and_other_tenants_cannot_reach_providers(client, acme, make_tenant):
    pid = (await create(client, acme.admin)).json()["id"]
    member = (await acme.user("mo")).headers
    assert (await client.get("/ai/providers", headers=member)).status_code == 403
    assert (await client.get(f"/ai/providers/{pid}", headers=member)).status_code == 403
    other = await make_tenant("globex")
    them = (await other.user("gus", role="admin")).headers
    assert (await client.get("/ai/providers", headers=them)).json() == []
    for r in (
        await client.get(f"/ai/providers/{pid}", headers=them),
        await client.patch(f"/ai/providers/{pid}", json={"model": "x"}, headers=them),
        await client.delete(f"/ai/providers/{pid}", headers=them),
    ):
        assert r.status_code == 404


async def test_a_key_that_no_longer_opens_skips_that_provider_and_logs_no_secret(
    client, services, acme, caplog
):
    broken = (await create(client, acme.admin, name="broken")).json()["id"]
    good = (await create(client, acme.admin, name="good", api_key=NEW_KEY)).json()["id"]
    # As if the row had been sealed under another master key.
    stranger = SecretBox(decode_key(new_key_text()))
    async with services.db.write() as s:
        row = await s.get(AiProvider, broken)
        row.api_key_sealed = stranger.seal(KEY, f"ai_provider:{broken}:api_key")
    bot = (await client.post("/bots", json={"name": "B", "provider_ids": [broken, good]},
                             headers=acme.admin.headers)).json()  # fmt: skip
    with caplog.at_level(logging.ERROR):
        config = await services.bots.load(acme.id, bot["id"])
    assert [p.name for p in config.providers] == ["good"]
    assert "broken" in caplog.text and KEY not in caplog.text
