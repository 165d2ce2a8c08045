"""Alembic environment: runs on the connection that ``warbler.store.migrate`` hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool

import warbler.store.schema  # noqa: F401  (loads every table)
from warbler.store.migrate import include_object
from warbler.store.models import Base

target_metadata = Base.metadata


def _include(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Autogenerate ignores the full-text tables that migrations create by hand."""
    return not (type_ == "table" and name is not None and name.startswith("message_search"))


def _run(connection: Connection) -> None:
    context.configure(
        include_object=include_object,
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode to alter tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # plain `alembic` CLI during development
    engine = engine_from_config(
        context.config.get_section(context.config.config_ini_section) or {},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as conn:
        _run(conn)
