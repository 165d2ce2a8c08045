"""End-to-end latency: from a send to its receipt on every online receiver's WebSocket.

    python bench/e2e_latency.py [--receivers 2,10,50,500] [--rate 200] [--seconds 5]
        [--db sqlite|postgres|sqlite,postgres] [--postgres-url URL] [--procs 2]
        [--connections 4] [--timed 50] [--no-reference]

One sender posts into a group at a fixed rate; R members each hold one WebSocket. Each
message leaves on schedule on an idle one of `--connections` keep-alive connections, so one
slow acknowledgement does not hold back the next message; when all are waiting, the next
message waits too, and `achieved_rate` falls below the target rate: the server did not keep
the pace. Latency is per (message, receiver), from just before the POST to the frame's
arrival. `--db postgres` runs Warbler on a fresh PostgreSQL database (as send_throughput.py).

The server runs pinned to core 0. The receivers are spread over `--procs` loader processes
pinned to core 1 with the sender, each an event loop of bare-protocol clients
(common.WSClient) that take a frame's client_msg_id without decoding the rest. Reading one
frame per wake-up costs ~10 µs of core 1 (half of it the kernel's), which at 500 receivers ×
200 msg/s would make the reading side the bottleneck. So at most `--timed` receivers, spread
evenly over the fan-out (connect) order, note every frame's arrival; the others are read in
32 KiB batches (SO_RCVLOWAT: the kernel holds their frames until then) and only counted, which
costs the server nothing and the reader ~4 µs a frame. `reader_us_per_frame` and
`generator_cpu_pct` (core 1) show the reading side's cost; `deliveries` counts every receiver.

The reference rows are the same scenario against bench/reference_server.py (same ASGI stack,
no auth, no database): `POST /broadcast` writes a Warbler-sized `message.new` frame to every
socket before it answers. Each R's reference row is measured right after Warbler's, and
`p50_x_reference` / `p99_x_reference` are Warbler's latencies over it.

Target (issue #8): p99 ≤ 20 ms at 50 receivers under 200 msg/s.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
from collections import Counter
from typing import Any

import orjson
from common import (
    DEFAULT_POSTGRES_URL,
    HTTPConnection,
    Loaders,
    ProcSampler,
    Server,
    WSClient,
    bounded,
    commands,
    http_request,
    loader_main,
    machine,
    own_cpu,
    percentile,
    pin_self,
    postgres_unreachable,
    raise_nofile,
    redact_url,
    seed,
    split,
    tenant_cursor,
    wait_phase,
    warbler_server,
    write_result,
    ws_connect,
)
from reference_server import ReferenceServer, reference_message
from rich.console import Console
from rich.table import Table

BATCH_BYTES = 32 * 1024  # a batched receiver's socket is read once this much is buffered
WARMUP = 5  # unmeasured messages before the timed phase
KEY = b'"client_msg_id":"'  # how both servers' frames (orjson) carry the message's key
COLUMNS = [
    "server", "db", "receivers", "timed_receivers", "target_rate", "achieved_rate",
    "deliveries", "expected", "p50_ms", "p95_ms", "p99_ms", "ack_p50_ms", "ack_p99_ms",
    "server_cpu_pct_mean", "server_rss_mb_max", "generator_cpu_pct", "reader_us_per_frame",
    "closed", "p50_x_reference", "p99_x_reference", "note",
]  # fmt: skip


# -- loader processes -------------------------------------------------------------------------


class Receiver:
    """One receiver's socket state: ready once the server's `ready_on` frame arrived; timed
    (every frame's arrival noted) or batched (read in BATCH_BYTES at a time, counted)."""

    __slots__ = ("ready", "ready_on", "timed")

    def __init__(self, ready_on: str, timed: bool) -> None:
        self.ready_on = ready_on
        self.timed = timed
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()


def set_batched(client: WSClient, batched: bool) -> None:
    """With `batched`, the kernel wakes the loader for this socket only once BATCH_BYTES are
    buffered (SO_RCVLOWAT), so one read takes many frames; without, at every frame. The
    server's writes are the same either way: the socket's receive buffer holds the frames."""
    if client.transport is None or client.transport.is_closing():
        return  # the server hung up on it: nothing left to read
    sock = client.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, BATCH_BYTES if batched else 1)


