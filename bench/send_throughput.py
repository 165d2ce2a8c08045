"""Send throughput: K concurrent senders in one group, messages/s acknowledged (stored).

    python bench/send_throughput.py [--senders 1,8,32] [--seconds 5] [--messages N]
        [--db sqlite,postgres] [--sync FULL,NORMAL] [--postgres-url URL] [--procs 1]
        [--no-reference]

The server runs in its own process pinned to core 0; the load generator is pinned to core 1:
`--procs` loader processes, each holding one keep-alive connection per sender, every sender
sending its next message as soon as the previous is acknowledged, for `--seconds` (or until
`--messages` in all). The requests are bytes built from a template encoded once, sent with
common.HTTPConnection rather than httpx, so that the generator does not cap the figure: its
CPU per message, and its share of core 1, are in the table. Each configuration gets
a fresh server: SQLite in a temporary data dir (once per `--sync`), or PostgreSQL in a fresh
database `warbler_bench_<random>` on the server at `--postgres-url` (default
$WARBLER_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/postgres), dropped
afterwards. PostgreSQL itself runs unpinned; the CPU of the server's backends is sampled too.

Every sender first sends a few unmeasured messages (connections, pools and caches warm up).
The reference rows are the same load against bench/reference_server.py's `POST /send`
(FastAPI, a pydantic body, an orjson answer, no database) in the same run: what one core of
Python does for a POST here; `x_reference` is Warbler's rate over it at the same K.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from common import (
    DEFAULT_POSTGRES_URL,
    HTTPConnection,
    JSONRequests,
    Loaders,
    PostgresSampler,
    ProcSampler,
    Server,
    commands,
    loader_main,
    machine,
    percentile,
    pin_self,
    postgres_unreachable,
    redact_url,
    seed,
    split,
    warbler_server,
    write_result,
)
from reference_server import ReferenceServer
from rich.console import Console
from rich.table import Table

WARMUP = 5  # unmeasured messages per sender before the timed phase


# -- loader processes ---------------------------------------------------------------------------


def loader(pipe: Any, share: dict[str, Any]) -> None:
    loader_main(_send, pipe, share, fast_loop=True)


async def _send(pipe: Any, share: dict[str, Any]) -> None:
    """This share of the senders, one keep-alive connection each (opened by the first
    request, in the warm-up). Per `go`, each sender sends one message after another as the
    answers come, until `seconds` have passed or it has sent `per_sender` (0: no cap); the
    answer is the phase's start, end and acknowledgement latencies."""
    url, path, senders = share["url"], share["path"], share["senders"]
    connections = [HTTPConnection(url) for _ in senders]
    templates = [JSONRequests(url, "POST", path, headers) for _, headers in senders]
    try:
        async for command in commands(pipe):
            # the body, with the sender and the message number spliced in per request
            body = (
                '{"text":"bench %d-%d 测试消息","client_msg_id":"' + command["tag"] + '%d-%d"}'
            ).encode()
            latencies: list[float] = []
            start = time.perf_counter()
            deadline, cap = start + command["seconds"], command["per_sender"] or sys.maxsize
            await asyncio.gather(
                *(
                    _sender(c, t, body, i, deadline, cap, latencies)
                    for c, t, (i, _) in zip(connections, templates, senders, strict=True)
                )
            )
            end = time.perf_counter()
            reconnects = sum(c.reconnects for c in connections)
            pipe.send(
                {"start": start, "end": end, "latencies": latencies, "reconnects": reconnects}
            )
    finally:
        for connection in connections:
            await connection.close()


async def _sender(
    connection: HTTPConnection,
    template: JSONRequests,
    body: bytes,
    i: int,
    deadline: float,
    cap: int,
    out: list[float],
) -> None:
    n = 0
    while n < cap:
        raw = template.build(body % (i, n, i, n))
        t0 = time.perf_counter()
        if t0 >= deadline:
            return
        (await connection.request(raw)).raise_for_status()
        out.append(time.perf_counter() - t0)
        n += 1


# -- one configuration --------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def target_server(db: str, sync: str, postgres_url: str) -> AsyncIterator[Server]:
    """A started server for one row: Warbler on SQLite or on a fresh PostgreSQL database, or
    the reference (`db` "-")."""
    if db != "-":
        env = {"WARBLER_SQLITE_SYNCHRONOUS": sync} if db == "sqlite" else {}
        async with warbler_server(db, postgres_url=postgres_url, env=env) as server:
            yield server
        return
    reference = ReferenceServer()
    reference.start()
    try:
        yield reference
    finally:
        reference.stop()


