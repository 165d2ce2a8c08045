"""The audit log is append-only in the database itself (SQLite and PostgreSQL triggers): plain
UPDATE and DELETE fail, whatever the code path; ``purge_before`` is the one way rows leave."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from warbler.clock import utcnow
from warbler.ids import new_id
from warbler.store.db import Database
from warbler.store.models import Base, Tenant
from warbler.store.models_audit import AuditEntry, AuditPurgeGrant

REFUSED = (IntegrityError, DBAPIError)


async def seed(services, tenant_id: str, ages_days: list[int]) -> None:
    """Entries ``ages_days`` old (written directly, with their past timestamps)."""
    now = utcnow()
    async with services.db.write() as s:
        for age in ages_days:
            s.add(AuditEntry(tenant_id=tenant_id, actor_id=None, actor_kind="system",
                             action="test.old", data={"age": age},
                             created_at=now - timedelta(days=age)))  # fmt: skip


async def count(services, tenant_id: str | None = None) -> int:
    stmt = select(func.count()).select_from(AuditEntry)
    if tenant_id is not None:
        stmt = stmt.where(AuditEntry.tenant_id == tenant_id)
    async with services.db.read() as s:
        return int(await s.scalar(stmt) or 0)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET action = 'auth.nothing_happened'",
        "UPDATE audit_log SET data = '{}' WHERE action = 'test.old'",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE action = 'test.old'",
    ],
)
async def test_plain_update_and_delete_are_refused_by_the_database(
    services, make_tenant, statement
):
    t = await make_tenant()
    await seed(services, t.id, [1, 400])
    with pytest.raises(REFUSED, match="append-only"):
        async with services.db.write() as s:
            await s.execute(text(statement))
    assert await count(services) == 2


async def test_orm_updates_and_deletes_are_refused_too(services, make_tenant):
    t = await make_tenant()
    await seed(services, t.id, [3])
    with pytest.raises(REFUSED, match="append-only"):
        async with services.db.write() as s:
            await s.execute(update(AuditEntry).values(ip="10.9.9.9"))
    with pytest.raises(REFUSED, match="append-only"):
        async with services.db.write() as s:
            row = await s.scalar(select(AuditEntry))
            await s.delete(row)
    async with services.db.read() as s:
        assert (await s.scalar(select(AuditEntry.ip))) is None


async def test_purge_before_deletes_only_older_entries_of_that_tenant(services, make_tenant):
    a, b = await make_tenant("tenant-a"), await make_tenant("tenant-b")
    await seed(services, a.id, [400, 200, 10, 1])
    await seed(services, b.id, [400, 1])
    deleted = await services.audit.purge_before(a.id, utcnow() - timedelta(days=100))
    assert deleted == 2
    async with services.db.read() as s:
        left = (await s.execute(
            select(AuditEntry.action, AuditEntry.data).where(AuditEntry.tenant_id == a.id)
            .order_by(AuditEntry.id)
        )).all()  # fmt: skip
        grants = await s.scalar(select(func.count()).select_from(AuditPurgeGrant))
    assert [d.get("age") for _, d in left[:2]] == [10, 1]
    action, data = left[-1]  # the purge records itself
    assert action == "audit.purged" and data["deleted"] == 2
    assert await count(services, b.id) == 2  # another tenant's entries stay
    assert grants == 0  # the grant never outlives the purge's transaction
    # Nothing to purge: no entry about it.
    assert await services.audit.purge_before(a.id, utcnow() - timedelta(days=100)) == 0
    assert await count(services, a.id) == 3


async def test_a_grant_only_covers_its_tenant_and_cutoff(services, make_tenant):
    """Even code that writes a grant by hand deletes only what the grant covers."""
    a, b = await make_tenant("tenant-a"), await make_tenant("tenant-b")
    await seed(services, a.id, [30, 1])
    await seed(services, b.id, [30])
    cutoff = utcnow() - timedelta(days=10)
    with pytest.raises(REFUSED, match="append-only"):
        async with services.db.write() as s:
            s.add(AuditPurgeGrant(id=new_id(), tenant_id=a.id, cutoff=cutoff))
            await s.flush()
            await s.execute(delete(AuditEntry))  # a's recent entry and b's are not covered
    assert await count(services) == 3


async def test_create_all_installs_the_guard_too(tmp_path):
    """Schemas made with ``Base.metadata.create_all`` (not migrations) are guarded as well."""
    import warbler.store.schema  # noqa: F401  (every table)

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'create_all.db'}")
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with db.write() as s:
            s.add(Tenant(id="t1", slug="t1", name="T", created_at=utcnow()))
            await s.flush()
            s.add(AuditEntry(tenant_id="t1", actor_kind="system", action="x", data={},
                             created_at=utcnow()))  # fmt: skip
        with pytest.raises(REFUSED, match="append-only"):
            async with db.write() as s:
                await s.execute(text("DELETE FROM audit_log"))
    finally:
        await db.dispose()
