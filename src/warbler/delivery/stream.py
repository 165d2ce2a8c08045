"""A device's event stream: attach, replay what its cursor missed, then go live.

The device is attached to the hub *before* the replay query, so an event committed while the
replay runs is either in the replay or buffered, never lost; duplicates are dropped by id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from warbler.delivery.session import DeviceSession, FrameSocket, encode
from warbler.im.events import cursor_is_resumable, latest_seq, replay
from warbler.im.principal import Principal
from warbler.services import Services
from warbler.store.models import Member

REPLAY_PAGE = 500

SendFrame = Callable[[bytes], Awaitable[None]]


async def open_stream(
    svc: Services, principal: Principal, socket: FrameSocket
) -> tuple[DeviceSession, list[str]]:
    user_id = principal.require_user()
    async with svc.db.read() as s:
        conversations = list(
            (await s.scalars(select(Member.conversation_id).where(Member.user_id == user_id))).all()
        )
    session = DeviceSession(
        tenant_id=principal.tenant_id, user_id=user_id, queue_size=svc.settings.ws_queue_size,
        socket=socket,
    )  # fmt: skip
    await svc.sequencer.track(principal.tenant_id)
    svc.hub.attach(session, conversations)
    await svc.presence.device_online(principal.tenant_id, user_id, conversations)
    return session, conversations


async def catch_up(
    svc: Services, session: DeviceSession, cursor: int | None, send: SendFrame
) -> int:
    """Send ``hello``, every missed event after ``cursor`` in order, then ``synced``; switch
    the device to live delivery. Returns the cursor the device is at."""
    async with svc.db.read() as s:
        latest = await latest_seq(s, session.tenant_id)
        resumable = cursor is None or await cursor_is_resumable(s, session.tenant_id, cursor)
    hello: dict[str, Any] = {
        "type": "hello", "session_id": session.id, "user_id": session.user_id,
        "cursor": latest, "heartbeat_seconds": svc.settings.ws_heartbeat_seconds,
    }  # fmt: skip
    await send(encode(hello))
    if cursor is None or not resumable:
        if not resumable:
            await send(encode({"type": "resync_required", "cursor": latest}))
        session.go_live(latest)
        return latest
    position = cursor
    while True:
        async with svc.db.read() as s:
            page, position, more = await replay(
                s, tenant_id=session.tenant_id, user_id=session.user_id,
                after_seq=position, limit=REPLAY_PAGE,
            )  # fmt: skip
        for event in page:
            await send(encode(event.to_wire()))
        if session.close_reason is not None:
            # Closed meanwhile (too slow, or the node is leaving): no "synced", the device
            # resumes from the last event it got.
            return position
        if not more:
            break
    # Events the user cannot see still move the cursor past them.
    position = max(position, latest)
    await send(encode({"type": "synced", "cursor": position}))
    session.go_live(position)
    return position


async def close_stream(svc: Services, session: DeviceSession) -> None:
    conversations = set(svc.hub.conversations_of(session.user_id))
    svc.hub.detach(session)
    svc.sequencer.untrack(session.tenant_id)
    await svc.presence.device_offline(session.tenant_id, session.user_id, conversations)
