"""Where uploaded bytes live: the ``FileStore`` interface and the local-disk implementation.

An S3-compatible store (MinIO, Ceph, OSS, COS) can implement the same Protocol: ``put`` becomes
a multipart upload that is aborted on error, ``open`` a ranged GET streamed in chunks. The
composition root (``warbler.services.build_services``) picks the implementation once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK_BYTES = 64 * 1024
# A segment never starts with a dot, so "." and ".." are impossible and temp files
# (".part-…") can never collide with a stored key.
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
MAX_SEGMENTS = 8


class InvalidKey(ValueError):
    """The key is not a relative path of safe segments (it could escape the store's root)."""


class FileStore(Protocol):
    """Opaque keys (``<tenant_id>/<yyyy>/<mm>/<file_id>``) mapped to immutable byte strings.

    ``put`` is all-or-nothing: until it returns, nothing is visible under the key, and if the
    chunk iterator raises (too large, client gone, cancelled) nothing is left behind.
    ``open`` and ``size`` raise ``FileNotFoundError`` for a key that holds nothing.
    """

    async def put(self, key: str, chunks: AsyncIterator[bytes]) -> None: ...

    async def open(self, key: str) -> AsyncIterator[bytes]: ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...

    async def size(self, key: str) -> int: ...


def check_key(key: str) -> str:
    """The key, if every ``/``-separated segment is safe; else ``InvalidKey``."""
    segments = key.split("/")
    if not 1 <= len(segments) <= MAX_SEGMENTS or not all(
        _SEGMENT.fullmatch(segment) for segment in segments
    ):
        raise InvalidKey(f"invalid storage key {key!r}")
    return key


class LocalFileStore:
    """Files under ``root``; each ``put`` writes a temp file beside the target, then renames it.

    ``os.replace`` within one directory is atomic, so a reader sees the whole file or none.
    With ``fsync`` the bytes and the rename reach the disk before ``put`` returns, which is
    what lets the caller insert the database row that points at them. A process killed
    mid-upload can leave a ``.part-*`` temp file; it is never visible under any key.
    """

    def __init__(self, root: Path, *, fsync: bool = True, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.root = Path(root).resolve()
        self.fsync = fsync
        self.chunk_bytes = chunk_bytes

    def path_of(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        # Defence in depth: a symlink planted under root must not lead outside it.
        if not path.is_relative_to(self.root):
            raise InvalidKey(f"storage key {key!r} resolves outside the store")
        return path

    async def put(self, key: str, chunks: AsyncIterator[bytes]) -> None:
        path = self.path_of(key)
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".part-", dir=path.parent)
        tmp = Path(tmp_name)
        placed = False
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    # Small writes land in the page cache; the slow part (fsync) runs in a thread.
                    out.write(chunk)
                out.flush()
                if self.fsync:
                    await asyncio.to_thread(os.fsync, out.fileno())
            await asyncio.to_thread(os.replace, tmp, path)
            placed = True
            if self.fsync:
                await asyncio.to_thread(_fsync_dir, path.parent)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                (path if placed else tmp).unlink()
            raise

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self.path_of(key)
        if not await asyncio.to_thread(path.is_file):
            raise FileNotFoundError(key)
        return self._read(path)

    async def _read(self, path: Path) -> AsyncIterator[bytes]:
        # Opened lazily, so an iterator that is never consumed holds no file descriptor.
        handle: BinaryIO = await asyncio.to_thread(path.open, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, self.chunk_bytes):
                yield chunk
        finally:
            handle.close()

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.path_of(key).unlink)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_of(key).is_file)

    async def size(self, key: str) -> int:
        return (await asyncio.to_thread(self.path_of(key).stat)).st_size


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
