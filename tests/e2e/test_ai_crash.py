"""End to end: a real ``warbler serve`` is SIGKILLed while a bot's reply streams; after the
restart the reply completes once (one bot message for the question, finished, whole text)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import seed_tenant
from tests.fakes.openai_wire import Reply

SERVER_ENV = {
    "WARBLER_OUTBOUND_ALLOW_PRIVATE": "true",  # the fake vendor listens on 127.0.0.1
    "WARBLER_JOB_LEASE_SECONDS": "2",  # a dead node's reply is picked up 2 s after it died
    "WARBLER_JOB_POLL_SECONDS": "0.1",
    "WARBLER_AI_STREAM_FLUSH_MS": "20",
}
STORY = "Once upon a time a small bird built a nest in a tall tree and sang every day. " * 3
ANSWER = "The whole story, told once, from the beginning to the end."


def auth(user: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['token']}"}


async def wait_for(check: Any, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what} within {within}s")


@pytest.mark.slow
async def test_a_reply_interrupted_by_sigkill_completes_once_after_restart(
    tmp_path: Path, server_factory: Any, fake_openai: Any
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    seed = await asyncio.to_thread(
        seed_tenant, data, "acme", [("olive", "owner"), ("ann", "member")]
    )
    olive, ann = seed["users"]["olive"], seed["users"]["ann"]
    # The first answer streams slowly (a word every 0.2 s): the server dies in the middle.
    fake_openai.script(Reply(text=STORY, chunk_delay=0.2), Reply(text=ANSWER))
    server = server_factory(data, **SERVER_ENV)
    async with httpx.AsyncClient(base_url=server.api, timeout=10) as http:
        # Configured the way an admin does it: a provider, then a bot that uses it.
        provider = await http.post(
            "/ai/providers",
            json={"name": "fake", "kind": "openai", "base_url": fake_openai.base_url,
                  "model": "fake-model", "api_key": "sk-test-0000"},
            headers=auth(olive),
        )  # fmt: skip
        assert provider.status_code == 201, provider.text
        bot = await http.post(
            "/bots",
            json={"name": "Helper", "persona": "You are Helper.",
                  "provider_ids": [provider.json()["id"]]},
            headers=auth(olive),
        )  # fmt: skip
        assert bot.status_code == 201, bot.text
        conv = await http.post(
            "/conversations",
            json={"kind": "direct", "user_id": bot.json()["user_id"]},
            headers=auth(ann),
        )
        conv_id = conv.json()["id"]
        sent = await http.post(
            f"/conversations/{conv_id}/messages", json={"text": "Tell me a story"},
            headers=auth(ann),
        )  # fmt: skip
        trigger_id = sent.json()["id"]

        async def bot_messages() -> list[dict[str, Any]]:
            r = await http.get(f"/conversations/{conv_id}/messages", headers=auth(ann))
            return [m for m in r.json()["messages"] if m["reply_to_id"] == trigger_id]

        async def streaming() -> bool:
            found = await bot_messages()
            return bool(found) and found[0]["data"]["ai"]["status"] == "streaming"

        await wait_for(streaming, 10, "the reply message was posted and is streaming")
        await asyncio.to_thread(fake_openai.wait_for_requests, 1)
        await asyncio.sleep(0.6)  # a few words are out
        server.kill()

    assert len(fake_openai.chat_requests) == 1
    restarted = server_factory(data, **SERVER_ENV)
    async with httpx.AsyncClient(base_url=restarted.api, timeout=10) as http:

        async def finished() -> list[dict[str, Any]] | None:
            r = await http.get(f"/conversations/{conv_id}/messages", headers=auth(ann))
            found = [m for m in r.json()["messages"] if m["reply_to_id"] == trigger_id]
            done = found and found[0]["data"]["ai"]["status"] == "done"
            return found if done else None

        replies = await wait_for(finished, 20, "the reply was finished after the restart")
        await asyncio.sleep(0.5)  # a duplicate would show up now
        again = await finished()
        jobs = await http.get("/jobs", params={"kind": "ai.reply"}, headers=auth(olive))

    assert again is not None and len(again) == len(replies) == 1
    [reply] = again
    assert reply["text"] == ANSWER
    assert reply["sender_id"] == bot.json()["user_id"]
    assert reply["data"]["ai"]["outcome"] == "answered"
    [job] = jobs.json()
    assert job["status"] == "done" and job["attempts"] == 2
    assert len(fake_openai.chat_requests) == 2
