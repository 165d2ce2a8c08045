"""The migrations build exactly the schema the models describe (on SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import warbler.store.schema  # noqa: F401  (loads every table)
from warbler.store.db import Database
from warbler.store.migrate import include_object, upgrade
from warbler.store.models import Base


async def test_migrated_schema_matches_the_models(settings):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    try:
        await upgrade(db)
        async with db.engine.connect() as conn:

            def diff(sync_conn):
                ctx = MigrationContext.configure(
                    sync_conn,
                    opts={"include_object": include_object, "compare_type": False},
                )
                return compare_metadata(ctx, Base.metadata)

            changes = await conn.run_sync(diff)
    finally:
        await db.dispose()
    assert changes == [], f"write a migration for: {changes}"