def loader(pipe: Any, share: dict[str, Any]) -> None:
    loader_main(_receive, pipe, share)


async def _receive(pipe: Any, share: dict[str, Any]) -> None:
    """Hold this share of the receivers' sockets. Per phase (`arm`), note when each message
    arrives at each timed receiver and count its arrivals at the batched ones; `flush` (once
    the sender is done) lets the batched sockets' last frames be read; the phase's answer
    goes to the parent when every frame has arrived or none has for STALL_SECONDS."""
    phase: dict[str, Any] = {"tag": b"", "expected": 0, "got": 0, "arrivals": {}}
    done = asyncio.Event()

    def on_message(client: WSClient, data: bytes) -> None:
        receiver: Receiver = client.state
        if not receiver.ready.done():  # the few frames before the stream is live: decode them
            if orjson.loads(data).get("type") == receiver.ready_on:
                receiver.ready.set_result(None)
            return
        # the key without decoding the frame: both servers write it with orjson
        at = data.find(KEY)
        if at < 0 or b'"message.new"' not in data:
            return
        at += len(KEY)
        key = data[at : data.index(b'"', at)]
        if not phase["tag"] or not key.startswith(phase["tag"]):
            return
        if receiver.timed:
            now = time.perf_counter()
            arrivals = phase["arrivals"].get(key)
            if arrivals is None:
                phase["arrivals"][key] = [now]
            else:
                arrivals.append(now)
        phase["got"] += 1
        if phase["got"] >= phase["expected"]:
            done.set()

    async def connect(token: str | None, timed: bool) -> WSClient:
        client = await ws_connect(
            share["url"], share["path"], token=token, on_message=on_message,
            state=Receiver(share["ready_on"], timed),
        )  # fmt: skip
        try:
            async with asyncio.timeout(60):
                await client.state.ready
        except BaseException:
            client.close()
            raise
        return client

    async def run_phase() -> None:
        await wait_phase(done, phase)
        codes = Counter(c.closed.result() for c in clients if c.closed.done())
        arrivals = {k.decode(): v for k, v in phase["arrivals"].items()}
        pipe.send({"arrivals": arrivals, "got": phase["got"], "closed": dict(codes)})
        phase["tag"] = b""

    clients: list[WSClient] = []
    running: asyncio.Task[None] | None = None
    try:
        async for command in commands(pipe):
            if command["op"] == "connect":
                pairs = zip(share["tokens"], share["timed"], strict=True)
                clients = await bounded((connect(token, timed) for token, timed in pairs), 50)
                pipe.send(len(clients))
            elif command["op"] == "arm":
                for client in clients:
                    if not client.state.timed:
                        set_batched(client, True)
                phase.update(tag=command["tag"].encode(), got=0, arrivals={})
                phase["expected"] = command["messages"] * len(clients)
                done.clear()
                running = asyncio.create_task(run_phase())
                pipe.send("armed")
            elif command["op"] == "flush":  # no answer: the phase's result follows
                for client in clients:
                    if not client.state.timed:
                        set_batched(client, False)
    finally:
        if running is not None:
            running.cancel()
        for client in clients:
            client.close()


# -- the sender ---------------------------------------------------------------------------------


