"""The ``EventBus`` interface and the event it carries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class BusEvent:
    """One event for clients.

    ``id`` is the resume-log id (the cursor) or ``None`` for ephemeral events (typing,
    presence, receipts) that are pushed live and never replayed. An event goes to the members
    of ``conversation_id``, or only to ``target_user_id``'s devices when that is set.
    """

    type: str
    tenant_id: str
    data: dict[str, Any]
    id: int | None = None
    conversation_id: str | None = None
    target_user_id: str | None = None
    # Members not to notify (the typist, for a typing event).
    skip_user_id: str | None = None
    # Users whose gateway subscriptions change with this event (membership events).
    joined_user_ids: tuple[str, ...] = field(default=())
    left_user_ids: tuple[str, ...] = field(default=())
    # For presence: the subject's conversations; their members are told (never sent on).
    audience_conversation_ids: tuple[str, ...] = field(default=())

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "event", "event": self.type, "id": self.id}
        if self.conversation_id is not None:
            out["conversation_id"] = self.conversation_id
        out["data"] = self.data
        return out

    def to_dict(self) -> dict[str, Any]:
        """Every field, for a bus that crosses processes (tuples become lists in JSON)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> BusEvent:
        """The inverse of ``to_dict`` after a JSON round trip: lists back to tuples."""
        return cls(
            type=raw["type"],
            tenant_id=raw["tenant_id"],
            data=raw.get("data") or {},
            id=raw.get("id"),
            conversation_id=raw.get("conversation_id"),
            target_user_id=raw.get("target_user_id"),
            skip_user_id=raw.get("skip_user_id"),
            joined_user_ids=tuple(raw.get("joined_user_ids") or ()),
            left_user_ids=tuple(raw.get("left_user_ids") or ()),
            audience_conversation_ids=tuple(raw.get("audience_conversation_ids") or ()),
        )


Handler = Callable[[BusEvent], Awaitable[None] | None]
# Called after the bus (re)connects: events may have been missed while it was away.
ReconnectCallback = Callable[[], Awaitable[None] | None]


class EventBus(Protocol):
    def publish(self, event: BusEvent) -> None:
        """Hand an event to every subscriber on every node. Never blocks the caller."""

    def subscribe(self, handler: Handler) -> None:
        """Register a handler for every event published from now on."""

    def on_reconnect(self, callback: ReconnectCallback) -> None:
        """Call ``callback`` after every successful (re)connection to the shared transport, so
        the caller can re-read from the database what it may have missed meanwhile."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...
