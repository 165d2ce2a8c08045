"""The database makes ``audit_log`` append-only: triggers refuse every UPDATE, and every
DELETE of a row whose tenant holds no purge grant covering it (``audit_purge_grants``; only
``AuditLog.purge_before`` writes one, and removes it in the same transaction).

Created by migration 0006, and by ``Base.metadata.create_all`` (the listener below). A later
migration that rebuilds ``audit_log`` (SQLite batch mode copies the table, dropping its
triggers) must call ``create_guard`` again. TRUNCATE and DROP TABLE are not row operations
and are not refused: they need the table owner's rights, which the application's database
role should not have in production (docs/security.md, "Audit log").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

REFUSAL = "audit_log is append-only: rows leave only through AuditLog.purge_before"

_COVERED = (
    "SELECT 1 FROM audit_purge_grants g "
    "WHERE g.tenant_id = OLD.tenant_id AND OLD.created_at < g.cutoff"
)

CREATE: dict[str, list[str]] = {
    "sqlite": [
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END",
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
        f"WHEN NOT EXISTS ({_COVERED}) "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN IF TG_OP = 'DELETE' AND EXISTS ({_COVERED}) THEN RETURN OLD; END IF; "
        f"RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'insufficient_privilege'; END $$",
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_guard()",
    ],
}

DROP: dict[str, list[str]] = {
    "sqlite": [
        "DROP TRIGGER IF EXISTS audit_log_no_update",
        "DROP TRIGGER IF EXISTS audit_log_no_delete",
    ],
    "postgresql": [
        "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
        "DROP FUNCTION IF EXISTS audit_log_guard()",
    ],
}


def create_guard(execute: Any, dialect: str) -> None:
    """Run the CREATE statements with ``execute`` (``op.execute``, ``conn.exec_driver_sql``)."""
    for statement in CREATE.get(dialect, []):
        execute(statement)


def drop_guard(execute: Any, dialect: str) -> None:
    for statement in DROP.get(dialect, []):
        execute(statement)


def install_for_create_all(table: Any) -> None:
    """Have ``metadata.create_all`` create the triggers after ``audit_log``."""

    @event.listens_for(table, "after_create")
    def _after_create(target: Any, connection: Any, **_: Any) -> None:
        create_guard(connection.exec_driver_sql, connection.dialect.name)
