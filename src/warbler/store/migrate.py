"""Apply Alembic migrations to a ``Database`` (SQLite or PostgreSQL) from code, and tell
where a database's schema stands against this code's migrations."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection

from warbler.store.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"

SchemaState = Literal["current", "ahead", "behind"]


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Autogenerate ignores the full-text tables that migrations create by hand, and the
    pgvector side tables the retriever creates at run time (``warbler.kb.vectors.pgvector``)."""
    return not (
        type_ == "table"
        and name is not None
        and name.startswith(("message_search", "kb_chunk_vectors_"))
    )


def _config(connection: Any) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(db: Database, revision: str = "head") -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.upgrade(_config(sync_conn), revision))


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


@functools.cache
def script_heads() -> tuple[str, ...]:
    """The head revision(s) this code's migrations end at (read once; they never change)."""
    return tuple(sorted(_scripts().get_heads()))


def current_heads(connection: Connection) -> tuple[str, ...]:
    """The revision(s) the database is at (empty: no schema yet)."""
    return tuple(sorted(MigrationContext.configure(connection).get_current_heads()))


async def schema_state(db: Database) -> SchemaState:
    async with db.engine.connect() as conn:
        return compare(await conn.run_sync(current_heads))


def compare(current: tuple[str, ...]) -> SchemaState:
    """Behind: no schema, or an older revision of ours. Ahead: a revision this code does not
    know (an old node during a rolling upgrade, after `warbler migrate` ran for new code)."""
    if current == script_heads():
        return "current"
    try:
        for revision in current:
            _scripts().get_revision(revision)
    except CommandError:
        return "ahead"
    return "behind"
