"""Conversation memory: the recent turns that fit a token budget, older turns summarised.

The newest turns are kept verbatim while they fit. The turns that fall out are folded into a
running summary (by the bot's model, or extractively: the first sentence of each turn) stored
per conversation and bot in ``ai_conversation_state``, with the seq it covers, so the next
reply reuses it and only summarises what fell out since.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from warbler.ai.providers.base import ChatMessage, Usage
from warbler.clock import utcnow
from warbler.security.encryption import bound_tenant
from warbler.security.encryption import ensure as ensure_keys
from warbler.store.db import Database

log = logging.getLogger(__name__)

# A turn as memory sees it: the message's seq in its conversation (None when it has none,
# e.g. turns sent to the OpenAI-compatible API) and the message.
Turn = tuple[int | None, ChatMessage]
CountTokens = Callable[[str], int]
# (summary so far, turns to fold in) -> (new summary, tokens spent)
Summarise = Callable[[str, Sequence[ChatMessage]], Awaitable[tuple[str, Usage]]]

MESSAGE_OVERHEAD = 4  # role and separators, as chat formats count them
SUMMARY_MAX_CHARS = 1200
TURN_SNIPPET_CHARS = 160
# A model summary costs a call: once one exists, wait until this many more turns have fallen
# out before folding them in (until then those few are left out of the context).
SUMMARISE_EVERY = 4
_FIRST_SENTENCE = re.compile(r"^.+?(?:[。！？!?]|[.](?=\s)|$)", re.S)


@dataclass(frozen=True, slots=True)
class Recalled:
    summary: str  # "" when nothing older than the recent turns is remembered
    turns: list[ChatMessage]  # oldest first, ending with the question
    usage: Usage  # tokens spent summarising now (0 when the stored summary was reused)


def message_tokens(message: ChatMessage, count: CountTokens) -> int:
    return MESSAGE_OVERHEAD + count(message.content or "")


def split_by_budget(
    turns: Sequence[Turn], budget: int, count: CountTokens
) -> tuple[list[Turn], list[Turn]]:
    """(older, recent): the newest turns whose tokens fit ``budget``; the last turn (the
    question) is always recent, however long."""
    recent: list[Turn] = []
    used = 0
    for turn in reversed(turns):
        cost = message_tokens(turn[1], count)
        if recent and used + cost > budget:
            break
        recent.append(turn)
        used += cost
    recent.reverse()
    return list(turns[: len(turns) - len(recent)]), recent


def extractive_summary(previous: str, turns: Sequence[ChatMessage]) -> str:
    """The summary without a model: the first sentence of each turn, newest kept when capped."""
    lines = [previous.strip()] if previous.strip() else []
    for message in turns:
        text = " ".join((message.content or "").split())
        if not text or message.role == "tool":
            continue
        match = _FIRST_SENTENCE.match(text)
        first = (match.group(0) if match else text).strip()
        if len(first) > TURN_SNIPPET_CHARS:
            first = first[: TURN_SNIPPET_CHARS - 1] + "…"
        lines.append(f"{message.name or message.role}: {first}")
    summary = "\n".join(lines)
    if len(summary) > SUMMARY_MAX_CHARS:
        summary = "…" + summary[-(SUMMARY_MAX_CHARS - 1) :]
    return summary


class Memory:
    """Loads and stores the running summary; decides what is recent."""

    def __init__(self, db: Database, count: CountTokens) -> None:
        self.db = db
        self.count = count

    async def recall(
        self,
        turns: Sequence[Turn],
        *,
        budget: int,
        tenant_id: str,
        bot_id: str,
        conversation_id: str | None,
        summarise: Summarise | None = None,
    ) -> Recalled:
        """The turns to send and the summary of what came before them.

        Without a conversation (nothing to store it in) the dropped turns are summarised
        extractively each time; with one, the stored summary is reused and extended.
        """
        older, recent = split_by_budget(turns, max(0, budget), self.count)
        recent_msgs = [m for _, m in recent]
        if conversation_id is None:
            summary = extractive_summary("", [m for _, m in older]) if older else ""
            return Recalled(summary, recent_msgs, Usage())
        previous, upto = await self._load(tenant_id, bot_id, conversation_id)
        fresh = [(seq, m) for seq, m in older if seq is None or seq > upto]
        if not fresh or (summarise is not None and previous and len(fresh) < SUMMARISE_EVERY):
            return Recalled(previous, recent_msgs, Usage())
        messages = [m for _, m in fresh]
        usage = Usage()
        summary = ""
        if summarise is not None:
            try:
                summary, usage = await summarise(previous, messages)
            except Exception:  # a summary is a nicety: never fail a reply for it
                log.warning("summarising conversation %s failed", conversation_id, exc_info=True)
        if not summary.strip():
            summary = extractive_summary(previous, messages)
        summary = summary.strip()[:SUMMARY_MAX_CHARS]
        new_upto = max((seq for seq, _ in fresh if seq is not None), default=upto)
        await self._store(tenant_id, bot_id, conversation_id, summary, new_upto)
        return Recalled(summary, recent_msgs, usage)

    async def _load(self, tenant_id: str, bot_id: str, conversation_id: str) -> tuple[str, int]:
        from warbler.store.models_ai import AiConversationState as State

        async with self.db.read() as s:
            row = await s.get(State, (conversation_id, bot_id))
        if row is None or row.tenant_id != tenant_id:
            return "", 0
        return row.summary or "", row.summary_upto_seq or 0

    async def _store(
        self, tenant_id: str, bot_id: str, conversation_id: str, summary: str, upto: int
    ) -> None:
        from warbler.store.models_ai import AiConversationState as State

        await ensure_keys(tenant_id)  # the summary is encrypted under the tenant's key
        with bound_tenant(tenant_id):
            for _ in range(2):  # a concurrent first insert (a preset switch) wins; update after
                try:
                    async with self.db.write() as s:
                        row = await s.get(State, (conversation_id, bot_id))
                        if row is None:
                            s.add(
                                State(
                                    conversation_id=conversation_id, bot_id=bot_id,
                                    tenant_id=tenant_id, summary=summary, summary_upto_seq=upto,
                                    updated_at=utcnow(),
                                )
                            )  # fmt: skip
                        elif (row.summary_upto_seq or 0) <= upto:
                            row.summary = summary
                            row.summary_upto_seq = upto
                            row.updated_at = utcnow()
                    return
                except IntegrityError:
                    continue
