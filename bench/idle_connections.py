"""Idle connections: the server's memory per open, synced WebSocket, and its CPU while idle.

    python bench/idle_connections.py [--connections 1000,10000] [--users 100]
        [--deflate off] [--targets warbler,reference] [--idle 25]

For each N a fresh server (pinned to core 0) gets `--users` users in one group, and this
loader (pinned to core 1) opens N WebSockets, N/users devices per user, one device of every
user before the second of any (so "online" presence goes to few sockets), at most
`--concurrency` handshakes in flight. Each connects with the tenant's current cursor and
counts once it has received `synced`. RSS per connection = (server RSS after all N are synced
and a short settle − RSS before) / N. Idle CPU is the server's mean over `--idle` seconds with
nothing but heartbeats (25 s) and uvicorn's pings (20 s) going on.

`--deflate on`: the server accepts permessage-deflate (WARBLER_WS_COMPRESSION=true; the
reference's --ws-compression) and the client offers it, as browsers and the `websockets`
library (so the Python SDK) do; `off`: neither (Warbler's default). `reference` runs the same
scenario against bench/reference_server.py (same ASGI stack, no auth, no database).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from common import (
    Server,
    WSClient,
    bounded,
    cpu_seconds,
    machine,
    open_stream,
    pin_self,
    raise_nofile,
    rss_kb,
    seed,
    tenant_cursor,
    write_result,
)
from reference_server import ReferenceServer
from rich.console import Console
from rich.table import Table

SETTLE_SECONDS = 2.0


async def measure(
    target: str, n: int, users: int, deflate: bool, idle: float, concurrency: int
) -> dict[str, Any]:
    env = {"WARBLER_WS_COMPRESSION": "true" if deflate else "false"}
    server = ReferenceServer(env=env) if target == "reference" else Server(env=env)
    server.start()
    clients: list[WSClient] = []
    try:
        # a first connection warms the code path (and tells Warbler's tenant cursor)
        if target == "warbler":
            world = await seed(server, users, concurrency=8)
            tokens: list[str | None] = [tok for _, tok in world["users"]]
            cursor = await tenant_cursor(server.url, world["users"][0][1])
            path, ready_on = f"/api/v1/ws?cursor={cursor}", "synced"
        else:
            tokens = [None]
            path, ready_on = "/ws", "hello"
            (
                await open_stream(server.url, path, token=None, deflate=False, ready_on=ready_on)
            ).close()
        await asyncio.sleep(SETTLE_SECONDS)
        before = rss_kb(server.pid)
        t0 = time.perf_counter()
        # device-major order: the i-th connection is a device of user i % users
        results = await bounded(
            (
                open_stream(
                    server.url,
                    path,
                    token=tokens[i % len(tokens)],
                    deflate=deflate,
                    ready_on=ready_on,
                )
                for i in range(n)
            ),
            concurrency,
        )
        clients = list(results)
        connect_s = time.perf_counter() - t0
        await asyncio.sleep(SETTLE_SECONDS)
        after = rss_kb(server.pid)
        frames0 = sum(c.state.frames for c in clients)
        cpu0, t_idle = cpu_seconds(server.pid), time.perf_counter()
        await asyncio.sleep(idle)
        idle_cpu = 100 * (cpu_seconds(server.pid) - cpu0) / (time.perf_counter() - t_idle)
        idle_frames = sum(c.state.frames for c in clients) - frames0
        still_open = sum(not c.closed.done() for c in clients)
        negotiated = sum(c.deflate for c in clients)
        return {
            "server": target,
            "deflate": "on" if deflate else "off",
            "negotiated": negotiated,
            "connections": n,
            "synced": len(clients),
            "connect_per_s": round(n / connect_s, 1),
            "rss_before_mb": round(before / 1024, 1),
            "rss_after_mb": round(after / 1024, 1),
            "kb_per_conn": round((after - before) / n, 1),
            "idle_cpu_pct": round(idle_cpu, 2),
            "idle_frames": idle_frames,
            "open_after_idle": still_open,
        }
    finally:
        # the server first, from a thread: it closes every socket with 1012 while this
        # loop stays free to answer (closing 10k clients first would set off presence fan-out)
        await asyncio.to_thread(server.stop)
        for c in clients:
            c.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", default="1000,10000")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--deflate", default="off", help="off, on, or off,on for both")
    parser.add_argument("--targets", default="warbler,reference")
    parser.add_argument("--idle", type=float, default=25, help="seconds of idle CPU sampling")
    parser.add_argument("--concurrency", type=int, default=100, help="handshakes in flight")
    args = parser.parse_args()
    nofile = raise_nofile()  # before the server starts: it inherits the limit
    pin_self(1)
    rows = []
    for target in args.targets.split(","):
        for deflate in args.deflate.split(","):
            for n in (int(x) for x in args.connections.split(",")):
                if n + 100 > nofile:
                    raise SystemExit(f"{n} connections need more than the {nofile} open files")
                row = asyncio.run(
                    measure(target, n, args.users, deflate == "on", args.idle, args.concurrency)
                )
                print(row, flush=True)
                rows.append(row)
    for row in rows:
        ref = next(
            (
                r
                for r in rows
                if r["server"] == "reference"
                and (r["deflate"], r["connections"]) == (row["deflate"], row["connections"])
            ),
            None,
        )
        if row["server"] == "warbler" and ref and ref["kb_per_conn"] > 0:
            row["x_reference"] = round(row["kb_per_conn"] / ref["kb_per_conn"], 2)
        else:
            row["x_reference"] = ""
    table = Table(title="idle WebSockets: server memory per connection (target ≤ 20 KB)")
    for col in rows[0]:
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console(width=200).print(table)
    meta = {"machine": machine(), "args": vars(args), "nofile": nofile}
    print(f"wrote {write_result('idle_connections', rows, meta)}")


if __name__ == "__main__":
    main()
