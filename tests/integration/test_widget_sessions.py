"""Widget visitor sessions: anonymous visitors come back by their browser's key, identified
visitors by the company's signed token (HS256 only, unexpired, the tenant's own secret);
a widget that requires identity refuses anonymous visitors; sessions are rate-limited per IP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from tests.conftest import API, backend_settings
from warbler.config import Settings
from warbler.services import Services
from warbler.store.models import AccessToken, User
from warbler.store.models_support import SupportVisitor
from warbler.support.widget.identity import sign_identity_token

SECRET = "acme-identity-secret-0123456789"


@pytest.fixture
def settings(tmp_path, backend, request) -> Settings:
    return backend_settings(
        backend, request, tmp_path / "data", support_widget_sessions_per_minute=20
    )


@dataclass
class Widget:
    id: str
    tenant_id: str
    admin_key: str

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}


async def make_widget(
    client: httpx.AsyncClient, make_tenant: Any, slug: str = "acme",
    **changes: Any,
) -> Widget:  # fmt: skip
    """A tenant with a support bot (the extractive default) and the given support settings."""
    tenant = await make_tenant(slug)
    key = await tenant.api_key("admin")
    r = await client.post(
        "/bots", json={"name": "Helper 小助手"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 201, r.text
    r = await client.put(
        "/support/settings", json={"bot_user_id": r.json()["user_id"], **changes},
        headers={"Authorization": f"Bearer {key}"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    return Widget(r.json()["widget_id"], tenant.id, key)


def claims(sub: str = "cust-42", **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": sub, "iat": now, "exp": now + 600, **extra}


async def session(client: httpx.AsyncClient, widget_id: str, **body: Any) -> httpx.Response:
    return await client.post(f"/support/widget/{widget_id}/sessions", json=body)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def visitor_count(services: Services, tenant_id: str) -> int:
    async with services.db.read() as s:
        return int(
            await s.scalar(
                select(func.count())
                .select_from(User)
                .where(User.tenant_id == tenant_id, User.kind == "visitor")
            )
            or 0
        )


# -- anonymous visitors --------------------------------------------------------------------


async def test_an_anonymous_visitor_comes_back_with_its_key_to_the_same_conversation(
    client, services, make_tenant
):
    widget = await make_widget(client, make_tenant)
    first = await session(client, widget.id, locale="zh")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["user"]["kind"] == "visitor" and body["user"]["role"] == "visitor"
    assert re.fullmatch(r"Visitor 访客 #\d{4}", body["user"]["display_name"])
    assert body["identified"] is False and body["bot"]["display_name"] == "Helper 小助手"
    key = body["visitor_key"]
    assert len(base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))) == 32
    conv = body["conversation_id"]
    sent = await client.post(
        f"/conversations/{conv}/messages", json={"text": "我的订单到哪了？"},
        headers=bearer(body["access_token"]),
    )  # fmt: skip
    assert sent.status_code == 201, sent.text

    again = await session(client, widget.id, visitor_key=key)
    assert again.status_code == 201, again.text
    back = again.json()
    assert back["user"]["id"] == body["user"]["id"]
    assert back["conversation_id"] == conv
    assert back["access_token"] != body["access_token"]
    history = await client.get(
        f"/conversations/{conv}/messages", headers=bearer(back["access_token"])
    )
    assert "我的订单到哪了？" in [m["text"] for m in history.json()["messages"]]
    me = await client.get("/support/me", headers=bearer(back["access_token"]))
    assert me.status_code == 200 and me.json()["conversation_id"] == conv
    # Only the key's SHA-256 is stored.
    async with services.db.read() as s:
        row = await s.get(SupportVisitor, body["user"]["id"])
    assert row is not None and row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert row.locale == "en"  # the second session asked in English (the default)


async def test_a_key_the_tenant_does_not_know_makes_a_new_visitor_with_a_new_key(
    client, services, make_tenant
):
    acme = await make_widget(client, make_tenant)
    globex = await make_widget(client, make_tenant, "globex")
    theirs = (await session(client, globex.id)).json()
    for key in ("not-a-key-we-issued", theirs["visitor_key"]):
        r = await session(client, acme.id, visitor_key=key)
        assert r.status_code == 201, r.text
        assert r.json()["user"]["id"] != theirs["user"]["id"]
        assert r.json()["visitor_key"] != key
    assert await visitor_count(services, acme.tenant_id) == 2
    assert await visitor_count(services, globex.tenant_id) == 1


async def test_a_visitor_token_lives_as_configured_and_works_on_the_api(
    client, services, make_tenant
):
    widget = await make_widget(client, make_tenant)
    body = (await session(client, widget.id, name="Lee")).json()
    expires = datetime.fromisoformat(body["expires_at"])
    ttl = services.settings.support_visitor_token_ttl_seconds
    assert abs((expires - datetime.now(UTC)).total_seconds() - ttl) < 60
    assert body["user"]["display_name"] == "Lee"
    me = await client.get("/users/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json()["id"] == body["user"]["id"]
    async with services.db.read() as s:
        device = await s.scalar(
            select(AccessToken.device).where(AccessToken.user_id == body["user"]["id"])
        )
    assert device == "support widget"


# -- identified visitors --------------------------------------------------------------------


async def test_an_identified_visitor_is_the_same_visitor_for_the_same_sub(
    client, services, make_tenant
):
    widget = await make_widget(client, make_tenant, identity_secret=SECRET)
    token = sign_identity_token(SECRET, claims(name="Wang Fang 王芳", email="fang@example.cn"))
    first = await session(client, widget.id, identity_token=token)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["identified"] is True and body["visitor_key"] is None
    assert body["user"]["display_name"] == "Wang Fang 王芳"
    # Another device, a new token, a new name from the company: the same visitor.
    later = sign_identity_token(SECRET, claims(name="Fang Wang"))
    again = (await session(client, widget.id, identity_token=later)).json()
    assert again["user"]["id"] == body["user"]["id"]
    assert again["conversation_id"] == body["conversation_id"]
    assert again["user"]["display_name"] == "Fang Wang"
    other = (await session(client, widget.id, identity_token=sign_identity_token(
        SECRET, claims(sub="cust-43")))).json()  # fmt: skip
    assert other["user"]["id"] != body["user"]["id"]
    async with services.db.read() as s:
        row = await s.get(SupportVisitor, body["user"]["id"])
    assert row is not None and (row.external_id, row.email) == ("cust-42", "fang@example.cn")
    assert row.key_hash is None


def _unsigned(header: dict[str, Any], payload: dict[str, Any], signature: str = "") -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(payload)}.{signature}"


def _retagged(token: str, alg: str) -> str:
    """``token`` with another alg in its header (the signature no longer matters)."""
    _, payload, signature = token.split(".")
    header = base64.urlsafe_b64encode(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header.rstrip(b'=').decode()}.{payload}.{signature}"


async def test_bad_identity_tokens_are_refused_with_typed_401s_and_create_nothing(
    client, services, make_tenant
):
    widget = await make_widget(client, make_tenant, identity_secret=SECRET)
    other = await make_widget(
        client, make_tenant, "globex", identity_secret="globex-identity-secret-987654"
    )
    now = int(time.time())
    good = sign_identity_token(SECRET, claims())
    _, payload, signature = good.split(".")
    tampered = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    tampered["sub"] = "cust-1"
    cases = {
        "expired": (sign_identity_token(SECRET, claims(iat=now - 900, exp=now - 300)),
                    "identity_token_expired"),
        "bad signature": (sign_identity_token("not-the-secret-at-all-000", claims()),
                          "invalid_identity_token"),
        "another tenant's secret": (sign_identity_token("globex-identity-secret-987654",
                                                        claims()), "invalid_identity_token"),
        "alg none": (_unsigned({"alg": "none", "typ": "JWT"}, claims()), "invalid_identity_token"),
        "alg none, signature kept": (_retagged(good, "none"), "invalid_identity_token"),
        "alg HS512": (_retagged(good, "HS512"), "invalid_identity_token"),
        "payload changed": (_unsigned({"alg": "HS256", "typ": "JWT"}, tampered, signature),
                            "invalid_identity_token"),
        "no exp": (sign_identity_token(SECRET, {"sub": "cust-42"}), "invalid_identity_token"),
        "no sub": (sign_identity_token(SECRET, {"exp": now + 60}), "invalid_identity_token"),
        "lives two days": (sign_identity_token(SECRET, claims(exp=now + 2 * 86400)),
                           "invalid_identity_token"),
        "sub too long": (sign_identity_token(SECRET, claims(sub="x" * 201)),
                         "invalid_identity_token"),
        "not a JWT": ("hello", "invalid_identity_token"),
    }  # fmt: skip
    for name, (token, code) in cases.items():
        r = await session(client, widget.id, identity_token=token)
        assert r.status_code == 401, f"{name}: {r.text}"
        assert r.json()["error"]["code"] == code, f"{name}: {r.text}"
    assert await visitor_count(services, widget.tenant_id) == 0
    # The other tenant's own token works on its own widget only.
    theirs = sign_identity_token("globex-identity-secret-987654", claims())
    assert (await session(client, other.id, identity_token=theirs)).status_code == 201


async def test_a_token_for_a_widget_with_no_identity_secret_is_refused(
    client, services, make_tenant
):
    widget = await make_widget(client, make_tenant)
    r = await session(client, widget.id, identity_token=sign_identity_token(SECRET, claims()))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_identity_token"


async def test_identity_required_refuses_anonymous_visitors(client, services, make_tenant):
    widget = await make_widget(client, make_tenant, identity_secret=SECRET, identity_required=True)
    for body in ({}, {"visitor_key": "whatever", "name": "Anon"}):
        r = await session(client, widget.id, **body)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "identity_required"
    config = await client.get(f"/support/widget/{widget.id}/config")
    assert config.json()["identity_required"] is True
    token = sign_identity_token(SECRET, claims())
    assert (await session(client, widget.id, identity_token=token)).status_code == 201
    assert await visitor_count(services, widget.tenant_id) == 1


# -- limits, unknown widgets, configuration -----------------------------------------------


async def test_sessions_are_rate_limited_per_client_ip(app: FastAPI, client, services, make_tenant):
    widget = await make_widget(client, make_tenant)
    limit = services.settings.support_widget_sessions_per_minute
    for _ in range(limit):
        assert (await session(client, widget.id)).status_code == 201
    refused = await session(client, widget.id)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    # Another address has its own allowance.
    other_ip = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=other_ip, base_url=f"http://test{API}") as elsewhere:
        assert (await session(elsewhere, widget.id)).status_code == 201
    assert await visitor_count(services, widget.tenant_id) == limit + 1


async def test_an_unknown_widget_is_404_and_a_widget_without_a_bot_is_refused(
    client, services, make_tenant
):
    for r in (
        await client.get("/support/widget/no-such-widget/config"),
        await session(client, "no-such-widget"),
    ):
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    tenant = await make_tenant("nobot")
    key = await tenant.api_key("admin")
    view = await client.get("/support/settings", headers={"Authorization": f"Bearer {key}"})
    r = await session(client, view.json()["widget_id"])
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request", r.text
    assert await visitor_count(services, tenant.id) == 0


async def test_the_config_speaks_the_visitors_language(client, services, make_tenant):
    widget = await make_widget(
        client, make_tenant,
        widget_title={"en": "Acme help", "zh": "Acme 帮助中心"}, widget_color="#0f766e",
    )  # fmt: skip
    en = (await client.get(f"/support/widget/{widget.id}/config")).json()
    zh = (await client.get(f"/support/widget/{widget.id}/config", params={"lang": "zh-CN"})).json()
    assert (en["lang"], en["title"], zh["lang"], zh["title"]) == (
        "en", "Acme help", "zh", "Acme 帮助中心",
    )  # fmt: skip
    # No greeting configured: the built-in one, in each language.
    assert "Ask us anything" in en["greeting"] and "转人工" in zh["greeting"]
    assert en["color"] == "#0f766e" and en["identity_required"] is False
    assert en["office"]["open"] is True  # no team: always open
