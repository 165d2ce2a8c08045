"""Shared bench plumbing: a pinned server process, seeding, /proc sampling, result files,
a lean WebSocket client, a lean HTTP/1.1 client, pinned loader processes and fresh
PostgreSQL databases."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import orjson

RESULTS = Path(__file__).parent / "results"
PASSWORD = "bench password 1"
CONNECT_TIMEOUT = 30.0  # seconds for one WebSocket's TCP connect and for its upgrade
READY_TIMEOUT = 60.0  # seconds from the upgrade to the frame that means a stream is ready


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pin(core: int) -> list[str]:
    """`taskset -c core` where the machine has it and more than one core."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core)]
    return []


def pin_self(core: int) -> None:
    if (os.cpu_count() or 1) > 1 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})


@dataclass
class Server:
    env: dict[str, str] = field(default_factory=dict)
    core: int = 0
    port: int = field(default_factory=free_port)
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="warbler-bench-")))
    proc: subprocess.Popen[bytes] | None = None
    # stderr goes to a file, not a pipe nobody reads (a full pipe would stall the server)
    log_path: Path = field(
        default_factory=lambda: Path(tempfile.mkstemp(prefix="warbler-bench-", suffix=".log")[1])
    )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the server is not started"
        return self.proc.pid

    def command(self) -> list[str]:
        return [sys.executable, "-m", "warbler.cli", "serve"]

    def start(self) -> None:
        env = {
            **os.environ,
            "WARBLER_DATA_DIR": str(self.data_dir),
            "WARBLER_PORT": str(self.port),
            "WARBLER_LOG_LEVEL": "warning",
            # the benchmark measures the server, not the per-user abuse limit
            "WARBLER_SEND_RATE_PER_SECOND": "1000000",
            "WARBLER_SEND_BURST": "1000000",
            **self.env,
        }
        cmd = [*pin(self.core), *self.command()]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        for _ in range(300):
            if self.proc.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        tail = self.log_path.read_text(errors="replace")[-2000:]
        self.terminate()
        raise RuntimeError(f"bench server did not start:\n{tail}")

    def terminate(self, timeout: float = 15) -> float:
        """SIGTERM and wait; returns the seconds it took to exit. Keeps the data dir."""
        t0 = time.monotonic()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return time.monotonic() - t0

    def restart(self) -> float:
        """Stop (SIGTERM) and start again on the same port and data dir; returns the seconds
        from the signal until the new process answers its health check."""
        t0 = time.monotonic()
        self.terminate()
        self.start()
        return time.monotonic() - t0

    def stop(self) -> None:
        self.terminate()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.log_path.unlink(missing_ok=True)

    def log_tail(self, chars: int = 2000) -> str:
        """The end of the server's stderr (its log), while it has not been stopped."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def raise_nofile() -> int:
    """Lift this process's open-file limit to its hard limit (children started afterwards,
    such as the server, inherit it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kb(pid: int) -> int:
    """A process's resident set size now, in KiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ProcSampler:
    """Samples a process's CPU (% of one core) and RSS from /proc while a phase runs."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.pid = pid
        self.every = every
        self.cpu: list[float] = []
        self.rss_kb: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _ticks(self) -> int:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    def _rss(self) -> int:
        return rss_kb(self.pid)

    def _run(self) -> None:
        hz = os.sysconf("SC_CLK_TCK")
        last, t0 = self._ticks(), time.monotonic()
        while not self._stop.wait(self.every):
            now_ticks, now = self._ticks(), time.monotonic()
            self.cpu.append(100.0 * (now_ticks - last) / hz / (now - t0))
            self.rss_kb.append(self._rss())
            last, t0 = now_ticks, now

    def __enter__(self) -> ProcSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        return {
            "server_cpu_pct_mean": round(sum(self.cpu) / max(1, len(self.cpu)), 1),
            "server_rss_mb_max": round(max(self.rss_kb or [0]) / 1024, 1),
        }


