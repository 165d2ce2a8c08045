"""Request and response bodies of the bot, provider, usage and quota endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr

from warbler.api.schemas import Request

_NONE_DEFAULT = "null: the default (settings, or the tenant's own); 0: unlimited."

# -- bots ------------------------------------------------------------------------------------


class PresetIn(Request):
    name: str = Field(min_length=1, max_length=64, description="Typed after /preset.")
    persona: str | None = Field(None, max_length=20_000, description="null: the bot's own.")
    model: str | None = Field(None, max_length=200)
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=200_000)


class PresetOut(BaseModel):
    name: str
    persona: str | None
    model: str | None
    temperature: float | None
    max_tokens: int | None


# Upper bounds the stores can hold (a 32-bit rate column, a 64-bit token column, JSON).
MAX_PER_MINUTE = 1_000_000
MAX_TOKENS_PER_MONTH = 10**15


class QuotasIn(Request):
    messages_per_minute: int | None = Field(
        None, ge=0, le=MAX_PER_MINUTE,
        description=f"Answers per minute this bot gives. {_NONE_DEFAULT}",
    )  # fmt: skip
    user_messages_per_minute: int | None = Field(
        None, ge=0, le=MAX_PER_MINUTE,
        description=f"Answers per minute one user gets from it. {_NONE_DEFAULT}",
    )  # fmt: skip
    tokens_per_month: int | None = Field(
        None, ge=0, le=MAX_TOKENS_PER_MONTH,
        description="Tokens per calendar month (UTC); null or 0: unlimited.",
    )  # fmt: skip


class QuotasOut(BaseModel):
    messages_per_minute: int | None
    user_messages_per_minute: int | None
    tokens_per_month: int | None


class _BotFields(Request):
    description: str | None = Field(None, max_length=2000)
    avatar_url: str | None = Field(None, max_length=500)
    persona: str | None = Field(None, max_length=20_000, description="The system prompt.")
    presets: list[PresetIn] | None = Field(None, max_length=20)
    provider_ids: list[str] | None = Field(
        None, max_length=5, description="Providers tried in order; empty: extractive answers."
    )
    model: str | None = Field(None, max_length=200, description="Overrides the providers'.")
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=200_000, description="Longest answer.")
    context_tokens: int | None = Field(
        None, ge=500, le=200_000, description="Budget for persona, memory and passages."
    )
    kb_ids: list[str] | None = Field(None, max_length=20)
    tools: list[str] | None = Field(
        None, max_length=50, description="kb_search, http:NAME, mcp:SERVER[:TOOL] ..."
    )
    dm_policy: Literal["always", "never"] | None = Field(
        None, description="always: answer every message in a direct conversation."
    )
    group_policy: Literal["mention", "always", "never"] | None = Field(
        None, description="mention: answer in groups only when @-mentioned."
    )
    quotas: QuotasIn | None = Field(None, description="Replaced as a whole when given.")
    enabled: bool | None = None


class BotIn(_BotFields):
    name: str = Field(min_length=1, max_length=200)
    username: str | None = Field(
        None, max_length=64, description="The bot user's username; default: from the name."
    )


class BotUpdateIn(_BotFields):
    name: str | None = Field(None, min_length=1, max_length=200)


class BotPublicOut(BaseModel):
    """What every user of the tenant sees of a bot."""

    id: str
    user_id: str = Field(description="The bot's own user: add it to conversations.")
    name: str
    description: str
    avatar_url: str | None
    enabled: bool


class BotOut(BotPublicOut):
    """The whole configuration (tenant admins, API keys with bots:write)."""

    persona: str
    presets: list[PresetOut]
    provider_ids: list[str]
    model: str | None
    temperature: float | None
    max_tokens: int | None
    context_tokens: int
    kb_ids: list[str]
    tools: list[str]
    dm_policy: str
    group_policy: str
    quotas: QuotasOut
    created_at: datetime
    updated_at: datetime


# -- providers -------------------------------------------------------------------------------


class _ProviderFields(Request):
    base_url: str | None = Field(
        None, max_length=2000, description="http(s) endpoint; empty: the vendor's public one."
    )
    model: str | None = Field(None, max_length=200, description="The default model.")
    headers: dict[str, str] | None = Field(
        None, description="Extra request headers, stored in clear: no credentials here."
    )
    extra_body: dict[str, Any] | None = Field(
        None, description="Vendor-specific fields merged into each request body."
    )
    stream: bool | None = Field(None, description="false: ask for whole answers.")
    price_prompt: float | None = Field(None, ge=0, description="Per 1M prompt tokens.")
    price_completion: float | None = Field(None, ge=0, description="Per 1M completion tokens.")
    timeout_seconds: float | None = Field(None, gt=0, description="null: the settings default.")
    idle_timeout_seconds: float | None = Field(
        None, gt=0, description="Longest silence in a stream; null: the settings default."
    )
    max_retries: int | None = Field(None, ge=0, le=10, description="null: the settings default.")


class ProviderIn(_ProviderFields):
    name: str = Field(min_length=1, max_length=64)
    kind: Literal["openai", "anthropic", "local"]
    api_key: SecretStr | None = Field(
        None, max_length=4000, description="Sealed at rest; never returned by any endpoint."
    )


class ProviderUpdateIn(_ProviderFields):
    name: str | None = Field(None, min_length=1, max_length=64)
    kind: Literal["openai", "anthropic", "local"] | None = None
    api_key: SecretStr | None = Field(
        None, max_length=4000, description="A new key; null or empty removes the key."
    )


class ApiKeyState(BaseModel):
    set: bool
    last4: str | None = Field(description="The key's last 4 characters (keys of 16 or more).")


class ProviderOut(BaseModel):
    id: str
    name: str
    kind: str
    base_url: str
    model: str
    headers: dict[str, str]
    extra_body: dict[str, Any]
    stream: bool
    price_prompt: float
    price_completion: float
    timeout_seconds: float | None
    idle_timeout_seconds: float | None
    max_retries: int | None
    api_key: ApiKeyState
    created_at: datetime
    updated_at: datetime


# -- usage and quotas ------------------------------------------------------------------------


class UsageOut(BaseModel):
    id: str
    bot_id: str
    user_id: str | None
    conversation_id: str | None
    trigger_message_id: str | None
    reply_message_id: str | None
    source: str = Field(description="chat | openai_api | suggestion")
    provider: str | None
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float
    latency_ms: int
    status: str = Field(description="answered | fallback | curated | no_answer | apology | quota")
    created_at: datetime


class UsageGroupOut(BaseModel):
    key: str | None = Field(None, description="The bot id, user id or day (YYYY-MM-DD).")
    replies: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float
    avg_latency_ms: float
    statuses: dict[str, int]


class UsageSummaryOut(BaseModel):
    since: datetime
    until: datetime
    group_by: str
    groups: list[UsageGroupOut]
    total: UsageGroupOut


class TenantQuotasIn(Request):
    messages_per_minute: int | None = Field(
        None, ge=0, le=MAX_PER_MINUTE,
        description="Bot answers per minute in the tenant; null: the default.",
    )  # fmt: skip
    tokens_per_month: int | None = Field(
        None, ge=0, le=MAX_TOKENS_PER_MONTH,
        description="Tokens per calendar month (UTC); null: the default.",
    )  # fmt: skip


class TenantQuotasValues(BaseModel):
    messages_per_minute: int | None
    tokens_per_month: int | None


class TenantQuotasOut(BaseModel):
    overrides: TenantQuotasValues = Field(description="The tenant's own (null: the default).")
    defaults: TenantQuotasValues = Field(description="The server's settings.")
    effective: TenantQuotasValues = Field(description="What applies (0: unlimited).")
    tokens_used_this_month: int
    month_resets_at: datetime
