"""Routes bus events to the devices connected to this node."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from warbler.bus.base import BusEvent
from warbler.delivery.session import DeviceSession, encode


class Hub:
    def __init__(self) -> None:
        self._sessions: dict[str, set[DeviceSession]] = defaultdict(set)
        self._conv_users: dict[str, set[str]] = defaultdict(set)
        self._user_convs: dict[str, set[str]] = defaultdict(set)

    # -- connections -------------------------------------------------------------------

    def attach(self, session: DeviceSession, conversation_ids: Iterable[str]) -> bool:
        """Register a device; returns True when it is the user's first device on this node."""
        first = not self._sessions.get(session.user_id)
        self._sessions[session.user_id].add(session)
        for conv in conversation_ids:
            self._join(session.user_id, conv)
        return first

    def detach(self, session: DeviceSession) -> bool:
        """Forget a device; returns True when it was the user's last device on this node."""
        devices = self._sessions.get(session.user_id)
        if devices is None:
            return False
        devices.discard(session)
        if devices:
            return False
        del self._sessions[session.user_id]
        for conv in self._user_convs.pop(session.user_id, set()):
            users = self._conv_users.get(conv)
            if users is not None:
                users.discard(session.user_id)
                if not users:
                    del self._conv_users[conv]
        return True

    def conversations_of(self, user_id: str) -> set[str]:
        return self._user_convs.get(user_id, set())

    def is_connected(self, user_id: str) -> bool:
        return bool(self._sessions.get(user_id))

    @property
    def device_count(self) -> int:
        return sum(len(s) for s in self._sessions.values())

    def broadcast_control(self, message: dict[str, Any]) -> None:
        """A control frame (a heartbeat) to every device on this node, encoded once."""
        wire = encode(message)
        for devices in list(self._sessions.values()):
            for session in list(devices):
                session.send_encoded(wire)

    def close_all(self, reason: str) -> None:
        for devices in list(self._sessions.values()):
            for session in list(devices):
                session.close(reason)

    def close_user(self, user_id: str, reason: str) -> None:
        for session in list(self._sessions.get(user_id, ())):
            session.close(reason)

    # -- events ------------------------------------------------------------------------

    def on_event(self, event: BusEvent) -> None:
        conv = event.conversation_id
        if conv is not None:
            for user_id in event.joined_user_ids:
                if user_id in self._sessions:
                    self._join(user_id, conv)
        recipients = self._recipients(event)
        if recipients:
            wire = encode(event.to_wire())
            for user_id in recipients:
                for session in self._sessions.get(user_id, ()):
                    session.offer(event, wire)
        if conv is not None:
            for user_id in event.left_user_ids:
                self._leave(user_id, conv)

    def _recipients(self, event: BusEvent) -> list[str]:
        if event.target_user_id is not None:
            return [event.target_user_id] if event.target_user_id in self._sessions else []
        if event.conversation_id is not None:
            users = self._conv_users.get(event.conversation_id, ())
            left = [u for u in event.left_user_ids if u in self._sessions]
            out = [u for u in users if u != event.skip_user_id]
            return out + [u for u in left if u not in users]
        shared: set[str] = set()
        for conv in event.audience_conversation_ids:
            shared.update(self._conv_users.get(conv, ()))
        shared.discard(event.skip_user_id or "")
        return list(shared)

    def _join(self, user_id: str, conv: str) -> None:
        self._user_convs[user_id].add(conv)
        self._conv_users[conv].add(user_id)

    def _leave(self, user_id: str, conv: str) -> None:
        convs = self._user_convs.get(user_id)
        if convs is not None:
            convs.discard(conv)
        users = self._conv_users.get(conv)
        if users is not None:
            users.discard(user_id)
            if not users:
                del self._conv_users[conv]
