"""The embedded SQLite driver (store/sqlite_driver.py): statements run on the loop's thread,
what can wait runs on the connection's thread, and the loop never waits on a lock."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from warbler.store.db import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}", sqlite_synchronous="FULL")
    async with database.write() as s:
        await s.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    yield database
    await database.dispose()


def _trace(db: Database) -> list[tuple[str, bool]]:
    """Every statement SQLite runs, and whether it ran on the event loop's thread."""
    seen: list[tuple[str, bool]] = []
    loop_thread = threading.get_ident()

    @event.listens_for(db.engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.raw.set_trace_callback(
            lambda sql: seen.append((sql.split()[0].upper(), threading.get_ident() == loop_thread))
        )

    return seen


async def test_every_sqlite_url_runs_on_the_warbler_driver(tmp_path: Path) -> None:
    for url in ("sqlite:///", "sqlite+aiosqlite:///", "sqlite+pysqlite:///"):
        database = Database(f"{url}{tmp_path / 'x.db'}")
        assert database.engine.dialect.driver == "warbler"
        await database.dispose()


async def test_statements_run_inline_and_the_waiting_calls_on_the_thread(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'd.db'}", sqlite_synchronous="FULL")
    seen = _trace(db)
    async with db.write() as s:
        await s.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    seen.clear()
    async with db.write() as s:
        await s.execute(text("INSERT INTO t (v) VALUES ('a')"))
        await s.execute(text("UPDATE t SET v = 'b'"))
        assert (await s.scalar(text("SELECT v FROM t"))) == "b"
    async with db.read() as s:
        assert (await s.scalar(text("SELECT count(*) FROM t"))) == 1
    await db.dispose()
    on_loop = {(sql, inline) for sql, inline in seen}
    # The write transaction: its lock and its commit (where SQLite syncs) off the loop;
    # its statements on it.
    assert ("BEGIN", False) in on_loop  # BEGIN IMMEDIATE
    assert ("COMMIT", False) in on_loop
    assert {("INSERT", True), ("UPDATE", True), ("SELECT", True)} <= on_loop
    assert ("INSERT", False) not in on_loop and ("UPDATE", False) not in on_loop
    # The read transaction never leaves the loop: a deferred BEGIN and its COMMIT are free.
    read_part = seen[seen.index(("COMMIT", False)) + 1 :]
    assert read_part and all(inline for _, inline in read_part), read_part


async def test_a_lock_held_by_another_process_never_stalls_the_loop(db: Database) -> None:
    """``warbler keys`` or ``warbler privacy`` writing to a served database: the node's writer
    waits for the lock on its thread; the loop keeps serving, and reads go on (WAL)."""
    path = db.engine.url.database
    assert path is not None
    held = threading.Event()
    release = threading.Event()

    def other_process() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES ('theirs')")
        held.set()
        release.wait(5)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=other_process)
    holder.start()
    assert await asyncio.to_thread(held.wait, 5)

    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async def ours() -> None:
        async with db.write() as s:
            await s.execute(text("INSERT INTO t (v) VALUES ('ours')"))

    tick = asyncio.create_task(ticker())
    write = asyncio.create_task(ours())
    await asyncio.sleep(0.3)
    assert not write.done()  # waiting for the lock...
    async with db.read() as s:  # ...while reads are served
        assert (await s.scalar(text("SELECT count(*) FROM t"))) == 0
    release.set()
    await asyncio.wait_for(write, 5)
    tick.cancel()
    holder.join(5)
    assert max(gaps) < 0.15, f"the loop stalled {max(gaps):.3f} s"
    async with db.read() as s:
        assert sorted((await s.scalars(text("SELECT v FROM t"))).all()) == ["ours", "theirs"]


async def test_a_cancelled_write_leaves_the_connection_usable(db: Database) -> None:
    async def slow_write() -> None:
        async with db.write() as s:
            await s.execute(text("INSERT INTO t (v) VALUES ('never')"))
            await asyncio.sleep(10)

    task = asyncio.create_task(slow_write())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for i in range(20):  # every pooled connection still works, and nothing leaked through
        async with db.write() as s:
            await s.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"v{i}"})
    async with db.read() as s:
        values = (await s.scalars(text("SELECT v FROM t"))).all()
    assert "never" not in values and len(values) == 20
