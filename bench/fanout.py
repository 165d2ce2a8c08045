"""Group fan-out: one sender, a 1,000-member group, every member online; deliveries per second.

    python bench/fanout.py [--members 1000] [--messages 200] [--rates 0,50]
        [--deflate off,on] [--targets warbler,reference] [--procs 2]

The server runs pinned to core 0. Every member holds one WebSocket (the sender too: a
message goes to all of its author's devices), spread over `--procs` loader processes pinned
to core 1 with the parent, each an event loop of bare-protocol clients (common.WSClient) that
parse a frame and note its arrival time, nothing more. The parent posts `--messages` messages
from one member, back to back as acknowledgements return (rate 0) or at a fixed rate, and
samples the server's CPU/RSS. Deliveries/s = frames received / (last receipt − first send);
latency is per message, from just before its POST to its arrival at the last member.

`--deflate on`: server (WARBLER_WS_COMPRESSION=true) and clients use permessage-deflate;
`off`: neither (Warbler's default). `reference` is the same scenario against
bench/reference_server.py (same ASGI stack, no auth, no database; `POST /broadcast` writes a
~Warbler-sized `message.new` frame to every socket).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import Counter
from typing import Any

import httpx
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
    wait_phase,
    write_result,
)
from reference_server import ReferenceServer
from rich.console import Console
from rich.table import Table

# -- loader processes -------------------------------------------------------------------------


def loader(pipe: Any, share: dict[str, Any]) -> None:
    loader_main(_receive, pipe, share)


async def _receive(pipe: Any, share: dict[str, Any]) -> None:
    """Hold this share of the members' sockets; per phase, note when each message arrives."""
    phase: dict[str, Any] = {"tag": None, "expected": 0, "got": 0, "stats": {}}
    done = asyncio.Event()

    def on_frame(client: WSClient, frame: dict[str, Any]) -> None:
        if frame.get("event") != "message.new":
            return
        key = frame["data"]["message"]["client_msg_id"]
        if phase["tag"] is None or not key.startswith(phase["tag"]):
            return
        now = time.perf_counter()
        seen = phase["stats"].get(key)
        if seen is None:
            phase["stats"][key] = [1, now]
        else:
            seen[0] += 1
            seen[1] = now
        phase["got"] += 1
        if phase["got"] >= phase["expected"]:
            done.set()

    clients: list[WSClient] = []
    try:
        async for command in commands(pipe):
            if command["op"] == "connect":
                clients = await bounded(
                    (
                        open_stream(
                            share["url"], share["path"], token=token, deflate=share["deflate"],
                            ready_on=share["ready_on"], on_frame=on_frame,
                        )
                        for token in share["tokens"]
                    ),
                    50,
                )  # fmt: skip
                pipe.send((len(clients), sum(c.deflate for c in clients)))
            elif command["op"] == "arm":
                phase.update(tag=command["tag"], got=0, stats={})
                phase["expected"] = command["messages"] * len(clients)
                done.clear()
                pipe.send("armed")
                await wait_phase(done, phase)
                codes = Counter(c.closed.result() for c in clients if c.closed.done())
                pipe.send({"stats": phase["stats"], "got": phase["got"], "closed": dict(codes)})
    finally:
        for client in clients:
            client.close()


# -- the sender ---------------------------------------------------------------------------------


def reference_message(key: str, n: int) -> dict[str, Any]:
    """A body shaped like Warbler's message view, so the reference frame is the same size."""
    return {
        "message": {
            "id": f"01M8ZZREFERENCE{n:011d}", "conversation_id": "01M8ZZREFERENCECONVERSATION",
            "seq": n, "sender_id": "01M8ZZREFERENCESENDER00000", "client_msg_id": key,
            "kind": "text", "text": f"fanout {n} 测试消息", "data": None, "file": None,
            "reply_to_id": None, "mentions": [], "mention_all": False,
            "created_at": "2026-11-24T16:35:13.737837+00:00", "edited_at": None,
            "recalled": False, "recalled_at": None,
        }
    }  # fmt: skip


async def send_all(
    server: Server, target: str, world: dict[str, Any], tag: str, messages: int, rate: float
) -> tuple[dict[str, float], float]:
    """Post the phase's messages; returns when each was sent and the acknowledged rate."""
    sent_at: dict[str, float] = {}
    auth = {"Authorization": f"Bearer {world['users'][0][1]}"} if target == "warbler" else {}
    async with httpx.AsyncClient(base_url=server.url, headers=auth, timeout=60) as http:
        start = time.perf_counter()
        for n in range(messages):
            if rate > 0:
                delay = start + n / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            key = f"{tag}-{n}"
            sent_at[key] = time.perf_counter()
            if target == "warbler":
                r = await http.post(
                    f"/api/v1/conversations/{world['conversation_id']}/messages",
                    json={"text": f"fanout {n} 测试消息", "client_msg_id": key},
                )
            else:
                r = await http.post("/broadcast", json=reference_message(key, n))
            r.raise_for_status()
        acked = messages / (time.perf_counter() - start)
    return sent_at, acked


