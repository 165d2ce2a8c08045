"""SQLAlchemy tables. Every row carries ``tenant_id``; every query filters by it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from warbler.security.encryption.columns import EncryptedJSON, EncryptedString, EncryptedText

ID = String(26)
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants a BIGINT identity.
EventId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always returns timezone-aware datetimes (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime stored")
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The last event sequence number handed out in this tenant (see Event.seq).
    event_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime]


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "username"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # human | bot | visitor
    role: Mapped[str] = mapped_column(String(16))  # owner | admin | agent | member | bot | visitor
    password_hash: Mapped[str | None] = mapped_column(String(200))
    avatar_url: Mapped[str | None] = mapped_column(String(500))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AccessToken(Base):
    __tablename__ = "access_tokens"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    device: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[Any]]
    created_by: Mapped[str | None] = mapped_column(String(26))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("tenant_id", "direct_key"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # direct | group
    title: Mapped[str | None] = mapped_column(String(200))
    announcement: Mapped[str | None] = mapped_column(Text)
    # "<smaller user id>:<larger user id>" for direct conversations, so a pair has exactly one.
    direct_key: Mapped[str | None] = mapped_column(String(60))
    created_by: Mapped[str | None] = mapped_column(String(26))
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_message_at: Mapped[datetime | None]


class Member(Base):
    __tablename__ = "members"
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # owner | admin | member
    muted: Mapped[bool] = mapped_column(Boolean, default=False)
    last_read_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    joined_at: Mapped[datetime]


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        UniqueConstraint("conversation_id", "sender_id", "client_msg_id"),
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    sender_id: Mapped[str | None] = mapped_column(String(26))
    client_msg_id: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # text | image | file | card | system
    # Encrypted at rest under the tenant's data key (security/encryption/columns.py).
    text: Mapped[str | None] = mapped_column(EncryptedText("messages.text"))
    data: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON("messages.data"))
    file_id: Mapped[str | None] = mapped_column(String(26))
    reply_to_id: Mapped[str | None] = mapped_column(String(26))
    mentions: Mapped[list[Any] | None]
    mention_all: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    edited_at: Mapped[datetime | None]
    recalled_at: Mapped[datetime | None]


class MessageHide(Base):
    """A message deleted "for me": hidden from one user's history, search and replay."""

    __tablename__ = "message_hides"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    conversation_id: Mapped[str] = mapped_column(String(26))
    created_at: Mapped[datetime]


class Event(Base):
    """The resume log: what a reconnecting client replays after its cursor.

    ``seq`` numbers a tenant's events without gaps, in commit order (it is assigned at the end
    of the transaction under the tenant row's lock), so a node or client that has seen N and
    then sees N+2 knows exactly what to fetch. It is the cursor clients hold.

    Message events reference the message row instead of copying its body, so the body is
    stored once and a replay shows its current state.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "seq"),
        Index("ix_events_created", "created_at"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(EventId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(40))
    conversation_id: Mapped[str | None] = mapped_column(String(26))
    # Set for events meant for one user's devices only (delete-for-me, being removed).
    target_user_id: Mapped[str | None] = mapped_column(String(26))
    message_id: Mapped[str | None] = mapped_column(String(26))
    actor_id: Mapped[str | None] = mapped_column(String(26))
    # Encrypted: non-message events copy bodies (a conversation's announcement, a hand-off
    # summary).
    payload: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("events.payload"))
    created_at: Mapped[datetime]


class StoredFile(Base):
    __tablename__ = "files"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    uploader_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]


class Webhook(Base):
    __tablename__ = "webhooks"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(EncryptedString("webhooks.secret", 200))
    event_types: Mapped[list[Any]]  # empty list: every event type
    description: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The last event seq (of its tenant) already turned into deliveries for this webhook.
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    created_by: Mapped[str | None] = mapped_column(String(26))
    created_at: Mapped[datetime]


class Job(Base):
    """Durable background work (webhook deliveries now; AI replies and ingestion later)."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_due", "status", "run_at"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(String(26), index=True)
    kind: Mapped[str] = mapped_column(String(60))
    # What the job is about (a webhook id for deliveries), so admins can list them.
    ref: Mapped[str | None] = mapped_column(String(60), index=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    # Payloads and results are encrypted: a job may carry what it works on (message text).
    payload: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("jobs.payload"))
    status: Mapped[str] = mapped_column(String(16))  # pending | running | done | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    run_at: Mapped[datetime]
    locked_by: Mapped[str | None] = mapped_column(String(100))
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON("jobs.result"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
