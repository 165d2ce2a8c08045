"""Liveness and readiness: ``GET /health`` answers whenever the process does; ``GET /ready``
answers 503 when the database, the schema, Redis or the node's own lifecycle says "not now",
within a bounded time, and never shows a secret."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tests.conftest import free_port, make_settings
from tests.services import PostgresService, RedisService, asyncpg_url
from warbler import __version__
from warbler.app import create_app
from warbler.config import Settings
from warbler.store.migrate import script_heads, upgrade

PASSWORD = "hunter2-not-for-your-eyes"


@contextlib.asynccontextmanager
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # No /api/v1: the probes live at the root, where load balancers expect them.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


@contextlib.asynccontextmanager
async def bare_app(settings: Settings, *, migrate: bool) -> AsyncIterator[FastAPI]:
    """The app without its lifespan (no bus, no workers): only what /ready itself touches."""
    app = create_app(settings)
    db = app.state.services.db
    try:
        if migrate:
            await upgrade(db)
        yield app
    finally:
        await db.dispose()


@pytest.fixture(params=["refused", "hung"])
def dead_port(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """A port where nothing listens, or one that accepts connections and never says a word
    (a hung database or Redis: the kernel completes the handshake, nobody reads)."""
    if request.param == "refused":
        yield "refused", free_port()
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield "hung", int(sock.getsockname()[1])


@pytest.fixture
def fresh_database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """An empty database (no schema at all) on each backend."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    postgres: PostgresService = request.getfixturevalue("postgres")
    url = postgres.create_database()
    yield asyncpg_url(url)
    postgres.drop_database(url)


# -- liveness ----------------------------------------------------------------------------


async def test_health_answers_ok_with_node_and_version_without_credentials(app, settings):
    async with http(app) as c:
        r = await c.get("/health")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "node": settings.effective_node_id,
        "version": __version__,
    }


# -- readiness ---------------------------------------------------------------------------


async def test_ready_reports_each_check_when_database_and_schema_are_current(app, settings):
    async with http(app) as c:
        r = await c.get("/ready")
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["status"] == "ok"
    assert body["node"] == settings.effective_node_id
    assert body["version"] == __version__
    checks = body["checks"]
    assert set(checks) == {"lifecycle", "database", "migrations"}  # no Redis configured
    assert checks["lifecycle"] == {"ok": True, "state": "serving"}
    assert checks["database"]["ok"] is True
    assert 0 <= checks["database"]["latency_ms"] < 2000
    head = ",".join(script_heads())
    assert checks["migrations"] == {"ok": True, "revision": head, "head": head, "state": "current"}


async def test_a_draining_node_is_not_ready_but_still_alive(app):
    app.state.readiness.begin_draining()
    async with http(app) as c:
        ready, health = await c.get("/ready"), await c.get("/health")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["checks"] == {"lifecycle": {"ok": False, "state": "draining"}}
    assert health.status_code == 200


async def test_ready_is_503_until_the_schema_is_migrated_to_head(fresh_database_url, tmp_path):
    settings = make_settings(tmp_path / "data", database_url=fresh_database_url, auto_migrate=False)
    async with bare_app(settings, migrate=False) as app, http(app) as c:
        r = await c.get("/ready")
        assert r.status_code == 503
        checks = r.json()["checks"]
        assert checks["database"]["ok"] is True  # it answers; it is the schema that is behind
        assert checks["migrations"]["ok"] is False
        assert checks["migrations"]["revision"] is None
        assert checks["migrations"]["state"] == "behind"
        assert checks["migrations"]["head"] == ",".join(script_heads())
        assert "warbler migrate" in checks["migrations"]["error"]

        await upgrade(app.state.services.db)  # what `warbler migrate` does
        assert (await c.get("/ready")).status_code == 200


async def test_an_old_node_stays_ready_when_the_schema_is_ahead_of_its_code(
    fresh_database_url, tmp_path
):
    """A rolling upgrade: `warbler migrate` ran for the new code; old nodes keep serving."""
    settings = make_settings(tmp_path / "data", database_url=fresh_database_url)
    async with bare_app(settings, migrate=True) as app, http(app) as c:
        async with app.state.services.db.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
        r = await c.get("/ready")
    assert r.status_code == 200, r.text
    migrations = r.json()["checks"]["migrations"]
    assert migrations["state"] == "ahead"
    assert migrations["revision"] == "from_the_future"


async def test_ready_is_503_fast_when_the_database_does_not_answer(dead_port, tmp_path) -> None:
    server, port = dead_port
    url = f"postgresql+asyncpg://warbler:{PASSWORD}@127.0.0.1:{port}/warbler"
    settings = make_settings(
        tmp_path / "data", database_url=url, auto_migrate=False, ready_timeout_seconds=0.3
    )
    async with bare_app(settings, migrate=False) as app, http(app) as c:
        started = time.monotonic()
        r = await c.get("/ready")
        elapsed = time.monotonic() - started
    assert r.status_code == 503
    checks = r.json()["checks"]
    assert checks["database"]["ok"] is False
    assert checks["migrations"]["ok"] is False
    if server == "hung":
        assert checks["database"]["error"] == "no answer within 0.3 s"
    assert elapsed < 2.0
    assert PASSWORD not in r.text and "127.0.0.1" not in r.text


async def test_ready_checks_redis_when_it_is_configured(
    redis_service: RedisService, tmp_path
) -> None:
    settings = make_settings(tmp_path / "data", redis_url=redis_service.url)
    async with bare_app(settings, migrate=True) as app, http(app) as c:
        r = await c.get("/ready")
    assert r.status_code == 200, r.text
    assert r.json()["checks"]["redis"]["ok"] is True
    assert r.json()["checks"]["redis"]["latency_ms"] >= 0


async def test_ready_is_503_fast_when_redis_does_not_answer(dead_port, tmp_path) -> None:
    server, port = dead_port
    settings = make_settings(
        tmp_path / "data",
        redis_url=f"redis://:{PASSWORD}@127.0.0.1:{port}/0",
        ready_timeout_seconds=0.3,
    )
    async with bare_app(settings, migrate=True) as app, http(app) as c:
        started = time.monotonic()
        r = await c.get("/ready")
        elapsed = time.monotonic() - started
    assert r.status_code == 503
    checks: dict[str, Any] = r.json()["checks"]
    assert checks["redis"]["ok"] is False
    assert checks["database"]["ok"] is True  # one failing dependency is reported as such
    if server == "hung":
        assert checks["redis"]["error"] == "no answer within 0.3 s"
    assert elapsed < 2.0
    assert PASSWORD not in r.text


async def test_a_node_without_auto_migrate_refuses_to_start_on_an_old_schema(tmp_path):
    from tests.conftest import make_settings
    from warbler.app import create_app

    app = create_app(make_settings(tmp_path / "fresh", auto_migrate=False))
    with pytest.raises(RuntimeError, match="warbler migrate"):
        async with app.router.lifespan_context(app):
            pass
    await app.state.services.close()
