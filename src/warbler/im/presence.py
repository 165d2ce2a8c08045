"""Online presence and typing indicators: ephemeral, pushed live, never stored in the log."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from warbler.bus.base import BusEvent
from warbler.clock import utcnow
from warbler.im.events import EventLog

TYPING_THROTTLE_SECONDS = 2.0


class PresenceStore(Protocol):
    """Counts each user's connected devices (across nodes, in a shared implementation)."""

    async def connected(self, tenant_id: str, user_id: str) -> bool:
        """Count a device in; True when the user just came online."""

    async def disconnected(self, tenant_id: str, user_id: str) -> bool:
        """Count a device out; True when the user just went offline."""

    async def status(
        self, tenant_id: str, user_ids: Iterable[str]
    ) -> dict[str, dict[str, Any]]: ...


class MemoryPresenceStore:
    def __init__(self) -> None:
        self._devices: dict[tuple[str, str], int] = {}
        self._last_seen: dict[tuple[str, str], datetime] = {}

    async def connected(self, tenant_id: str, user_id: str) -> bool:
        key = (tenant_id, user_id)
        self._devices[key] = self._devices.get(key, 0) + 1
        return self._devices[key] == 1

    async def disconnected(self, tenant_id: str, user_id: str) -> bool:
        key = (tenant_id, user_id)
        left = self._devices.get(key, 0) - 1
        self._last_seen[key] = utcnow()
        if left <= 0:
            self._devices.pop(key, None)
            return True
        self._devices[key] = left
        return False

    async def status(self, tenant_id: str, user_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        out = {}
        for uid in user_ids:
            key = (tenant_id, uid)
            out[uid] = {
                "online": key in self._devices,
                "devices": self._devices.get(key, 0),
                "last_seen": self._last_seen.get(key),
            }
        return out


class PresenceService:
    def __init__(self, store: PresenceStore, events: EventLog) -> None:
        self.store = store
        self.events = events
        self._typing_sent: dict[tuple[str, str], float] = {}

    async def device_online(
        self, tenant_id: str, user_id: str, conversations: Iterable[str]
    ) -> None:
        if await self.store.connected(tenant_id, user_id):
            self._announce(tenant_id, user_id, "online", conversations)

    async def device_offline(
        self, tenant_id: str, user_id: str, conversations: Iterable[str]
    ) -> None:
        if await self.store.disconnected(tenant_id, user_id):
            self._announce(tenant_id, user_id, "offline", conversations)

    async def status(self, tenant_id: str, user_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        return await self.store.status(tenant_id, user_ids)

    def typing(
        self, tenant_id: str, user_id: str, conversation_id: str, state: str = "typing"
    ) -> bool:
        """Tell the other members; at most one "typing" per user and conversation every 2 s."""
        key = (user_id, conversation_id)
        now = time.monotonic()
        if state == "typing":
            if now - self._typing_sent.get(key, 0.0) < TYPING_THROTTLE_SECONDS:
                return False
            self._typing_sent[key] = now
            if len(self._typing_sent) > 100_000:
                self._typing_sent = {k: t for k, t in self._typing_sent.items() if now - t < 10}
        else:
            self._typing_sent.pop(key, None)
        self.events.publish_ephemeral(
            BusEvent(
                type="typing", tenant_id=tenant_id, conversation_id=conversation_id,
                data={"conversation_id": conversation_id, "user_id": user_id, "state": state},
                skip_user_id=user_id,
            )
        )  # fmt: skip
        return True

    def _announce(
        self, tenant_id: str, user_id: str, status: str, conversations: Iterable[str]
    ) -> None:
        self.events.publish_ephemeral(
            BusEvent(
                type="presence", tenant_id=tenant_id,
                data={"user_id": user_id, "status": status, "at": utcnow()},
                skip_user_id=user_id, audience_conversation_ids=tuple(conversations),
            )
        )  # fmt: skip
