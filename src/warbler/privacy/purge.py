"""Removing content everywhere it was copied: the search index, the event log, jobs, AI
conversation memory, and file bytes. Retention and erasure both build on these.

SQLite keeps deleted bytes around unless told otherwise: each write here turns on
``secure_delete`` (freed space is zeroed), and ``compact`` merges the full-text index (FTS5
leaves deleted words in its segments until a merge) and checkpoints the write-ahead log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.ai.trigger import REPLY_KIND
from warbler.ai.trigger import dedupe_key as reply_key
from warbler.files.store import FileStore
from warbler.store.db import Database
from warbler.store.models import Event, Job, StoredFile
from warbler.store.models_ai import AiBot, AiConversationState
from warbler.webhooks.service import DELIVERY_KIND

log = logging.getLogger(__name__)

BATCH = 500
_KEYS_PER_QUERY = 900
CHECKPOINT_TRIES = 40


def chunks(items: Sequence[Any], size: int = BATCH) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def secure_delete(s: AsyncSession) -> None:
    """On SQLite, overwrite what this transaction deletes or replaces with zeros."""
    if s.get_bind().dialect.name == "sqlite":
        await s.execute(text("PRAGMA secure_delete = ON"))


async def remove_search_rows(s: AsyncSession, message_ids: Sequence[str]) -> int:
    if not message_ids:
        return 0
    stmt = text("DELETE FROM message_search WHERE message_id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    result: Any = await s.execute(stmt, {"ids": list(message_ids)})
    return max(int(result.rowcount or 0), 0)


async def delete_message_events(
    s: AsyncSession, tenant_id: str, message_ids: Sequence[str]
) -> list[int]:
    """Delete the resume-log events of these messages; returns their event ids."""
    if not message_ids:
        return []
    ids = list(
        (
            await s.scalars(
                select(Event.id).where(
                    Event.tenant_id == tenant_id, Event.message_id.in_(message_ids)
                )
            )
        ).all()
    )
    if ids:
        await s.execute(delete(Event).where(Event.id.in_(ids)))
    return ids


class JobKeys:
    """The dedupe keys that tie jobs to messages and events: a bot's reply job is keyed
    ``ai:<bot>:<message>`` (``ai/trigger.py``), a webhook delivery ``wh:<webhook>:<event>``
    (``webhooks/dispatcher.py``). Knowing a tenant's bots and webhooks, the jobs about a set
    of messages are found through the unique index, without reading every job."""

    def __init__(self, bot_ids: set[str], webhook_ids: set[str]) -> None:
        self.bot_ids = sorted(bot_ids)
        self.webhook_ids = sorted(webhook_ids)

    @classmethod
    async def load(cls, s: AsyncSession, tenant_id: str) -> JobKeys:
        bots = set((await s.scalars(select(AiBot.id).where(AiBot.tenant_id == tenant_id))).all())
        refs = (
            await s.execute(
                select(Job.kind, Job.ref)
                .where(Job.tenant_id == tenant_id, Job.kind.in_((REPLY_KIND, DELIVERY_KIND)))
                .distinct()
            )
        ).all()
        bots |= {ref for kind, ref in refs if kind == REPLY_KIND and ref}
        hooks = {ref for kind, ref in refs if kind == DELIVERY_KIND and ref}
        return cls(bots, hooks)

    def keys(self, message_ids: Sequence[str], event_ids: Sequence[int]) -> list[str]:
        out = [reply_key(bot, m) for bot in self.bot_ids for m in message_ids]
        out += [f"wh:{hook}:{e}" for hook in self.webhook_ids for e in event_ids]
        return out

    async def delete_jobs(
        self, s: AsyncSession, tenant_id: str, message_ids: Sequence[str], event_ids: Sequence[int]
    ) -> int:
        total = 0
        for part in chunks(self.keys(message_ids, event_ids), _KEYS_PER_QUERY):
            result: Any = await s.execute(
                delete(Job).where(Job.tenant_id == tenant_id, Job.dedupe_key.in_(part))
            )
            total += int(result.rowcount or 0)
        return total


async def forget_ai_memory(s: AsyncSession, tenant_id: str, conversation_ids: set[str]) -> int:
    """Drop bots' running summaries of these conversations (they may quote what was
    deleted); the next reply summarises what is left."""
    total = 0
    for part in chunks(sorted(conversation_ids)):
        result: Any = await s.execute(
            update(AiConversationState)
            .where(
                AiConversationState.tenant_id == tenant_id,
                AiConversationState.conversation_id.in_(part),
                AiConversationState.summary.is_not(None),
            )
            .values(summary=None, summary_upto_seq=0)
        )
        total += int(result.rowcount or 0)
    return total


async def delete_files(
    db: Database, store: FileStore, tenant_id: str, file_ids: Sequence[str]
) -> int:
    """Delete files: the bytes first, then the rows (a crash in between leaves a row whose
    bytes are gone, which downloads answer 404 for and the next run deletes, never bytes
    with no row pointing at them)."""
    total = 0
    for part in chunks(list(file_ids)):
        async with db.read() as s:
            rows = (
                await s.execute(
                    select(StoredFile.id, StoredFile.storage_key).where(
                        StoredFile.tenant_id == tenant_id, StoredFile.id.in_(part)
                    )
                )
            ).all()
        for _, key in rows:
            await store.delete(key)
        async with db.write() as s:
            await secure_delete(s)
            result: Any = await s.execute(
                delete(StoredFile).where(
                    StoredFile.tenant_id == tenant_id, StoredFile.id.in_([r[0] for r in rows])
                )
            )
            total += int(result.rowcount or 0)
    return total


async def delete_where(db: Database, model: Any, *where: Any) -> int:
    """Delete a model's rows matching ``where`` in short transactions of ``BATCH`` rows."""
    pk = model.__mapper__.primary_key[0]
    total = 0
    while True:
        async with db.write() as s:
            await secure_delete(s)
            ids = list((await s.scalars(select(pk).where(*where).limit(BATCH))).all())
            if ids:
                await s.execute(delete(model).where(pk.in_(ids)))
        total += len(ids)
        if len(ids) < BATCH:
            return total


async def compact(db: Database, *, search: bool) -> None:
    """After deleting: on SQLite, merge the full-text index (``search``) so deleted words
    leave its segments, and checkpoint the WAL so old page images leave the -wal file.
    PostgreSQL reclaims dead rows with (auto)VACUUM; nothing to do here."""
    if not db.is_sqlite:
        return
    if search:
        async with db.write() as s:
            await secure_delete(s)
            await s.execute(text("INSERT INTO message_search(message_search) VALUES ('optimize')"))
    # A reader in the middle of a transaction keeps the checkpoint from finishing (busy):
    # try a few times; what is left is overwritten by later checkpoints.
    for _ in range(CHECKPOINT_TRIES):
        async with db.engine.connect() as conn:
            row = (await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")).first()
            busy = (row or (0,))[0]
        if not busy:
            return
        await asyncio.sleep(0.05)
    log.warning("the SQLite WAL could not be checkpointed after deleting (readers busy)")
