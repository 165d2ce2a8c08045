"""A bot's configuration as the reply engine uses it: plain values, secrets already opened."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from warbler.ai.providers.config import ProviderConfig

GroupPolicy = Literal["mention", "always", "never"]


@dataclass(frozen=True, slots=True)
class Preset:
    """A named variant switchable in a conversation with ``/preset NAME``. Unset fields keep
    the bot's own value."""

    name: str
    persona: str | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Quotas:
    """Per-bot limits; ``None`` takes the tenant default from settings, 0 means unlimited."""

    messages_per_minute: int | None = None
    user_messages_per_minute: int | None = None
    tokens_per_month: int | None = None


@dataclass(frozen=True, slots=True)
class BotConfig:
    id: str
    tenant_id: str
    user_id: str  # the bot's own user (kind "bot"): it is a member of conversations
    name: str
    persona: str  # the system prompt
    avatar_url: str | None = None
    presets: tuple[Preset, ...] = ()
    # Tried in order; empty: the extractive provider (answers from the knowledge base only).
    providers: tuple[ProviderConfig, ...] = ()
    model: str | None = None  # overrides each provider's default model when set
    temperature: float | None = None
    max_tokens: int | None = None
    context_tokens: int = 4000  # budget for persona + memory + retrieved passages
    kb_ids: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()  # tool names, see ai/tools/registry.py
    dm_policy: Literal["always", "never"] = "always"
    group_policy: GroupPolicy = "mention"
    quotas: Quotas = field(default_factory=Quotas)
    enabled: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def with_preset(self, preset_name: str | None) -> BotConfig:
        """This config with a preset applied (unknown or no preset: unchanged)."""
        preset = next((p for p in self.presets if p.name == preset_name), None)
        if preset is None:
            return self
        return replace(
            self,
            persona=preset.persona if preset.persona is not None else self.persona,
            model=preset.model if preset.model is not None else self.model,
            temperature=preset.temperature if preset.temperature is not None else self.temperature,
            max_tokens=preset.max_tokens if preset.max_tokens is not None else self.max_tokens,
        )
