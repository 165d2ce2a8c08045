"""End to end: SIGTERM to a real ``warbler serve`` drains it: /ready goes 503 at once, every
WebSocket is closed with 1012, an HTTP request in flight still completes, the process exits 0,
and a client resumes from its cursor on the restarted node without losing anything."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import ServerProcess, seed_tenant

Frame = dict[str, Any]


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    data = tmp_path / "data"
    data.mkdir()
    return data, seed_tenant(data, "acme", [("ann", "admin"), ("bob", "member")])


def auth(seed: dict[str, Any], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {seed['users'][name]['token']}"}


async def open_socket(
    server: ServerProcess, seed: dict[str, Any], name: str, cursor: int
) -> tuple[ClientConnection, list[Frame]]:
    """A raw WebSocket, read up to ``synced``; returns it and the frames before that."""
    ws = await connect(
        f"ws://127.0.0.1:{server.port}/api/v1/ws?cursor={cursor}",
        additional_headers=auth(seed, name),
        open_timeout=5,
    )
    frames: list[Frame] = []
    async with asyncio.timeout(5):
        while not frames or frames[-1]["type"] != "synced":
            frames.append(json.loads(await ws.recv()))
    return ws, frames


async def close_code(ws: ClientConnection, within: float) -> int | None:
    """Read until the server closes the socket; its close code."""
    async with asyncio.timeout(within):
        try:
            while True:
                await ws.recv()
        except ConnectionClosed:
            pass
    assert ws.close_code is not None
    return ws.close_code


async def exit_status(server: ServerProcess, within: float) -> int:
    assert server.proc is not None
    return await asyncio.to_thread(server.proc.wait, within)


async def make_group(server: ServerProcess, seed: dict[str, Any]) -> str:
    async with httpx.AsyncClient(base_url=server.api, timeout=10) as http:
        r = await http.post(
            "/conversations",
            json={"kind": "group", "title": "G", "member_ids": [seed["users"]["bob"]["id"]]},
            headers=auth(seed, "ann"),
        )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.mark.slow
async def test_sigterm_closes_sockets_with_1012_finishes_in_flight_request_and_exits_0(
    seeded, server_factory
) -> None:
    data, seed = seeded
    server = server_factory(data)
    conversation = await make_group(server, seed)
    ws, frames = await open_socket(server, seed, "bob", cursor=0)
    cursor = frames[-1]["cursor"]

    # A message whose body is still being uploaded when the signal arrives.
    first_half_sent, terminated = asyncio.Event(), asyncio.Event()
    payload = json.dumps({"text": "sent across a shutdown"}).encode()

    async def slow_body() -> AsyncIterator[bytes]:
        yield payload[:10]
        first_half_sent.set()  # httpx asks for the next chunk once the first is written
        await terminated.wait()
        await asyncio.sleep(0.5)  # the node is shutting down meanwhile
        yield payload[10:]

    async with httpx.AsyncClient(base_url=server.api, timeout=15) as http:
        in_flight = asyncio.create_task(
            http.post(
                f"/conversations/{conversation}/messages",
                content=slow_body(),
                headers={**auth(seed, "ann"), "Content-Type": "application/json"},
            )
        )
        await asyncio.wait_for(first_half_sent.wait(), 5)
        assert server.proc is not None
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        terminated.set()

        assert await close_code(ws, within=3) == 1012
        assert ws.close_reason == "shutdown"
        response = await in_flight
    assert response.status_code == 201, response.text
    sent = response.json()
    assert await exit_status(server, within=15) == 0
    assert time.monotonic() - signalled < 5

    # The restarted node has the message; bob resumes from his cursor and gets what he missed.
    await asyncio.to_thread(server.start)
    ws, frames = await open_socket(server, seed, "bob", cursor=cursor)
    await ws.close()
    missed = [f for f in frames if f["type"] == "event" and f["event"] == "message.new"]
    assert [f["data"]["message"]["id"] for f in missed] == [sent["id"]]
    async with httpx.AsyncClient(base_url=server.api, timeout=10) as http:
        history = (
            await http.get(f"/conversations/{conversation}/messages", headers=auth(seed, "bob"))
        ).json()
    texts = [(m["id"], m["text"]) for m in history["messages"] if m["kind"] == "text"]
    assert texts == [(sent["id"], "sent across a shutdown")]


@pytest.mark.slow
async def test_drain_delay_keeps_serving_while_ready_answers_503(seeded, server_factory) -> None:
    data, seed = seeded
    server = server_factory(data, WARBLER_SHUTDOWN_DRAIN_SECONDS="1.5")
    conversation = await make_group(server, seed)
    ws, _ = await open_socket(server, seed, "bob", cursor=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        assert (await http.get("/ready")).status_code == 200
        assert server.proc is not None
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)

        ready = await http.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["lifecycle"] == {"ok": False, "state": "draining"}
        assert (await http.get("/health")).status_code == 200  # alive: do not restart it
        # Still serving: a message sent now is stored and pushed to the open socket.
        r = await http.post(
            f"/api/v1/conversations/{conversation}/messages",
            json={"text": "during the drain"},
            headers=auth(seed, "ann"),
        )
        assert r.status_code == 201, r.text
    async with asyncio.timeout(2):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == "event" and frame["event"] == "message.new":
                break
    assert frame["data"]["message"]["text"] == "during the drain"

    assert await close_code(ws, within=5) == 1012
    assert time.monotonic() - signalled >= 1.4  # not before the drain delay ran out
    assert await exit_status(server, within=15) == 0
