"""The ``ai.reply`` job: a bot's reply to one message, posted once, streamed, then finished.

The reply is one message of the bot's, posted with ``client_msg_id = "ai-reply:<trigger id>"``
and ``data.ai.status = "streaming"``; a retry after a crash finds it and streams again. While
the engine writes, ``message.delta`` events (live only, never stored) carry the whole text so
far, at most every ``ai_stream_flush_ms``. At the end the message gets its text and
``data.ai`` (status, usage, sources, provider, model, latency) under a stored
``message.completed`` event, which reaches clients on resume like any other. A reply that is
already finished is never touched again, and the job's last attempt always finishes it.

Before posting, the job asks the reply gates again (``ai/trigger.py``): a reply enqueued before
a person took the conversation over never posts. After a reply is finished, the post-reply
hooks (``PostReplyHook``) learn how it went (customer service hands unanswered questions and
failures to people).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from warbler.ai.bot_config import BotConfig
from warbler.ai.engine import AnswerRequest, Final, ToolActivity
from warbler.ai.providers.base import ChatMessage, StreamReset, TextDelta
from warbler.ai.providers.extractive import language_of
from warbler.ai.quotas import user_message
from warbler.ai.trigger import ReplyCandidate, ReplyGate, command_of, gates_allow
from warbler.bus.base import BusEvent
from warbler.errors import InvalidRequest, NotFound, QuotaExceeded
from warbler.im.messages import Draft, append
from warbler.im.principal import Principal
from warbler.im.views import message_view
from warbler.search import index as search_index
from warbler.store.models import Conversation, Member, Message, User

if TYPE_CHECKING:
    from warbler.services import Services
    from warbler.store.models import Job

log = logging.getLogger(__name__)

DELTA_EVENT = "message.delta"
COMPLETED_EVENT = "message.completed"
FINAL_STATUSES = frozenset({"done", "quota"})
# Bot messages that are not conversation: left out of what the model reads back.
NOT_REMEMBERED = frozenset({"command", "quota", "apology"})
HISTORY_TURNS = 40  # messages read back for memory; the token budget decides what is sent
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_LEADING_MENTIONS = re.compile(r"^(?:\s*@\S+)+\s*")

FAILED = {
    "en": "Sorry, something went wrong while I was answering. Please ask again, or ask for a "
    "person.",
    "zh": "抱歉，我在回答时出了问题。请再问一次，或要求转接人工客服。",
}


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    """How one finished reply went, for the post-reply hooks."""

    tenant_id: str
    conversation_id: str
    conversation_kind: str
    bot_user_id: str
    trigger_message_id: str
    trigger_text: str
    reply_message_id: str
    status: str  # the engine's: answered | fallback | curated | no_answer | apology
    sources: int  # citations the answer carries
    curated: bool
    handed_off: bool
    knowledge: bool  # the bot answers from knowledge bases


PostReplyHook = Callable[[ReplyOutcome], Awaitable[None]]


def reply_client_id(trigger_id: str) -> str:
    return f"ai-reply:{trigger_id}"


@dataclass(slots=True)
class _Context:
    tenant_id: str
    conversation: Conversation
    trigger: Message
    asker: User
    bot: BotConfig
    reply: dict[str, Any] | None  # the reply message, if a previous attempt posted it
    final: Final | None = None  # the engine's final event, once answered


class ReplyJob:
    """The job handler (``services.jobs.register("ai.reply", ReplyJob(services), ...)``)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        # Checked again before posting (see ai/trigger.py), and told how each reply went.
        self.gates: list[ReplyGate] = []
        self.post_reply_hooks: list[PostReplyHook] = []

    async def __call__(self, job: Job) -> dict[str, Any] | None:
        payload = job.payload
        assert job.tenant_id is not None
        ctx = await self._load(job.tenant_id, payload)
        if ctx is None:
            return {"skipped": True}
        if ctx.reply is not None and _status(ctx.reply) in FINAL_STATUSES:
            return {"message_id": ctx.reply["id"], "already_done": True}
        language = language_of(ctx.trigger.text or "")
        reply = ctx.reply or await self._post(ctx)
        if reply is None:
            return {"skipped": True, "silenced": True}  # a gate closed (a person took over)
        real_attempts = self.settings.ai_reply_max_attempts
        if job.attempts > real_attempts:
            # The extra attempt: a worker died during the last real one. Finish the message.
            await self._finish_failed(ctx, reply, language)
            await self._after(ctx, reply, "apology")
            return {"message_id": reply["id"], "status": "apology", "gave_up": True}
        try:
            command = command_of(ctx.trigger.text)
            if command is not None:
                status = await self._command(ctx, reply, command, language)
            else:
                status = await self._answer(ctx, reply, language, resumed=ctx.reply is not None)
        except QuotaExceeded as exc:
            await self._finish_quota(ctx, reply, exc, language)
            return {"message_id": reply["id"], "status": "quota"}
        except Exception:
            if job.attempts < real_attempts:
                raise  # retried: the reply message stays and is streamed again
            log.exception("the last attempt of reply job %s failed", job.id)
            await self._finish_failed(ctx, reply, language)
            await self._after(ctx, reply, "apology")
            return {"message_id": reply["id"], "status": "apology", "gave_up": True}
        if command is None:
            await self._after(ctx, reply, status)
        return {"message_id": reply["id"], "status": status}

    async def _after(self, ctx: _Context, reply: dict[str, Any], status: str) -> None:
        """Run the post-reply hooks; their failures are logged, never the job's."""
        if not self.post_reply_hooks:
            return
        final = ctx.final
        outcome = ReplyOutcome(
            tenant_id=ctx.tenant_id, conversation_id=ctx.conversation.id,
            conversation_kind=ctx.conversation.kind, bot_user_id=ctx.bot.user_id,
            trigger_message_id=ctx.trigger.id, trigger_text=ctx.trigger.text or "",
            reply_message_id=reply["id"], status=status,
            sources=len(final.citations) if final is not None else 0,
            curated=final is not None and final.curated_answer_id is not None,
            handed_off=final is not None and final.handoff is not None,
            knowledge=bool(ctx.bot.kb_ids),
        )  # fmt: skip
        for hook in self.post_reply_hooks:
            try:
                await hook(outcome)
            except Exception:
                log.exception("a post-reply hook failed for reply %s", reply["id"])

    # -- loading and posting ----------------------------------------------------------------

    async def _load(self, tenant_id: str, payload: dict[str, Any]) -> _Context | None:
        """Everything the reply needs, or None when there is nothing to answer any more (the
        message was recalled, the bot was deleted, disabled or removed from the
        conversation, the sender is a bot)."""
        conversation_id, trigger_id = payload["conversation_id"], payload["message_id"]
        try:
            bot = await self.services.bots.load(tenant_id, payload["bot_id"])
        except NotFound:
            return None
        if not bot.enabled:
            return None
        async with self.services.db.read() as s:
            conv = await s.scalar(
                select(Conversation).where(
                    Conversation.id == conversation_id, Conversation.tenant_id == tenant_id
                )
            )
            trigger = await s.scalar(
                select(Message).where(
                    Message.id == trigger_id, Message.conversation_id == conversation_id
                )
            )
            if conv is None or trigger is None or trigger.recalled_at is not None:
                return None
            asker = await s.get(User, trigger.sender_id) if trigger.sender_id else None
            member = await s.get(Member, (conversation_id, bot.user_id))
            reply = await _reply_of(s, conversation_id, bot.user_id, trigger_id)
        if asker is None or asker.kind == "bot" or (member is None and reply is None):
            return None
        preset = await self.services.bots.get_preset(tenant_id, conversation_id, bot.id)
        return _Context(tenant_id, conv, trigger, asker, bot.with_preset(preset), reply)

    async def _post(self, ctx: _Context) -> dict[str, Any] | None:
        """The reply message, posted once (a concurrent attempt's message is returned);
        None when a gate closed since the job was enqueued."""
        draft = Draft(
            kind="text",
            text="",
            data={
                "ai": {"status": "streaming", "in_reply_to": ctx.trigger.id, "bot_id": ctx.bot.id}
            },
            reply_to_id=ctx.trigger.id,
            client_msg_id=reply_client_id(ctx.trigger.id),
        )
        async with self.services.db.write_then() as (s, after):
            # The conversation's row lock orders this check with a concurrent takeover.
            conv = await s.scalar(
                select(Conversation).where(Conversation.id == ctx.conversation.id).with_for_update()
            )
            assert conv is not None
            existing = await _reply_of(s, ctx.conversation.id, ctx.bot.user_id, ctx.trigger.id)
            if existing is not None:
                return existing
            candidate = ReplyCandidate(
                tenant_id=ctx.tenant_id, conversation_id=conv.id, conversation_kind=conv.kind,
                message_id=ctx.trigger.id, sender_id=ctx.trigger.sender_id,
                bot_user_id=ctx.bot.user_id,
            )  # fmt: skip
            if not await gates_allow(self.gates, s, candidate):
                return None
            return await append(
                s, after, self.services.events, conv, sender_id=ctx.bot.user_id, draft=draft
            )

    # -- answering ----------------------------------------------------------------------------

    async def _answer(
        self, ctx: _Context, reply: dict[str, Any], language: str, *, resumed: bool
    ) -> str:
        turns, seqs = await self._history(ctx)
        request = AnswerRequest(
            bot=ctx.bot,
            asker=Principal(
                tenant_id=ctx.tenant_id,
                user_id=ctx.asker.id,
                role=ctx.asker.role,
                kind=ctx.asker.kind,
            ),
            messages=turns,
            conversation_id=ctx.conversation.id,
            language=language,
            message_seqs=seqs,
        )
        stream = _DeltaStream(self.services, ctx, reply["id"], self.settings.ai_stream_flush_ms)
        if resumed:
            stream.reset()  # clients may hold text from the attempt that died
        final: Final | None = None
        try:
            async for event in self.services.engine.answer(request):
                if isinstance(event, TextDelta):
                    stream.add(event.text)
                elif isinstance(event, StreamReset):
                    stream.reset()
                elif isinstance(event, ToolActivity):
                    stream.activity(event.name, event.ok)
                elif isinstance(event, Final):
                    final = event
        finally:
            await stream.close()
        if final is None:
            raise RuntimeError("the engine ended without a final answer")
        ctx.final = final
        data = {
            "status": "done",
            "outcome": final.status,
            "usage": {
                "prompt_tokens": final.usage.prompt_tokens,
                "completion_tokens": final.usage.completion_tokens,
                "total_tokens": final.usage.total_tokens,
            },
            "sources": [c.as_dict() for c in final.citations],
            "provider": final.provider,
            "model": final.model,
            "latency_ms": final.latency_ms,
            "tools": final.tools,
            "handoff": final.handoff,
            "curated_answer_id": final.curated_answer_id,
        }
        # The provider that answered, for its prices; a bare name (no cost) otherwise.
        answered = next((p for p in ctx.bot.providers if p.label == final.provider), None)
        usage = {
            "status": final.status,
            "provider": answered or final.provider or None,
            "model": final.model or None,
            "usage": final.usage,
            "latency_ms": final.latency_ms,
        }
        await self._finish(ctx, reply, final.text, data, usage)
        return final.status

    async def _history(self, ctx: _Context) -> tuple[list[ChatMessage], list[int | None]]:
        """The conversation's recent text turns up to the trigger, as chat messages: the bot's
        own are the assistant's, everyone else's the user's (named, in groups)."""
        async with self.services.db.read() as s:
            rows = (
                await s.execute(
                    select(Message, User.username)
                    .outerjoin(User, User.id == Message.sender_id)
                    .where(
                        Message.conversation_id == ctx.conversation.id,
                        Message.seq <= ctx.trigger.seq,
                        Message.kind == "text",
                        Message.recalled_at.is_(None),
                    )
                    .order_by(Message.seq.desc())
                    .limit(HISTORY_TURNS)
                )
            ).all()
        group = ctx.conversation.kind == "group"
        turns: list[ChatMessage] = []
        seqs: list[int | None] = []
        for msg, username in reversed(rows):
            ai = (msg.data or {}).get("ai") if isinstance(msg.data, dict) else None
            if isinstance(ai, dict) and (
                ai.get("status") == "streaming" or ai.get("outcome") in NOT_REMEMBERED
            ):
                continue
            if msg.id != ctx.trigger.id and command_of(msg.text) is not None:
                continue
            text = _without_mentions(msg.text or "", ctx.bot.name)
            if not text:
                continue
            if msg.sender_id == ctx.bot.user_id:
                turns.append(ChatMessage("assistant", text))
            else:
                name = _NAME_UNSAFE.sub("_", username or "")[:64] if group else None
                turns.append(ChatMessage("user", text, name=name or None))
            seqs.append(msg.seq)
        if not turns or turns[-1].role != "user":
            turns.append(
                ChatMessage("user", _without_mentions(ctx.trigger.text or "", ctx.bot.name))
            )
            seqs.append(ctx.trigger.seq)
        return turns, seqs

    async def _command(
        self, ctx: _Context, reply: dict[str, Any], command: tuple[str, str], language: str
    ) -> str:
        """Slash commands: ``/preset`` lists the bot's presets, ``/preset NAME`` switches."""
        name, argument = command
        zh = language == "zh"
        presets = [p.name for p in ctx.bot.presets]
        bots = self.services.bots
        current = await bots.get_preset(ctx.tenant_id, ctx.conversation.id, ctx.bot.id)
        if name != "preset":
            text = (
                f"未知命令 /{name}。可用命令：/preset [名称]。"
                if zh
                else f"Unknown command /{name}. Commands: /preset [name]."
            )
        elif not argument:
            if not presets:
                text = "这个机器人没有预设。" if zh else "This bot has no presets."
            else:
                listed = ", ".join(f"{p} ✓" if p == current else p for p in presets)
                text = (
                    f"可用预设：{listed}。用 /preset 名称 切换，/preset default 恢复默认。"
                    if zh
                    else f"Presets: {listed}. Switch with /preset NAME; /preset default "
                    "goes back to the default."
                )
        elif argument.lower() in ("default", "none", "off", "默认"):
            await bots.set_preset(ctx.tenant_id, ctx.conversation.id, ctx.bot.id, None)
            text = "已恢复默认设置。" if zh else "Back to the default."
        else:
            try:
                chosen = await bots.set_preset(
                    ctx.tenant_id, ctx.conversation.id, ctx.bot.id, argument
                )
            except InvalidRequest:
                available = ", ".join(presets) or ("无" if zh else "none")
                text = (
                    f"没有名为 {argument} 的预设。可用预设：{available}。"
                    if zh
                    else f"There is no preset called {argument}. Presets: {available}."
                )
            else:
                text = f"已切换到预设 {chosen}。" if zh else f"Switched to the {chosen} preset."
        await self._finish(ctx, reply, text, {"status": "done", "outcome": "command"})
        return "command"

    # -- finishing ------------------------------------------------------------------------------

    async def _finish(
        self,
        ctx: _Context,
        reply: dict[str, Any],
        text: str,
        ai: dict[str, Any],
        usage: dict[str, Any] | None = None,
    ) -> bool:
        """Give the reply its final text and ``data.ai`` and record its usage row, in one
        transaction and once: False when another attempt finished it first."""
        limit = self.settings.max_text_chars
        if len(text) > limit:
            text = text[: limit - 1] + "…"
        async with self.services.db.write_then() as (s, after):
            query = select(Message).where(Message.id == reply["id"])
            if not self.services.db.is_sqlite:
                query = query.with_for_update()
            msg = await s.scalar(query)
            if msg is None or msg.recalled_at is not None:
                return False
            current = (msg.data or {}).get("ai") or {}
            if current.get("status") in FINAL_STATUSES:
                return False
            msg.text = text
            msg.data = {**(msg.data or {}), "ai": {**current, **ai}}
            await search_index.replace(s, msg)
            await self.services.events.record(
                s, after, tenant_id=ctx.tenant_id, type=COMPLETED_EVENT,
                data={"message": message_view(msg)}, conversation_id=ctx.conversation.id,
                message_id=msg.id, actor_id=ctx.bot.user_id,
            )  # fmt: skip
            if usage is not None:
                await self.services.ai_usage.record(
                    s, tenant_id=ctx.tenant_id, bot_id=ctx.bot.id, user_id=ctx.asker.id,
                    conversation_id=ctx.conversation.id, trigger_message_id=ctx.trigger.id,
                    reply_message_id=msg.id, source="chat", **usage,
                )  # fmt: skip
        return True

    async def _finish_quota(
        self, ctx: _Context, reply: dict[str, Any], exc: QuotaExceeded, language: str
    ) -> None:
        text = user_message(exc, language)
        ai = {"status": "quota", "outcome": "quota", "quota": dict(exc.details)}
        await self._finish(ctx, reply, text, ai, {"status": "quota"})

    async def _finish_failed(self, ctx: _Context, reply: dict[str, Any], language: str) -> None:
        text = FAILED["zh" if language == "zh" else "en"]
        await self._finish(
            ctx, reply, text, {"status": "done", "outcome": "apology"}, {"status": "apology"}
        )


