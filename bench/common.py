"""Shared bench plumbing: a pinned server process, seeding, /proc sampling, result files."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).parent / "results"
PASSWORD = "bench password 1"


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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
        cmd = [*pin(self.core), sys.executable, "-m", "warbler.cli", "serve"]
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for _ in range(300):
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("bench server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)


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
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

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


async def seed(server: Server, users: int) -> dict[str, Any]:
    """A tenant with `users` members (tokens issued by an API key) and one group of them all."""
    from warbler.config import load_settings
    from warbler.services import build_services
    from warbler.store.migrate import upgrade

    svc = build_services(load_settings(None, data_dir=server.data_dir))
    try:
        await upgrade(svc.db)
        tenant = await svc.users.create_tenant(slug="bench", name="bench")
        key = await svc.auth.create_api_key(
            tenant["id"], name="bench", scopes=["admin"], created_by=None
        )
    finally:
        await svc.close()
    headers = {"Authorization": f"Bearer {key['key']}"}
    tokens: list[tuple[str, str]] = []
    async with httpx.AsyncClient(base_url=f"{server.url}/api/v1", headers=headers) as c:
        for i in range(users):
            u = (await c.post("/users", json={"username": f"u{i}"})).json()
            tok = (await c.post(f"/users/{u['id']}/tokens", json={})).json()
            tokens.append((u["id"], tok["access_token"]))
        owner = {"Authorization": f"Bearer {tokens[0][1]}"}
        r = await c.post(
            "/conversations",
            json={"kind": "group", "title": "bench", "member_ids": [u for u, _ in tokens[1:]]},
            headers=owner,
        )
        r.raise_for_status()
    return {"conversation_id": r.json()["id"], "users": tokens}


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
