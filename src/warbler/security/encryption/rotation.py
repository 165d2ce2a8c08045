"""Key rotation without downtime, and where the keys stand (``warbler keys``).

- ``rotate_master``: re-wraps every data key still under another master key with the current
  one (nodes hold both during the change: ``WARBLER_SECRET_KEY_PREVIOUS``), and re-seals the
  ``v1:`` secrets that were sealed under a master key directly. Data is not re-encrypted:
  only the 32-byte keys are.
- ``rotate_tenant``: a new active data key for one tenant. Older keys stay (retired) so
  everything written under them still reads; ``reencrypt`` moves old values to the new key.
- ``status``: the keys, which master wraps them, and (optionally) how many values each holds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Text, case, cast, func, select

from warbler.clock import utcnow
from warbler.config import Settings
from warbler.errors import Conflict, InvalidRequest, NotFound
from warbler.security.crypto import KEY_FILE, PREVIOUS_KEY_FILE, decode_key, new_key_text
from warbler.security.encryption.columns import EncryptedJSON, encrypted_columns
from warbler.security.encryption.keycache import DATA
from warbler.security.encryption.keyring import Keyring, key_view
from warbler.security.encryption.reencrypt import SEALED_COLUMNS, reseal_secrets
from warbler.security.encryption.values import KID_CHARS, PREFIX
from warbler.store.models import Base, Tenant
from warbler.store.models_crypto import TenantKey


async def rotate_master(keyring: Keyring) -> dict[str, Any]:
    """Re-wrap every key not under the current master key; re-seal ``v1:`` secrets."""
    masters = keyring.masters
    rewrapped = 0
    async with keyring.db.write() as s:
        query = select(TenantKey).where(TenantKey.master_id != masters.current.id)
        if not keyring.db.is_sqlite:
            query = query.with_for_update()
        for row in (await s.scalars(query)).all():
            secret = masters.unwrap(row.tenant_id, row.purpose, row.id, row.wrapped, row.master_id)
            row.wrapped, row.master_id = masters.wrap(row.tenant_id, row.purpose, row.id, secret)
            rewrapped += 1
    resealed = await reseal_secrets(keyring, legacy_only=True)
    return {"master_id": masters.current.id, "rewrapped": rewrapped, "resealed": resealed}


def generate_master_file(settings: Settings) -> tuple[bytes, bytes]:
    """For a master key kept in ``DATA_DIR/secret.key``: a new key there, the old one moved
    to ``secret.key.previous`` (which nodes read as the previous key). Returns (new, old)."""
    if settings.secret_key:
        raise InvalidRequest(
            "the master key comes from WARBLER_SECRET_KEY: put the new key there and the "
            "old one in WARBLER_SECRET_KEY_PREVIOUS, then run `warbler keys rotate-master`"
        )
    directory = Path(settings.data_dir)
    current, previous = directory / KEY_FILE, directory / PREVIOUS_KEY_FILE
    if previous.exists():
        raise Conflict(
            f"{previous} exists: a rotation is not finished. Run `warbler keys rotate-master` "
            "(without --generate) once every node restarted, then delete that file"
        )
    if not current.exists():
        raise NotFound(f"no master key file at {current}")
    old = decode_key(current.read_text())
    text = new_key_text()
    staged = directory / (KEY_FILE + ".new")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(current, previous)
    os.replace(staged, current)
    return decode_key(text), old


async def rotate_tenant(keyring: Keyring, tenant_id: str) -> dict[str, Any]:
    """A new active data key for the tenant; the old ones are kept to decrypt."""
    now = utcnow()
    async with keyring.db.write() as s:
        query = select(TenantKey).where(TenantKey.tenant_id == tenant_id, TenantKey.purpose == DATA)
        if not keyring.db.is_sqlite:
            query = query.with_for_update()
        rows = list((await s.scalars(query)).all())
        if not rows:
            raise NotFound("the tenant has no data key", details={"tenant_id": tenant_id})
        for row in rows:
            if row.state == "active":
                row.state, row.retired_at = "retired", now
        fresh = keyring.new_key_row(tenant_id, DATA, max(r.version for r in rows) + 1)
        s.add(fresh)
        view = key_view(fresh)
    keyring.forget(tenant_id)
    await keyring.ensure(tenant_id)
    return view


async def status(keyring: Keyring, *, count_rows: bool = False) -> dict[str, Any]:
    masters = keyring.masters
    async with keyring.db.read() as s:
        keys = list((await s.scalars(select(TenantKey).order_by(TenantKey.created_at))).all())
        slugs = {i: slug for i, slug in (await s.execute(select(Tenant.id, Tenant.slug))).all()}
        legacy = 0
        for model, column, _ in SEALED_COLUMNS:
            attr = getattr(model, column)
            legacy += await s.scalar(select(func.count()).where(attr.like("v1:%"))) or 0
        rows = await _values_per_key(s) if count_rows else None
    by_master: dict[str, int] = {}
    for key in keys:
        by_master[key.master_id] = by_master.get(key.master_id, 0) + 1
    return {
        "master_id": masters.current.id,
        "previous_master_id": masters.previous.id if masters.previous else None,
        "keys_by_master": by_master,
        "legacy_sealed_secrets": legacy,
        "keys": [{**key_view(k), "tenant": slugs.get(k.tenant_id)} for k in keys],
        "values_by_key": rows,
    }


async def _values_per_key(s: Any) -> dict[str, dict[str, int]]:
    """{"table.column": {key id or "plain": count}} for every encrypted column."""
    out: dict[str, dict[str, int]] = {}
    for table, column in encrypted_columns(Base.metadata):
        raw = cast(column, Text)
        # A JSON column holds the encrypted value as a JSON string: one quote first.
        skip = 1 if isinstance(column.type, EncryptedJSON) else 0
        start = skip + len(PREFIX) + 1
        kid = case(
            (raw.like(('"' if skip else "") + PREFIX + "%"), func.substr(raw, start, KID_CHARS)),
            else_="plain",
        )
        query = select(kid, func.count()).select_from(table).where(column.is_not(None))
        if skip:
            query = query.where(raw != "null")  # JSON null: nothing stored
        query = query.group_by(kid)
        counts = {str(k): int(n) for k, n in (await s.execute(query)).all()}
        if counts:
            out[f"{table.name}.{column.name}"] = counts
    return out
