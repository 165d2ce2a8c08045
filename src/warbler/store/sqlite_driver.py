"""The embedded SQLite driver for the async engine: statements run inline, blocking calls in a
thread.

aiosqlite runs every call on the connection's own thread: opening a cursor, executing,
fetching and closing are four thread hops per statement, ~240 µs of CPU against ~15 µs for
the same statement run directly (bench figures in BENCHMARKS.md). Here a statement runs on
the event loop's thread, as a local function call; only the calls that can wait on the disk
or on another process go to the connection's thread:

- opening and closing the connection;
- ``BEGIN IMMEDIATE`` (waits, up to ``busy_timeout``, for another process's write lock);
- a commit or rollback after writes (the commit is where SQLite syncs the WAL and
  checkpoints);
- any statement that is not a read outside a write transaction (it may need the write lock:
  waiting for it on the loop's thread would stall every other request, and deadlock on a
  lock another task of this loop holds).

Reads never wait in WAL mode, and statements inside ``BEGIN IMMEDIATE`` already hold the
write lock, so neither can block. URL: ``sqlite+warbler:///path`` (the default store).
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import pool, util
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi, SQLiteDialect_aiosqlite
from sqlalchemy.engine import AdaptedConnection
from sqlalchemy.engine.url import URL
from sqlalchemy.util.concurrency import await_, in_greenlet

_READS = ("SELECT", "WITH", "EXPLAIN")


async def _nothing() -> None:
    return None


def _is_read(sql: str) -> bool:
    return sql.lstrip()[:7].upper().startswith(_READS)


class InlineCursor:
    """A sqlite3 cursor behind the async adapter's interface, run on the caller's thread."""

    __slots__ = ("_adapt", "_cursor", "_rows", "server_side")

    def __init__(self, adapt: InlineConnection, server_side: bool = False) -> None:
        self._adapt = adapt
        self._cursor = adapt.raw.cursor()
        self._rows: collections.deque[Any] = collections.deque()
        self.server_side = server_side

    description = property(lambda self: self._cursor.description)
    rowcount = property(lambda self: self._cursor.rowcount)
    lastrowid = property(lambda self: self._cursor.lastrowid)

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    def execute(self, operation: str, parameters: Any = None) -> Any:
        args = (operation,) if parameters is None else (operation, parameters)
        self._adapt.run(self._cursor.execute, *args)
        if self._cursor.description and not self.server_side:
            # Buffered, as the async adapters do: the statement is finished at once.
            self._rows = collections.deque(self._cursor.fetchall())
        return self

    def executemany(self, operation: str, seq_of_parameters: Any) -> Any:
        return self._adapt.run(self._cursor.executemany, operation, seq_of_parameters)

    def fetchone(self) -> Any:
        if self.server_side:
            return self._cursor.fetchone()
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        if self.server_side:
            return self._cursor.fetchmany(size or self._cursor.arraysize)
        size = size or self._cursor.arraysize
        return [self._rows.popleft() for _ in range(min(size, len(self._rows)))]

    def fetchall(self) -> list[Any]:
        if self.server_side:
            return self._cursor.fetchall()
        rows, self._rows = list(self._rows), collections.deque()
        return rows

    def close(self) -> None:
        self._rows.clear()
        self._cursor.close()

    async def _async_soft_close(self) -> None:
        """Called by SQLAlchemy's asyncio results; the rows are already buffered."""

    def __iter__(self) -> Any:
        while (row := self.fetchone()) is not None:
            yield row


