"""Erasure covers every table: each column that names a user (or holds an identity) has a
rule in ``warbler/privacy/catalog.py``, so a table added later fails here until someone
decides what erasing a user does to it."""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, MetaData, String, Table

import warbler.store.schema  # noqa: F401  (every table)
from warbler.privacy import catalog
from warbler.store.models import Base


def test_every_column_that_names_a_user_has_an_erasure_rule():
    missing = catalog.uncovered(Base.metadata)
    assert not missing, (
        f"decide what erasure does with {missing}: add each to RULES in "
        "src/warbler/privacy/catalog.py (delete, null, custom, keep with a reason)"
    )


def test_rules_name_only_columns_that_exist():
    present = {f"{t.name}.{c.name}" for t, c in catalog.personal_columns(Base.metadata)}
    assert not sorted(set(catalog.RULES) - present), "RULES names columns the schema lacks"


def test_a_new_table_with_a_user_column_is_reported():
    metadata = MetaData()
    Table("users", metadata, Column("id", String(26), primary_key=True))
    Table(
        "training_sessions", metadata,
        Column("id", String(26), primary_key=True),
        Column("trainee_id", String(26)),  # by name
        Column("coach", String(26), ForeignKey("users.id")),  # by foreign key
        Column("contact_email", String(200)),
        Column("email", String(200)),  # an identity column
        Column("score", String(10)),
    )  # fmt: skip
    assert catalog.uncovered(metadata) == [
        "training_sessions.trainee_id", "training_sessions.coach", "training_sessions.email",
    ]  # fmt: skip


def test_with_row_rules_sit_in_a_table_whose_rows_are_removed():
    for name, rule in catalog.RULES.items():
        if rule.action != "with_row":
            continue
        table = name.split(".")[0]
        removers = [
            n for n, r in catalog.RULES.items()
            if n.startswith(table + ".") and r.action in ("delete", "custom")
        ]  # fmt: skip
        assert removers, f"{name} is 'with_row' but nothing removes rows of {table}"


def test_generic_rules_are_the_delete_and_null_ones():
    generic = {f"{t.name}.{c.name}": a for t, c, a in catalog.generic_rules(Base.metadata)}
    expected = {n: r.action for n, r in catalog.RULES.items() if r.action in ("delete", "null")}
    assert generic == expected
