"""Shared fixtures: a real app on a temp SQLite file, factories, and a real server process."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.services import PostgresService, RedisService, asyncpg_url, start_postgres, start_redis
from warbler.app import create_app
from warbler.config import Settings, load_settings
from warbler.services import Services

API = "/api/v1"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "sqlite_synchronous": "NORMAL",  # tests need crash safety, not power-loss safety
        # A developer's own WARBLER_* stores must not leak in: tests choose theirs.
        "database_url": "",
        "redis_url": "",
        "webhook_allow_private_targets": True,
        "webhook_backoff_base_seconds": 0.05,
        "webhook_backoff_max_seconds": 0.2,
        "job_poll_seconds": 0.05,
        # Tests send in bursts; test_rate_limits.py checks the limit with its own settings.
        "send_rate_per_second": 10_000,
        "send_burst": 10_000,
    }
    values.update(overrides)
    return load_settings(None, **values)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresService]:
    """One PostgreSQL server for the run, and one fresh database on it."""
    service = start_postgres()
    url = service.create_database()
    service.database_url = url  # type: ignore[attr-defined]
    yield service
    service.drop_database(url)
    if service.stop is not None:
        service.stop.cleanup()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def redis_service() -> Iterator[RedisService]:
    service = start_redis()
    yield service
    service.terminate()


@pytest.fixture
def own_redis() -> Iterator[RedisService]:
    """A private Redis this test may stop and restart."""
    service = start_redis(own=True)
    yield service
    service.terminate()


@pytest.fixture
def prefix() -> str:
    """A Redis key prefix of the test's own, so tests sharing a Redis never meet."""
    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def postgres_url(postgres: PostgresService) -> str:
    """The run's database, emptied for this test."""
    url: str = postgres.database_url  # type: ignore[attr-defined]
    asyncio.run(_truncate_all(url))
    return asyncpg_url(url)


