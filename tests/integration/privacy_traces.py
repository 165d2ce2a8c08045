"""Finding traces of data anywhere Warbler keeps it: every column of every table, and every
file under DATA_DIR. Used by the retention and erasure acceptance tests.

Mapped tables are read through the ORM, so a column that is encrypted at rest is compared
in clear (a scan of ciphertext would find nothing and prove nothing). Tables the ORM does
not map (the search index and, on SQLite, its FTS5 shadow tables) are read raw. A marker is
found where it appears whole, or, for text that was split into search tokens, where all of
its tokens appear in one value, or where all the blind-index terms a search for it would
match appear in one value. Files are read raw; files of a store are also read through
the store (which decrypts what it encrypted).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import inspect, select, text

import warbler.store.schema  # noqa: F401  (every table)
from warbler.search.index import search_key
from warbler.search.tokenize import tokens
from warbler.security.encryption.blind_index import query_term
from warbler.services import Services
from warbler.store.models import Base, Tenant

PAGE = 500


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "ignore")
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value, default=str).decode()
    return str(value)


class Markers:
    """What a marker looks like where it may be stored: whole, as search tokens, or as the
    blind-index terms a search for it would match (``security/encryption/blind_index.py``,
    one set per tenant key in ``keys``)."""

    def __init__(self, markers: list[str], keys: list[bytes] = ()) -> None:  # type: ignore[assignment]
        self.markers = markers
        self.parts = {m: [t for t in tokens(m) if len(t) > 1] for m in markers}
        self.blind = {
            m: [[query_term(t, key) for t in self.parts[m]] for key in keys] for m in markers
        }

    def found_in(self, value: Any) -> list[str]:
        low = _as_text(value).lower()
        if not low:
            return []
        hits = []
        for marker in self.markers:
            parts = self.parts[marker]
            if marker.lower() in low or (parts and all(p in low for p in parts)):
                hits.append(marker)
            elif any(terms and all(t in low for t in terms) for terms in self.blind[marker]):
                hits.append(marker)
        return hits


async def _search_keys(services: Services) -> list[bytes]:
    async with services.db.read() as s:
        tenants = (await s.scalars(select(Tenant.id))).all()
    return [await search_key(t) for t in tenants]


async def table_traces(services: Services, markers: list[str]) -> list[str]:
    """``table.column: marker`` for every value of every table that holds a marker."""
    want = Markers(markers, await _search_keys(services))
    hits: set[str] = set()
    mapped: set[str] = set()
    async with services.db.read() as s:
        for mapper in Base.registry.mappers:
            cls = mapper.class_
            table = mapper.local_table
            mapped.add(table.name)  # type: ignore[attr-defined]
            pk = list(mapper.primary_key)
            offset = 0
            while True:
                rows = (await s.scalars(select(cls).order_by(*pk).limit(PAGE).offset(offset))).all()
                for row in rows:
                    for attr in mapper.column_attrs:
                        for marker in want.found_in(getattr(row, attr.key)):
                            hits.add(f"{table.name}.{attr.key}: {marker}")  # type: ignore[attr-defined]
                if len(rows) < PAGE:
                    break
                offset += PAGE
        names = await s.run_sync(lambda sync: inspect(sync.connection()).get_table_names())
        for name in sorted(set(names) - mapped - {"alembic_version"}):
            cast = "::text" if not services.db.is_sqlite else ""
            cols = await s.run_sync(
                lambda sync, n=name: [c["name"] for c in inspect(sync.connection()).get_columns(n)]
            )
            select_list = ", ".join(f'"{c}"{cast}' for c in cols)
            for row in (await s.execute(text(f'SELECT {select_list} FROM "{name}"'))).all():
                for col, value in zip(cols, row, strict=True):
                    for marker in want.found_in(value):
                        hits.add(f"{name}.{col}: {marker}")
    return sorted(hits)


async def file_traces(services: Services, markers: list[str]) -> list[str]:
    """``path: marker`` for every file under DATA_DIR holding a marker, raw or through the
    file stores (conversation files, knowledge-base uploads, export archives)."""
    want = Markers(markers)
    root = Path(services.settings.data_dir)
    stores = _stores(services)
    hits: set[str] = set()
    for path in await asyncio.to_thread(_files_under, root):
        raw = await asyncio.to_thread(path.read_bytes)
        found = set(want.found_in(raw))
        found |= set(want.found_in(path.name))
        for store_root, store in stores:
            if path.is_relative_to(store_root) and not path.name.startswith("."):
                key = path.relative_to(store_root).as_posix()
                try:
                    data = b"".join([c async for c in await store.open(key)])
                except Exception:
                    continue
                found |= set(want.found_in(data))
                found |= set(want.found_in(_unzipped(data)))
        found |= set(want.found_in(_unzipped(raw)))
        for marker in found:
            hits.add(f"{path.relative_to(root)}: {marker}")
    return sorted(hits)


async def traces(services: Services, markers: list[str]) -> list[str]:
    return await table_traces(services, markers) + await file_traces(services, markers)


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _stores(services: Services) -> list[tuple[Path, Any]]:
    out = []
    for store in (services.files.store, services.kb_ingest.blobs, services.privacy.exports.store):
        root = getattr(store, "root", None) or getattr(getattr(store, "inner", None), "root", None)
        if root is not None:
            out.append((Path(root).resolve(), store))
    return out


def _unzipped(data: bytes) -> bytes:
    """The members of a zip archive (an export), concatenated; b"" for anything else."""
    import io
    import zipfile

    if not data.startswith(b"PK"):
        return b""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return b"\n".join(zf.read(n) + n.encode() for n in zf.namelist())
    except zipfile.BadZipFile:
        return b""
