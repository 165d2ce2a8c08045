"""Column types that encrypt on the way into the database and decrypt on the way out.

Code reads and writes plain ``str`` / JSON values (``message.text = "…"``); the database
holds ``enc1:`` values under the bound tenant's data key (``context.bound_tenant``), bound
to the column's *purpose* (``"messages.text"``). A value written before encryption at rest
(plain text, a JSON object) still reads as it is, until ``warbler keys reencrypt`` encrypts
it. JSON columns keep their JSON type: the encrypted value is stored as a JSON string, so
the schema does not change and old rows need no migration to be read.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import JSON, String, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

from warbler.security.encryption import values


class EncryptedText(TypeDecorator[str]):
    impl: type[TypeEngine[Any]] = Text
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return values.encrypt(value.encode(), self.purpose)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or not values.is_encrypted(value):
            return value
        return values.decrypt(value, self.purpose).decode()


class EncryptedString(EncryptedText):
    """``EncryptedText`` in a ``VARCHAR(length)`` column (size it for the ciphertext:
    about 4/3 of the plaintext's UTF-8 bytes plus 60 characters)."""

    impl = String
    cache_ok = True

    def __init__(self, purpose: str, length: int) -> None:
        TypeDecorator.__init__(self, length)
        self.purpose = purpose
        self.length = length


class EncryptedJSON(TypeDecorator[Any]):
    impl = JSON
    cache_ok = True
    # Like JSON: a None value is written (as JSON null), not left to the column default.
    should_evaluate_none = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return values.encrypt(orjson.dumps(value), self.purpose)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if not values.is_encrypted(value):
            return value
        return orjson.loads(values.decrypt(value, self.purpose))


def encrypted_columns(metadata: Any) -> list[tuple[Any, Any]]:
    """(table, column) for every encrypted column of ``metadata``: what re-encryption and
    ``warbler keys status --rows`` walk (tables added later are covered when they use these
    types)."""
    out = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, EncryptedText | EncryptedJSON):
                out.append((table, column))
    return out
