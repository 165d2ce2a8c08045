"""Where uploaded documents wait for ingestion: ``DATA_DIR/kb-uploads/<tenant>/<kb>/<file id>``.

The bytes are kept until the document is ingested (so a failed ingestion can be retried)
and deleted once its chunks are stored; a document's ``file_id`` names them meanwhile.
Scaled out, ``DATA_DIR`` must be shared by the nodes, as for conversation files.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from warbler.config import Settings
from warbler.files.store import FileStore, LocalFileStore
from warbler.security.encryption.files import EncryptedFileStore

FOLDER = "kb-uploads"


def build_blob_store(settings: Settings) -> FileStore:
    """Encrypted at rest under the tenant's data key, like conversation files."""
    local = LocalFileStore(settings.data_dir / FOLDER, fsync=settings.sqlite_synchronous == "FULL")
    return EncryptedFileStore(local, purpose=FOLDER)


def blob_key(tenant_id: str, kb_id: str, file_id: str) -> str:
    return f"{tenant_id}/{kb_id}/{file_id}"


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def read_all(store: FileStore, key: str) -> bytes:
    """The stored bytes; ``FileNotFoundError`` if there are none."""
    return b"".join([chunk async for chunk in await store.open(key)])
