"""One provider entry of a bot's chain: which vendor, where, with which key and limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from warbler.ai.providers.base import Usage
    from warbler.config import Settings

ProviderKind = Literal["openai", "anthropic", "local"]
PROVIDER_KINDS: tuple[ProviderKind, ...] = ("openai", "anthropic", "local")

DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "local": "",  # the xllamacpp server picks its own port
}


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """A provider as the reply engine uses it. ``api_key`` is the opened (plaintext) key: it
    lives in memory only, is left out of ``repr`` and is never logged; at rest it is sealed
    with ``services.secrets``."""

    kind: ProviderKind
    name: str  # shown in logs, usage rows and fallback notes: "deepseek", "claude"
    base_url: str = ""  # empty: the vendor's public endpoint (DEFAULT_BASE_URLS)
    api_key: str = field(default="", repr=False)
    model: str = ""  # the default model; a bot's own ``model`` overrides it
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # may carry tokens too
    # False: ask for the whole answer at once (for servers that cannot stream tool calls).
    stream: bool = True
    # Vendor-specific fields merged into the JSON body (Qwen's enable_thinking, ...); a None
    # value removes a field, e.g. ``{"stream_options": None}`` for a server that refuses it.
    extra_body: dict[str, Any] = field(default_factory=dict)
    timeout_seconds: float | None = None  # None: settings.ai_request_timeout_seconds
    idle_timeout_seconds: float | None = None  # None: settings.ai_idle_timeout_seconds
    max_retries: int | None = None  # None: settings.ai_max_retries
    # Price per one million tokens, in the tenant's currency of account; 0: not billed.
    price_prompt: float = 0.0
    price_completion: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in PROVIDER_KINDS:
            raise ValueError(f"unknown provider kind {self.kind!r}")
        if not self.name:
            raise ValueError("a provider needs a name")

    @property
    def label(self) -> str:
        """``kind:name``, the provider's ``ChatProvider.name``."""
        return f"{self.kind}:{self.name}"

    @property
    def endpoint(self) -> str:
        return (self.base_url or DEFAULT_BASE_URLS[self.kind]).rstrip("/")

    def request_timeout(self, settings: Settings) -> float:
        return (
            self.timeout_seconds
            if self.timeout_seconds is not None
            else settings.ai_request_timeout_seconds
        )

    def idle_timeout(self, settings: Settings) -> float:
        return (
            self.idle_timeout_seconds
            if self.idle_timeout_seconds is not None
            else settings.ai_idle_timeout_seconds
        )

    def retries(self, settings: Settings) -> int:
        return self.max_retries if self.max_retries is not None else settings.ai_max_retries

    def cost(self, usage: Usage) -> float:
        """What ``usage`` costs at this provider's prices."""
        return (
            usage.prompt_tokens * self.price_prompt
            + usage.completion_tokens * self.price_completion
        ) / 1_000_000