class _DeltaStream:
    """Publishes the growing text as live ``message.delta`` events, at most one per
    ``flush_ms``; the latest text is always sent before the stream closes."""

    def __init__(self, services: Services, ctx: _Context, message_id: str, flush_ms: int) -> None:
        self.services = services
        self.ctx = ctx
        self.message_id = message_id
        self.interval = flush_ms / 1000
        self.text = ""
        self.sent = 0  # a counter clients use to drop a stale event
        self._dirty = False
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def add(self, text: str) -> None:
        self.text += text
        self._dirty = True
        self._schedule()

    def reset(self) -> None:
        self.text = ""
        self._dirty = False
        self._publish(reset=True)

    def activity(self, name: str, ok: bool) -> None:
        self._publish(tool={"name": name, "ok": ok})

    def _schedule(self) -> None:
        if self._timer is not None:
            return
        wait = self._last + self.interval - time.monotonic()
        if wait <= 0:
            self._flush()
        else:
            self._timer = asyncio.get_running_loop().call_later(wait, self._flush)

    def _flush(self) -> None:
        self._timer = None
        if self._dirty:
            self._publish()

    def _publish(self, *, reset: bool = False, tool: dict[str, Any] | None = None) -> None:
        self._dirty = False
        self._last = time.monotonic()
        self.sent += 1
        data: dict[str, Any] = {
            "message_id": self.message_id,
            "conversation_id": self.ctx.conversation.id,
            "text": self.text,
            "n": self.sent,
            "reset": reset,
        }
        if tool is not None:
            data["tool"] = tool
        self.services.events.publish_ephemeral(
            BusEvent(
                type=DELTA_EVENT,
                tenant_id=self.ctx.tenant_id,
                data=data,
                conversation_id=self.ctx.conversation.id,
            )
        )

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        with contextlib.suppress(Exception):
            self._flush()


async def _reply_of(s: Any, conversation_id: str, bot_user_id: str, trigger_id: str) -> Any:
    found = await s.scalar(
        select(Message).where(
            Message.conversation_id == conversation_id,
            Message.sender_id == bot_user_id,
            Message.client_msg_id == reply_client_id(trigger_id),
        )
    )
    return message_view(found) if found is not None else None


def _status(view: dict[str, Any]) -> str | None:
    data = view.get("data") or {}
    ai = data.get("ai") if isinstance(data, dict) else None
    return ai.get("status") if isinstance(ai, dict) else None


def _without_mentions(text: str, bot_name: str) -> str:
    text = text.strip()
    if bot_name and text.startswith(f"@{bot_name}"):
        text = text[len(bot_name) + 1 :]
    return _LEADING_MENTIONS.sub("", text).strip()