async def send_at_rate(
    url: str, requests: list[tuple[str, bytes]], rate: float, connections: int
) -> tuple[dict[str, float], list[float], float]:
    """Send `requests` (key, bytes) on schedule, `rate` per second, each on an idle one of
    `connections` keep-alive connections; returns when each left, the acknowledgement
    latencies and the achieved rate."""
    pool = [await HTTPConnection(url).connect() for _ in range(connections)]
    idle: asyncio.Queue[HTTPConnection] = asyncio.Queue()
    for connection in pool:
        idle.put_nowait(connection)
    sent_at: dict[str, float] = {}
    acks: list[float] = []
    failures: list[BaseException] = []

    async def one(connection: HTTPConnection, key: str, raw: bytes) -> None:
        try:
            sent_at[key] = t0 = time.perf_counter()
            (await connection.request(raw)).raise_for_status()
            acks.append(time.perf_counter() - t0)
        except Exception as exc:  # stop the schedule, report it below
            failures.append(exc)
        finally:
            idle.put_nowait(connection)

    tasks = []
    try:
        start = time.perf_counter()
        for n, (key, raw) in enumerate(requests):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            connection = await idle.get()
            if failures:
                raise failures[0]
            tasks.append(asyncio.create_task(one(connection, key, raw)))
        await asyncio.gather(*tasks)
        if failures:
            raise failures[0]
        span = max(sent_at.values()) - start
        achieved = (len(requests) - 1) / span if len(requests) > 1 and span > 0 else 0.0
    finally:
        for task in tasks:
            task.cancel()
        for connection in pool:
            await connection.close()
    return sent_at, acks, achieved


def build_requests(
    server: Server, world: dict[str, Any] | None, tag: str, count: int
) -> list[tuple[str, bytes]]:
    """A phase's requests, built before it: Warbler sends, or reference broadcasts of a
    Warbler-sized message."""
    out = []
    for n in range(count):
        key = f"{tag}{n}"
        if world is not None:
            raw = http_request(
                server.url, "POST", f"/api/v1/conversations/{world['conversation_id']}/messages",
                headers={"Authorization": f"Bearer {world['users'][0][1]}"},
                body=orjson.dumps({"text": f"latency {n}", "client_msg_id": key}),
            )  # fmt: skip
        else:
            body = orjson.dumps(reference_message(key, n, f"latency {n}"))
            raw = http_request(server.url, "POST", "/broadcast", body=body)
        out.append((key, raw))
    return out


# -- one configuration ----------------------------------------------------------------------------


