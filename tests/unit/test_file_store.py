"""LocalFileStore: all-or-nothing puts, chunked reads, deletes, and keys that cannot escape."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from warbler.files.store import InvalidKey, LocalFileStore

KEY = "01TENANT/2024/05/01FILE"


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def read_all(store: LocalFileStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in await store.open(key)])


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files", chunk_bytes=1000)


async def test_put_then_open_returns_the_same_bytes_in_bounded_chunks(store):
    data = bytes(range(256)) * 40  # 10,240 bytes
    await store.put(KEY, chunks(data[:3000], data[3000:], b""))
    assert await store.exists(KEY)
    assert await store.size(KEY) == len(data)
    read = [chunk async for chunk in await store.open(KEY)]
    assert b"".join(read) == data
    assert max(map(len, read)) <= 1000
    assert files_under(store.root) == [store.root / KEY]


async def test_nothing_is_visible_under_the_key_until_put_finishes(store):
    seen_mid_write: list[bool] = []

    async def slow() -> AsyncIterator[bytes]:
        yield b"first half "
        seen_mid_write.append(await store.exists(KEY))
        seen_mid_write.append(any(p.name == "01FILE" for p in files_under(store.root)))
        yield b"second half"

    await store.put(KEY, slow())
    assert seen_mid_write == [False, False]
    assert await read_all(store, KEY) == b"first half second half"


async def test_put_replaces_whole_file_atomically(store):
    await store.put(KEY, chunks(b"old content that is longer"))
    await store.put(KEY, chunks(b"new"))
    assert await read_all(store, KEY) == b"new"
    assert files_under(store.root) == [store.root / KEY]


async def test_a_failing_chunk_iterator_leaves_nothing_behind(store):
    async def broken() -> AsyncIterator[bytes]:
        yield b"partial data"
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError, match="client went away"):
        await store.put(KEY, broken())
    assert not await store.exists(KEY)
    assert files_under(store.root) == []


async def test_a_cancelled_put_leaves_nothing_behind(store):
    started = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield b"some bytes"
        started.set()
        await asyncio.Event().wait()  # never set: only cancellation ends this
        yield b"unreachable"

    task = asyncio.create_task(store.put(KEY, stalled()))
    await asyncio.wait_for(started.wait(), timeout=5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert files_under(store.root) == []


async def test_a_failed_put_keeps_the_previous_file(store):
    await store.put(KEY, chunks(b"kept"))

    async def broken() -> AsyncIterator[bytes]:
        yield b"replacement"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        await store.put(KEY, broken())
    assert await read_all(store, KEY) == b"kept"
    assert files_under(store.root) == [store.root / KEY]


async def test_delete_removes_and_is_idempotent(store):
    await store.put(KEY, chunks(b"bye"))
    await store.delete(KEY)
    assert not await store.exists(KEY)
    await store.delete(KEY)  # already gone: no error
    with pytest.raises(FileNotFoundError):
        await store.open(KEY)
    with pytest.raises(FileNotFoundError):
        await store.size(KEY)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../outside",
        "a/../../outside",
        "a/./b",
        "/etc/passwd",
        "a//b",
        "a/b/",
        ".hidden",
        "a/.part-123",
        "a\\..\\b",
        "a/b c",
        "a/\x00b",
        "/".join(["a"] * 9),
    ],
)
async def test_keys_that_could_escape_or_collide_are_rejected(store, tmp_path, key):
    with pytest.raises(InvalidKey):
        await store.put(key, chunks(b"x"))
    for call in (store.open, store.delete, store.exists, store.size):
        with pytest.raises(InvalidKey):
            await call(key)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


async def test_a_symlink_under_root_cannot_lead_outside(store, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    store.root.mkdir(parents=True)
    (store.root / "tenant").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidKey):
        await store.put("tenant/2024/05/f", chunks(b"x"))
    assert list(outside.iterdir()) == []


async def test_fsync_mode_stores_the_same_bytes(tmp_path):
    durable = LocalFileStore(tmp_path / "files", fsync=True)
    await durable.put(KEY, chunks(b"durable ", b"bytes"))
    assert await read_all(durable, KEY) == b"durable bytes"
