"""Customer service's hooks into messaging and the AI replies (registered in ``services.py``).

- ``on_send`` (a send hook, registered BEFORE the AI reply trigger, in the send transaction):
  a visitor's message to a resolved conversation hands it back to the bot; in state ``bot``
  it is checked for escalation (``escalation.py``: a request for a person, an escalate-list
  topic, negative sentiment, the same question asked again after a failed answer) and queued
  for a person at once; an assigned agent's first message sets ``first_response_at``.
- ``gate`` (a reply gate): the support bot answers only the visitor, only in state ``bot``.
- ``after_reply`` (a post-reply hook): an ungrounded answer (no sources, no curated answer)
  to a real question (not small talk) escalates with ``no_answer`` when the tenant's
  ``escalate_on_no_answer`` is on; a reply that ended in an apology escalates with
  ``bot_error``.

A failed answer is one the visitor answers by asking essentially the same question again
(``escalation.similarity``); two in a row escalate with ``repeated_failure``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.ai.replies import ReplyOutcome, reply_client_id
from warbler.ai.trigger import ReplyCandidate
from warbler.clock import utcnow
from warbler.im.events import PostCommit
from warbler.im.messages import USER_KINDS
from warbler.im.principal import Principal
from warbler.security.encryption.keycache import tenant_scope
from warbler.store.db import Database
from warbler.store.models import Conversation, Message
from warbler.store.models_support import SupportConversation, SupportTicket
from warbler.support import escalation, tenant_settings
from warbler.support.escalation import FAILED_ANSWERS_TO_ESCALATE, Detection
from warbler.support.handoff import Handoffs
from warbler.support.states import Machine


class SupportHooks:
    def __init__(self, db: Database, machine: Machine, handoffs: Handoffs) -> None:
        self.db = db
        self.machine = machine
        self.handoffs = handoffs

    # -- sending -------------------------------------------------------------------------------

    async def on_send(
        self,
        s: AsyncSession,
        after: PostCommit,
        conversation: Conversation,
        message: dict[str, Any],
        sender: Principal,
    ) -> None:
        if conversation.kind != "support":
            return
        sc = await s.get(SupportConversation, conversation.id)
        if sc is None or sc.tenant_id != conversation.tenant_id:
            return
        if message["sender_id"] == sc.visitor_id:
            await self._from_visitor(s, after, sc, message)
        elif sc.state == "assigned" and sc.ticket_id and message["kind"] in USER_KINDS:
            ticket = await s.get(SupportTicket, sc.ticket_id)
            if (
                ticket is not None
                and ticket.assignee_id == message["sender_id"]
                and ticket.first_response_at is None
            ):
                ticket.first_response_at = utcnow()
                ticket.updated_at = ticket.first_response_at

    async def _from_visitor(
        self, s: AsyncSession, after: PostCommit, sc: SupportConversation, message: dict[str, Any]
    ) -> None:
        if sc.state == "resolved":
            await self.machine.back_to_bot(s, after, sc, actor_id=sc.visitor_id, now=utcnow())
        if sc.state != "bot" or message["kind"] != "text" or not message["text"]:
            return
        text: str = message["text"]
        settings = await tenant_settings.load(s, sc.tenant_id)
        found = escalation.detect(
            text,
            keywords=list(settings.escalate_keywords or []) if settings else [],
            negative_words=list(settings.negative_words or []) if settings else [],
        )
        if found is None and not escalation.small_talk(text):
            found = await self._repeated(s, sc, text)
        if not escalation.small_talk(text):
            sc.last_question_id = message["id"]
        if found is not None:
            detail = {**found.detail, "message_id": message["id"]}
            await self.handoffs.escalate(
                s, after, sc, found.reason, actor_id=sc.visitor_id, detail=detail
            )

    async def _repeated(
        self, s: AsyncSession, sc: SupportConversation, text: str
    ) -> Detection | None:
        """The visitor asks again what the bot just answered: that answer failed."""
        if sc.last_question_id is None or sc.bot_user_id is None:
            return None
        previous = await s.get(Message, sc.last_question_id)
        if previous is None or not previous.text:
            return None
        answer = await s.scalar(
            select(Message).where(
                Message.conversation_id == sc.conversation_id,
                Message.sender_id == sc.bot_user_id,
                Message.client_msg_id == reply_client_id(previous.id),
            )
        )
        ai = ((answer.data or {}).get("ai") or {}) if answer is not None else {}
        if ai.get("status") != "done":
            return None  # not answered (yet): nothing failed
        score = escalation.similarity(text, previous.text)
        if score < escalation.SAME_QUESTION:
            sc.failed_answers = 0
            return None
        sc.failed_answers += 1
        if sc.failed_answers >= FAILED_ANSWERS_TO_ESCALATE:
            return Detection(
                "repeated_failure",
                {"failed_answers": sc.failed_answers, "similarity": round(score, 2),
                 "previous_message_id": previous.id},
            )  # fmt: skip
        return None

    # -- the bot's replies ---------------------------------------------------------------------

    async def gate(self, s: AsyncSession, c: ReplyCandidate) -> bool:
        if c.conversation_kind != "support":
            return True
        sc = await s.get(SupportConversation, c.conversation_id)
        if sc is None:
            return False
        return (
            sc.state == "bot" and c.sender_id == sc.visitor_id and c.bot_user_id == sc.bot_user_id
        )

    async def after_reply(self, outcome: ReplyOutcome) -> None:
        if outcome.conversation_kind != "support":
            return
        async with tenant_scope(outcome.tenant_id):
            await self._after_reply(outcome)

    async def _after_reply(self, outcome: ReplyOutcome) -> None:
        if outcome.status == "apology":
            await self._escalate(outcome, "bot_error", {"reply_id": outcome.reply_message_id})
            return
        grounded = outcome.sources > 0 or outcome.curated
        ungrounded = outcome.status == "no_answer" or (outcome.knowledge and not grounded)
        if outcome.handed_off or not ungrounded or escalation.small_talk(outcome.trigger_text):
            return
        async with self.db.write_then() as (s, after):
            sc = await self.machine.conversation(s, outcome.tenant_id, outcome.conversation_id)
            if sc.state != "bot":
                return
            settings = await tenant_settings.load(s, outcome.tenant_id)
            if settings is None or not settings.escalate_on_no_answer:
                return
            detail = {
                "reply_id": outcome.reply_message_id,
                "message_id": outcome.trigger_message_id,
            }
            await self.handoffs.escalate(s, after, sc, "no_answer", actor_id=None, detail=detail)

    async def _escalate(self, outcome: ReplyOutcome, reason: str, detail: dict[str, Any]) -> None:
        async with self.db.write_then() as (s, after):
            sc = await self.machine.conversation(s, outcome.tenant_id, outcome.conversation_id)
            if sc.state == "bot":
                await self.handoffs.escalate(s, after, sc, reason, actor_id=None, detail=detail)
