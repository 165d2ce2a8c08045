"""The message search index. It stores keyed hashes of tokens, never words or text.

The tokens (rjieba for Chinese) become blind-index terms under the tenant's search key
(``security/encryption/blind_index.py``). SQLite: an FTS5 table over those terms.
PostgreSQL: a ``tsvector`` with the 'simple' configuration over the same terms.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.search.tokenize import tokens
from warbler.security.encryption import blind_index
from warbler.security.encryption.keycache import CACHE, SEARCH, ensure
from warbler.store.models import Message


def searchable_text(msg: Message) -> str:
    parts = [msg.text or ""]
    if msg.data and isinstance(msg.data.get("title"), str):
        parts.append(msg.data["title"])
    return " ".join(p for p in parts if p)


async def search_key(tenant_id: str) -> bytes:
    if not CACHE.has_active(tenant_id, SEARCH):
        await ensure(tenant_id)
    return CACHE.active(tenant_id, SEARCH).secret


async def add(s: AsyncSession, msg: Message) -> None:
    await add_many(s, [msg])


async def add_many(s: AsyncSession, messages: list[Message]) -> None:
    """Index several messages with one statement."""
    rows = []
    for msg in messages:
        words = tokens(searchable_text(msg))
        if words:
            terms = blind_index.index_terms(words, await search_key(msg.tenant_id))
            rows.append(
                {"t": " ".join(terms), "m": msg.id, "c": msg.conversation_id, "tn": msg.tenant_id}
            )
    if not rows:
        return
    if _sqlite(s):
        await s.execute(
            text(
                "INSERT INTO message_search (tokens, message_id, conversation_id, tenant_id) "
                "VALUES (:t, :m, :c, :tn)"
            ),
            rows,
        )
    else:
        await s.execute(
            text(
                "INSERT INTO message_search (message_id, conversation_id, tenant_id, tokens) "
                "VALUES (:m, :c, :tn, to_tsvector('simple', :t))"
            ),
            rows,
        )


async def remove(s: AsyncSession, message_id: str) -> None:
    await s.execute(text("DELETE FROM message_search WHERE message_id = :m"), {"m": message_id})


async def replace(s: AsyncSession, msg: Message) -> None:
    await remove(s, msg.id)
    await add(s, msg)


def _sqlite(s: AsyncSession) -> bool:
    return s.get_bind().dialect.name == "sqlite"
