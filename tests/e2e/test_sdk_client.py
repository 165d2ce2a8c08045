"""End to end: the async SDK's REST surface against a real server: typed errors, retries that
never duplicate, server-to-server keys acting as a user, files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import seed_tenant
from warbler_client import AsyncClient, WarblerAPIError, WarblerConnectionError

PASSWORD = "correct horse battery"


@pytest.fixture
def world(tmp_path: Path, server_factory: Any) -> tuple[Any, dict[str, Any]]:
    data = tmp_path / "data"
    data.mkdir()
    seed = seed_tenant(data, "acme", [("ann", "admin"), ("bob", "member")])
    return server_factory(data), seed


class LoseFirstSendResponse(httpx.AsyncBaseTransport):
    """Lets the first message POST reach the server, then drops its answer, the way a
    connection reset after the server committed looks to a client."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sends = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/messages"):
            self.sends += 1
            if self.sends == 1:
                await response.aread()
                await response.aclose()
                raise httpx.ReadError("connection reset after the server answered")
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_send_whose_answer_is_lost_is_retried_and_stored_once(world) -> None:
    server, seed = world
    transport = LoseFirstSendResponse()
    async with AsyncClient(server.url, transport=transport) as ann:
        await ann.login("acme", "ann", PASSWORD)
        conv = (await ann.open_direct(seed["users"]["bob"]["id"]))["id"]
        sent = await ann.send(conv, "exactly once")
        assert transport.sends == 2
        history = await ann.history(conv)
        assert [(m["id"], m["text"]) for m in history["messages"]] == [(sent["id"], "exactly once")]
        # The same client_msg_id sent again by hand is the same message, too.
        again = await ann.send(conv, "exactly once", client_msg_id=sent["client_msg_id"])
        assert again["id"] == sent["id"]


async def test_errors_are_typed(world) -> None:
    server, seed = world
    async with AsyncClient(server.url, token=seed["users"]["bob"]["token"]) as bob:
        with pytest.raises(WarblerAPIError) as err:
            await bob.conversation("01NOSUCHCONVERSATION000000")
        assert (err.value.status, err.value.code) == (404, "not_found")

        with pytest.raises(WarblerAPIError) as err:
            await bob.create_user("eve")  # members cannot
        assert (err.value.status, err.value.code) == (403, "forbidden")

        with pytest.raises(WarblerAPIError) as err:
            await bob.history("01NOSUCHCONVERSATION000000", limit=0)
        assert (err.value.status, err.value.code) == (422, "invalid_request")
        assert err.value.details["errors"][0]["loc"] == ["query", "limit"]

    async with AsyncClient(server.url, token="wbt_revoked") as nobody:
        with pytest.raises(WarblerAPIError) as err:
            await nobody.me()
        assert (err.value.status, err.value.code) == (401, "unauthenticated")

    async with AsyncClient("http://127.0.0.1:9", max_attempts=2, backoff_seconds=0.01) as gone:
        with pytest.raises(WarblerConnectionError):
            await gone.conversations()


async def test_server_to_server_key_acts_as_a_user_and_issues_tokens(world) -> None:
    server, seed = world
    async with AsyncClient(server.url) as ann:
        await ann.login("acme", "ann", PASSWORD)
        key = (await ann.create_api_key("backend", ["impersonate", "tokens:write", "users:write"]))[
            "key"
        ]
        bob_id = seed["users"]["bob"]["id"]
        conv = (await ann.open_direct(bob_id))["id"]

        async with AsyncClient(server.url, api_key=key) as backend:
            carol = await backend.create_user("carol", display_name="Carol")
            token = (await backend.issue_token(carol["id"]))["access_token"]
        async with AsyncClient(server.url, token=token) as as_carol:
            assert (await as_carol.me())["username"] == "carol"

        async with AsyncClient(server.url, api_key=key, act_as=bob_id) as as_bob:
            sent = await as_bob.send(conv, "sent by the backend for bob")
        assert sent["sender_id"] == bob_id
        latest = (await ann.history(conv))["messages"][-1]
        assert (latest["id"], latest["sender_id"]) == (sent["id"], bob_id)


async def test_upload_send_and_download_a_file(world, tmp_path: Path) -> None:
    server, seed = world
    path = tmp_path / "notes.txt"
    path.write_text("minutes of the meeting\n会议纪要\n", encoding="utf-8")
    async with (
        AsyncClient(server.url, token=seed["users"]["ann"]["token"]) as ann,
        AsyncClient(server.url, token=seed["users"]["bob"]["token"]) as bob,
    ):
        conv = (await ann.open_direct(seed["users"]["bob"]["id"]))["id"]
        uploaded = await ann.upload(conv, path)
        assert (uploaded["name"], uploaded["content_type"]) == ("notes.txt", "text/plain")
        assert uploaded["size"] == len(path.read_bytes())

        message = await ann.send(conv, kind="file", file_id=uploaded["id"])
        assert message["file"]["id"] == uploaded["id"]
        assert (await bob.file_info(uploaded["id"]))["sha256"] == uploaded["sha256"]
        assert await bob.download(uploaded["id"]) == path.read_bytes()

        from_bytes = await ann.upload(conv, b'{"a": 1}', name="a.json")
        assert from_bytes["content_type"] == "application/json"
