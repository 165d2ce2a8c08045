"""The ``Tool`` interface a bot calls, the context a call runs in, and what it returns."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from warbler.ai.providers.base import ToolSpec
from warbler.im.principal import Principal
from warbler.kb.types import Citation

# What the model sees of one tool result, at most; longer content is cut (and says so).
MAX_CONTENT_CHARS = 16_000


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who a tool call is for. ``principal`` is the user who asked the bot, never the bot:
    every tool decides what it may do and see from it."""

    principal: Principal
    bot_user_id: str
    conversation_id: str | None
    services: Any  # warbler.services.Services (typed loosely: it imports this package)
    kb_ids: tuple[str, ...] = ()  # the bot's knowledge bases (kb_search searches these)
    bot_id: str | None = None


@dataclass(slots=True)
class ToolResult:
    """``content`` is what the model reads (JSON text); the rest is for the reply engine."""

    content: str
    is_error: bool = False
    citations: list[Citation] = field(default_factory=list)
    # Set by the hand-off tool ({"reason": ...}): the reply engine ends the bot's turn.
    handoff: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict)  # structured, for logs and metrics

    @classmethod
    def ok(cls, payload: dict[str, Any], **kwargs: Any) -> ToolResult:
        return cls(content=to_json(payload), **kwargs)

    @classmethod
    def error(cls, code: str, message: str, **details: Any) -> ToolResult:
        """An error the model is told about: ``{"error": code, "message": ...}``."""
        body: dict[str, Any] = {"error": code, "message": message}
        if details:
            body["details"] = details
        return cls(content=to_json(body), is_error=True, data={"error": code})


class ToolError(Exception):
    """Raised by a tool to answer the model with an error result (code + human message)."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def result(self) -> ToolResult:
        return ToolResult.error(self.code, self.message, **self.details)


class Tool(Protocol):
    """One tool a bot can be given.

    ``spec.name`` is the name the model calls it by (``[A-Za-z0-9_-]{1,64}``, what vendors
    accept); ``ref`` is the name a bot's configuration lists it under (``kb_search``,
    ``http:weather``, ``mcp:files:read``). ``permission`` is checked against the asking user
    before ``run`` (see ``permissions.py``); ``allowed_roles`` narrows tenant-defined tools.
    """

    @property
    def spec(self) -> ToolSpec: ...

    @property
    def ref(self) -> str: ...

    @property
    def permission(self) -> str | None: ...

    @property
    def allowed_roles(self) -> tuple[str, ...] | None: ...

    @property
    def timeout_seconds(self) -> float | None:
        """None: the registry's default."""
        ...

    async def run(self, ctx: ToolContext, args: dict[str, Any]) -> ToolResult: ...


def to_json(value: Any) -> str:
    """Compact JSON that keeps Chinese readable (the model reads it, tokens cost money)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def clip(text: str, limit: int = MAX_CONTENT_CHARS) -> tuple[str, bool]:
    """``text`` cut to ``limit`` characters, and whether it was cut."""
    if len(text) <= limit:
        return text, False
    return text[:limit], True
