"""The source IP the audit log records: the socket peer, or what a trusted proxy forwarded
(never the spoofable left end of X-Forwarded-For)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import API, make_settings
from warbler.app import create_app
from warbler.security.proxy import TrustedProxies
from warbler.store.models_audit import AuditEntry

PROXIES = TrustedProxies(["127.0.0.1", "10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("198.51.100.1", None, "198.51.100.1"),  # no proxy
        ("198.51.100.1", "6.6.6.6", "198.51.100.1"),  # an untrusted peer's header is ignored
        ("127.0.0.1", "203.0.113.9", "203.0.113.9"),  # one trusted proxy
        ("127.0.0.1", "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # a spoofed left end is ignored
        ("10.1.2.3", "203.0.113.9, 10.0.0.7", "203.0.113.9"),  # two trusted proxies
        ("10.1.2.3", "10.0.0.8, 10.0.0.7", "10.0.0.8"),  # only proxies: the farthest
        ("127.0.0.1", "203.0.113.9:4711", "203.0.113.9"),  # a port some proxies add
        ("127.0.0.1", "[2001:db8::5]:443", "2001:db8::5"),
        ("::ffff:127.0.0.1", "203.0.113.9", "203.0.113.9"),  # IPv4-mapped IPv6 peer
        ("127.0.0.1", "not-an-ip, 203.0.113.9", "203.0.113.9"),
        ("127.0.0.1", "203.0.113.9, garbage", "127.0.0.1"),  # believe nothing past garbage
        (None, "203.0.113.9", None),
    ],
)
def test_the_client_ip_is_the_nearest_untrusted_hop(peer, forwarded_for, client):
    assert PROXIES.client_ip(peer, forwarded_for) == client


async def audited_ips(services) -> list[str | None]:
    async with services.db.read() as s:
        return list((await s.scalars(select(AuditEntry.ip).order_by(AuditEntry.id))).all())


async def test_audit_rows_carry_the_forwarded_client_ip_and_user_agent(
    client, make_tenant, services
):
    t = await make_tenant()
    ann = await t.user("ann", role="owner")
    headers = {**ann.headers, "X-Forwarded-For": "6.6.6.6, 203.0.113.8", "User-Agent": "ua/2"}
    r = await client.post("/api-keys", json={"name": "k", "scopes": ["kb:read"]}, headers=headers)
    assert r.status_code == 201
    async with services.db.read() as s:
        row = await s.scalar(select(AuditEntry))
    assert (row.ip, row.user_agent) == ("203.0.113.8", "ua/2")


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(tmp_path):
    # The test client connects from 127.0.0.1, which this node does not trust.
    app = create_app(make_settings(tmp_path / "data", trusted_proxies=["10.0.0.0/8"]))
    async with app.router.lifespan_context(app):
        services = app.state.services
        tenant = await services.users.create_tenant(slug="acme", name="Acme")
        user = await services.users.create_user(tenant["id"], username="ann", role="owner")
        token = (await services.auth.issue_token(tenant["id"], user["id"]))["access_token"]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://t{API}") as client:
            r = await client.post(
                "/api-keys", json={"name": "k", "scopes": ["kb:read"]},
                headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": "203.0.113.8",
                         "X-Forwarded-Proto": "https"},
            )  # fmt: skip
            assert r.status_code == 201
            assert "strict-transport-security" not in r.headers  # not believed to be HTTPS
        assert await audited_ips(services) == ["127.0.0.1"]
