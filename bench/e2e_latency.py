"""End-to-end latency: from a send to its receipt on every online receiver's WebSocket.

    python bench/e2e_latency.py [--receivers 2,10,50] [--rate 200] [--seconds 5]

One sender posts at a fixed rate into a group; R members each hold a WebSocket. Latency is
measured per (message, receiver) from just before the POST to the frame's arrival.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import httpx
import websockets
from common import ProcSampler, Server, machine, percentile, pin_self, seed, write_result
from rich.console import Console
from rich.table import Table


async def measure(receivers: int, rate: float, seconds: float) -> dict[str, Any]:
    server = Server()
    server.start()
    try:
        world = await seed(server, receivers + 1)
        conv = world["conversation_id"]
        sent_at: dict[str, float] = {}
        latencies: list[float] = []
        done = asyncio.Event()
        expected = int(rate * seconds)
        ws_url = server.url.replace("http", "ws") + "/api/v1/ws"

        async def receiver(token: str, ready: asyncio.Event) -> int:
            got = 0
            async with websockets.connect(
                ws_url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None
            ) as ws:
                ready.set()
                while got < expected:
                    try:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    except TimeoutError:
                        break
                    if frame.get("event") == "message.new":
                        key = frame["data"]["message"]["client_msg_id"]
                        if key in sent_at:
                            latencies.append(time.perf_counter() - sent_at[key])
                            got += 1
            return got

        readies = [asyncio.Event() for _ in range(receivers)]
        tasks = [
            asyncio.create_task(receiver(tok, ready))
            for (_, tok), ready in zip(world["users"][1 : receivers + 1], readies, strict=True)
        ]
        await asyncio.gather(*(r.wait() for r in readies))
        await asyncio.sleep(0.5)
        assert server.proc is not None
        async with httpx.AsyncClient(
            base_url=f"{server.url}/api/v1",
            headers={"Authorization": f"Bearer {world['users'][0][1]}"},
        ) as sender:
            with ProcSampler(server.proc.pid) as sampler:
                start = time.perf_counter()
                for n in range(expected):
                    target = start + n / rate
                    delay = target - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    key = f"m{n}"
                    sent_at[key] = time.perf_counter()
                    r = await sender.post(
                        f"/conversations/{conv}/messages",
                        json={"text": f"latency {n}", "client_msg_id": key},
                    )
                    r.raise_for_status()
                achieved = expected / (time.perf_counter() - start)
                received = await asyncio.gather(*tasks)
        done.set()
        ms = [x * 1000 for x in latencies]
        return {
            "receivers": receivers,
            "target_rate": rate,
            "achieved_rate": round(achieved, 1),
            "deliveries": sum(received),
            "expected": expected * receivers,
            "p50_ms": round(percentile(ms, 50), 2),
            "p95_ms": round(percentile(ms, 95), 2),
            "p99_ms": round(percentile(ms, 99), 2),
            **sampler.summary(),
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--receivers", default="2,10,50")
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    pin_self(1)
    rows = [
        asyncio.run(measure(int(r), args.rate, args.seconds)) for r in args.receivers.split(",")
    ]
    table = Table(title=f"send → receive latency at {args.rate:g} msg/s")
    for col in rows[0]:
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console().print(table)
    print(f"wrote {write_result('e2e_latency', rows, {'machine': machine(), 'args': vars(args)})}")


if __name__ == "__main__":
    main()
