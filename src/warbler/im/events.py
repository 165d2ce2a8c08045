"""The resume log: record events inside a write transaction, replay what a cursor missed.

Each tenant's events carry a gap-free sequence number (``Event.seq``), the cursor clients
hold. Numbers are handed out in one statement at the end of the transaction
(``UPDATE tenants SET event_seq = event_seq + n``): the tenant row's lock is the last lock a
transaction takes and is held until commit, so numbers are committed in order on PostgreSQL
as on SQLite, and whoever has seen N+1 knows N is committed and can be read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.bus.base import BusEvent, EventBus
from warbler.clock import utcnow
from warbler.im.views import message_view
from warbler.security.encryption import bound_tenant
from warbler.security.encryption import ensure as ensure_keys
from warbler.store.db import before_commit
from warbler.store.models import Event, Member, Message, MessageHide, StoredFile, Tenant

PostCommit = list[Callable[[], None]]
_PENDING = "warbler.pending_events"


def audience_changes(type: str, payload: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(joined, left): whose live subscriptions an event changes, derived from the event
    itself so a replayed or re-read event routes exactly like the live one."""
    if type == "member.added":
        return tuple(payload.get("user_ids", ())), ()
    if type == "member.removed":
        return (), (payload["user_id"],)
    return (), ()


class EventLog:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    async def record(
        self,
        session: AsyncSession,
        after: PostCommit,
        *,
        tenant_id: str,
        type: str,
        data: dict[str, Any],
        conversation_id: str | None = None,
        target_user_id: str | None = None,
        message_id: str | None = None,
        actor_id: str | None = None,
    ) -> None:
        """Queue the event in the caller's transaction; it is numbered and stored just before
        the commit and published after it."""
        row: dict[str, Any] = {
            "tenant_id": tenant_id, "seq": 0, "type": type,
            "conversation_id": conversation_id, "target_user_id": target_user_id,
            "message_id": message_id, "actor_id": actor_id,
            "payload": {} if message_id else data, "created_at": utcnow(),
        }  # fmt: skip
        pending: list[dict[str, Any]] | None = session.info.get(_PENDING)
        if pending is None:
            pending = session.info[_PENDING] = []
            before_commit(session, _number_and_store)
        pending.append(row)
        joined, left = audience_changes(type, data)
        event = BusEvent(
            type=type, tenant_id=tenant_id, data=data, conversation_id=conversation_id,
            target_user_id=target_user_id, joined_user_ids=joined, left_user_ids=left,
        )  # fmt: skip
        after.append(lambda: self.bus.publish(replace(event, id=row["seq"])))

    def publish_ephemeral(self, event: BusEvent) -> None:
        """Typing, presence, receipts: pushed live, never stored, never replayed."""
        self.bus.publish(event)


# Built once: these run in every write transaction that records an event.
_INSERT_EVENT = insert(cast(Table, Event.__table__))
_TENANTS = cast(Table, Tenant.__table__)
_TAKE_NUMBERS = (
    update(_TENANTS)
    .where(_TENANTS.c.id == bindparam("tenant"))
    .values(event_seq=_TENANTS.c.event_seq + bindparam("n"))
    .returning(_TENANTS.c.event_seq)
)


async def _number_and_store(session: AsyncSession) -> None:
    pending: list[dict[str, Any]] = session.info.pop(_PENDING, [])
    by_tenant: dict[str, list[dict[str, Any]]] = {}
    for row in pending:
        by_tenant.setdefault(row["tenant_id"], []).append(row)
    for tenant_id in sorted(by_tenant):  # a fixed order, should a transaction span tenants
        rows = by_tenant[tenant_id]
        top = await session.scalar(_TAKE_NUMBERS, {"tenant": tenant_id, "n": len(rows)})
        assert top is not None, f"no tenant {tenant_id}"
        for offset, row in enumerate(rows):
            row["seq"] = top - len(rows) + 1 + offset
        # Payloads are encrypted under their own tenant's key. One executemany, no ORM
        # objects: nothing reads these rows back in the transaction.
        await ensure_keys(tenant_id)
        with bound_tenant(tenant_id):
            await session.execute(_INSERT_EVENT, rows)


