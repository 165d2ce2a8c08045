"""File contents at rest: streamed AES-GCM segments under the tenant's key, bounded memory,
and any cut, reordering, tampering or move between tenants or keys detected."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from warbler.files.store import LocalFileStore
from warbler.security.encryption.context import WrongTenant
from warbler.security.encryption.files import HEADER_BYTES, TAG_BYTES, EncryptedFileStore
from warbler.security.encryption.keycache import CACHE, DATA, DataKey
from warbler.security.encryption.values import DecryptionFailed

SEGMENT = 1000


def new_tenant() -> str:
    tenant = "T" + secrets.token_hex(6)
    secret = os.urandom(32)
    CACHE.put(DataKey(secrets.token_hex(4), tenant, DATA, 1, secret, AESGCM(secret)), active=True)
    return tenant


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def read_all(store: EncryptedFileStore, key: str) -> bytes:
    return b"".join([c async for c in await store.open(key)])


@pytest.fixture(autouse=True)
def keys_by_hand_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests put their keys in the cache themselves: no database keyring a test before
    them left registered (its database may be gone) is asked."""
    monkeypatch.setattr(CACHE, "_loaders", [])


@pytest.fixture
def local(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files", fsync=False, chunk_bytes=700)


@pytest.fixture
def store(local: LocalFileStore) -> EncryptedFileStore:
    return EncryptedFileStore(local, "files", segment_bytes=SEGMENT)


@pytest.mark.parametrize("size", [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT, 5555])
async def test_any_size_round_trips_and_the_disk_holds_no_plaintext(store, local, size):
    key = f"{new_tenant()}/2024/05/F{size}"
    data = (b"CONFIDENTIAL-\xe6\x9c\xba\xe5\xaf\x86-" * 400)[:size]
    await store.put(key, chunks(data[:333], data[333:]))
    assert await read_all(store, key) == data
    assert await store.size(key) == size
    raw = local.path_of(key).read_bytes()
    assert len(raw) == HEADER_BYTES + size + TAG_BYTES * (max(1, -(-size // SEGMENT)))
    assert b"CONFIDENTIAL" not in raw


async def test_reading_streams_one_segment_at_a_time(store):
    key = f"{new_tenant()}/2024/05/BIG"
    data = os.urandom(20 * SEGMENT + 17)
    await store.put(key, chunks(*(data[i : i + 4096] for i in range(0, len(data), 4096))))
    parts = [c async for c in await store.open(key)]
    assert b"".join(parts) == data
    assert max(map(len, parts)) <= SEGMENT


async def test_a_flipped_byte_a_cut_or_a_swap_of_segments_is_detected(store, local):
    key = f"{new_tenant()}/2024/05/F"
    await store.put(key, chunks(os.urandom(3 * SEGMENT + 10)))
    path = local.path_of(key)
    good = path.read_bytes()
    sealed = SEGMENT + TAG_BYTES
    first, second = HEADER_BYTES, HEADER_BYTES + sealed
    variants = {
        "flipped": good[:100] + bytes([good[100] ^ 1]) + good[101:],
        "cut at a segment boundary": good[: HEADER_BYTES + 2 * sealed],
        "swapped": good[:first] + good[second : second + sealed] + good[first:second]
        + good[second + sealed :],
    }  # fmt: skip
    for name, broken in variants.items():
        path.write_bytes(broken)
        with pytest.raises(DecryptionFailed):
            await read_all(store, key)
        assert name
    path.write_bytes(good)
    assert len(await read_all(store, key)) == 3 * SEGMENT + 10


async def test_a_file_moved_to_another_key_or_tenant_does_not_open(store, local):
    alice, bob = new_tenant(), new_tenant()
    key = f"{alice}/2024/05/F"
    await store.put(key, chunks(b"alice's contract"))
    raw = local.path_of(key).read_bytes()
    elsewhere = f"{alice}/2024/05/G"
    local.path_of(elsewhere).write_bytes(raw)
    with pytest.raises(DecryptionFailed):
        await read_all(store, elsewhere)
    stolen = f"{bob}/2024/05/F"
    local.path_of(stolen).parent.mkdir(parents=True)
    local.path_of(stolen).write_bytes(raw)
    with pytest.raises(WrongTenant):
        await read_all(store, stolen)


async def test_a_file_stored_before_encryption_reads_as_it_is_and_can_be_resealed(store, local):
    tenant = new_tenant()
    key = f"{tenant}/2023/01/OLD"
    await local.put(key, chunks(b"plain old bytes"))
    assert await store.key_id(key) is None
    assert await read_all(store, key) == b"plain old bytes"
    assert await store.size(key) == len(b"plain old bytes")
    await store.put(key, await store.open(key))
    assert await store.key_id(key) == CACHE.active(tenant).kid
    assert b"plain old bytes" not in local.path_of(key).read_bytes()
    assert await read_all(store, key) == b"plain old bytes"
