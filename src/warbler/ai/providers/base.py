"""The one interface every model provider implements, and the types that cross it.

A provider turns a ``ChatRequest`` into a stream of ``StreamEvent``s: text deltas, complete
tool calls, and one final ``Done`` with the token usage. Providers raise ``ProviderError``
subclasses, which say whether trying again (or the next provider in a bot's chain) may help.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asks to run a tool. ``arguments`` is the parsed JSON object."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str = ""
    # On an assistant message: the tool calls it made. On a tool message: which call it answers.
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None  # the tool's name, on a tool message


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool offered to the model: its name, what it does, and a JSON Schema for arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolSpec, ...] = ()
    temperature: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    # Things a particular provider may use and others ignore (e.g. retrieved passages for
    # the extractive provider, a tenant id for logs).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallsReady:
    """The model finished a turn by asking for these tools (arguments fully streamed)."""

    calls: tuple[ToolCall, ...]


@dataclass(frozen=True, slots=True)
class StreamReset:
    """Forget the text streamed so far: the stream broke and is starting again (a retry, or
    the next provider in the chain). Emitted by the fallback chain, never by a provider."""

    reason: str


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


@dataclass(frozen=True, slots=True)
class Done:
    usage: Usage
    finish_reason: FinishReason = "stop"
    model: str = ""  # the model that actually answered, as the provider reports it
    # Provider-specific facts worth keeping with the reply (the extractive provider's
    # citations, a curated answer's id).
    extra: dict[str, Any] = field(default_factory=dict)


StreamEvent = TextDelta | ToolCallsReady | Done | StreamReset


class ChatProvider(Protocol):
    """One configured provider (a vendor endpoint with its key, or the extractive default)."""

    name: str  # for logs, usage rows and fallback messages: "openai_compat:deepseek"

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Yield deltas, then either ``ToolCallsReady`` + ``Done`` or just ``Done``.

        Raises a ``ProviderError`` subclass, possibly after some deltas were yielded (a stream
        cut in the middle); callers decide whether to retry or fall back.
        """
        ...

    async def aclose(self) -> None: ...


# -- errors ------------------------------------------------------------------------------


class ProviderError(Exception):
    """A provider call failed. ``retryable``: the same call may succeed later."""

    retryable: bool = False

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


class RateLimited(ProviderError):
    """429 from the vendor."""

    retryable = True


class ProviderUnavailable(ProviderError):
    """5xx, a refused connection, or a stream cut before it finished."""

    retryable = True


class ProviderTimeout(ProviderError):
    """No answer (or no next chunk) within the timeout."""

    retryable = True


class ProviderRejected(ProviderError):
    """4xx other than 429: a bad key, an unknown model, a request too large. Retrying the
    same provider will not help; the next one in the chain might."""

    retryable = False
