"""Re-encryption: move every stored value to its tenant's active data key, in batches.

After ``warbler keys rotate-tenant`` old values still read (their key is kept); this moves
them to the new key so the old one protects nothing. It also encrypts what was stored before
encryption at rest (plain text, JSON objects, files without a header, ``v1:`` secrets sealed
under the master key) and gives those messages their blind search-index entries.

Safe while nodes serve: each batch is one short write transaction, and a row changed since
it was read (``WHERE CAST(col AS TEXT) = <what was read>``) is left for the next pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import Column, Table, Text, and_, cast, select, update

from warbler.ai.provider_configs import key_context
from warbler.ai.tools.http_tool import auth_context
from warbler.ai.tools.mcp_source import env_context, headers_context
from warbler.files.store import FileStore
from warbler.kb.ingest.blobs import blob_key
from warbler.search import index as search_index
from warbler.security.crypto import VERSION as LEGACY_VERSION
from warbler.security.crypto import SecretError
from warbler.security.encryption import values
from warbler.security.encryption.columns import EncryptedJSON, encrypted_columns
from warbler.security.encryption.context import bound_tenant
from warbler.security.encryption.files import EncryptedFileStore
from warbler.security.encryption.keycache import CACHE, DATA
from warbler.security.encryption.keyring import Keyring
from warbler.store.models import Base, Message, StoredFile, Tenant
from warbler.store.models_ai import AiProvider
from warbler.store.models_kb import KbDocument
from warbler.store.models_tools import HttpTool, McpServer

# (model, sealed column, the context it is sealed under, from the row id)
SEALED_COLUMNS: list[tuple[Any, str, Callable[[str], str]]] = [
    (AiProvider, "api_key_sealed", key_context),
    (HttpTool, "auth_header_value_sealed", auth_context),
    (McpServer, "env_sealed", env_context),
    (McpServer, "headers_sealed", headers_context),
]
BATCH = 500

Progress = Callable[[str, int], None]


async def reencrypt(
    keyring: Keyring,
    *,
    tenant_id: str | None = None,
    files: FileStore | None = None,
    kb_blobs: FileStore | None = None,
    batch: int = BATCH,
    on_progress: Progress | None = None,
) -> dict[str, int]:
    """Re-encrypt one tenant (or all) under the active key; returns counts by what moved."""
    counts: dict[str, int] = {}

    def done(what: str, n: int) -> None:
        if n:
            counts[what] = counts.get(what, 0) + n
            if on_progress is not None:
                on_progress(what, n)

    async with keyring.db.read() as s:
        tenants = [tenant_id] if tenant_id else list((await s.scalars(select(Tenant.id))).all())
    for tenant in tenants:
        await keyring.ensure(tenant)
        for table, column in encrypted_columns(Base.metadata):
            if "tenant_id" in table.c:
                await _column(keyring, tenant, table, column, batch, done)
        done("secrets", await reseal_secrets(keyring, tenant_id=tenant))
        keys: Any
        if isinstance(files, EncryptedFileStore):
            keys = select(StoredFile.storage_key).where(StoredFile.tenant_id == tenant)
            done("files", await _files(keyring, files, tenant, keys))
        if isinstance(kb_blobs, EncryptedFileStore):
            keys = select(KbDocument.kb_id, KbDocument.file_id).where(
                KbDocument.tenant_id == tenant, KbDocument.file_id.is_not(None)
            )
            done("kb_uploads", await _files(keyring, kb_blobs, tenant, keys))
    return counts


async def _column(
    keyring: Keyring, tenant: str, table: Table, column: Column[Any], batch: int, done: Progress
) -> None:
    is_json = isinstance(column.type, EncryptedJSON)
    raw = cast(column, Text)
    pk = list(table.primary_key.columns)
    while True:
        current = CACHE.active(tenant, DATA).kid
        already = ('"' if is_json else "") + f"{values.PREFIX}{current}:%"
        query = select(*pk, raw).where(
            table.c.tenant_id == tenant, column.is_not(None), raw.not_like(already)
        )
        if is_json:
            query = query.where(raw != "null")  # JSON null: nothing to encrypt
        async with keyring.db.read() as s:
            rows = (await s.execute(query.limit(batch))).all()
        if not rows:
            return
        moved = 0
        async with keyring.db.write() as s:
            with bound_tenant(tenant):
                for row in rows:
                    stored = row[-1]
                    plain, was_plain = _plaintext(stored, column, is_json)
                    where = and_(
                        *(c == v for c, v in zip(pk, row[:-1], strict=True)), raw == stored
                    )
                    result = await s.execute(
                        update(table).where(where).values({column.name: plain})
                    )
                    moved += int(result.rowcount or 0)  # type: ignore[attr-defined]
                    if was_plain and table.name == Message.__tablename__:
                        msg = await s.get(Message, row[0])
                        if msg is not None and msg.recalled_at is None:
                            await search_index.replace(s, msg)
        done(f"{table.name}.{column.name}", moved)
        if moved == 0:
            return  # every row changed under us: the next run takes them


def _plaintext(stored: str, column: Column[Any], is_json: bool) -> tuple[Any, bool]:
    """(the value as code sees it, whether it was stored unencrypted)."""
    purpose = column.type.purpose  # type: ignore[attr-defined]
    if not is_json:
        if values.is_encrypted(stored):
            return values.decrypt(stored, purpose).decode(), False
        return stored, True
    parsed = orjson.loads(stored)
    if values.is_encrypted(parsed):
        return orjson.loads(values.decrypt(parsed, purpose)), False
    return parsed, True


async def reseal_secrets(
    keyring: Keyring, *, tenant_id: str | None = None, legacy_only: bool = False
) -> int:
    """Re-seal provider and tool secrets under their tenant's active key: ``v1:`` values
    sealed under a master key, and (unless ``legacy_only``) values under older tenant keys."""
    boxes = keyring.masters.legacy_boxes()
    moved = 0
    for model, name, context_of in SEALED_COLUMNS:
        attr = getattr(model, name)
        query = select(model.id, model.tenant_id, attr).where(attr.is_not(None))
        if tenant_id is not None:
            query = query.where(model.tenant_id == tenant_id)
        async with keyring.db.read() as s:
            rows = (await s.execute(query)).all()
        for row_id, tenant, sealed in rows:
            legacy = sealed.startswith(LEGACY_VERSION)
            await keyring.ensure(tenant)
            if not legacy:
                if legacy_only or values.key_id(sealed) == CACHE.active(tenant, DATA).kid:
                    continue
            context = context_of(row_id)
            plain = _open_legacy(boxes, sealed, context) if legacy else None
            async with keyring.db.write() as s:
                with bound_tenant(tenant):
                    if plain is None:
                        plain = values.decrypt(sealed, context).decode()
                    fresh = values.encrypt(plain.encode(), context)
                result = await s.execute(
                    update(model).where(model.id == row_id, attr == sealed).values({name: fresh})
                )
                moved += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return moved


def _open_legacy(boxes: list[Any], sealed: str, context: str) -> str:
    for box in boxes:
        try:
            return str(box.open(sealed, context))
        except SecretError:
            continue
    raise SecretError(f"a v1 secret ({context}) does not open with this node's master keys")


async def _files(keyring: Keyring, store: EncryptedFileStore, tenant: str, query: Any) -> int:
    async with keyring.db.read() as s:
        rows = (await s.execute(query)).all()
    current = CACHE.active(tenant, DATA).kid
    moved = 0
    for row in rows:
        key = row[0] if len(row) == 1 else blob_key(tenant, row[0], row[1])
        try:
            if await store.key_id(key) == current:
                continue
            await store.put(key, await store.open(key))
        except FileNotFoundError:
            continue  # a KB upload is deleted once ingested
        moved += 1
    return moved
