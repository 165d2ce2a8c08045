"""The database handle: one async engine, a read session and a serialized write transaction."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.dialects import registry
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# Set while this task is inside a write transaction (on SQLite it holds the write lock, so
# it must not open another write transaction: that would wait for itself).
_IN_WRITE: ContextVar[bool] = ContextVar("warbler_in_write", default=False)
# Set just while a write transaction opens its SQLite connection: BEGIN IMMEDIATE takes the
# write lock first (waiting up to busy_timeout for another process, such as a `warbler keys`
# command), instead of reading a snapshot another process's commit makes stale, which would
# fail the first write with "database is locked".
_IMMEDIATE: ContextVar[bool] = ContextVar("warbler_sqlite_immediate", default=False)


# The embedded SQLite driver (statements inline, blocking calls on a thread: sqlite_driver.py).
registry.register("sqlite.warbler", "warbler.store.sqlite_driver", "SQLiteDialect_warbler")
_SQLITE_URL = re.compile(r"^sqlite(\+aiosqlite|\+pysqlite)?://")


class Database:
    """Owns the engine. ``write()`` is a transaction; on SQLite writers queue in-process.

    SQLite allows one writer at a time; queueing writers on an asyncio lock is far cheaper
    than letting them spin on ``database is locked``. PostgreSQL needs no such lock.
    """

    def __init__(self, url: str, *, sqlite_synchronous: str = "FULL", echo: bool = False) -> None:
        # Every SQLite URL runs on Warbler's driver: one tested path (sqlite_driver.py).
        self.url = url = _SQLITE_URL.sub("sqlite+warbler://", url)
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {
            "echo": echo,
            # orjson writes datetimes (as RFC 3339) where the stdlib json would fail.
            "json_serializer": lambda value: orjson.dumps(value).decode(),
            "json_deserializer": orjson.loads,
        }
        if not self.is_sqlite:
            kwargs.update(pool_size=20, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine, sqlite_synchronous)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @staticmethod
    def in_write() -> bool:
        """Whether the calling task is inside ``write()``/``write_then()``."""
        return _IN_WRITE.get()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction committed on success; the caller may publish events after it."""
        lock = self._write_lock or contextlib.nullcontext()
        token = _IN_WRITE.set(True)
        try:
            async with lock, self._sessions() as session, session.begin():
                await self._begin_writing(session)
                yield session
                await _run_before_commit(session)
        finally:
            _IN_WRITE.reset(token)

    @contextlib.asynccontextmanager
    async def write_then(self) -> AsyncIterator[tuple[AsyncSession, list[Any]]]:
        """Like ``write()``, but hands back a list the caller fills with post-commit callbacks.

        The callbacks run after the commit while the SQLite write lock is still held, so
        events are published in exactly the order their transactions committed.
        """
        lock = self._write_lock or contextlib.nullcontext()
        after: list[Any] = []
        token = _IN_WRITE.set(True)
        try:
            async with lock:
                async with self._sessions() as session, session.begin():
                    await self._begin_writing(session)
                    yield session, after
                    await _run_before_commit(session)
                for callback in after:
                    callback()
        finally:
            _IN_WRITE.reset(token)

    async def _begin_writing(self, session: AsyncSession) -> None:
        if self.is_sqlite:
            token = _IMMEDIATE.set(True)
            try:
                await session.connection()
            finally:
                _IMMEDIATE.reset(token)

    async def dispose(self) -> None:
        await self.engine.dispose()


_BEFORE_COMMIT = "warbler.before_commit"


def before_commit(session: AsyncSession, hook: Callable[[AsyncSession], Awaitable[None]]) -> None:
    """Run ``hook`` at the end of this write transaction, just before it commits (once)."""
    session.info.setdefault(_BEFORE_COMMIT, []).append(hook)


async def _run_before_commit(session: AsyncSession) -> None:
    for hook in session.info.pop(_BEFORE_COMMIT, []):
        await hook(session)


def _configure_sqlite(engine: AsyncEngine, synchronous: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # sqlite3's default isolation begins lazily; we want BEGIN IMMEDIATE semantics
        # handled by our own write lock, so autocommit off with explicit BEGIN.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _IMMEDIATE.get() else "BEGIN")
