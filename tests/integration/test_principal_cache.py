"""The resolved-token cache saves a read per request and never outlives a change made here;
a change made elsewhere (another node) is seen within WARBLER_AUTH_CACHE_SECONDS."""

from __future__ import annotations

import asyncio

from sqlalchemy import update

from warbler.clock import utcnow
from warbler.security.secrets import digest
from warbler.store.models import AccessToken


async def test_a_second_request_is_served_from_the_cache(client, services, make_tenant):
    t = await make_tenant()
    ann = await t.user("ann")
    assert (await client.get("/users/me", headers=ann.headers)).status_code == 200
    cache = services.auth.cache
    assert cache.get(digest(ann.token), utcnow()) is not None
    assert (await client.get("/users/me", headers=ann.headers)).status_code == 200


async def test_logout_disable_and_password_change_take_effect_on_the_next_request(
    client, make_tenant
):
    t = await make_tenant()
    admin = await t.user("root", role="admin")
    ann, bo, cy = await t.user("ann"), await t.user("bo"), await t.user("cy")
    for u in (ann, bo, cy):  # all three cached
        assert (await client.get("/users/me", headers=u.headers)).status_code == 200

    assert (await client.post("/auth/logout", headers=ann.headers)).status_code == 204
    assert (await client.get("/users/me", headers=ann.headers)).status_code == 401

    r = await client.patch(f"/users/{bo.id}", json={"disabled": True}, headers=admin.headers)
    assert r.status_code == 200, r.text
    assert (await client.get("/users/me", headers=bo.headers)).status_code == 401

    r = await client.post(
        f"/users/{cy.id}/password",
        json={"new_password": "a brand new passphrase 9"},
        headers=admin.headers,
    )
    assert r.status_code == 204, r.text
    assert (await client.get("/users/me", headers=cy.headers)).status_code == 401


async def test_refreshing_last_used_does_not_empty_the_cache(client, services, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    assert (await client.get("/users/me", headers=ann.headers)).status_code == 200
    generation = services.auth.cache.generation
    # bo's first request refreshes bo's last_used_at: a write to access_tokens, not a change
    assert (await client.get("/users/me", headers=bo.headers)).status_code == 200
    assert services.auth.cache.generation == generation
    assert services.auth.cache.get(digest(ann.token), utcnow()) is not None


async def test_a_revocation_made_by_another_node_is_seen_within_the_ttl(
    client, services, make_tenant
):
    t = await make_tenant()
    ann = await t.user("ann")
    services.auth.cache.ttl = 0.5
    assert (await client.get("/users/me", headers=ann.headers)).status_code == 200
    # Another node revokes: straight through the engine, no Session, so no event here.
    async with services.db.engine.begin() as conn:
        await conn.execute(
            update(AccessToken)
            .where(AccessToken.token_hash == digest(ann.token))
            .values(revoked_at=utcnow())
        )
    assert (await client.get("/users/me", headers=ann.headers)).status_code == 200  # cached
    await asyncio.sleep(0.6)
    assert (await client.get("/users/me", headers=ann.headers)).status_code == 401
