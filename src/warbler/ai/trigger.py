"""Which sent messages a bot answers: enqueue the reply job inside the send transaction.

A direct conversation with a bot: every message (the bot's ``dm_policy``). A group: only when
the bot is @-mentioned (``group_policy`` "mention"; "always" answers everything, "never"
nothing). A support conversation: whatever the gates let through (customer service lets
the visitor's messages through while the bot owns the conversation). A message sent by a bot
never triggers a reply, so two bots cannot talk in a loop. The job is keyed by bot and
message, and enqueued in the send's transaction: it exists iff the message committed, and
never twice.

Gates (``ReplyGate``) are checked in the send transaction before enqueueing, and again by the
reply job before it posts (``ai/replies.py``): a bot that must stay silent (a person owns the
conversation) neither gets a job nor posts from one enqueued earlier.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from warbler.im.events import PostCommit
from warbler.im.principal import Principal
from warbler.jobs.queue import JobQueue
from warbler.store.models import Conversation, Member
from warbler.store.models_ai import AiBot

REPLY_KIND = "ai.reply"
ANSWERED_KINDS = ("text",)
_LEADING_MENTIONS = re.compile(r"^(?:\s*@\S+)+\s*")


@dataclass(frozen=True, slots=True)
class ReplyCandidate:
    """A bot about to answer a message: what a gate decides on."""

    tenant_id: str
    conversation_id: str
    conversation_kind: str
    message_id: str
    sender_id: str | None
    bot_user_id: str


# (session, candidate) -> may the bot answer? Called inside a transaction.
ReplyGate = Callable[[AsyncSession, ReplyCandidate], Awaitable[bool]]


async def gates_allow(gates: list[ReplyGate], s: AsyncSession, candidate: ReplyCandidate) -> bool:
    for gate in gates:
        if not await gate(s, candidate):
            return False
    return True


def dedupe_key(bot_id: str, message_id: str) -> str:
    return f"ai:{bot_id}:{message_id}"


def wants_reply(
    conversation_kind: str,
    dm_policy: str,
    group_policy: str,
    bot_user_id: str,
    mentions: list[str] | None,
) -> bool:
    """The reply policy for a message from a person (see the module docstring)."""
    if conversation_kind == "support":
        return True  # the gates decide (warbler/support/hooks.py)
    if conversation_kind == "direct":
        return dm_policy == "always"
    if group_policy == "always":
        return True
    return group_policy == "mention" and bot_user_id in (mentions or ())


def command_of(text: str | None) -> tuple[str, str] | None:
    """("preset", "sales") for "/preset sales" (after any leading @mentions), else None."""
    if not text:
        return None
    body = _LEADING_MENTIONS.sub("", text).strip()
    if not body.startswith("/"):
        return None
    name, _, rest = body[1:].partition(" ")
    return name.lower(), rest.strip()


class ReplyTrigger:
    """A ``MessageService`` send hook (see ``warbler.im.messages.SendHook``)."""

    def __init__(
        self, queue: JobQueue, max_attempts: int, gates: list[ReplyGate] | None = None
    ) -> None:
        self.queue = queue
        self.max_attempts = max_attempts
        self.gates: list[ReplyGate] = gates if gates is not None else []

    async def __call__(
        self,
        s: AsyncSession,
        after: PostCommit,
        conversation: Conversation,
        message: dict[str, Any],
        sender: Principal,
    ) -> None:
        if sender.kind == "bot" or message["kind"] not in ANSWERED_KINDS:
            return
        for bot_id, bot_user_id, dm_policy, group_policy in await _member_bots(s, conversation):
            if bot_user_id == message["sender_id"]:
                continue
            if not wants_reply(
                conversation.kind, dm_policy, group_policy, bot_user_id, message["mentions"]
            ):
                continue
            candidate = ReplyCandidate(
                tenant_id=conversation.tenant_id, conversation_id=conversation.id,
                conversation_kind=conversation.kind, message_id=message["id"],
                sender_id=message["sender_id"], bot_user_id=bot_user_id,
            )  # fmt: skip
            if not await gates_allow(self.gates, s, candidate):
                continue
            await self.queue.enqueue_in(
                s,
                REPLY_KIND,
                {
                    "conversation_id": conversation.id,
                    "message_id": message["id"],
                    "bot_id": bot_id,
                },
                tenant_id=conversation.tenant_id,
                ref=bot_id,
                dedupe_key=dedupe_key(bot_id, message["id"]),
                # One more than the reply attempts: the last one only finishes the message
                # with an apology, so a reply whose worker died mid-attempt still ends.
                max_attempts=self.max_attempts + 1,
                after=after,
            )


_BOTS_SEEN = "warbler.trigger.bots"
_MEMBER_BOTS = (
    select(AiBot.id, AiBot.user_id, AiBot.dm_policy, AiBot.group_policy)
    .join(
        Member,
        and_(Member.conversation_id == bindparam("conv"), Member.user_id == AiBot.user_id),
    )
    .where(AiBot.tenant_id == bindparam("tenant"), AiBot.enabled.is_(True))
)


async def _member_bots(s: AsyncSession, conversation: Conversation) -> list[Any]:
    """The enabled bots that are members of the conversation: one indexed query (the
    tenant's bots, few, probed against the members' primary key), asked once per
    conversation per transaction (a batch of sends to one group asks once)."""
    seen: dict[str, list[Any]] = s.info.setdefault(_BOTS_SEEN, {})
    bots = seen.get(conversation.id)
    if bots is None:
        bots = seen[conversation.id] = list(
            (
                await s.execute(
                    _MEMBER_BOTS, {"conv": conversation.id, "tenant": conversation.tenant_id}
                )
            ).all()
        )
    return bots
