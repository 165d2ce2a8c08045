"""End to end: deploy/nginx.conf in front of two real nodes on one PostgreSQL. nginx accepts the
config; WebSockets upgrade through it; when the node holding a socket is stopped, the client
gets 1012, requests fail over to the other node, and the client resumes from its cursor there.

Needs an ``nginx`` binary (``apt-get install nginx``); skipped without one. The upstream names
of the compose file are pointed at 127.0.0.1 ports; nothing else in the config is changed
except the listen address and, so that nginx runs unprivileged, its temp and pid paths."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import ServerProcess, free_port, seed_tenant

CONFIG = Path(__file__).parents[2] / "deploy" / "nginx.conf"
UPSTREAM = re.compile(r"server warbler-(\d+):8000")
Frame = dict[str, Any]


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.skip("nginx is not installed")
    return found


def render(prefix: Path, listen_port: int, node_ports: list[int]) -> Path:
    """deploy/nginx.conf with upstream ``warbler-N`` at 127.0.0.1:node_ports[N-1]."""
    text = CONFIG.read_text()
    assert len(UPSTREAM.findall(text)) == len(node_ports)
    text = UPSTREAM.sub(lambda m: f"server 127.0.0.1:{node_ports[int(m[1]) - 1]}", text)
    text, listens = re.subn(r"listen 80;", f"listen 127.0.0.1:{listen_port};", text)
    assert listens == 1
    temp = "".join(f"    {kind}_temp_path {prefix / kind};\n" for kind in TEMP_PATHS)
    text = text.replace("http {\n", "http {\n" + temp, 1)
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    return conf


TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_args(prefix: Path, conf: Path) -> list[str]:
    return [nginx_binary(), "-p", str(prefix), "-c", str(conf), "-e", "stderr",
            "-g", f"pid {prefix / 'nginx.pid'};"]  # fmt: skip


def test_nginx_accepts_the_deploy_config(tmp_path: Path) -> None:
    conf = render(tmp_path, free_port(), [free_port(), free_port()])
    checked = subprocess.run(
        [*nginx_args(tmp_path, conf), "-t"], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


# -- two nodes behind it ---------------------------------------------------------------------


@dataclass
class Cluster:
    nodes: list[ServerProcess]
    proxy: str  # http://127.0.0.1:PORT of nginx
    seed: dict[str, Any]

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.seed['users'][name]['token']}"}


@pytest.fixture
def cluster(postgres_url: str, server_factory: Any, tmp_path: Path) -> Iterator[Cluster]:
    # One data dir for both nodes: it holds the uploaded files, which every node must see.
    shared = tmp_path / "shared-data"
    shared.mkdir()
    seed = seed_tenant(
        shared, "acme", [("ann", "member"), ("bob", "member")], database_url=postgres_url
    )
    nodes = [
        server_factory(
            shared,
            WARBLER_DATABASE_URL=postgres_url,
            WARBLER_AUTO_MIGRATE="false",
            WARBLER_NODE_ID=f"node-{n}",
        )
        for n in (1, 2)
    ]
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    port = free_port()
    conf = render(prefix, port, [node.port for node in nodes])
    log = open(prefix / "nginx.log", "wb")
    proc = subprocess.Popen(
        [*nginx_args(prefix, conf), "-g", "daemon off;"], stdout=log, stderr=log
    )
    try:
        proxy = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            assert proc.poll() is None, (prefix / "nginx.log").read_text()
            try:
                if httpx.get(f"{proxy}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "nginx did not come up"
            time.sleep(0.1)
        yield Cluster(nodes, proxy, seed)
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


async def ws_through(
    cluster: Cluster, name: str, cursor: int
) -> tuple[ClientConnection, list[Frame]]:
    ws = await connect(
        f"{cluster.proxy.replace('http', 'ws', 1)}/api/v1/ws?cursor={cursor}",
        additional_headers=cluster.headers(name),
        open_timeout=5,
    )
    frames: list[Frame] = []
    async with asyncio.timeout(5):
        while not frames or frames[-1]["type"] != "synced":
            frames.append(json.loads(await ws.recv()))
    return ws, frames


async def closed_within(ws: ClientConnection, seconds: float) -> int | None:
    """The close code if the server closes the socket within ``seconds``, else None."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                await ws.recv()
    except ConnectionClosed:
        return ws.close_code
    except TimeoutError:
        return None


async def stop(node: ServerProcess) -> int:
    assert node.proc is not None
    node.proc.send_signal(signal.SIGTERM)
    return await asyncio.to_thread(node.proc.wait, 15)


@pytest.mark.slow
async def test_rolling_restart_behind_nginx_loses_nothing(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.proxy, timeout=10) as http:
        seen = {(await http.get("/ready")).json()["node"] for _ in range(6)}
        assert seen == {"node-1", "node-2"}  # no stickiness: both nodes take requests
        r = await http.post(
            "/api/v1/conversations",
            json={
                "kind": "group",
                "title": "G",
                "member_ids": [cluster.seed["users"]["bob"]["id"]],
            },
            headers=cluster.headers("ann"),
        )
        assert r.status_code == 201, r.text
        conversation = r.json()["id"]

        ws, frames = await ws_through(cluster, "bob", cursor=0)
        cursor = frames[-1]["cursor"]
        # Stop the nodes one at a time until the one holding bob's socket has gone.
        for victim in cluster.nodes:
            assert await stop(victim) == 0
            code = await closed_within(ws, 1.0)
            if code is not None:
                break
            await asyncio.to_thread(victim.start)
        assert code == 1012

        # The other node takes every request meanwhile (nginx fails over), …
        sent = []
        for i in range(5):
            r = await http.post(
                f"/api/v1/conversations/{conversation}/messages",
                json={"text": f"while a node is down {i}"},
                headers=cluster.headers("ann"),
            )
            assert r.status_code == 201, r.text
            sent.append(r.json()["id"])
        # … and bob, reconnecting through nginx from his cursor, gets all of it, in order.
        ws, frames = await ws_through(cluster, "bob", cursor=cursor)
        await ws.close()
        got = [f["data"]["message"]["id"] for f in frames if f.get("event") == "message.new"]
        assert got == sent

        await asyncio.to_thread(victim.start)
        assert (await http.get("/ready")).status_code == 200