async def measure(
    server: Server, db: str, receivers: int, args: argparse.Namespace
) -> dict[str, Any]:
    """The scenario against a started server (Warbler when `db` names its store, else the
    reference)."""
    world: dict[str, Any] | None = None
    if db != "-":
        world = await seed(server, receivers + 1, concurrency=8)
        tokens: list[str | None] = [tok for _, tok in world["users"][1:]]
        cursor = await tenant_cursor(server.url, world["users"][1][1])
        path, ready_on = f"/api/v1/ws?cursor={cursor}", "synced"
    else:
        tokens, path, ready_on = [None] * receivers, "/ws", "hello"
    # every step-th receiver (in connect order, which is the fan-out order) is timed
    step = -(-receivers // args.timed) if args.timed > 0 else 1
    timed = [i % step == 0 for i in range(receivers)]
    procs = min(args.procs, receivers)
    shares = [
        {"url": server.url, "path": path, "tokens": part, "timed": flags, "ready_on": ready_on}
        for part, flags in zip(split(tokens, procs), split(timed, procs), strict=True)
    ]
    loaders = Loaders(loader, shares)
    loaders.start()
    try:
        connected = sum(await loaders.ask({"op": "connect"}))
        await send_at_rate(server.url, build_requests(server, world, "w", WARMUP), 50, 1)
        await asyncio.sleep(1.0)  # presence frames and the warm-up's deliveries settle
        messages = max(1, round(args.rate * args.seconds))
        requests = build_requests(server, world, "m", messages)
        await loaders.ask({"op": "arm", "tag": "m", "messages": messages})
        reader0, own0, t0 = loaders.cpu_seconds(), own_cpu(), time.perf_counter()
        with ProcSampler(server.pid) as sampler:
            sent_at, acks, achieved = await send_at_rate(
                server.url, requests, args.rate, args.connections
            )
            loaders.tell({"op": "flush"})
            answers = await loaders.answers()
        reader_cpu = loaders.cpu_seconds() - reader0
        generator_pct = 100 * (reader_cpu + own_cpu() - own0) / (time.perf_counter() - t0)
    finally:
        server.terminate()  # first: sockets close while the loaders still answer
        loaders.stop()
    latencies = [
        (at - sent_at[key]) * 1000
        for answer in answers
        for key, arrivals in answer["arrivals"].items()
        for at in arrivals
    ]
    closed: Counter[int] = Counter()
    for answer in answers:
        closed.update(answer["closed"])
    ack_ms = [x * 1000 for x in acks]
    deliveries = sum(answer["got"] for answer in answers)
    row = {
        "server": "warbler" if db != "-" else "reference",
        "db": db,
        "receivers": connected,
        "timed_receivers": sum(timed),
        "target_rate": args.rate,
        "achieved_rate": round(achieved, 1),
        "deliveries": deliveries,
        "expected": messages * connected,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "ack_p50_ms": round(percentile(ack_ms, 50), 2),
        "ack_p99_ms": round(percentile(ack_ms, 99), 2),
        **sampler.summary(),
        "generator_cpu_pct": round(generator_pct, 1),
        # what the reading side costs per frame: 1e6 / this is its ceiling on one core
        "reader_us_per_frame": round(1e6 * reader_cpu / max(1, deliveries), 1),
        "closed": dict(closed) or 0,
        "p50_x_reference": None,
        "p99_x_reference": None,
        "note": "",
    }
    assert list(row) == COLUMNS
    return row


def unmeasured(db: str, receivers: int, args: argparse.Namespace, note: str) -> dict[str, Any]:
    """A row for a configuration that could not run: `note` says why."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(server="warbler", db=db, receivers=receivers, target_rate=args.rate, note=note)
    return row


async def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    dbs = [db for db in args.db.split(",") if db]  # --db "": the reference alone
    for db in dbs:
        if db not in ("sqlite", "postgres"):
            raise SystemExit(f"--db: sqlite or postgres, not {db!r}")
    why = await postgres_unreachable(args.postgres_url) if "postgres" in dbs else None
    rows = []
    for receivers in (int(r) for r in args.receivers.split(",")):
        for db in dbs:
            if db == "postgres" and why is not None:
                row = unmeasured(db, receivers, args, f"PostgreSQL unreachable ({why})")
            else:
                async with warbler_server(db, postgres_url=args.postgres_url) as server:
                    row = await measure(server, db, receivers, args)
            rows.append(row)
            print(row, flush=True)
        if args.reference:
            reference = ReferenceServer()
            reference.start()
            try:
                ref = await measure(reference, "-", receivers, args)
            finally:
                reference.stop()
            print(ref, flush=True)
            for row in rows:
                if row["receivers"] == receivers and row["p50_ms"] is not None:
                    row["p50_x_reference"] = round(row["p50_ms"] / ref["p50_ms"], 2)
                    row["p99_x_reference"] = round(row["p99_ms"] / ref["p99_ms"], 2)
            rows.append(ref)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--receivers", default="2,10,50,500")
    parser.add_argument("--rate", type=float, default=200, help="messages per second")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--db", default="sqlite", help="sqlite, postgres or both")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--procs", type=int, default=2, help="receiving loader processes")
    parser.add_argument("--connections", type=int, default=4, help="the sender's connections")
    parser.add_argument(
        "--timed", type=int, default=50,
        help="receivers timed on every frame, spread over the fan-out order; the others are "
        "read in 32 KiB batches and counted (0: time all)",
    )  # fmt: skip
    parser.add_argument(
        "--reference", action=argparse.BooleanOptionalAction, default=True,
        help="run the same scenario against bench/reference_server.py in the same run",
    )  # fmt: skip
    args = parser.parse_args()
    raise_nofile()
    pin_self(1)
    rows = asyncio.run(run_all(args))
    table = Table(title=f"send → receive latency at {args.rate:g} msg/s (target p99 ≤ 20 ms at 50)")
    for col in COLUMNS:
        table.add_column(col)
    for row in rows:
        table.add_row(*("–" if row[col] is None else str(row[col]) for col in COLUMNS))
    Console(width=240).print(table)
    meta = {
        "machine": machine(),
        "args": {**vars(args), "postgres_url": redact_url(args.postgres_url)},
        "server_core": 0,
        "generator": f"sender + {args.procs} receiving loader process(es) on core 1",
    }
    print(f"wrote {write_result('e2e_latency', rows, meta)}")


if __name__ == "__main__":
    main()