# -- one configuration ----------------------------------------------------------------------------


async def measure(
    target: str, members: int, deflate: bool, procs: int, messages: int, rates: list[float]
) -> list[dict[str, Any]]:
    env = {"WARBLER_WS_COMPRESSION": "true" if deflate else "false"}
    server = ReferenceServer(env=env) if target == "reference" else Server(env=env)
    server.start()
    loaders: Loaders | None = None
    try:
        if target == "warbler":
            world = await seed(server, members, concurrency=8)
            tokens: list[str | None] = [tok for _, tok in world["users"]]
            cursor = await tenant_cursor(server.url, world["users"][0][1])
            path, ready_on = f"/api/v1/ws?cursor={cursor}", "synced"
        else:
            world, tokens, path, ready_on = {}, [None] * members, "/ws", "hello"
        shares = [
            {"url": server.url, "path": path, "tokens": part, "deflate": deflate,
             "ready_on": ready_on}
            for part in split(tokens, procs)
        ]  # fmt: skip
        loaders = Loaders(loader, shares)
        loaders.start()
        counts = await loaders.ask({"op": "connect"})
        connected, negotiated = sum(c for c, _ in counts), sum(d for _, d in counts)
        await asyncio.sleep(1.0)  # presence "online" frames settle
        rows = []
        for i, rate in enumerate(rates):
            tag = f"r{i}"
            await loaders.ask({"op": "arm", "tag": tag, "messages": messages})
            cpu0, t0 = loaders.cpu_seconds() + own_cpu(), time.perf_counter()
            with ProcSampler(server.pid) as sampler:
                sent_at, acked = await send_all(server, target, world, tag, messages, rate)
                answers = await loaders.answers()
            # the reading side's share of core 1, to show it was not the bottleneck
            loader_pct = (
                100 * (loaders.cpu_seconds() + own_cpu() - cpu0) / (time.perf_counter() - t0)
            )
            row = summarize(target, deflate, connected, rate, acked, sent_at, answers, sampler)
            rows.append({**row, "negotiated": negotiated, "loader_cpu_pct": round(loader_pct, 1)})
            print(rows[-1], flush=True)
        return rows
    finally:
        server.stop()  # first: sockets close with 1012 while the loaders still answer
        if loaders is not None:
            loaders.stop()


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def summarize(
    target: str,
    deflate: bool,
    connected: int,
    rate: float,
    acked: float,
    sent_at: dict[str, float],
    answers: list[dict[str, Any]],
    sampler: ProcSampler,
) -> dict[str, Any]:
    count: Counter[str] = Counter()
    last: dict[str, float] = {}
    closed: Counter[int] = Counter()
    for answer in answers:
        closed.update(answer["closed"])
        for key, (n, at) in answer["stats"].items():
            count[key] += n
            last[key] = max(last.get(key, 0.0), at)
    deliveries = sum(count.values())
    elapsed = max(last.values(), default=0.0) - min(sent_at.values())
    complete = [key for key in sent_at if count[key] == connected]
    to_last = [(last[key] - sent_at[key]) * 1000 for key in complete]
    return {
        "server": target,
        "deflate": "on" if deflate else "off",
        "receivers": connected,
        "rate": "acks" if rate <= 0 else f"{rate:g}/s",
        "acked_msg_s": round(acked, 1),
        "deliveries": deliveries,
        "expected": connected * len(sent_at),
        "deliveries_per_s": round(deliveries / elapsed) if elapsed > 0 else 0,
        "last_p50_ms": round(percentile(to_last, 50), 1),
        "last_p99_ms": round(percentile(to_last, 99), 1),
        "closed": dict(closed) or 0,
        **sampler.summary(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=200, help="per phase (rate)")
    parser.add_argument("--rates", default="0,50", help="msg/s per phase; 0: as acks allow")
    parser.add_argument("--deflate", default="off,on")
    parser.add_argument("--targets", default="warbler,reference")
    parser.add_argument("--procs", type=int, default=2, help="loader processes (core 1)")
    args = parser.parse_args()
    raise_nofile()
    pin_self(1)
    rates = [float(r) for r in args.rates.split(",")]
    rows = []
    for target in args.targets.split(","):
        for deflate in args.deflate.split(","):
            rows += asyncio.run(
                measure(target, args.members, deflate == "on", args.procs, args.messages, rates)
            )
    for row in rows:
        ref = next(
            (
                r
                for r in rows
                if r["server"] == "reference"
                and (r["deflate"], r["rate"]) == (row["deflate"], row["rate"])
            ),
            None,
        )
        ok = row["server"] == "warbler" and ref and ref["deliveries_per_s"]
        row["x_reference"] = (
            round(row["deliveries_per_s"] / ref["deliveries_per_s"], 2) if ok else ""
        )
    table = Table(title=f"fan-out to {args.members} members (target ≥ 50,000 deliveries/s)")
    for col in rows[0]:
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console(width=220).print(table)
    print(f"wrote {write_result('fanout', rows, {'machine': machine(), 'args': vars(args)})}")


if __name__ == "__main__":
    main()
