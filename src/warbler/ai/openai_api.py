"""Bots behind the OpenAI chat-completions contract: resolve the bot, run the engine, bill it.

Transport-free: ``api/openai_compat.py`` turns the events into JSON or server-sent chunks.
A request's ``model`` names a bot (its username, id, user id or name). The client's system
messages are added to the bot's persona, never replace it; the bot's own knowledge bases and
tools are used; a client cannot pass tools of its own (the bot's tools run on the server).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from warbler.ai.bot_config import BotConfig
from warbler.ai.engine import AnswerEvent, AnswerRequest, Final
from warbler.ai.providers.base import ChatMessage
from warbler.errors import Forbidden, InvalidRequest, NotFound
from warbler.im.principal import Principal
from warbler.store.models import User
from warbler.store.models_ai import AiBot

if TYPE_CHECKING:
    from warbler.services import Services

MAX_MESSAGES = 200
MAX_TOTAL_CHARS = 200_000
SCOPE = "bots:use"


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """The parts of an OpenAI chat-completions request a bot honours."""

    model: str
    messages: list[dict[str, Any]]
    temperature: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class BotModel:
    """A bot as ``/v1/models`` lists it."""

    id: str  # the bot user's username: what clients put in ``model``
    bot_id: str
    name: str
    created: int


def require_use(principal: Principal) -> None:
    """Users talk to bots with their own token; API keys need the ``bots:use`` scope."""
    if principal.user_id is None and not principal.has_scope(SCOPE):
        raise Forbidden(f"this API key lacks the '{SCOPE}' scope", details={"required": SCOPE})


def _text_of(content: Any, index: int) -> str:
    """OpenAI content is a string or a list of parts; only text parts are understood."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise InvalidRequest(
                    f"messages[{index}]: only text content parts are supported, not {kind!r}",
                    details={"field": f"messages[{index}].content"},
                )
            texts.append(str(part.get("text", "")))
        return "".join(texts)
    raise InvalidRequest(
        f"messages[{index}].content must be a string or a list of text parts",
        details={"field": f"messages[{index}].content"},
    )


def split_messages(raw: list[dict[str, Any]]) -> tuple[str, list[ChatMessage]]:
    """(extra system instructions, user/assistant turns) with the shape checked."""
    if not raw:
        raise InvalidRequest("messages must not be empty", details={"field": "messages"})
    if len(raw) > MAX_MESSAGES:
        raise InvalidRequest(
            f"at most {MAX_MESSAGES} messages per request", details={"field": "messages"}
        )
    system: list[str] = []
    turns: list[ChatMessage] = []
    total = 0
    for i, message in enumerate(raw):
        role = message.get("role")
        text = _text_of(message.get("content"), i)
        total += len(text)
        if role in ("system", "developer"):
            system.append(text)
        elif role in ("user", "assistant"):
            if text:
                turns.append(ChatMessage(role, text))
        elif role == "tool":
            raise InvalidRequest(
                "tool messages are not accepted: the bot's tools run on the server",
                details={"field": f"messages[{i}].role"},
            )
        else:
            raise InvalidRequest(
                f"messages[{i}].role must be system, user or assistant",
                details={"field": f"messages[{i}].role"},
            )
    if total > MAX_TOTAL_CHARS:
        raise InvalidRequest(
            f"the messages hold more than {MAX_TOTAL_CHARS} characters",
            details={"field": "messages"},
        )
    if not turns or turns[-1].role != "user":
        raise InvalidRequest(
            "the last non-system message must be the user's", details={"field": "messages"}
        )
    return "\n\n".join(s for s in system if s), turns


class OpenAICompat:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def models(self, principal: Principal) -> list[BotModel]:
        require_use(principal)
        async with self.services.db.read() as s:
            rows = await s.execute(
                select(AiBot, User.username)
                .join(User, User.id == AiBot.user_id)
                .where(AiBot.tenant_id == principal.tenant_id, AiBot.enabled.is_(True))
                .order_by(User.username)
            )
            return [
                BotModel(username, bot.id, bot.name, int(bot.created_at.timestamp()))
                for bot, username in rows.all()
            ]

    async def _bot(self, principal: Principal, model: str) -> tuple[BotConfig, str]:
        async with self.services.db.read() as s:
            found = (
                await s.execute(
                    select(AiBot.id, User.username)
                    .join(User, User.id == AiBot.user_id)
                    .where(
                        AiBot.tenant_id == principal.tenant_id,
                        AiBot.enabled.is_(True),
                        or_(
                            User.username == model,
                            AiBot.id == model,
                            AiBot.user_id == model,
                            AiBot.name == model,
                        ),
                    )
                    .order_by(AiBot.id)
                )
            ).first()
        if found is None:
            raise NotFound(
                f"no bot named {model!r}: GET /v1/models lists this tenant's bots",
                details={"model": model},
            )
        return await self.services.bots.load(principal.tenant_id, found[0]), found[1]

    async def complete(
        self, principal: Principal, request: CompletionRequest
    ) -> tuple[str, AsyncIterator[AnswerEvent]]:
        """(model id, events). Checks everything, then returns the engine's stream; the
        quota check happens on the first event, so a caller should take it before answering."""
        require_use(principal)
        system, turns = split_messages(request.messages)
        bot, model_id = await self._bot(principal, request.model)
        if system:
            bot = replace(bot, persona=f"{bot.persona}\n\n{system}".strip())
        if request.temperature is not None:
            bot = replace(bot, temperature=request.temperature)
        if request.max_tokens is not None:
            bot = replace(bot, max_tokens=request.max_tokens)
        events = self._billed(principal, bot, turns)
        return model_id, events

    async def _billed(
        self, principal: Principal, bot: BotConfig, turns: list[ChatMessage]
    ) -> AsyncIterator[AnswerEvent]:
        """The engine's events; the usage row is written once the answer is final."""
        started = time.monotonic()
        async for event in self.services.engine.answer(
            AnswerRequest(bot=bot, asker=principal, messages=turns)
        ):
            if isinstance(event, Final):
                answered = next((p for p in bot.providers if p.label == event.provider), None)
                await self.services.ai_usage.record(
                    tenant_id=principal.tenant_id, bot_id=bot.id, user_id=principal.user_id,
                    source="openai_api", status=event.status,
                    provider=answered or event.provider or None, model=event.model or None,
                    usage=event.usage,
                    latency_ms=event.latency_ms or int((time.monotonic() - started) * 1000),
                )  # fmt: skip
            yield event