async def _truncate_all(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"
        )
        if tables:
            names = ", ".join(f'"{t["tablename"]}"' for t in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Tests that take ``settings`` run on both stores: the same suite must pass on each."""
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    return backend_settings(backend, request, tmp_path / "data")


def backend_settings(
    backend: str, request: pytest.FixtureRequest, data_dir: Path, **overrides: Any
) -> Settings:
    """Settings on ``backend`` (a fresh PostgreSQL database, or SQLite in ``data_dir``). Test
    modules with their own ``settings`` fixture take ``backend`` and call this, so they too
    run on both stores."""
    if backend == "postgresql":
        overrides.setdefault("database_url", request.getfixturevalue("postgres_url"))
    return make_settings(data_dir, **overrides)


# A node's shutdown that takes longer than this is a hang: the test fails with every task's
# stack instead of waiting for pytest-timeout's thread dump (which shows no coroutines).
SHUTDOWN_LIMIT_SECONDS = 60


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    lifespan = application.router.lifespan_context(application)
    await lifespan.__aenter__()
    yield application
    shutdown = asyncio.create_task(lifespan.__aexit__(None, None, None), name="app-shutdown")
    done, _ = await asyncio.wait({shutdown}, timeout=SHUTDOWN_LIMIT_SECONDS)
    if not done:
        stacks = _task_stacks()
        shutdown.cancel()
        pytest.fail(f"the app did not shut down within {SHUTDOWN_LIMIT_SECONDS} s:\n{stacks}")
    shutdown.result()


def _task_stacks() -> str:
    out = io.StringIO()
    for task in asyncio.all_tasks():
        print(f"--- {task.get_name()}", file=out)
        task.print_stack(file=out)
    return out.getvalue()


@pytest.fixture
def services(app: FastAPI) -> Services:
    return app.state.services  # type: ignore[no-any-return]


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://test{API}") as c:
        yield c


# -- factories ---------------------------------------------------------------------------


@dataclass
class Actor:
    """A user with a token: ``actor.headers`` authenticates a request as them."""

    id: str
    username: str
    token: str
    tenant_id: str
    role: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Tenant:
    id: str
    slug: str
    services: Services
    users: dict[str, Actor] = field(default_factory=dict)

    async def user(self, username: str, *, role: str | None = None, kind: str = "human") -> Actor:
        created = await self.services.users.create_user(
            self.id, username=username, role=role, kind=kind,
            password="correct horse battery" if kind == "human" else None,
        )  # fmt: skip
        token = await self.services.auth.issue_token(self.id, created["id"])
        actor = Actor(created["id"], username, token["access_token"], self.id, created["role"])
        self.users[username] = actor
        return actor

    async def api_key(self, *scopes: str) -> str:
        key = await self.services.auth.create_api_key(
            self.id, name="test", scopes=list(scopes) or ["admin"], created_by=None
        )
        return str(key["key"])


@pytest.fixture
def make_tenant(services: Services) -> Any:
    async def make(slug: str = "acme") -> Tenant:
        created = await services.users.create_tenant(slug=slug, name=slug.title())
        return Tenant(created["id"], slug, services)

    return make


async def group_of(
    client: httpx.AsyncClient, owner: Actor, *members: Actor, title: str = "G"
) -> str:
    r = await client.post(
        "/conversations",
        json={"kind": "group", "title": title, "member_ids": [m.id for m in members]},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def send(client: httpx.AsyncClient, actor: Actor, conv: str, text: str, **extra: Any) -> dict:
    r = await client.post(
        f"/conversations/{conv}/messages", json={"text": text, **extra}, headers=actor.headers
    )
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


# -- a real server process ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProcess:
    """``warbler serve`` in its own process, on a free port, over a data dir that outlives it
    (so a test can kill it and start another on the same data)."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    env_extra: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}{API}"

    def start(self, timeout: float = 20.0) -> None:
        env = {
            **os.environ,
            "WARBLER_DATA_DIR": str(self.data_dir),
            "WARBLER_PORT": str(self.port),
            "WARBLER_LOG_LEVEL": "warning",
            "WARBLER_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "WARBLER_DATABASE_URL": "",
            "WARBLER_REDIS_URL": "",
            "WARBLER_SEND_RATE_PER_SECOND": "10000",
            "WARBLER_SEND_BURST": "10000",
            **self.env_extra,
        }
        log = open(self.data_dir.parent / f"server-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "warbler.cli", "serve"], env=env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not become healthy")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    """Start servers; every one is stopped (by PID) at teardown."""
    started: list[ServerProcess] = []

    def start(data_dir: Path | None = None, **env: str) -> ServerProcess:
        data = data_dir or tmp_path / f"server-data-{len(started)}"
        data.mkdir(parents=True, exist_ok=True)
        server = ServerProcess(data, env_extra=env)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def seed_tenant(
    data_dir: Path, slug: str, users: list[tuple[str, str]], **settings: Any
) -> dict[str, Any]:
    """Create a tenant and users with a fresh data dir via the CLI path (no server needed);
    ``settings`` overrides (a ``database_url``, say) pick the store.
    Returns {"tenant_id", "users": {username: {"id", "token"}}}."""
    import asyncio

    from warbler.services import build_services
    from warbler.store.migrate import upgrade

    async def run() -> dict[str, Any]:
        svc = build_services(make_settings(data_dir, **settings))
        try:
            await upgrade(svc.db)
            tenant = await svc.users.create_tenant(slug=slug, name=slug)
            out: dict[str, Any] = {"tenant_id": tenant["id"], "users": {}}
            for username, role in users:
                u = await svc.users.create_user(
                    tenant["id"], username=username, role=role, password="correct horse battery"
                )
                tok = await svc.auth.issue_token(tenant["id"], u["id"])
                out["users"][username] = {"id": u["id"], "token": tok["access_token"]}
            return out
        finally:
            await svc.close()

    return asyncio.run(run())


# -- fake model vendors (tests/fakes/): real sockets on 127.0.0.1, scripted per request ------


@pytest.fixture
def fake_openai() -> Iterator[Any]:
    """An OpenAI-compatible vendor: ``.base_url``, ``.script(Reply(...))``, ``.requests``."""
    from tests.fakes.openai_wire import FakeOpenAI

    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake_anthropic() -> Iterator[Any]:
    """An Anthropic Messages API: ``.base_url``, ``.script(Reply(...))``, ``.requests``."""
    from tests.fakes.anthropic_wire import FakeAnthropic

    with FakeAnthropic() as fake:
        yield fake
