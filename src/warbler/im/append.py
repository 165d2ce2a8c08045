"""Storing messages: the sequence number, the row, its search terms and its event.

The hot path of every send. Its statements are built once, at import, with bound
parameters: building a statement and its cache key costs more than running it here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Select, Table, and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from warbler.clock import utcnow
from warbler.ids import new_id
from warbler.im.events import EventLog, PostCommit
from warbler.im.views import message_view
from warbler.search import index as search_index
from warbler.security.encryption import bound_tenant
from warbler.security.encryption import ensure as ensure_keys
from warbler.store.models import Conversation, Member, Message, StoredFile

if TYPE_CHECKING:
    from warbler.im.send_batch import PendingSend


@dataclass(slots=True)
class Draft:
    """A message as the sender asked for it, before any check."""

    kind: str = "text"
    text: str | None = None
    data: dict[str, Any] | None = None
    file_id: str | None = None
    reply_to_id: str | None = None
    mentions: list[str] = field(default_factory=list)
    mention_all: bool = False
    client_msg_id: str | None = None


# On the tables, not the mapped classes: Core statements skip the ORM's bulk machinery
# (a third of a lone send's database time); the columns' types still encrypt.
_MESSAGES = cast(Table, Message.__table__)
_CONVERSATIONS = cast(Table, Conversation.__table__)
_INSERT_MESSAGE = insert(_MESSAGES)

_NEXT_SEQS = (
    update(_CONVERSATIONS)
    .where(_CONVERSATIONS.c.id == bindparam("conv"))
    .values(
        last_seq=_CONVERSATIONS.c.last_seq + bindparam("n"),
        last_message_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(_CONVERSATIONS.c.last_seq)
)

_MEMBERS_TABLE = cast(Table, Member.__table__)
_MARK_READ = (
    update(_MEMBERS_TABLE)
    .where(
        _MEMBERS_TABLE.c.conversation_id == bindparam("conv"),
        _MEMBERS_TABLE.c.user_id == bindparam("member"),
        _MEMBERS_TABLE.c.last_read_seq < bindparam("seq"),
    )
    .values(last_read_seq=bindparam("seq"))
)

_MEMBERS = (
    select(Conversation, Member)
    .join(Member, Member.conversation_id == Conversation.id)
    .where(
        Conversation.tenant_id == bindparam("tenant"),
        Conversation.id.in_(bindparam("convs", expanding=True)),
        Member.user_id.in_(bindparam("users", expanding=True)),
    )
)


@functools.cache
def _by_client_ids(n: int) -> Select[Message, StoredFile]:
    """The stored messages for ``n`` (conversation, sender, client_msg_id) keys: one OR term
    per key, each a lookup in the unique index (SQLite scans the table for a row-value
    ``IN``, and three ``IN`` lists would probe every combination). Built once per ``n``."""
    terms = [
        and_(
            Message.conversation_id == bindparam(f"c{i}"),
            Message.sender_id == bindparam(f"s{i}"),
            Message.client_msg_id == bindparam(f"m{i}"),
        )
        for i in range(n)
    ]
    return (
        select(Message, StoredFile)
        .outerjoin(StoredFile, StoredFile.id == Message.file_id)
        .where(or_(*terms))
    )


async def append(
    s: AsyncSession,
    after: PostCommit,
    events: EventLog,
    conv: Conversation,
    *,
    sender_id: str | None,
    draft: Draft,
    file: StoredFile | None = None,
) -> dict[str, Any]:
    """Give the message the conversation's next sequence number, store, index and announce it."""
    return (await append_many(s, after, events, [(conv, sender_id, draft, file)]))[0]


