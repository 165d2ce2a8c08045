"""The event types a webhook can subscribe to: the tenant-wide events of the resume log.

Events addressed to one user's devices (``message.hidden``, ``member.settings``: they carry a
``target_user_id``) are private to that user and never leave the server.
"""

from __future__ import annotations

EVENT_TYPES = (
    "message.new",
    "message.edited",
    "message.recalled",
    "message.completed",  # a bot's streamed reply is finished (usage and sources attached)
    "support.handoff_requested",  # a bot asked for a human to take over the conversation
    "support.state_changed",  # a support conversation was queued, assigned, resolved, ...
    "support.csat_submitted",  # a visitor rated a resolved support conversation
    "member.added",
    "member.removed",
    "member.updated",
    "conversation.updated",
)


def wants(event_types: list[str], event_type: str, target_user_id: str | None) -> bool:
    """Whether a webhook subscribed to ``event_types`` (empty: all) gets this event."""
    if target_user_id is not None or event_type not in EVENT_TYPES:
        return False
    return not event_types or event_type in event_types