class InlineConnection(AdaptedConnection):
    """The pool's connection: a sqlite3 connection and the one thread that makes its
    blocking calls."""

    __slots__ = ("_closed", "_immediate", "_thread", "_wrote", "dbapi", "raw")

    def __init__(self, dbapi: Any, raw: sqlite3.Connection, thread: ThreadPoolExecutor) -> None:
        self.dbapi = dbapi
        self.raw = raw
        self._connection = raw  # type: ignore[assignment]  # AdaptedConnection.driver_connection
        self._thread = thread
        self._immediate = False  # inside BEGIN IMMEDIATE: holds the write lock
        self._wrote = False  # the open transaction has written (its end may sync)
        self._closed = False

    def run(self, fn: Any, sql: str, *args: Any) -> Any:
        """``fn(sql, *args)`` here, or on the thread when it may block (see the module)."""
        if self._immediate or _is_read(sql):
            return self.inline(fn, sql, *args)
        head = sql.lstrip()[:16].upper()
        if head.startswith("BEGIN IMMEDIATE"):
            # Marked before: a rollback after a cancelled wait must queue on the thread
            # behind it, never run here while it still waits for the lock.
            self._wrote = True
            result = self.offload(fn, sql, *args)
            self._immediate = True
            return result
        if head == "BEGIN" or head.startswith("BEGIN "):
            return self.inline(fn, sql, *args)  # a deferred BEGIN takes no lock
        self._wrote = True
        return self.offload(fn, sql, *args)

    @staticmethod
    def inline(fn: Any, *args: Any) -> Any:
        # One switch out of SQLAlchemy's greenlet and back (~1 µs): its AsyncConnection
        # insists that every statement awaited something.
        if in_greenlet():
            await_(_nothing())
        return fn(*args)

    def offload(self, fn: Any, *args: Any) -> Any:
        if not in_greenlet():  # a synchronous caller (garbage collection): run here
            return fn(*args)
        loop = asyncio.get_running_loop()
        return await_(loop.run_in_executor(self._thread, fn, *args))

    def cursor(self, server_side: bool = False) -> InlineCursor:
        return InlineCursor(self, server_side)

    def execute(self, operation: str, parameters: Any = None) -> InlineCursor:
        cursor = self.cursor()
        cursor.execute(operation, parameters)
        return cursor

    @property
    def isolation_level(self) -> str | None:
        return self.raw.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self.raw.isolation_level = value  # type: ignore[assignment]

    def create_function(self, *args: Any, **kw: Any) -> None:
        self.raw.create_function(*args, **kw)

    def commit(self) -> None:
        self._end(self.raw.commit)

    def rollback(self) -> None:
        self._end(self.raw.rollback)

    def _end(self, fn: Any) -> None:
        wrote, self._immediate, self._wrote = self._wrote, False, False
        if not wrote:
            fn()  # a read transaction's end: nothing to sync
        elif in_greenlet():
            self.offload(fn)
        else:  # the pool's clean-up of a dropped connection: in order, without waiting
            self._thread.submit(fn)

    def close(self) -> None:
        # On the thread, behind any call still running there (one a cancelled task left).
        if self._closed:
            return
        self._closed = True
        if in_greenlet():
            self.offload(self.raw.close)
        else:
            self._thread.submit(self.raw.close)
        self._thread.shutdown(wait=False)

    def terminate(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._thread.submit(self.raw.close)
        self._thread.shutdown(wait=False)


class InlineDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """sqlite3's names (errors, version) with a ``connect`` that opens on the thread."""

    def __init__(self) -> None:
        super().__init__(sqlite3, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> InlineConnection:  # type: ignore[override]
        kw.pop("async_creator_fn", None)
        kw["check_same_thread"] = False  # opened on its thread, used on the loop's too
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        loop = asyncio.get_running_loop()
        raw = await_(loop.run_in_executor(thread, lambda: sqlite3.connect(*arg, **kw)))
        return InlineConnection(self, raw, thread)


class SQLiteDialect_warbler(SQLiteDialect_aiosqlite):
    driver = "warbler"
    supports_statement_cache = True
    supports_server_side_cursors = True
    has_terminate = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.has_terminate = True

    @classmethod
    def import_dbapi(cls) -> InlineDBAPI:
        return InlineDBAPI()

    def retrieve_dbapi_version(self, dbapi: Any) -> util.VersionInfo:
        return util.parse_version_string(sqlite3.sqlite_version)

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.AsyncAdaptedQueuePool if cls._is_url_file_db(url) else pool.StaticPool

    def get_driver_connection(self, connection: Any) -> Any:
        return connection.raw

    def do_terminate(self, dbapi_connection: Any) -> None:
        dbapi_connection.terminate()


dialect = SQLiteDialect_warbler
