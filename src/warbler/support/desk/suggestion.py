"""The bot's suggested reply: what the support bot would answer the visitor's last question
(their last text that is not a request for a person or small talk, ``questions.py``), shown
to the agent and never posted.

It is computed by the real engine as the visitor (retrieval reads only the knowledge bases
the visitor may read), over the conversation's recent turns (the visitor's are the user's,
the bot's and the agents' the assistant's). It runs without the bot's tools, which act on
the world (a hand-off, a booking), and without a conversation, so nothing is stored in the
conversation's memory and a failure hands nothing over. It counts like any answer of the
bot: the tenant's, the bot's and the visitor's quotas apply (``QuotaExceeded``: 429), and it
is recorded in ``ai_usage`` with source ``suggestion``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from warbler.ai.engine import AnswerRequest, Final
from warbler.ai.providers.base import ChatMessage
from warbler.ai.replies import NOT_REMEMBERED
from warbler.ai.trigger import command_of
from warbler.errors import Conflict
from warbler.im.principal import Principal
from warbler.store.models import Message, User
from warbler.store.models_support import SupportConversation
from warbler.support.desk.access import load_ticket, require_agent
from warbler.support.desk.questions import visitor_question

if TYPE_CHECKING:
    from warbler.services import Services

USAGE_SOURCE = "suggestion"
HISTORY_TURNS = 40  # messages read back; the bot's token budget decides what is sent
UNGROUNDED = frozenset({"no_answer", "apology"})


class NoQuestion(Conflict):
    code = "no_question"


class NoBot(Conflict):
    code = "no_bot"


def _ai_of(msg: Message) -> dict[str, Any] | None:
    ai = (msg.data or {}).get("ai") if isinstance(msg.data, dict) else None
    return ai if isinstance(ai, dict) else None


def turns_of(rows: list[Message], visitor_id: str) -> list[ChatMessage]:
    """Chat turns from text messages (oldest first): the visitor's are the user's, every
    other sender's (the bot, agents) the assistant's. Unfinished or non-conversational bot
    messages (commands, quota notices, apologies) and slash commands are left out."""
    turns: list[ChatMessage] = []
    for msg in rows:
        ai = _ai_of(msg)
        if ai is not None and (
            ai.get("status") == "streaming" or ai.get("outcome") in NOT_REMEMBERED
        ):
            continue
        text = (msg.text or "").strip()
        if not text or command_of(text) is not None:
            continue
        turns.append(ChatMessage("user" if msg.sender_id == visitor_id else "assistant", text))
    return turns


class Suggestions:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def suggest(self, principal: Principal, ticket_id: str) -> dict[str, Any]:
        require_agent(principal, write=False)
        tenant_id = principal.tenant_id
        async with self.services.db.read() as s:
            ticket = await load_ticket(s, tenant_id, ticket_id)
            support = await s.scalar(
                select(SupportConversation).where(
                    SupportConversation.tenant_id == tenant_id,
                    SupportConversation.conversation_id == ticket.conversation_id,
                )
            )
            visitor = await s.get(User, support.visitor_id) if support is not None else None
            if support is None or visitor is None or visitor.tenant_id != tenant_id:
                raise NoQuestion("this ticket has no visitor", details={"ticket_id": ticket_id})
            question = await visitor_question(s, ticket.conversation_id, visitor.id)
            if question is None:
                raise NoQuestion(
                    "the visitor has asked nothing yet", details={"ticket_id": ticket_id}
                )
            rows = (
                await s.scalars(
                    select(Message)
                    .where(
                        Message.conversation_id == ticket.conversation_id,
                        Message.seq <= question.seq,
                        Message.kind == "text",
                        Message.recalled_at.is_(None),
                    )
                    .order_by(Message.seq.desc())
                    .limit(HISTORY_TURNS)
                )
            ).all()
        if not support.bot_user_id:
            raise NoBot("this conversation has no support bot", details={"ticket_id": ticket_id})
        bot = await self.services.bots.load(tenant_id, support.bot_user_id)
        if not bot.enabled:
            raise NoBot("the support bot is disabled", details={"bot_id": bot.id})
        preset = await self.services.bots.get_preset(tenant_id, ticket.conversation_id, bot.id)
        bot = replace(bot.with_preset(preset), tools=())
        turns = turns_of(list(reversed(rows)), visitor.id)
        if not turns or turns[-1].role != "user":
            turns.append(ChatMessage("user", question.text or ""))
        asker = Principal(
            tenant_id=tenant_id, user_id=visitor.id, role=visitor.role, kind=visitor.kind
        )
        started = time.monotonic()
        final: Final | None = None
        async for event in self.services.engine.answer(
            AnswerRequest(bot=bot, asker=asker, messages=turns)
        ):
            if isinstance(event, Final):
                final = event
        if final is None:
            raise RuntimeError("the engine ended without a final answer")
        answered = next((p for p in bot.providers if p.label == final.provider), None)
        await self.services.ai_usage.record(
            tenant_id=tenant_id, bot_id=bot.id, user_id=principal.user_id,
            conversation_id=ticket.conversation_id, trigger_message_id=question.id,
            source=USAGE_SOURCE, status=final.status,
            provider=answered or final.provider or None, model=final.model or None,
            usage=final.usage,
            latency_ms=final.latency_ms or int((time.monotonic() - started) * 1000),
        )  # fmt: skip
        return {
            "ticket_id": ticket.id,
            "question": {"message_id": question.id, "text": question.text},
            "text": final.text,
            "sources": [c.as_dict() for c in final.citations],
            "grounded": final.status not in UNGROUNDED and bool(final.citations),
            "status": final.status,
            "curated_answer_id": final.curated_answer_id,
        }
