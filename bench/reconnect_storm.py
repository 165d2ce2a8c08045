"""Reconnect storm: a restart drops 1,000 synced clients; all come back at once with cursors.

    python bench/reconnect_storm.py [--clients 1000] [--missed 20,200] [--rounds 2] [--procs 2]

The server runs pinned to core 0; `--clients` members of one group each hold a WebSocket,
spread over `--procs` loader processes pinned to core 1, all synced at the tenant's cursor.
Each round: SIGTERM (the server closes every socket with 1012), K messages are written to
the same data dir while it is down, as another node would accept them during a rolling
restart, a new server starts on the same port and data dir, and every client reconnects at
the same moment with the cursor it held. A client's catch-up time runs from that moment to
its `synced` frame, which the server sends after the K missed `message.new` events (each
client checks it got all K). The server's CPU and RSS are sampled during the storm.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from typing import Any

from common import (
    Loaders,
    ProcSampler,
    Server,
    WSClient,
    bounded,
    commands,
    loader_main,
    machine,
    open_stream,
    percentile,
    pin_self,
    raise_nofile,
    seed,
    split,
    tenant_cursor,
    write_result,
)
from rich.console import Console
from rich.table import Table

# -- loader processes ---------------------------------------------------------------------------


def loader(pipe: Any, share: dict[str, Any]) -> None:
    loader_main(_clients, pipe, share)


async def _clients(pipe: Any, share: dict[str, Any]) -> None:
    """Hold this share of the clients; reconnect them all at once when told."""
    url, tokens = share["url"], share["tokens"]
    clients: list[WSClient] = []
    missed: Counter[int] = Counter()  # per client index: storm messages before `synced`
    tag = ""

    def counter(index: int) -> Any:
        def on_frame(client: WSClient, frame: dict[str, Any]) -> None:
            if frame.get("event") == "message.new" and not client.state.ready.done():
                if frame["data"]["message"]["client_msg_id"].startswith(tag):
                    missed[index] += 1

        return on_frame

    async def connect(index: int, cursor: int) -> WSClient:
        return await open_stream(
            url, f"/api/v1/ws?cursor={cursor}", token=tokens[index], deflate=share["deflate"],
            ready_on="synced", on_frame=counter(index),
        )  # fmt: skip

    try:
        async for command in commands(pipe):
            if command["op"] == "connect":
                clients = await bounded(
                    (connect(i, command["cursor"]) for i in range(len(tokens))), 50
                )
                pipe.send(len(clients))
            elif command["op"] == "wait_closed":
                await asyncio.wait([c.closed for c in clients], timeout=command["within"])
                pipe.send(dict(Counter(c.closed.result() for c in clients if c.closed.done())))
            elif command["op"] == "storm":
                tag, start = command["tag"], command["start"]
                missed.clear()
                cursors = [c.state.cursor for c in clients]
                results = await asyncio.gather(
                    *(connect(i, cursor) for i, cursor in enumerate(cursors)),
                    return_exceptions=True,
                )
                clients = [r for r in results if isinstance(r, WSClient)]
                failed = Counter(type(r).__name__ for r in results if isinstance(r, BaseException))
                done = [
                    (r.state.ready_at - start, missed[i])
                    for i, r in enumerate(results)
                    if isinstance(r, WSClient)
                ]
                pipe.send({"done": done, "failed": dict(failed)})
    finally:
        for client in clients:
            client.close()


# -- the parent ---------------------------------------------------------------------------------


async def write_while_down(server: Server, world: dict[str, Any], tag: str, count: int) -> None:
    """Store `count` messages in the data dir through the domain service, with no server up."""
    from warbler.config import load_settings
    from warbler.im.messages import Draft
    from warbler.services import build_services

    settings = load_settings(
        None, data_dir=server.data_dir, send_rate_per_second=1e6, send_burst=1_000_000
    )
    svc = build_services(settings)
    try:
        principal = await svc.auth.authenticate(world["users"][0][1])
        for n in range(count):
            draft = Draft(text=f"missed {n} 错过的消息", client_msg_id=f"{tag}-{n}")
            await svc.messages.send(principal, world["conversation_id"], draft)
    finally:
        await svc.close()


async def measure(
    clients: int, missed: list[int], rounds: int, procs: int, deflate: bool
) -> list[dict[str, Any]]:
    server = Server(env={"WARBLER_WS_COMPRESSION": "true" if deflate else "false"})
    server.start()
    loaders: Loaders | None = None
    try:
        world = await seed(server, clients, concurrency=8)
        cursor = await tenant_cursor(server.url, world["users"][0][1])
        shares = [
            {"url": server.url, "tokens": part, "deflate": deflate}
            for part in split([tok for _, tok in world["users"]], procs)
        ]
        loaders = Loaders(loader, shares)
        loaders.start()
        connected = sum(await loaders.ask({"op": "connect", "cursor": cursor}))
        rows = []
        for r in range(rounds):
            for k in missed:
                tag = f"r{r}k{k}"
                t_signal = time.perf_counter()
                stop_s = server.terminate()
                codes: Counter[int] = Counter()
                for answer in await loaders.ask({"op": "wait_closed", "within": 10}):
                    codes.update(answer)
                await write_while_down(server, world, tag, k)
                server.start()
                restart_s = time.perf_counter() - t_signal
                with ProcSampler(server.pid, every=0.05) as sampler:
                    start = time.perf_counter()
                    answers = await loaders.ask({"op": "storm", "tag": tag, "start": start})
                    storm_s = time.perf_counter() - start
                row = summarize(connected, k, answers, sampler)
                rows.append(
                    {
                        "deflate": "on" if deflate else "off",
                        "clients": connected,
                        "missed": k,
                        "close_codes": dict(codes),
                        "stop_s": round(stop_s, 2),
                        "down_to_up_s": round(restart_s, 2),
                        "storm_s": round(storm_s, 2),
                        **row,
                    }
                )
                print(rows[-1], flush=True)
        return rows
    finally:
        server.stop()
        if loaders is not None:
            loaders.stop()


def summarize(
    clients: int, missed: int, answers: list[dict[str, Any]], sampler: ProcSampler
) -> dict[str, Any]:
    done = [d for answer in answers for d in answer["done"]]
    failed: Counter[str] = Counter()
    for answer in answers:
        failed.update(answer["failed"])
    ms = [seconds * 1000 for seconds, _ in done]
    return {
        "synced": len(done),
        "all_missed_received": sum(1 for _, got in done if got == missed),
        "failed": dict(failed) or 0,
        "catchup_p50_ms": round(percentile(ms, 50)),
        "catchup_p99_ms": round(percentile(ms, 99)),
        "catchup_max_ms": round(max(ms, default=float("nan"))),
        "frames_per_s": round(sum(got for _, got in done) / (max(ms) / 1000)) if ms else 0,
        "server_cpu_pct_mean": round(sum(sampler.cpu) / max(1, len(sampler.cpu)), 1),
        "server_rss_mb_max": round(max(sampler.rss_kb or [0]) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--missed", default="20,200", help="messages missed per restart")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--procs", type=int, default=2, help="loader processes (core 1)")
    parser.add_argument("--deflate", default="off", help="off, on or off,on")
    args = parser.parse_args()
    raise_nofile()
    pin_self(1)
    missed = [int(k) for k in args.missed.split(",")]
    rows = []
    for deflate in args.deflate.split(","):
        rows += asyncio.run(measure(args.clients, missed, args.rounds, args.procs, deflate == "on"))
    table = Table(title=f"reconnect storm after a restart: {args.clients} clients with cursors")
    for col in rows[0]:
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console(width=240).print(table)
    meta = {"machine": machine(), "args": vars(args)}
    print(f"wrote {write_result('reconnect_storm', rows, meta)}")


if __name__ == "__main__":
    main()
