"""End to end: a message acknowledged to its sender survives the server being SIGKILLed at once,
and the restarted server's sequences have no gaps."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import seed_tenant
from warbler_client import AsyncClient

USERS = ["ann", "bob", "cat", "dan"]


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    data = tmp_path / "data"
    data.mkdir()
    roles = [(name, "admin" if name == "ann" else "member") for name in USERS]
    return data, seed_tenant(data, "acme", roles)


def as_user(url: str, seed: dict[str, Any], name: str) -> AsyncClient:
    client = AsyncClient(url, token=seed["users"][name]["token"])
    client.user_id = seed["users"][name]["id"]
    return client


async def whole_history(client: AsyncClient, conversation_id: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        after = messages[-1]["seq"] if messages else 0
        page = await client.history(conversation_id, after_seq=after, limit=200)
        messages += page["messages"]
        if not page["has_more"]:
            return messages


@pytest.mark.slow
async def test_every_acknowledged_message_survives_sigkill_right_after_the_last_ack(
    seeded, server_factory
) -> None:
    data, seed = seeded
    server = server_factory(data)  # default settings: SQLite synchronous=FULL
    clients = {name: as_user(server.url, seed, name) for name in USERS}
    try:
        ann = clients["ann"]
        group = (await ann.create_group("everyone", [seed["users"][n]["id"] for n in USERS[1:]]))[
            "id"
        ]
        direct = (await ann.open_direct(seed["users"]["bob"]["id"]))["id"]
        acked: list[tuple[str, dict[str, Any]]] = []

        async def sender(name: str, conversation_id: str, count: int) -> None:
            for i in range(count):
                message = await clients[name].send(conversation_id, f"{name} {i}")
                acked.append((conversation_id, message))

        # Eight concurrent senders, 200 messages, two conversations written at once.
        plan = [(n, group, 30) for n in USERS] + [("ann", direct, 20), ("bob", direct, 20)]
        plan += [("cat", group, 20), ("dan", group, 20)]
        await asyncio.gather(*(sender(*p) for p in plan))
        server.kill()  # no await between the last ack and the kill: nothing gets to flush
        assert len(acked) == 200

        await asyncio.to_thread(server.start)
        for conversation_id in (group, direct):
            stored = await whole_history(ann, conversation_id)
            by_id = {m["id"]: m for m in stored}
            mine = [m for conv, m in acked if conv == conversation_id]
            for message in mine:
                assert by_id[message["id"]]["seq"] == message["seq"]
                assert by_id[message["id"]]["text"] == message["text"]
            seqs = [m["seq"] for m in stored]
            assert seqs == list(range(1, len(stored) + 1))  # gap-free, in order
            assert (await ann.conversation(conversation_id))["last_seq"] == seqs[-1]
            # Nothing unacknowledged crept in: every text message is one that was acked.
            assert {m["id"] for m in stored if m["kind"] == "text"} == {m["id"] for m in mine}

        # The resume log survived too: replaying from the start yields every acked message.
        replayed: set[str] = set()
        cursor = 0
        while True:
            page = await clients["dan"].poll_events(cursor, limit=1000)
            replayed |= {
                e["data"]["message"]["id"] for e in page["events"] if e["event"] == "message.new"
            }
            cursor = page["cursor"]
            if not page["has_more"]:
                break
        assert {m["id"] for conv, m in acked if conv == group} <= replayed
    finally:
        for client in clients.values():
            await client.aclose()
