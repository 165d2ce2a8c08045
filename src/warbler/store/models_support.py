"""Customer-service tables (``warbler/support/``): the widget, teams, agents, tickets.

A support conversation is a ``conversations`` row of kind ``support`` (the visitor, the
support bot and, while a person handles it, the assigned agent). ``support_conversations``
holds its current state; each stretch handled by people is a ``support_tickets`` row
(waiting → assigned → resolved), and every change of state is a ``support_transitions`` row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from warbler.security.encryption.columns import EncryptedJSON, EncryptedText
from warbler.store.models import ID, Base, EventId

# Conversation states (support_conversations.state) and ticket states.
STATES = ("bot", "waiting", "assigned", "resolved")
TICKET_STATES = ("waiting", "assigned", "resolved")


class SupportSettings(Base):
    """One row per tenant that runs customer service: the widget and the escalation rules."""

    __tablename__ = "support_settings"
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    # The public id the <script> tag names (data-widget); not a secret.
    widget_id: Mapped[str] = mapped_column(String(40), unique=True)
    bot_user_id: Mapped[str | None] = mapped_column(String(26))  # the support bot
    default_team_id: Mapped[str | None] = mapped_column(String(26))
    escalate_keywords: Mapped[list[Any]] = mapped_column(default=list)  # topics for people
    negative_words: Mapped[list[Any]] = mapped_column(default=list)  # added to the lexicon
    escalate_on_no_answer: Mapped[bool] = mapped_column(Boolean, default=True)
    widget_title: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"en": ..., "zh": ...}
    widget_greeting: Mapped[dict[str, Any]] = mapped_column(default=dict)
    widget_color: Mapped[str] = mapped_column(String(20), default="#2563eb")
    # Sites that may embed the widget (CSP frame-ancestors); empty: any site.
    allowed_origins: Mapped[list[Any]] = mapped_column(default=list)
    # HMAC key the company's backend signs visitor identity tokens with; sealed
    # (security/crypto.py, context "support:<tenant_id>:identity").
    identity_secret_sealed: Mapped[str | None] = mapped_column(Text)
    # When true, anonymous visitors are refused: every session needs a signed token.
    identity_required: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SupportTeam(Base):
    __tablename__ = "support_teams"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")  # IANA name
    # {"mon": [["09:00", "18:00"]], ...}; an empty dict means always open.
    office_hours: Mapped[dict[str, Any]] = mapped_column(default=dict)
    holidays: Mapped[list[Any]] = mapped_column(default=list)  # ["2026-12-25", ...] local dates
    sla_first_response_seconds: Mapped[int | None] = mapped_column(Integer)
    sla_resolution_seconds: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SupportTeamMember(Base):
    __tablename__ = "support_team_members"
    team_id: Mapped[str] = mapped_column(
        ForeignKey("support_teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)


class SupportAgent(Base):
    """A person who handles conversations: availability, capacity, round-robin order."""

    __tablename__ = "support_agents"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    capacity: Mapped[int] = mapped_column(Integer, default=3)  # open conversations at once
    status: Mapped[str] = mapped_column(String(16), default="offline")  # online | away | offline
    last_assigned_at: Mapped[datetime | None]
    status_changed_at: Mapped[datetime]


class SupportVisitor(Base):
    """How a widget visitor (a ``users`` row of kind visitor) is found again."""

    __tablename__ = "support_visitors"
    __table_args__ = (UniqueConstraint("tenant_id", "external_id"),)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    # The company's own id for an identified visitor (the signed token's "sub").
    external_id: Mapped[str | None] = mapped_column(String(200))
    # sha256 of an anonymous visitor's resume key (kept by the browser), hex.
    key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    locale: Mapped[str] = mapped_column(String(8), default="en")  # en | zh
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class SupportConversation(Base):
    """The current state of one support conversation (``conversations.kind == "support"``)."""

    __tablename__ = "support_conversations"
    __table_args__ = (Index("ix_support_conversations_state", "tenant_id", "state"),)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    visitor_id: Mapped[str] = mapped_column(String(26), index=True)
    bot_user_id: Mapped[str | None] = mapped_column(String(26))
    team_id: Mapped[str | None] = mapped_column(String(26))
    state: Mapped[str] = mapped_column(String(16), default="bot")  # see STATES
    ticket_id: Mapped[str | None] = mapped_column(String(26))  # the open ticket, if any
    # Bot answers in a row that did not help (ungrounded, or the question came back).
    failed_answers: Mapped[int] = mapped_column(Integer, default=0)
    last_question_id: Mapped[str | None] = mapped_column(String(26))  # the visitor's last text
    locale: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SupportTicket(Base):
    """One stretch of a conversation handled by people: queued, assigned, resolved, rated."""

    __tablename__ = "support_tickets"
    __table_args__ = (
        Index("ix_support_tickets_queue", "tenant_id", "state", "queued_at"),
        Index("ix_support_tickets_assignee", "tenant_id", "assignee_id", "state"),
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    team_id: Mapped[str | None] = mapped_column(String(26))
    state: Mapped[str] = mapped_column(String(16))  # see TICKET_STATES
    reason: Mapped[str] = mapped_column(String(40))  # the reason code that opened it
    reason_detail: Mapped[dict[str, Any]] = mapped_column(
        EncryptedJSON("support_tickets.reason_detail"), default=dict
    )
    # The bot's note for the agent.
    summary: Mapped[str | None] = mapped_column(EncryptedText("support_tickets.summary"))
    assignee_id: Mapped[str | None] = mapped_column(String(26))
    queued_at: Mapped[datetime]
    assigned_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]  # an agent's first message after queued_at
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(26))
    sla_first_response_due: Mapped[datetime | None]
    sla_resolution_due: Mapped[datetime | None]
    csat_score: Mapped[int | None] = mapped_column(Integer)  # 1..5
    csat_comment: Mapped[str | None] = mapped_column(EncryptedText("support_tickets.csat_comment"))
    csat_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SupportTransition(Base):
    """The audited history of a support conversation: every change of state, who, why."""

    __tablename__ = "support_transitions"
    __table_args__ = (
        Index("ix_support_transitions_conversation", "conversation_id", "id"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    conversation_id: Mapped[str] = mapped_column(String(26))
    ticket_id: Mapped[str | None] = mapped_column(String(26))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(40))  # a reason code or an action name
    actor_id: Mapped[str | None] = mapped_column(String(26))  # None: the system
    data: Mapped[dict[str, Any]] = mapped_column(
        EncryptedJSON("support_transitions.data"), default=dict
    )
    created_at: Mapped[datetime]


class SupportNote(Base):
    """An internal note on a conversation: agents see it, the visitor never does."""

    __tablename__ = "support_notes"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    ticket_id: Mapped[str | None] = mapped_column(String(26))
    author_id: Mapped[str] = mapped_column(String(26))
    text: Mapped[str] = mapped_column(EncryptedText("support_notes.text"))
    created_at: Mapped[datetime]


class CannedReply(Base):
    __tablename__ = "support_canned_replies"
    __table_args__ = (UniqueConstraint("tenant_id", "shortcut"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    team_id: Mapped[str | None] = mapped_column(String(26))  # None: every team
    shortcut: Mapped[str] = mapped_column(String(40))  # typed as "/shortcut" in the console
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(26))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