async def measure(
    db: str, sync: str, senders: int, seconds: float, total: int, procs: int, postgres_url: str
) -> dict[str, Any]:
    per_sender = -(-total // senders) if total > 0 else 0
    async with target_server(db, sync, postgres_url) as server:
        auth: list[dict[str, str]]
        if db == "-":
            path, auth = "/send", [{} for _ in range(senders)]
        else:
            world = await seed(server, max(2, senders))
            path = f"/api/v1/conversations/{world['conversation_id']}/messages"
            auth = [{"Authorization": f"Bearer {tok}"} for _, tok in world["users"][:senders]]
        shares = [
            {"url": server.url, "path": path, "senders": part}
            for part in split(list(enumerate(auth)), min(procs, senders))
        ]
        loaders = Loaders(loader, shares)
        loaders.start()
        try:
            await loaders.ask({"tag": "w", "seconds": 60, "per_sender": WARMUP})
            postgres = None
            if db == "postgres":
                postgres = PostgresSampler(server.env["WARBLER_DATABASE_URL"])
            gen0 = loaders.cpu_seconds()  # this process only waits and samples meanwhile
            with ProcSampler(server.pid) as sampler, postgres or contextlib.nullcontext():
                answers = await loaders.ask(
                    {"tag": "m", "seconds": seconds, "per_sender": per_sender}
                )
            elapsed = max(a["end"] for a in answers) - min(a["start"] for a in answers)
            generator_cpu = loaders.cpu_seconds() - gen0
        finally:
            loaders.stop()
    ms = [x * 1000 for a in answers for x in a["latencies"]]
    return {
        **blank_row(db, sync, senders),
        "messages": len(ms),
        "msgs_per_s": round(len(ms) / elapsed, 1),
        "ack_p50_ms": round(percentile(ms, 50), 2),
        "ack_p99_ms": round(percentile(ms, 99), 2),
        **sampler.summary(),
        "postgres_cpu_pct": postgres.cpu_pct() if postgres is not None else None,
        "generator_cpu_pct": round(100 * generator_cpu / elapsed, 1),
        "generator_us_per_msg": round(1e6 * generator_cpu / len(ms), 1),
        "reconnects": sum(a["reconnects"] for a in answers),
    }


def blank_row(db: str, sync: str, senders: int, note: str = "") -> dict[str, Any]:
    """Every row has every column (None: does not apply, or was not measured)."""
    return {
        "server": "reference" if db == "-" else "warbler",
        "db": db,
        "sqlite_synchronous": sync if db == "sqlite" else None,
        "senders": senders,
        "messages": None,
        "msgs_per_s": None,
        "ack_p50_ms": None,
        "ack_p99_ms": None,
        "server_cpu_pct_mean": None,
        "server_rss_mb_max": None,
        "postgres_cpu_pct": None,
        "generator_cpu_pct": None,
        "generator_us_per_msg": None,
        "reconnects": None,
        "x_reference": None,
        "note": note,
    }


async def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    counts = [int(x) for x in args.senders.split(",")]
    configs: list[tuple[str, str]] = []
    for db in filter(None, args.db.split(",")):  # --db "": the reference alone
        if db == "sqlite":
            configs += [("sqlite", sync) for sync in args.sync.split(",")]
        elif db == "postgres":
            configs.append(("postgres", ""))
        else:
            raise SystemExit(f"--db: sqlite or postgres, not {db!r}")
    if args.reference:
        configs.append(("-", ""))
    why = await postgres_unreachable(args.postgres_url) if "postgres" in args.db else None
    rows = []
    # each K's configurations back to back, so that its reference row shares their noise
    for k in counts:
        for db, sync in configs:
            if db == "postgres" and why is not None:
                row = blank_row(db, sync, k, note=f"PostgreSQL unreachable ({why})")
            else:
                row = await measure(
                    db, sync, k, args.seconds, args.messages, args.procs, args.postgres_url
                )
            rows.append(row)
            print(row, flush=True)
    rows.sort(key=lambda r: (configs.index((r["db"], r["sqlite_synchronous"] or "")), r["senders"]))
    for row in rows:
        ref = next(
            (r for r in rows if r["server"] == "reference" and r["senders"] == row["senders"]),
            None,
        )
        if row["server"] == "warbler" and row["msgs_per_s"] and ref and ref["msgs_per_s"]:
            row["x_reference"] = round(row["msgs_per_s"] / ref["msgs_per_s"], 3)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--senders", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=5, help="timed phase of each row")
    parser.add_argument(
        "--messages", type=int, default=0,
        help="end a row's phase sooner, once the senders have sent this many (0: no cap)",
    )  # fmt: skip
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--sync", default="FULL,NORMAL", help="SQLite's synchronous setting(s)")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--procs", type=int, default=1, help="loader processes (core 1)")
    parser.add_argument(
        "--reference", action=argparse.BooleanOptionalAction, default=True,
        help="measure bench/reference_server.py's POST /send in the same run",
    )  # fmt: skip
    args = parser.parse_args()
    pin_self(1)
    rows = asyncio.run(run_all(args))
    table = Table(title="send throughput (one server process on one core; target ≥ 2,000 msg/s)")
    for col in rows[0]:
        table.add_column(col)
    for row in rows:
        table.add_row(*("–" if v is None else str(v) for v in row.values()))
    Console(width=240).print(table)
    meta = {
        "machine": machine(),
        "args": {**vars(args), "postgres_url": redact_url(args.postgres_url)},
        "server_core": 0,
        "generator": f"{args.procs} loader process(es) on core 1, uvloop, common.HTTPConnection",
    }
    path = write_result("send_throughput", rows, meta)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