async def latest_seq(session: AsyncSession, tenant_id: str) -> int:
    return (await session.scalar(select(Tenant.event_seq).where(Tenant.id == tenant_id))) or 0


async def cursor_is_resumable(session: AsyncSession, tenant_id: str, cursor: int) -> bool:
    """False when events after ``cursor`` may have been pruned, or the cursor is from the
    future (another database): the client must reload state and take a fresh cursor."""
    latest = await latest_seq(session, tenant_id)
    if cursor > latest:
        return False
    if cursor == latest:
        return True
    oldest = await session.scalar(select(func.min(Event.seq)).where(Event.tenant_id == tenant_id))
    return oldest is not None and cursor >= oldest - 1


async def replay(
    session: AsyncSession, *, tenant_id: str, user_id: str, after_seq: int, limit: int
) -> tuple[list[BusEvent], int, bool]:
    """Events after ``after_seq`` that ``user_id`` may see, oldest first.

    Scans at most ``limit`` log rows; returns (events, the last seq scanned, whether more rows
    may follow). Events for messages the user deleted for themselves are skipped.
    """
    my_conversations = select(Member.conversation_id).where(Member.user_id == user_id)
    rows = (
        await session.scalars(
            select(Event)
            .where(
                Event.tenant_id == tenant_id,
                Event.seq > after_seq,
                or_(
                    Event.target_user_id == user_id,
                    Event.target_user_id.is_(None) & Event.conversation_id.in_(my_conversations),
                ),
            )
            .order_by(Event.seq)
            .limit(limit)
        )
    ).all()
    events = await _as_bus_events(session, rows, hidden_for=user_id)
    last = rows[-1].seq if rows else after_seq
    return events, last, len(rows) == limit


async def tenant_events_between(
    session: AsyncSession, tenant_id: str, after_seq: int, upto_seq: int
) -> list[BusEvent]:
    """Every event of a tenant with ``after_seq < seq <= upto_seq``, in order: what a node
    re-reads to fill a gap in what its bus delivered."""
    rows = (
        await session.scalars(
            select(Event)
            .where(Event.tenant_id == tenant_id, Event.seq > after_seq, Event.seq <= upto_seq)
            .order_by(Event.seq)
        )
    ).all()
    return await _as_bus_events(session, rows, hidden_for=None)


async def _as_bus_events(
    session: AsyncSession, rows: Any, hidden_for: str | None
) -> list[BusEvent]:
    messages = await _messages_for(
        session, hidden_for, [r.message_id for r in rows if r.message_id]
    )
    out: list[BusEvent] = []
    for row in rows:
        data = row.payload
        if row.message_id:
            view = messages.get(row.message_id)
            if view is None:  # deleted for this user, or erased
                continue
            data = {"message": view}
        joined, left = audience_changes(row.type, data)
        out.append(
            BusEvent(
                type=row.type, tenant_id=row.tenant_id, data=data, id=row.seq,
                conversation_id=row.conversation_id, target_user_id=row.target_user_id,
                joined_user_ids=joined, left_user_ids=left,
            )
        )  # fmt: skip
    return out


async def _messages_for(
    session: AsyncSession, user_id: str | None, ids: list[str]
) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    stmt = (
        select(Message, StoredFile)
        .outerjoin(StoredFile, StoredFile.id == Message.file_id)
        .where(Message.id.in_(set(ids)))
    )
    if user_id is not None:
        hidden = select(MessageHide.message_id).where(MessageHide.user_id == user_id)
        stmt = stmt.where(Message.id.not_in(hidden))
    result = await session.execute(stmt)
    return {m.id: message_view(m, f) for m, f in result.all()}
