"""Save an agent's answer as a curated answer in one click, so the bot answers it next time.

The question defaults to the visitor's question the bot could not answer: the visitor's last
text before the agent's answer that is neither a request for a person ("转人工") nor small
talk ("thanks"); the answer defaults to the agent's last message in the ticket. Agents save to the knowledge
bases of the conversation's support bot (the bot then serves the answer without a model
call); admins, and API keys with ``kb:write``, to any knowledge base of the tenant.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.errors import Conflict, Forbidden, InvalidRequest, NotFound
from warbler.im.principal import Principal
from warbler.kb.curated import MAX_ANSWER_CHARS, MAX_QUESTION_CHARS
from warbler.kb.curated import SCOPE as KB_WRITE
from warbler.store.models import Message
from warbler.store.models_kb import CuratedQuestion
from warbler.store.models_support import SupportConversation, SupportTicket
from warbler.support.desk.access import load_ticket, require_agent
from warbler.support.desk.questions import is_question, visitor_question

if TYPE_CHECKING:
    from warbler.services import Services


class AlreadyCurated(Conflict):
    code = "already_curated"


def _clean(text: str) -> str:
    return " ".join(text.split())


class CuratedSaves:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def save(
        self,
        principal: Principal,
        ticket_id: str,
        *,
        kb_id: str,
        question: str | None = None,
        answer: str | None = None,
        answer_message_id: str | None = None,
    ) -> dict[str, Any]:
        require_agent(principal, write=True)
        if answer is not None and answer_message_id is not None:
            raise InvalidRequest(
                "give answer or answer_message_id, not both", details={"field": "answer"}
            )
        tenant_id = principal.tenant_id
        async with self.services.db.read() as s:
            ticket = await load_ticket(s, tenant_id, ticket_id)
            support = await s.scalar(
                select(SupportConversation).where(
                    SupportConversation.tenant_id == tenant_id,
                    SupportConversation.conversation_id == ticket.conversation_id,
                )
            )
            if support is None:
                raise NotFound("no such ticket", details={"ticket_id": ticket_id})
            answer_msg = await self._answer_message(s, ticket, support, answer_message_id)
            if answer is None:
                if answer_msg is None:
                    raise InvalidRequest(
                        "no agent answer in this ticket yet: give answer or answer_message_id",
                        details={"field": "answer"},
                    )
                answer = answer_msg.text or ""
            if question is None:
                before = answer_msg.seq if answer_msg is not None else None
                question = await self._question(s, ticket, support, before)
        question, answer = _clean(question), answer.strip()
        if not question:
            raise InvalidRequest("the question is empty", details={"field": "question"})
        if len(question) > MAX_QUESTION_CHARS:
            raise InvalidRequest(
                f"the question is longer than {MAX_QUESTION_CHARS} characters: give a "
                "shorter question", details={"field": "question", "limit": MAX_QUESTION_CHARS},
            )  # fmt: skip
        if not answer or len(answer) > MAX_ANSWER_CHARS:
            raise InvalidRequest(
                f"the answer is 1 to {MAX_ANSWER_CHARS} characters",
                details={"field": "answer", "limit": MAX_ANSWER_CHARS},
            )
        writer = await self._writer(principal, support, kb_id)
        async with self.services.db.read() as s:
            existing = await s.scalar(
                select(CuratedQuestion.answer_id).where(
                    CuratedQuestion.tenant_id == tenant_id,
                    CuratedQuestion.kb_id == kb_id,
                    CuratedQuestion.question == question,
                )
            )
        if existing is not None:
            raise AlreadyCurated(
                "this question already has a curated answer in that knowledge base",
                details={"kb_id": kb_id, "answer_id": existing},
            )
        created = await self.services.curated.create(
            writer, kb_id, questions=[question], answer=answer
        )
        async with self.services.db.write() as s:
            await self.services.audit.record_in(
                s, tenant_id=tenant_id, actor=principal, action="support.curated_saved",
                target_type="ticket", target_id=ticket.id,
                data={"kb_id": kb_id, "answer_id": created["id"],
                      "answer_message_id": answer_msg.id if answer_msg is not None else None},
            )  # fmt: skip
        return created

    async def _writer(
        self, principal: Principal, support: SupportConversation, kb_id: str
    ) -> Principal:
        """Who the curated answer is written as. Admins and ``kb:write`` keys as themselves;
        an agent, once the KB is found among the support bot's, with the write permission
        this one action needs (``created_by`` stays the agent)."""
        if principal.is_tenant_admin or (
            principal.api_key_id is not None and principal.has_scope(KB_WRITE)
        ):
            return principal
        allowed: tuple[str, ...] = ()
        if support.bot_user_id:
            try:
                allowed = (await self.services.bots.load(principal.tenant_id,
                                                         support.bot_user_id)).kb_ids  # fmt: skip
            except NotFound:
                allowed = ()
        if kb_id not in allowed:
            raise Forbidden(
                "agents save curated answers to the support bot's knowledge bases only",
                details={"kb_id": kb_id, "allowed_kb_ids": list(allowed)},
            )
        if principal.user_id is not None:
            return replace(principal, role="admin")
        return replace(principal, scopes=principal.scopes | {KB_WRITE})

    @staticmethod
    async def _answer_message(
        s: AsyncSession,
        ticket: SupportTicket,
        support: SupportConversation,
        message_id: str | None,
    ) -> Message | None:
        """The named message (an agent's or the bot's, in this conversation), or else the
        latest message an agent wrote since the ticket was queued."""
        base = select(Message).where(
            Message.conversation_id == ticket.conversation_id,
            Message.kind == "text",
            Message.recalled_at.is_(None),
        )
        if message_id is not None:
            msg = await s.scalar(base.where(Message.id == message_id))
            if msg is None:
                raise NotFound(
                    "no such message in this conversation",
                    details={"answer_message_id": message_id},
                )
            if msg.sender_id is None or msg.sender_id == support.visitor_id:
                raise InvalidRequest(
                    "the answer must be an agent's (or the bot's) message, not the visitor's",
                    details={"field": "answer_message_id"},
                )
            return msg
        others = [u for u in (support.visitor_id, support.bot_user_id) if u]
        return await s.scalar(
            base.where(
                Message.sender_id.is_not(None),
                Message.sender_id.not_in(others),
                Message.created_at >= ticket.queued_at,
            )
            .order_by(Message.seq.desc())
            .limit(1)
        )

    @staticmethod
    async def _question(
        s: AsyncSession, ticket: SupportTicket, support: SupportConversation, before: int | None
    ) -> str:
        found = await visitor_question(
            s, ticket.conversation_id, support.visitor_id, before_seq=before
        )
        if found is None or not is_question(found.text):
            raise InvalidRequest(
                "no visitor question found before the answer: give question",
                details={"field": "question"},
            )
        return str(found.text)