async def append_many(
    s: AsyncSession,
    after: PostCommit,
    events: EventLog,
    drafts: list[tuple[Conversation, str | None, Draft, StoredFile | None]],
) -> list[dict[str, Any]]:
    """Store several messages (of one tenant) in the caller's transaction, in order.

    Each conversation's numbers come from one ``UPDATE … RETURNING``, which takes the
    conversation row's lock, so concurrent senders are ordered and the sequence stays
    gap-free (a failed transaction rolls its numbers back). The rows, their search terms and
    their events are written with one statement each, whatever the number of messages.
    """
    if not drafts:
        return []
    now = utcnow()
    counts: dict[str, int] = {}
    convs: dict[str, Conversation] = {}
    for conv, _, _, _ in drafts:
        counts[conv.id] = counts.get(conv.id, 0) + 1
        convs[conv.id] = conv
    next_seq: dict[str, int] = {}
    for conv_id, n in counts.items():
        top = await s.scalar(_NEXT_SEQS, {"conv": conv_id, "n": n, "now": now})
        assert top is not None
        _learn(convs[conv_id], top, now)
        next_seq[conv_id] = top - n + 1
    tenant_id = drafts[0][0].tenant_id
    rows: list[dict[str, Any]] = []
    for conv, sender_id, draft, _ in drafts:
        assert conv.tenant_id == tenant_id, "append_many stores one tenant's messages"
        seq = next_seq[conv.id]
        next_seq[conv.id] = seq + 1
        rows.append({
            "id": new_id(), "tenant_id": tenant_id, "conversation_id": conv.id, "seq": seq,
            "sender_id": sender_id, "client_msg_id": draft.client_msg_id, "kind": draft.kind,
            "text": draft.text, "data": draft.data, "file_id": draft.file_id,
            "reply_to_id": draft.reply_to_id, "mentions": draft.mentions or None,
            "mention_all": draft.mention_all, "created_at": now,
        })  # fmt: skip
    # Plain rows (nothing reads them back as objects in this transaction), so one
    # executemany and no ORM bookkeeping. Bodies are encrypted under the conversation's
    # tenant's key, whoever calls.
    messages = [SimpleNamespace(**row, edited_at=None, recalled_at=None) for row in rows]
    await ensure_keys(tenant_id)
    with bound_tenant(tenant_id):
        await s.execute(_INSERT_MESSAGE, rows)
        await search_index.add_many(s, cast(list[Message], messages))
    views: list[dict[str, Any]] = []
    for msg, (_, sender_id, _, file) in zip(messages, drafts, strict=True):
        view = message_view(cast(Message, msg), file)
        await events.record(
            s, after, tenant_id=tenant_id, type="message.new", data={"message": view},
            conversation_id=msg.conversation_id, message_id=msg.id, actor_id=sender_id,
        )  # fmt: skip
        views.append(view)
    return views


def _learn(conv: Conversation, last_seq: int, now: datetime) -> None:
    """The loaded object learns the new values without becoming dirty (no second UPDATE)."""
    set_committed_value(conv, "last_seq", last_seq)
    set_committed_value(conv, "last_message_at", now)
    set_committed_value(conv, "updated_at", now)


async def members_of(
    s: AsyncSession, batch: list[PendingSend]
) -> dict[tuple[str, str], tuple[Conversation, Member]]:
    """(conversation, sender) -> the conversation and the membership, for a batch's senders
    who are members (of a conversation of their own tenant)."""
    params = {
        "tenant": batch[0].principal.tenant_id,
        "convs": list({i.conversation_id for i in batch}),
        "users": list({i.sender_id for i in batch}),
    }
    rows = (await s.execute(_MEMBERS, params)).all()
    return {(conv.id, member.user_id): (conv, member) for conv, member in rows}


async def by_client_ids(
    s: AsyncSession, batch: list[PendingSend]
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The already stored messages a batch's ``client_msg_id``s name (idempotent retries)."""
    keys = list(
        {
            (i.conversation_id, i.sender_id, i.draft.client_msg_id)
            for i in batch
            if i.draft.client_msg_id
        }
    )
    if not keys:
        return {}
    params: dict[str, str] = {}
    for i, (conv, sender, client_id) in enumerate(keys):
        params[f"c{i}"], params[f"s{i}"], params[f"m{i}"] = conv, sender, client_id
    rows = (await s.execute(_by_client_ids(len(keys)), params)).all()
    return {
        (m.conversation_id, m.sender_id or "", m.client_msg_id or ""): message_view(m, f)
        for m, f in rows
    }


async def mark_read(s: AsyncSession, read_up_to: dict[tuple[str, str], int]) -> None:
    """Move members' read markers up to the given seqs (never back), in one statement."""
    if read_up_to:
        rows = [{"conv": c, "member": u, "seq": seq} for (c, u), seq in read_up_to.items()]
        await s.execute(_MARK_READ, rows)


def needs_ref_checks(d: Draft) -> bool:
    return bool(d.file_id or d.reply_to_id or d.mentions or d.mention_all)
