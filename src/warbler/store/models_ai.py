"""AI tables: bots, provider configurations, reply usage, conversation memory, tenant quotas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from warbler.security.encryption.columns import EncryptedText
from warbler.store.models import ID, Base


class AiProvider(Base):
    """A tenant's LLM endpoint. The API key is sealed (``services.secrets``) with the context
    ``ai_provider:<id>:api_key``; it is never stored, logged or returned in plain text."""

    __tablename__ = "ai_providers"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # openai | anthropic | local
    base_url: Mapped[str] = mapped_column(String(2000), default="")
    api_key_sealed: Mapped[str | None] = mapped_column(Text)
    # The last four characters of the key, so an admin can tell which key is set.
    api_key_last4: Mapped[str | None] = mapped_column(String(4))
    model: Mapped[str] = mapped_column(String(200), default="")
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)  # non-secret extra headers
    extra_body: Mapped[dict[str, Any]] = mapped_column(default=dict)
    stream: Mapped[bool] = mapped_column(Boolean, default=True)  # False: whole answers only
    price_prompt: Mapped[float] = mapped_column(default=0.0)  # per 1M tokens
    price_completion: Mapped[float] = mapped_column(default=0.0)
    # None: the settings defaults (ai_request_timeout_seconds, ai_idle_..., ai_max_retries).
    timeout_seconds: Mapped[float | None]
    idle_timeout_seconds: Mapped[float | None]
    max_retries: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AiBot(Base):
    __tablename__ = "ai_bots"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    # The bot's own user (kind "bot"): how it is a member of conversations and sends replies.
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    avatar_url: Mapped[str | None] = mapped_column(String(500))
    persona: Mapped[str] = mapped_column(Text, default="")
    presets: Mapped[list[Any]] = mapped_column(default=list)  # [{name, persona, model, ...}]
    provider_ids: Mapped[list[Any]] = mapped_column(default=list)  # the fallback order
    model: Mapped[str | None] = mapped_column(String(200))
    temperature: Mapped[float | None]
    max_tokens: Mapped[int | None] = mapped_column(Integer)
    context_tokens: Mapped[int] = mapped_column(Integer, default=4000)
    kb_ids: Mapped[list[Any]] = mapped_column(default=list)
    tools: Mapped[list[Any]] = mapped_column(default=list)
    dm_policy: Mapped[str] = mapped_column(String(16), default="always")
    group_policy: Mapped[str] = mapped_column(String(16), default="mention")
    quotas: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AiConversationState(Base):
    """What a bot remembers about one conversation: the chosen preset, a rolling summary."""

    __tablename__ = "ai_conversation_state"
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    bot_id: Mapped[str] = mapped_column(
        ForeignKey("ai_bots.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    preset: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[str | None] = mapped_column(EncryptedText("ai_conversation_state.summary"))
    summary_upto_seq: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime]


class AiUsage(Base):
    """One row per bot reply (or OpenAI-compatible API call): tokens, cost, latency, outcome.
    ``bot_id`` has no foreign key on purpose: the bill outlives a deleted bot."""

    __tablename__ = "ai_usage"
    __table_args__ = (
        # The token columns make these covering indexes for the monthly quota sums.
        Index(
            "ix_ai_usage_tenant_time",
            "tenant_id",
            "created_at",
            "prompt_tokens",
            "completion_tokens",
        ),
        Index(
            "ix_ai_usage_bot_time",
            "tenant_id",
            "bot_id",
            "created_at",
            "prompt_tokens",
            "completion_tokens",
        ),
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    bot_id: Mapped[str] = mapped_column(String(26))
    user_id: Mapped[str | None] = mapped_column(String(26))  # who asked; None for API keys
    conversation_id: Mapped[str | None] = mapped_column(String(26))
    trigger_message_id: Mapped[str | None] = mapped_column(String(26))
    reply_message_id: Mapped[str | None] = mapped_column(String(26))
    source: Mapped[str] = mapped_column(String(16))  # chat | openai_api | suggestion
    provider: Mapped[str | None] = mapped_column(String(100))
    model: Mapped[str | None] = mapped_column(String(200))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[float] = mapped_column(default=0.0)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    # answered | fallback | curated | no_answer | apology | quota
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]


class AiTenantQuotas(Base):
    """A tenant's own AI limits, overriding the settings defaults (``None``: the default;
    0: unlimited)."""

    __tablename__ = "ai_tenant_quotas"
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    messages_per_minute: Mapped[int | None] = mapped_column(Integer)
    tokens_per_month: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]
