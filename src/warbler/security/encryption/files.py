"""File contents at rest: a ``FileStore`` that encrypts what it stores, in a stream.

Layout of a stored file: ``WBE1`` ‖ key id (8) ‖ salt (16), then segments of up to
``SEGMENT_BYTES`` of plaintext, each AES-256-GCM sealed (16-byte tag). The file's own key is
HKDF-SHA256(tenant data key, salt, "warbler:file:<tenant>:<purpose>:<storage key>"), so a
file moved to another key or tenant does not open; each segment's nonce is its index and a
last-segment flag, so segments cannot be reordered, dropped or the file cut short unnoticed
(the streaming AEAD construction of Hoang, Reyhanitabar, Rogaway and Vizár).

Uploads and downloads stream: one segment in memory at a time. The storage key's first
segment must be the tenant id (``<tenant>/…``, as both stores use). A file stored before
encryption at rest (no header) reads as it is, until ``warbler keys reencrypt`` encrypts it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from warbler.files.store import FileStore
from warbler.security.encryption.context import WrongTenant
from warbler.security.encryption.keycache import CACHE, DATA, DataKey, ensure
from warbler.security.encryption.values import DecryptionFailed

MAGIC = b"WBE1"
KID_BYTES = 8
SALT_BYTES = 16
HEADER_BYTES = len(MAGIC) + KID_BYTES + SALT_BYTES
SEGMENT_BYTES = 64 * 1024
TAG_BYTES = 16


def tenant_of(key: str) -> str:
    return key.split("/", 1)[0]


class EncryptedFileStore:
    def __init__(
        self, inner: FileStore, purpose: str, *, segment_bytes: int = SEGMENT_BYTES
    ) -> None:
        self.inner = inner
        self.purpose = purpose
        self.segment_bytes = segment_bytes

    async def put(self, key: str, chunks: AsyncIterator[bytes]) -> None:
        tenant = tenant_of(key)
        await ensure(tenant)
        data_key = CACHE.active(tenant, DATA)
        salt = os.urandom(SALT_BYTES)
        header = MAGIC + data_key.kid.encode() + salt
        await self.inner.put(key, self._seal(self._aead(data_key, salt, key), header, chunks))

    async def _seal(
        self, aead: AESGCM, header: bytes, chunks: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        yield header
        size, buffer, index = self.segment_bytes, bytearray(), 0
        async for chunk in chunks:
            buffer += chunk
            # Keep the last segment back until the stream ends: only it is flagged last.
            while len(buffer) > size:
                yield aead.encrypt(_nonce(index, last=False), bytes(buffer[:size]), None)
                del buffer[:size]
                index += 1
        yield aead.encrypt(_nonce(index, last=True), bytes(buffer), None)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        return self._open(key, await self.inner.open(key))

    async def _open(self, key: str, raw: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._decrypt(key, raw):
                yield chunk
        finally:
            await _close(raw)

    async def _decrypt(self, key: str, raw: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        buffer = bytearray()
        async for chunk in raw:
            buffer += chunk
            if len(buffer) >= HEADER_BYTES:
                break
        if not buffer.startswith(MAGIC):  # stored before encryption at rest
            if buffer:
                yield bytes(buffer)
            async for chunk in raw:
                yield chunk
            return
        if len(buffer) < HEADER_BYTES:
            raise DecryptionFailed(f"file {key} is cut short")
        aead = await self._reader(key, bytes(buffer[:HEADER_BYTES]))
        del buffer[:HEADER_BYTES]
        sealed_size, index = self.segment_bytes + TAG_BYTES, 0
        async for chunk in raw:
            buffer += chunk
            while len(buffer) > sealed_size:
                yield _open_segment(aead, index, bytes(buffer[:sealed_size]), key, last=False)
                del buffer[:sealed_size]
                index += 1
        yield _open_segment(aead, index, bytes(buffer), key, last=True)

    async def _reader(self, key: str, header: bytes) -> AESGCM:
        kid = header[len(MAGIC) : len(MAGIC) + KID_BYTES].decode("ascii", "replace")
        tenant = tenant_of(key)
        await ensure(tenant)
        data_key = CACHE.by_kid(kid)
        if data_key.tenant_id != tenant:
            raise WrongTenant(f"file {key} is sealed under another tenant's key")
        return self._aead(data_key, header[len(MAGIC) + KID_BYTES :], key)

    def _aead(self, data_key: DataKey, salt: bytes, key: str) -> AESGCM:
        info = f"warbler:file:{data_key.tenant_id}:{self.purpose}:{key}".encode()
        derived = HKDF(hashes.SHA256(), 32, salt, info).derive(data_key.secret)
        return AESGCM(derived)

    async def key_id(self, key: str) -> str | None:
        """The data key id a stored file is sealed under (None: stored in plain)."""
        raw = await self.inner.open(key)
        head = b""
        try:
            async for chunk in raw:
                head += chunk
                if len(head) >= HEADER_BYTES:
                    break
        finally:
            await _close(raw)
        if len(head) < HEADER_BYTES or not head.startswith(MAGIC):
            return None
        return head[len(MAGIC) : len(MAGIC) + KID_BYTES].decode("ascii", "replace")

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def exists(self, key: str) -> bool:
        return await self.inner.exists(key)

    async def size(self, key: str) -> int:
        """The plaintext size, computed from the stored size (no decryption needed)."""
        stored = await self.inner.size(key)
        if await self.key_id(key) is None:
            return stored
        body = stored - HEADER_BYTES
        sealed_size = self.segment_bytes + TAG_BYTES
        segments = max(1, -(-body // sealed_size))
        return body - segments * TAG_BYTES


async def _close(stream: AsyncIterator[bytes]) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


def _nonce(index: int, *, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _open_segment(aead: AESGCM, index: int, sealed: bytes, key: str, *, last: bool) -> bytes:
    try:
        return aead.decrypt(_nonce(index, last=last), sealed, None)
    except InvalidTag as exc:
        raise DecryptionFailed(f"file {key} does not decrypt (segment {index})") from exc
