"""Files: upload (size, type and membership checks, bytes stored before the row), info, download."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from warbler.clock import utcnow
from warbler.config import Settings
from warbler.errors import InvalidRequest, NotFound, TooLarge, UnsupportedType
from warbler.files import content_types
from warbler.files.names import clean_filename
from warbler.files.store import FileStore
from warbler.ids import new_id
from warbler.im.membership import load_for_member
from warbler.im.principal import Principal
from warbler.im.views import file_view
from warbler.store.db import Database
from warbler.store.models import StoredFile

log = logging.getLogger("warbler.files")


@dataclass(frozen=True, slots=True)
class Download:
    """A file's metadata (``file_view``) and its bytes, streamed in chunks."""

    file: dict[str, Any]
    chunks: AsyncIterator[bytes]


def storage_key(tenant_id: str, at: datetime, file_id: str) -> str:
    return f"{tenant_id}/{at:%Y}/{at:%m}/{file_id}"


class FileService:
    def __init__(self, db: Database, store: FileStore, settings: Settings) -> None:
        self.db = db
        self.store = store
        self.max_bytes = settings.max_upload_bytes
        self.allowed = frozenset(
            t for t in map(content_types.normalise, settings.allowed_upload_types) if t
        )

    async def upload(
        self,
        principal: Principal,
        conversation_id: str,
        filename: str | None,
        declared_content_type: str | None,
        chunks: AsyncIterator[bytes],
    ) -> dict[str, Any]:
        """Store an upload for a conversation the caller is a member of; returns its view.

        The bytes are stored (and hashed, and counted against the limit) first; the row
        that makes them reachable is inserted only once they are safe, and if that insert
        fails the bytes are deleted again. A refused upload leaves neither behind.
        """
        uploader = principal.require_user()
        async with self.db.read() as s:
            await load_for_member(s, principal.tenant_id, conversation_id, uploader)
        name = clean_filename(filename)
        head, rest = await _peek(chunks, content_types.HEAD_BYTES)
        if not head:
            raise InvalidRequest("the file is empty", details={"field": "file"})
        content_type = content_types.resolve(declared_content_type, name, head)
        if content_type not in self.allowed:
            raise UnsupportedType(
                f"files of type {content_type} are not accepted",
                details={"content_type": content_type, "allowed": sorted(self.allowed)},
            )
        file_id, now = new_id(), utcnow()
        key = storage_key(principal.tenant_id, now, file_id)
        meter = _Meter(self.max_bytes)
        await self.store.put(key, meter.count(head, rest))
        try:
            async with self.db.write() as s:
                # Again, inside the transaction: the uploader may have left while bytes streamed.
                await load_for_member(s, principal.tenant_id, conversation_id, uploader)
                row = StoredFile(
                    id=file_id, tenant_id=principal.tenant_id, conversation_id=conversation_id,
                    uploader_id=uploader, name=name, content_type=content_type,
                    size=meter.size, sha256=meter.hexdigest(), storage_key=key, created_at=now,
                )  # fmt: skip
                s.add(row)
        except BaseException:
            await self.store.delete(key)
            raise
        return file_view(row)

    async def info(self, principal: Principal, file_id: str) -> dict[str, Any]:
        return file_view(await self._load(principal, file_id))

    async def open(self, principal: Principal, file_id: str) -> Download:
        row = await self._load(principal, file_id)
        try:
            chunks = await self.store.open(row.storage_key)
        except FileNotFoundError:
            log.error("file %s has a row but no bytes at %s", row.id, row.storage_key)
            raise NotFound("the file's content is missing", details={"file_id": file_id}) from None
        return Download(file_view(row), chunks)

    async def _load(self, principal: Principal, file_id: str) -> StoredFile:
        """The file, if it is in the caller's tenant and a conversation they are a member of.

        Anyone else gets the same 404 as for a file that does not exist.
        """
        user = principal.require_user()
        async with self.db.read() as s:
            row = await s.scalar(
                select(StoredFile).where(
                    StoredFile.id == file_id, StoredFile.tenant_id == principal.tenant_id
                )
            )
            if row is not None:
                try:
                    await load_for_member(s, principal.tenant_id, row.conversation_id, user)
                except NotFound:
                    row = None
        if row is None:
            raise NotFound("no such file", details={"file_id": file_id})
        return row


class _Meter:
    """Counts and hashes bytes as they stream past; stops the stream past the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._hash = hashlib.sha256()

    async def count(self, head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        yield self._take(head)
        async for chunk in rest:
            yield self._take(chunk)

    def _take(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        if self.size > self.limit:
            raise TooLarge(
                f"the file is larger than {self.limit} bytes", details={"limit": self.limit}
            )
        self._hash.update(chunk)
        return chunk

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


async def _peek(chunks: AsyncIterator[bytes], n: int) -> tuple[bytes, AsyncIterator[bytes]]:
    """At least ``n`` leading bytes (fewer only if the stream is shorter), and the rest."""
    head = bytearray()
    async for chunk in chunks:
        head += chunk
        if len(head) >= n:
            break
    return bytes(head), chunks
