"""The JSON shapes of customer service: settings, teams, agents, tickets, transitions."""

from __future__ import annotations

from typing import Any

from warbler.store.models import User
from warbler.store.models_support import (
    SupportAgent,
    SupportConversation,
    SupportSettings,
    SupportTeam,
    SupportTicket,
    SupportTransition,
)


def settings_view(row: SupportSettings) -> dict[str, Any]:
    """The tenant's support settings; the identity secret is never shown, only whether set."""
    return {
        "tenant_id": row.tenant_id,
        "widget_id": row.widget_id,
        "bot_user_id": row.bot_user_id,
        "default_team_id": row.default_team_id,
        "escalate_keywords": list(row.escalate_keywords or []),
        "negative_words": list(row.negative_words or []),
        "escalate_on_no_answer": row.escalate_on_no_answer,
        "widget_title": dict(row.widget_title or {}),
        "widget_greeting": dict(row.widget_greeting or {}),
        "widget_color": row.widget_color,
        "allowed_origins": list(row.allowed_origins or []),
        "identity_secret_set": row.identity_secret_sealed is not None,
        "identity_required": row.identity_required,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def team_view(row: SupportTeam, member_ids: list[str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "timezone": row.timezone,
        "office_hours": dict(row.office_hours or {}),
        "holidays": list(row.holidays or []),
        "sla_first_response_seconds": row.sla_first_response_seconds,
        "sla_resolution_seconds": row.sla_resolution_seconds,
        "member_ids": member_ids,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def person(user: User | None) -> dict[str, Any] | None:
    """A user as the other side of a conversation sees them: id and name only."""
    if user is None:
        return None
    return {"id": user.id, "display_name": user.display_name}


def agent_view(
    row: SupportAgent, user: User, open_count: int, team_ids: list[str]
) -> dict[str, Any]:
    return {
        "user_id": row.user_id,
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "status": row.status,
        "capacity": row.capacity,
        "open_count": open_count,
        "team_ids": team_ids,
        "last_assigned_at": row.last_assigned_at,
        "status_changed_at": row.status_changed_at,
    }


def ticket_view(t: SupportTicket) -> dict[str, Any]:
    return {
        "id": t.id,
        "conversation_id": t.conversation_id,
        "team_id": t.team_id,
        "state": t.state,
        "reason": t.reason,
        "reason_detail": dict(t.reason_detail or {}),
        "summary": t.summary,
        "assignee_id": t.assignee_id,
        "queued_at": t.queued_at,
        "assigned_at": t.assigned_at,
        "first_response_at": t.first_response_at,
        "resolved_at": t.resolved_at,
        "resolved_by": t.resolved_by,
        "sla_first_response_due": t.sla_first_response_due,
        "sla_resolution_due": t.sla_resolution_due,
        "csat_score": t.csat_score,
        "csat_comment": t.csat_comment,
        "csat_at": t.csat_at,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    }


def state_view(sc: SupportConversation) -> dict[str, Any]:
    return {
        "conversation_id": sc.conversation_id,
        "visitor_id": sc.visitor_id,
        "bot_user_id": sc.bot_user_id,
        "team_id": sc.team_id,
        "state": sc.state,
        "ticket_id": sc.ticket_id,
        "failed_answers": sc.failed_answers,
        "locale": sc.locale,
        "created_at": sc.created_at,
        "updated_at": sc.updated_at,
    }


def transition_view(t: SupportTransition) -> dict[str, Any]:
    return {
        "id": t.id,
        "conversation_id": t.conversation_id,
        "ticket_id": t.ticket_id,
        "from_state": t.from_state,
        "to_state": t.to_state,
        "reason": t.reason,
        "actor_id": t.actor_id,
        "data": dict(t.data or {}),
        "created_at": t.created_at,
    }
