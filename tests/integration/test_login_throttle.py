"""Login throttling and lockout, per account and per client IP, on SQLite and PostgreSQL:
typed 429 ``login_locked`` with Retry-After, the same for accounts that do not exist, reset by
a success, shared by every node on the database, and audited."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.conftest import API, backend_settings
from warbler.app import create_app
from warbler.store.models_access import LoginCounter
from warbler.store.models_audit import AuditEntry

PASSWORD = "correct horse battery"


@pytest.fixture
def settings(tmp_path, backend, request):
    return backend_settings(
        backend, request, tmp_path / "data", login_account_max_failures=3,
        login_ip_max_failures=6, login_window_seconds=600, login_lockout_seconds=600,
    )  # fmt: skip


async def login(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD, *,
    tenant: str = "acme", ip: str | None = None,
) -> httpx.Response:  # fmt: skip
    headers = {"X-Forwarded-For": ip} if ip else {}
    return await client.post(
        "/auth/login", json={"tenant": tenant, "username": username, "password": password},
        headers=headers,
    )  # fmt: skip


def shape(r: httpx.Response) -> tuple[int, str, str | None]:
    body = r.json()["error"]
    return r.status_code, body["code"], r.headers.get("retry-after") and "set"


async def actions(services: Any, tenant_id: str) -> list[str]:
    async with services.db.read() as s:
        rows = await s.scalars(
            select(AuditEntry.action).where(AuditEntry.tenant_id == tenant_id)
            .order_by(AuditEntry.id)
        )  # fmt: skip
        return list(rows.all())


async def test_too_many_wrong_passwords_lock_the_account_with_retry_after(
    client, make_tenant, services
):
    t = await make_tenant()
    await t.user("ann")
    assert [(await login(client, "ann", "wrong password!", ip="203.0.113.1")).status_code
            for _ in range(2)] == [401, 401]  # fmt: skip
    r = await login(client, "ann", "wrong password!", ip="203.0.113.2")
    assert r.status_code == 429
    error = r.json()["error"]
    assert error["code"] == "login_locked"
    assert 590 <= int(r.headers["retry-after"]) <= 600
    assert error["details"]["retry_after_seconds"] == int(r.headers["retry-after"])
    assert "分钟" in error["details"]["message_zh"]
    # Now even the right password, from anywhere, is refused before it is checked.
    r = await login(client, "ann", ip="198.51.100.9")
    assert r.status_code == 429 and r.json()["error"]["code"] == "login_locked"
    # Another account is not affected.
    await t.user("bo")
    assert (await login(client, "bo", ip="203.0.113.1")).status_code == 200
    assert await actions(services, t.id) == [
        "auth.login_failed", "auth.login_failed", "auth.login_failed", "auth.lockout",
        "auth.login",
    ]  # fmt: skip


async def test_an_unknown_username_or_tenant_answers_exactly_like_a_real_account(
    client, make_tenant
):
    t = await make_tenant()
    await t.user("ann")

    async def series(username: str, tenant: str, ip: str) -> list[tuple[int, str, str | None]]:
        return [shape(await login(client, username, "wrong password!", tenant=tenant, ip=ip))
                for _ in range(4)]  # fmt: skip

    real = await series("ann", "acme", "192.0.2.1")
    ghost = await series("nobody-here", "acme", "192.0.2.2")
    no_tenant = await series("ann", "no-such", "192.0.2.3")
    assert real == ghost == no_tenant == [
        (401, "unauthenticated", None), (401, "unauthenticated", None),
        (429, "login_locked", "set"), (429, "login_locked", "set"),
    ]  # fmt: skip


async def test_a_successful_login_resets_the_account_counter(client, make_tenant):
    t = await make_tenant()
    await t.user("ann")
    for _ in range(2):
        assert (await login(client, "ann", "wrong password!", ip="192.0.2.10")).status_code == 401
    assert (await login(client, "ann", ip="192.0.2.10")).status_code == 200
    for _ in range(2):  # two more would have been the 3rd and 4th without the reset
        assert (await login(client, "ann", "wrong password!", ip="192.0.2.11")).status_code == 401
    assert (await login(client, "ann", ip="192.0.2.11")).status_code == 200


async def test_one_address_spraying_many_accounts_is_locked(client, make_tenant, services):
    t = await make_tenant()
    await t.user("ann")
    sprayer = "203.0.113.66"
    codes = [(await login(client, f"user{i}", "Spring2024!!", ip=sprayer)).status_code
             for i in range(6)]  # fmt: skip
    assert codes == [401] * 5 + [429]
    # The address is locked, even for a right password...
    r = await login(client, "ann", ip=sprayer)
    assert r.status_code == 429 and "retry-after" in r.headers
    # ...and only that address.
    assert (await login(client, "ann", ip="198.51.100.20")).status_code == 200
    lockouts = [a for a in await actions(services, t.id) if a == "auth.lockout"]
    assert len(lockouts) == 1


@pytest.fixture
def short_lock(tmp_path, backend, request):
    return backend_settings(
        backend, request, tmp_path / "short", login_account_max_failures=2,
        login_lockout_seconds=1,
    )  # fmt: skip


async def test_the_lock_ends_after_the_lockout_period(short_lock):
    app = create_app(short_lock)
    async with app.router.lifespan_context(app):
        services = app.state.services
        tenant = await services.users.create_tenant(slug="acme", name="Acme")
        await services.users.create_user(tenant["id"], username="ann", password=PASSWORD)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://t{API}") as client:
            await login(client, "ann", "wrong password!")
            assert (await login(client, "ann", "wrong password!")).status_code == 429
            assert (await login(client, "ann")).status_code == 429
            for _ in range(60):  # bounded poll: the lock lasts 1 s
                r = await login(client, "ann")
                if r.status_code != 429:
                    break
                await asyncio.sleep(0.05)
            assert r.status_code == 200


async def test_the_lockout_is_shared_by_every_node_on_the_database(settings, make_tenant, client):
    """A second app on the same database (another node) sees the first one's lockout."""
    t = await make_tenant()
    await t.user("ann")
    for _ in range(3):
        await login(client, "ann", "wrong password!")
    other = create_app(settings)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://n2{API}") as node2:
            r = await login(node2, "ann")
            assert r.status_code == 429 and r.json()["error"]["code"] == "login_locked"


async def test_concurrent_failures_are_each_counted(client, make_tenant, services):
    t = await make_tenant()
    await t.user("ann")
    replies = await asyncio.gather(
        *(login(client, "ann", "wrong password!", ip=f"192.0.2.{i}") for i in range(8))
    )
    codes = sorted(r.status_code for r in replies)
    # Three failures lock; the others either raced ahead of the lock (401, counted) or met it.
    assert codes.count(429) >= 1 and set(codes) <= {401, 429}
    async with services.db.read() as s:
        locked = await s.scalar(
            select(func.count()).select_from(LoginCounter).where(
                LoginCounter.scope == "account", LoginCounter.locked_until.is_not(None)
            )
        )  # fmt: skip
    assert locked == 1
    assert (await login(client, "ann")).status_code == 429


async def test_counters_store_no_username_or_address_in_clear(client, make_tenant, services):
    t = await make_tenant()
    await t.user("ann")
    await login(client, "ann-the-user", "wrong password!", ip="203.0.113.77")
    async with services.db.read() as s:
        rows = (await s.execute(select(LoginCounter))).scalars().all()
    text = repr([(r.key_hash, r.scope) for r in rows])
    assert {r.scope for r in rows} == {"account", "ip"}
    assert "ann-the-user" not in text and "203.0.113.77" not in text
