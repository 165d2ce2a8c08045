"""Bad requests get a clear typed error ``{"error": {"code", "message", "details"}}`` and
change nothing: every test here compares the state before and after the refused request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from tests.conftest import API, backend_settings, group_of, send
from warbler.app import create_app
from warbler.clock import utcnow
from warbler.config import Settings
from warbler.store.models import AccessToken

MAX_REQUEST = 8192
MAX_TEXT = 100
MAX_DATA = 512


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    # Small limits so "too large" bodies stay small; a zero recall window so any recall by
    # a plain sender is late.
    return backend_settings(
        backend, request, tmp_path / "data", max_request_bytes=MAX_REQUEST,
        max_text_chars=MAX_TEXT, max_data_bytes=MAX_DATA, recall_window_seconds=0,
    )  # fmt: skip


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "details"}, err
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"], err
    assert isinstance(err["details"], dict), err
    return dict(err)


class Scene:
    """A group (owner ann, member bo, outsider cy in the tenant) with two messages."""

    def __init__(self, client: httpx.AsyncClient, t: Any) -> None:
        self.client, self.t = client, t

    async def build(self) -> Scene:
        self.ann = await self.t.user("ann", role="owner")
        self.bo = await self.t.user("bo")
        self.cy = await self.t.user("cy")
        self.conv = await group_of(self.client, self.ann, self.bo, title="Team")
        self.ann_msg = await send(self.client, self.ann, self.conv, "from ann")
        self.bo_msg = await send(self.client, self.bo, self.conv, "from bo")
        self.key = await self.t.api_key("admin")
        return self

    async def state(self) -> dict[str, Any]:
        """Everything a refused request might have touched."""
        c, h = self.client, self.ann.headers
        conv = (await c.get(f"/conversations/{self.conv}", headers=h)).json()
        key = {"Authorization": f"Bearer {self.key}"}
        return {
            "history": (await c.get(f"/conversations/{self.conv}/messages", headers=h)).json(),
            "conversation": {k: conv[k] for k in ("title", "announcement", "last_seq")},
            "members": (await c.get(f"/conversations/{self.conv}/members", headers=h)).json(),
            "users": (await c.get("/users", headers=h)).json(),
            "api_keys": [k["id"] for k in (await c.get("/api-keys", headers=key)).json()],
            "conversations": len((await c.get("/conversations", headers=h)).json()),
        }


@pytest.fixture
async def scene(client: httpx.AsyncClient, make_tenant: Any) -> Scene:
    return await Scene(client, await make_tenant()).build()


# -- malformed and oversized bodies -------------------------------------------------------


async def test_malformed_json_is_400_malformed_json_and_stores_nothing(client, scene):
    before = await scene.state()
    r = await client.post(
        f"/conversations/{scene.conv}/messages", content=b'{"text": "half',
        headers={**scene.ann.headers, "Content-Type": "application/json"},
    )  # fmt: skip
    assert_error(r, 400, "malformed_json")
    assert await scene.state() == before


async def test_a_body_over_max_request_bytes_is_413_by_length_and_while_streaming(client, scene):
    before = await scene.state()
    big = b'{"text": "' + b"x" * (MAX_REQUEST * 2) + b'"}'
    headers = {**scene.ann.headers, "Content-Type": "application/json"}
    url = f"/conversations/{scene.conv}/messages"
    err = assert_error(await client.post(url, content=big, headers=headers), 413, "too_large")
    assert err["details"]["limit"] == MAX_REQUEST

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for i in range(0, len(big), 1024):
            yield big[i : i + 1024]

    assert_error(await client.post(url, content=chunked(), headers=headers), 413, "too_large")
    assert await scene.state() == before


async def test_text_over_max_text_chars_and_data_over_max_data_bytes_are_413(client, scene):
    before = await scene.state()
    url = f"/conversations/{scene.conv}/messages"
    r = await client.post(url, json={"text": "长" * (MAX_TEXT + 1)}, headers=scene.ann.headers)
    assert assert_error(r, 413, "too_large")["details"]["limit"] == MAX_TEXT
    card = {"kind": "card", "data": {"title": "t", "body": "x" * MAX_DATA}}
    r = await client.post(url, json=card, headers=scene.ann.headers)
    assert assert_error(r, 413, "too_large")["details"]["limit"] == MAX_DATA
    edit = f"{url}/{scene.ann_msg['id']}"
    r = await client.patch(edit, json={"text": "x" * (MAX_TEXT + 1)}, headers=scene.ann.headers)
    assert_error(r, 413, "too_large")
    assert await scene.state() == before


# -- unknown things ---------------------------------------------------------------------


async def test_unknown_conversation_is_404_not_found(client, scene):
    before = await scene.state()
    missing = "01J00000000000000000000000"
    for r in (
        await client.get(f"/conversations/{missing}", headers=scene.ann.headers),
        await client.post(f"/conversations/{missing}/messages", json={"text": "hi"},
                          headers=scene.ann.headers),
        await client.patch(f"/conversations/{missing}", json={"title": "x"},
                           headers=scene.ann.headers),
    ):  # fmt: skip
        assert assert_error(r, 404, "not_found")["details"] == {"conversation_id": missing}
    # A conversation one is not a member of looks exactly like one that does not exist.
    r = await client.get(f"/conversations/{scene.conv}", headers=scene.cy.headers)
    assert_error(r, 404, "not_found")
    assert await scene.state() == before


async def test_unknown_route_is_404_and_wrong_method_405_with_typed_bodies(client, scene):
    before = await scene.state()
    assert_error(await client.get("/no-such-thing", headers=scene.ann.headers), 404, "not_found")
    r = await client.delete("/search", headers=scene.ann.headers)
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET"
    r = await client.put(f"/conversations/{scene.conv}/messages", json={"text": "x"},
                         headers=scene.ann.headers)  # fmt: skip
    assert_error(r, 405, "method_not_allowed")
    assert await scene.state() == before


async def test_an_unknown_field_in_a_body_is_422_invalid_request(client, scene):
    before = await scene.state()
    r = await client.post(f"/conversations/{scene.conv}/messages",
                          json={"text": "hi", "colour": "red"}, headers=scene.ann.headers)  # fmt: skip
    err = assert_error(r, 422, "invalid_request")
    assert ["body", "colour"] in [e["loc"] for e in err["details"]["errors"]]
    r = await client.patch(f"/conversations/{scene.conv}", json={"titel": "typo"},
                           headers=scene.ann.headers)  # fmt: skip
    assert_error(r, 422, "invalid_request")
    assert await scene.state() == before


# -- roles ------------------------------------------------------------------------------


async def test_a_plain_member_cannot_manage_the_group_or_others_messages(client, scene):
    before = await scene.state()
    c, bo, conv = client, scene.bo.headers, scene.conv
    refused = [
        await c.post(f"/conversations/{conv}/members", json={"user_ids": [scene.cy.id]},
                     headers=bo),
        await c.patch(f"/conversations/{conv}", json={"title": "Mine now"}, headers=bo),
        await c.delete(f"/conversations/{conv}/members/{scene.ann.id}", headers=bo),
        await c.patch(f"/conversations/{conv}/members/{scene.bo.id}", json={"role": "admin"},
                      headers=bo),
        await c.post(f"/conversations/{conv}/messages/{scene.ann_msg['id']}/recall", headers=bo),
        await c.patch(f"/conversations/{conv}/messages/{scene.ann_msg['id']}",
                      json={"text": "edited by bo"}, headers=bo),
        await c.post(f"/conversations/{conv}/messages", json={"text": "@all", "mention_all": True},
                     headers=bo),
    ]  # fmt: skip
    for r in refused:
        assert_error(r, 403, "forbidden")
    assert await scene.state() == before


async def test_a_member_cannot_create_users_or_api_keys_or_change_roles(client, scene):
    before = await scene.state()
    bo = scene.bo.headers
    for r in (
        await client.post("/users", json={"username": "eve"}, headers=bo),
        await client.post("/api-keys", json={"name": "k", "scopes": ["admin"]}, headers=bo),
        await client.get("/api-keys", headers=bo),
        await client.patch(f"/users/{scene.bo.id}", json={"role": "admin"}, headers=bo),
        await client.patch(f"/users/{scene.cy.id}", json={"display_name": "x"}, headers=bo),
        await client.post(f"/users/{scene.cy.id}/tokens", json={}, headers=bo),
    ):
        assert_error(r, 403, "forbidden")
    assert await scene.state() == before


async def test_a_user_cannot_post_a_system_message(client, scene):
    before = await scene.state()
    r = await client.post(f"/conversations/{scene.conv}/messages",
                          json={"kind": "system", "data": {"event": "fake"}},
                          headers=scene.ann.headers)  # fmt: skip
    assert_error(r, 403, "forbidden")
    assert await scene.state() == before


async def test_recall_after_the_window_is_410_gone(client, scene):
    before = await scene.state()
    r = await client.post(
        f"/conversations/{scene.conv}/messages/{scene.bo_msg['id']}/recall",
        headers=scene.bo.headers,
    )
    assert assert_error(r, 410, "gone")["details"] == {"window_seconds": 0}
    assert await scene.state() == before


# -- authentication ---------------------------------------------------------------------


async def _expire(services: Any, token_id: str) -> None:
    async with services.db.write() as s:
        await s.execute(
            update(AccessToken)
            .where(AccessToken.id == token_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


async def test_missing_invalid_revoked_or_expired_credentials_are_401_with_www_authenticate(
    client, scene, services
):
    revoked = await services.auth.issue_token(scene.t.id, scene.bo.id)
    await services.auth.revoke_token(
        await services.auth.authenticate(revoked["access_token"]), revoked["token_id"]
    )
    expired = await services.auth.issue_token(scene.t.id, scene.bo.id)
    await _expire(services, expired["token_id"])
    dead_key = await scene.t.api_key("admin")
    await services.auth.revoke_api_key(
        scene.t.id, (await services.auth.authenticate(dead_key)).api_key_id
    )
    before = await scene.state()
    cases = {
        "missing": {},
        "not bearer": {"Authorization": f"Basic {scene.bo.token}"},
        "invalid": {"Authorization": "Bearer wbt_not-a-real-token"},
        "revoked": {"Authorization": f"Bearer {revoked['access_token']}"},
        "expired": {"Authorization": f"Bearer {expired['access_token']}"},
        "revoked key": {"Authorization": f"Bearer {dead_key}"},
    }
    for name, headers in cases.items():
        r = await client.post(f"/conversations/{scene.conv}/messages", json={"text": name},
                              headers=headers)  # fmt: skip
        assert_error(r, 401, "unauthenticated")
        assert r.headers["www-authenticate"] == "Bearer", name
    assert await scene.state() == before


# -- unexpected failures ----------------------------------------------------------------


async def test_an_unexpected_exception_is_500_internal_without_a_traceback(settings):
    app = create_app(settings)

    @app.get(f"{API}/explode")
    async def explode() -> None:
        raise RuntimeError("secret-internal-detail at /srv/warbler/thing.py line 42")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        r = await c.get(f"{API}/explode")
    assert_error(r, 500, "internal")
    assert "Traceback" not in r.text and "secret-internal-detail" not in r.text
    assert "thing.py" not in r.text