async def seed(
    server: Server, users: int, *, group: bool = True, concurrency: int = 1
) -> dict[str, Any]:
    """A tenant with `users` members (tokens issued by an API key) and, with `group`, one
    group of them all owned by the first. `concurrency` users are created at a time."""
    from warbler.config import load_settings
    from warbler.services import build_services
    from warbler.store.migrate import upgrade

    # the server's own store: its data dir, and its database when the bench chose one
    overrides: dict[str, Any] = {"data_dir": server.data_dir}
    if "WARBLER_DATABASE_URL" in server.env:
        overrides["database_url"] = server.env["WARBLER_DATABASE_URL"]
    svc = build_services(load_settings(None, **overrides))
    try:
        await upgrade(svc.db)
        tenant = await svc.users.create_tenant(slug="bench", name="bench")
        key = await svc.auth.create_api_key(
            tenant["id"], name="bench", scopes=["admin"], created_by=None
        )
    finally:
        await svc.close()
    headers = {"Authorization": f"Bearer {key['key']}"}
    tokens: list[tuple[str, str]] = [("", "")] * users
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=f"{server.url}/api/v1", headers=headers, limits=limits, timeout=30
    ) as c:
        todo = iter(range(users))

        async def creator() -> None:
            for i in todo:
                r = await c.post("/users", json={"username": f"u{i}"})
                r.raise_for_status()
                uid = r.json()["id"]
                r = await c.post(f"/users/{uid}/tokens", json={})
                r.raise_for_status()
                tokens[i] = (uid, r.json()["access_token"])

        await asyncio.gather(*(creator() for _ in range(max(1, concurrency))))
        if not group:
            return {"conversation_id": None, "users": tokens, "tenant_id": tenant["id"]}
        owner = {"Authorization": f"Bearer {tokens[0][1]}"}
        r = await c.post(
            "/conversations",
            json={"kind": "group", "title": "bench", "member_ids": [u for u, _ in tokens[1:]]},
            headers=owner,
        )
        r.raise_for_status()
    return {"conversation_id": r.json()["id"], "users": tokens, "tenant_id": tenant["id"]}


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def write_result(name: str, rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return path


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cores": os.cpu_count(), "python": sys.version.split()[0]}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- a lean WebSocket client for load generation ---------------------------------------------


class WSClient(asyncio.Protocol):
    """A minimal RFC 6455 client on a bare asyncio protocol: no task and no queue per
    connection, frames handed to a callback as they are parsed. The load generator holds
    thousands of these on one core; a full client library would make the loader, not the
    server, the bottleneck. It answers pings (uvicorn drops sockets that do not) and can
    negotiate permessage-deflate the way browsers and the `websockets` library do.
    """

    def __init__(self, on_message: Callable[[WSClient, bytes], None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.on_message = on_message
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[int] = loop.create_future()  # resolves to the close code
        self.deflate = False
        self.state: Any = None  # the caller's per-connection bookkeeping
        self._buf = bytearray()
        self._upgraded = False
        self._inflate: Any = None
        self._fresh_inflate_each_message = False
        self._fragments: list[bytes] = []
        self._fragments_compressed = False

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have asyncio.Transport's methods without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(1006)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if not self._upgraded:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self._buf[:end]).decode("latin-1")
            del self._buf[: end + 4]
            self._handshake_done(head)
            if not self._upgraded:
                return
        self._parse()

    # -- the handshake -------------------------------------------------------------------

    @staticmethod
    def request(host: str, path: str, headers: dict[str, str], deflate: bool) -> bytes:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        if deflate:
            lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _handshake_done(self, head: str) -> None:
        status, *header_lines = head.split("\r\n")
        if " 101 " not in status + " ":
            self.opened.set_exception(ConnectionError(f"handshake refused: {status}"))
            assert self.transport is not None
            self.transport.close()
            return
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "sec-websocket-extensions" and "permessage-deflate" in value:
                self.deflate = True
                self._fresh_inflate_each_message = "server_no_context_takeover" in value
                self._inflate = zlib.decompressobj(-15)
        self._upgraded = True
        self.opened.set_result(None)

    # -- frames --------------------------------------------------------------------------

    def _parse(self) -> None:
        buf, pos, size = self._buf, 0, len(self._buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, header = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, header = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, header = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            end = pos + header + length
            if end > size:
                break
            payload = bytes(buf[pos + header : end])
            pos = end
            self._frame(b0, payload)
        del buf[:pos]

    def _frame(self, b0: int, payload: bytes) -> None:
        opcode, fin, rsv1 = b0 & 0x0F, b0 & 0x80, b0 & 0x40
        if fin and not rsv1 and opcode in (0x1, 0x2) and not self._fragments:
            # the common case, kept short: a whole uncompressed message in one frame
            if self.on_message is not None:
                self.on_message(self, payload)
            return
        if opcode in (0x1, 0x2, 0x0):
            if opcode != 0x0:
                self._fragments_compressed = bool(rsv1)
            self._fragments.append(payload)
            if not fin:
                return
            data = b"".join(self._fragments)
            self._fragments = []
            if self._fragments_compressed:
                if self._fresh_inflate_each_message:
                    self._inflate = zlib.decompressobj(-15)
                data = self._inflate.decompress(data + b"\x00\x00\xff\xff")
            if self.on_message is not None:
                self.on_message(self, data)
        elif opcode == 0x9:  # ping
            self.send_frame(0xA, payload)
        elif opcode == 0x8:  # close: echo it and hang up
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            self.send_frame(0x8, payload[:2])
            if not self.closed.done():
                self.closed.set_result(code)
            assert self.transport is not None
            self.transport.close()

    def send_frame(self, opcode: int, payload: bytes) -> None:
        """One final frame, masked as clients must."""
        if self.transport is None or self.transport.is_closing():
            return
        n = len(payload)
        if n < 126:
            header = bytes((0x80 | opcode, 0x80 | n))
        elif n < 65536:
            header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
        else:
            header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
        mask = os.urandom(4)
        pad = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(pad, "big")).to_bytes(n, "big")
        self.transport.write(header + mask + masked)

    def send_json(self, message: dict[str, Any]) -> None:
        self.send_frame(0x1, json.dumps(message).encode())

    def close(self) -> None:
        """Hang up without the closing handshake (the server sees a disconnect)."""
        if self.transport is not None:
            self.transport.close()


async def ws_connect(
    url: str,
    path: str,
    *,
    token: str | None = None,
    on_message: Callable[[WSClient, bytes], None] | None = None,
    deflate: bool = False,
    state: Any = None,
) -> WSClient:
    """Open a WebSocket to `url` (the server's http:// base) at `path`; returns once the
    server has accepted the upgrade."""
    host, _, port = url.split("://", 1)[1].partition(":")
    loop = asyncio.get_running_loop()

    def factory() -> WSClient:
        client = WSClient(on_message)
        client.state = state
        return client

    timeout = CONNECT_TIMEOUT
    _, client = await asyncio.wait_for(loop.create_connection(factory, host, int(port)), timeout)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    assert client.transport is not None
    client.transport.write(WSClient.request(f"{host}:{port}", path, headers, deflate))
    try:
        await asyncio.wait_for(asyncio.shield(client.opened), timeout)
    except BaseException:
        client.close()
        raise
    return client


async def bounded(coros: Iterable[Awaitable[Any]], concurrency: int) -> list[Any]:
    """Await `coros` with at most `concurrency` in flight; results in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(coro: Awaitable[Any]) -> Any:
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


class Stream:
    """What a load generator tracks per Warbler (or reference) WebSocket: the cursor, a
    future resolved by the frame that means "ready" (`synced`, or `hello`), a frame count."""

    __slots__ = ("cursor", "frames", "on_frame", "ready", "ready_at", "ready_on")

    def __init__(
        self, ready_on: str, on_frame: Callable[[WSClient, dict[str, Any]], None] | None
    ) -> None:
        self.ready_on = ready_on
        self.on_frame = on_frame
        self.ready: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.ready_at = 0.0
        self.cursor: int | None = None
        self.frames = 0


def _stream_message(client: WSClient, data: bytes) -> None:
    stream: Stream = client.state
    frame = orjson.loads(data)
    stream.frames += 1
    kind = frame.get("type")
    if kind == "event" and frame.get("id") is not None:
        stream.cursor = frame["id"]
    elif kind == "synced":
        stream.cursor = frame["cursor"]
    if kind == stream.ready_on and not stream.ready.done():
        stream.ready_at = time.perf_counter()
        stream.ready.set_result(frame)
    if stream.on_frame is not None:
        stream.on_frame(client, frame)


async def open_stream(
    url: str,
    path: str,
    *,
    token: str | None,
    deflate: bool,
    ready_on: str,
    on_frame: Callable[[WSClient, dict[str, Any]], None] | None = None,
) -> WSClient:
    """Connect and wait (READY_TIMEOUT at most) for the `ready_on` frame; `client.state` is
    the connection's Stream."""
    stream = Stream(ready_on, on_frame)
    client = await ws_connect(
        url, path, token=token, on_message=_stream_message, deflate=deflate, state=stream
    )
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await stream.ready
    except BaseException:
        client.close()
        raise
    return client


async def tenant_cursor(url: str, token: str) -> int:
    """The tenant's latest event cursor, from a `hello` (a client with this cursor is synced)."""
    probe = await open_stream(url, "/api/v1/ws", token=token, deflate=False, ready_on="hello")
    probe.close()
    return int((await probe.state.ready)["cursor"])


# -- loader processes ------------------------------------------------------------------------


class Loaders:
    """`count` load-generator processes (spawned, pinned to core 1 like the parent), each
    running `target(pipe, share)` and driven by commands over its pipe: the reading side of
    a fan-out gets its own event loops, so one loop's latency does not skew the figures."""

    def __init__(self, target: Callable[[Any, Any], None], shares: list[Any]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Any] = []
        self.procs: list[Any] = []
        for share in shares:
            parent, child = ctx.Pipe()
            self.pipes.append(parent)
            self.procs.append(ctx.Process(target=target, args=(child, share), daemon=True))

    def start(self) -> None:
        for proc in self.procs:
            proc.start()

    async def ask(self, command: Any, within: float = 300) -> list[Any]:
        """Send `command` to every loader; their answers (each within `within` s), in order."""
        for pipe in self.pipes:
            pipe.send(command)
        return await self.answers(within)

    def tell(self, command: Any) -> None:
        """Send `command` to every loader, for which none answers."""
        for pipe in self.pipes:
            pipe.send(command)

    async def answers(self, within: float = 300) -> list[Any]:
        """The next answer of every loader, in order."""
        return await asyncio.gather(*(self._answer(pipe, within) for pipe in self.pipes))

    @staticmethod
    async def _answer(pipe: Any, within: float) -> Any:
        if not await asyncio.to_thread(pipe.poll, within):
            raise TimeoutError("a loader process did not answer")
        answer = pipe.recv()
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def cpu_seconds(self) -> float:
        """CPU the loader processes have used so far (the parent's is in os.times())."""
        return sum(cpu_seconds(proc.pid) for proc in self.procs if proc.is_alive())

    def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)


def split(items: list[Any], parts: int) -> list[list[Any]]:
    """Deal `items` round-robin into `parts` lists."""
    return [items[i::parts] for i in range(parts)]


async def commands(pipe: Any) -> AsyncIterator[Any]:
    """In a loader process: the parent's commands until it says stop (None)."""
    while True:
        command = await asyncio.to_thread(pipe.recv)
        if command is None:
            return
        yield command


def loader_main(
    worker: Callable[[Any, Any], Coroutine[Any, Any, None]],
    pipe: Any,
    share: Any,
    *,
    fast_loop: bool = False,
) -> None:
    """A loader process's body: pin, lift the fd limit, run `worker` (on uvloop with
    `fast_loop`, the loop the server runs on, which costs the generator less per request);
    errors go to the parent as the answer it is waiting for."""
    pin_self(1)
    raise_nofile()
    try:
        if fast_loop:
            import uvloop

            uvloop.run(worker(pipe, share))
        else:
            asyncio.run(worker(pipe, share))
    except BaseException as exc:
        with contextlib.suppress(Exception):
            pipe.send(RuntimeError(f"loader failed: {exc!r}"))
        raise


# -- a lean HTTP/1.1 client for load generation ---------------------------------------------


class HTTPStatusError(RuntimeError):
    """An answer outside 2xx."""


@dataclass(slots=True)
class HTTPResponse:
    status: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    def raise_for_status(self) -> HTTPResponse:
        if not 200 <= self.status < 300:
            raise HTTPStatusError(f"HTTP {self.status}: {self.body[:300]!r}")
        return self


def http_request(
    url: str,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> bytes:
    """One HTTP/1.1 request as bytes (`url`: the server's http:// base), built before a timed
    phase so that sending it costs a write: the request line, Host, the caller's headers, and
    with a body Content-Type JSON and its Content-Length."""
    if body or method in ("POST", "PUT", "PATCH"):
        return JSONRequests(url, method, path, headers).build(body)
    return _request_head(url, method, path, headers) + b"\r\n"


def _request_head(url: str, method: str, path: str, headers: dict[str, str] | None) -> bytes:
    host = url.split("://", 1)[1].rstrip("/")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


class JSONRequests:
    """Requests with JSON bodies to one path with the same headers: everything but the body
    and its length is encoded once, so building one costs a bytes format (~1 µs) where a
    load generator builds them as it goes."""

    __slots__ = ("_head",)

    def __init__(
        self, url: str, method: str, path: str, headers: dict[str, str] | None = None
    ) -> None:
        head = _request_head(url, method, path, headers)
        self._head = head + b"Content-Type: application/json\r\nContent-Length: "

    def build(self, body: bytes) -> bytes:
        return b"%s%d\r\n\r\n%s" % (self._head, len(body), body)


class HTTPConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams, one request at a time: write
    pre-built bytes (`http_request`), read the status line, the headers and a Content-Length
    (or chunked) body. httpx spends ~0.3–0.5 ms of client CPU per request, which would make a
    one-core load generator saturate before the server; this spends a few tens of µs
    (send_throughput.py prints it per message). Not a general client: no TLS, no redirects,
    no pipelining, no proxies."""

    def __init__(self, url: str) -> None:
        host, _, port = url.split("://", 1)[1].rstrip("/").partition(":")
        self.host = host
        self.port = int(port or 80)
        self.reconnects = 0  # idle keep-alive connections the server had closed
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> HTTPConnection:
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), CONNECT_TIMEOUT
        )
        return self

    async def request(self, raw: bytes) -> HTTPResponse:
        """Send one pre-built request and read its answer. A connection the server closed
        while idle (uvicorn does after 5 s) is reopened first, as browsers do; one closed
        after the request was written fails with asyncio.IncompleteReadError."""
        reader, writer = self._reader, self._writer
        if reader is None or writer is None or reader.at_eof() or writer.is_closing():
            if writer is not None:
                self.reconnects += 1
                writer.close()
            await self.connect()
            reader, writer = self._reader, self._writer
            assert reader is not None and writer is not None
        writer.write(raw)
        if writer.transport.get_write_buffer_size() > 65536:
            await writer.drain()  # only a large body waits for the socket
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        if not lines[0].startswith(b"HTTP/1."):
            raise ConnectionError(f"not an HTTP/1.x answer: {lines[0][:100]!r}")
        status = int(lines[0][9:12])
        length: int | None = None
        chunked = close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if chunked:
            body = await self._chunked(reader)
        elif length is not None:
            body = await reader.readexactly(length)
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:  # neither length nor chunks: the body runs to the end of the connection
            body, close = await reader.read(), True
        if close:
            writer.close()
        return HTTPResponse(status, body)

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailers
                return b"".join(parts)
            parts.append((await reader.readexactly(size + 2))[:-2])

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await self._writer.wait_closed()
            self._writer = self._reader = None


def own_cpu() -> float:
    """User + system CPU this process has used so far."""
    t = os.times()
    return t.user + t.system


# -- PostgreSQL for the server under test ----------------------------------------------------

DEFAULT_POSTGRES_URL = os.environ.get(
    "WARBLER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def redact_url(url: str) -> str:
    """`url` without its password, for result files."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _plain_postgres_url(url: str) -> str:
    """postgresql+asyncpg://… → postgresql://… (what asyncpg wants)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


def asyncpg_url(url: str) -> str:
    """postgresql://… → postgresql+asyncpg://… (what WARBLER_DATABASE_URL wants)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+asyncpg://{rest}" if scheme in ("postgres", "postgresql") else url


async def postgres_admin(admin_url: str, sql: str, *args: Any) -> list[Any]:
    """Run one statement on the admin database (a fresh connection: CREATE/DROP DATABASE
    cannot run inside a pool's transaction); returns its rows."""
    import asyncpg

    conn = await asyncpg.connect(_plain_postgres_url(admin_url), timeout=5)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def postgres_unreachable(admin_url: str) -> str | None:
    """Why PostgreSQL at `admin_url` cannot be used for a bench database, or None."""
    try:
        await postgres_admin(admin_url, "SELECT 1")
    except Exception as exc:  # any failure means: say so in the table, measure the rest
        return f"{type(exc).__name__}: {exc}"
    return None


@contextlib.asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[str]:
    """A fresh database `warbler_bench_<random>` on the server of `admin_url` (as the tests
    make theirs), dropped afterwards with whatever is still connected to it; yields its
    WARBLER_DATABASE_URL (postgresql+asyncpg://)."""
    from urllib.parse import urlsplit, urlunsplit

    name = f"warbler_bench_{os.urandom(6).hex()}"
    await postgres_admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        parts = urlsplit(_plain_postgres_url(admin_url))
        yield asyncpg_url(urlunsplit(parts._replace(path=f"/{name}")))
    finally:
        await postgres_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class PostgresSampler:
    """CPU of the PostgreSQL backends serving one database while a phase runs (% of one
    core): PostgreSQL runs on this machine unpinned, and its work is part of a send's cost.
    Backends are found in /proc by their process title ("postgres: … user database host…")
    every `every` s, so those the server's pool opens and closes during the phase count too
    (less the CPU of their last `every` s, and those living shorter than that)."""

    def __init__(self, database_url: str, every: float = 0.1) -> None:
        from urllib.parse import urlsplit

        self.marker = f" {urlsplit(database_url).path.lstrip('/')} ".encode()
        self.every = every
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._t0 = self._t1 = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _backends(self) -> list[int]:
        found = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    title = Path(entry.path, "cmdline").read_bytes()
                    if title.startswith(b"postgres: ") and self.marker in title:
                        found.append(int(entry.name))
        return found

    def _sample(self, first: bool) -> None:
        for pid in self._backends():
            with contextlib.suppress(OSError):
                used = cpu_seconds(pid)
                # a backend started during the phase spent all of its CPU in it
                self._first.setdefault(pid, used if first else 0.0)
                self._last[pid] = used

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample(first=False)

    def __enter__(self) -> PostgresSampler:
        self._sample(first=True)
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(first=False)
        self._t1 = time.monotonic()

    def cpu_pct(self) -> float:
        used = sum(self._last[pid] - self._first[pid] for pid in self._last)
        return round(100 * used / max(1e-9, self._t1 - self._t0), 1)


@contextlib.asynccontextmanager
async def warbler_server(
    db: str,
    *,
    postgres_url: str = DEFAULT_POSTGRES_URL,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Server]:
    """A started Warbler server on `db`: "sqlite" (in its temporary data dir, whatever the
    developer's environment says) or "postgres" (a fresh database on the server at
    `postgres_url`, dropped once the server has stopped)."""
    async with contextlib.AsyncExitStack() as stack:
        if db == "sqlite":
            database_url = ""
        elif db == "postgres":
            database_url = await stack.enter_async_context(postgres_database(postgres_url))
        else:
            raise ValueError(f"a bench database is sqlite or postgres, not {db!r}")
        server = Server(env={**(env or {}), "WARBLER_DATABASE_URL": database_url})
        server.start()
        stack.callback(server.stop)  # runs before the database is dropped
        try:
            yield server
        except BaseException:
            exit_code = server.proc.poll() if server.proc is not None else None
            print(f"server (exit code {exit_code}) log:\n{server.log_tail()}", file=sys.stderr)
            raise


STALL_SECONDS = 10.0  # a phase ends early when no frame arrived for this long


async def wait_phase(done: asyncio.Event, phase: dict[str, Any]) -> None:
    """Wait until ``done``, or until no frame arrived (``phase["got"]`` did not move) for
    STALL_SECONDS (three times that for the first stretch)."""
    first = True
    while not done.is_set():
        before = phase["got"]
        try:
            async with asyncio.timeout(STALL_SECONDS * (3 if first else 1)):
                await done.wait()
        except TimeoutError:
            if phase["got"] == before:
                return
        first = False
