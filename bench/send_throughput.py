"""Send throughput: K concurrent senders in one group, messages/s acknowledged (stored).

    python bench/send_throughput.py [--senders 1,8,32] [--messages 2000] [--sync FULL,NORMAL]

The server runs in its own process pinned to core 0; this load generator is pinned to core 1.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import httpx
from common import ProcSampler, Server, machine, pin_self, seed, write_result
from rich.console import Console
from rich.table import Table


async def measure(senders: int, total: int, sync: str) -> dict[str, Any]:
    server = Server(env={"WARBLER_SQLITE_SYNCHRONOUS": sync})
    server.start()
    try:
        world = await seed(server, max(2, senders))
        conv = world["conversation_id"]
        per = total // senders
        limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)
        clients = [
            httpx.AsyncClient(base_url=f"{server.url}/api/v1", limits=limits,
                              headers={"Authorization": f"Bearer {tok}"})
            for _, tok in world["users"][:senders]
        ]  # fmt: skip
        latencies: list[float] = []

        async def sender(i: int) -> None:
            c = clients[i]
            for n in range(per):
                t0 = time.perf_counter()
                r = await c.post(
                    f"/conversations/{conv}/messages",
                    json={"text": f"bench {i}-{n} 测试消息", "client_msg_id": f"{i}-{n}"},
                )
                r.raise_for_status()
                latencies.append(time.perf_counter() - t0)

        assert server.proc is not None
        with ProcSampler(server.proc.pid) as sampler:
            t0 = time.perf_counter()
            await asyncio.gather(*(sender(i) for i in range(senders)))
            elapsed = time.perf_counter() - t0
        for c in clients:
            await c.aclose()
        latencies.sort()
        return {
            "sqlite_synchronous": sync,
            "senders": senders,
            "messages": per * senders,
            "msgs_per_s": round(per * senders / elapsed, 1),
            "ack_p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
            "ack_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
            **sampler.summary(),
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--senders", default="1,8,32")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--sync", default="FULL,NORMAL")
    args = parser.parse_args()
    pin_self(1)
    rows = []
    for sync in args.sync.split(","):
        for k in (int(x) for x in args.senders.split(",")):
            rows.append(asyncio.run(measure(k, args.messages, sync)))
    table = Table(title="send throughput (SQLite, one server process on one core)")
    for col in rows[0]:
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console().print(table)
    path = write_result("send_throughput", rows, {"machine": machine(), "args": vars(args)})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
