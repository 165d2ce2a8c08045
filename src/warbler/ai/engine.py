"""The reply engine: one question in, a stream of text and one ``Final`` out. Transport-free.

Chat replies (``ai/replies.py``) and the OpenAI-compatible API both call ``Engine.answer``.
Steps: quota (raises ``QuotaExceeded`` before any provider call) → retrieval over the bot's
knowledge bases as the asking user → a curated answer ends it at once → the tenant's PII
redaction policy (``block`` refuses a question with personal data: ``RedactionBlocked`` outside
a conversation, a message in one) → the prompt (persona, grounding rules, numbered passages,
memory) → the bot's fallback chain (external providers redacted), or the extractive
provider when it has none → the tool loop → ``Final``. When every provider fails the user gets
a clear apology in their language and the conversation is handed to a person.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from warbler.ai.bot_config import BotConfig
from warbler.ai.memory import Memory, Turn
from warbler.ai.providers.base import (
    ChatMessage,
    ChatProvider,
    ChatRequest,
    Done,
    ProviderError,
    StreamReset,
    TextDelta,
    ToolCall,
    ToolCallsReady,
    ToolSpec,
    Usage,
)
from warbler.ai.providers.extractive import NAME as EXTRACTIVE
from warbler.ai.providers.extractive import ExtractiveProvider, language_of
from warbler.ai.providers.factory import build_chain
from warbler.ai.tokens import count_text
from warbler.im.principal import Principal
from warbler.kb.retrieve import MAX_QUERY_CHARS
from warbler.kb.types import Citation, Retrieval
from warbler.security.redaction.errors import RedactionBlocked
from warbler.security.redaction.session import RedactionSession

if TYPE_CHECKING:
    from warbler.services import Services

log = logging.getLogger(__name__)

Status = Literal["answered", "fallback", "curated", "no_answer", "apology"]

SUMMARY_RESERVE_TOKENS = 300  # room kept for the memory summary (a fifth of small budgets)
SUMMARY_MAX_TOKENS = 300
_MARKER = re.compile(r"\[(\d{1,2})\]")

GROUNDING = (
    "Numbered passages from the knowledge base follow. Base anything about the company, its "
    "products and its policies on them, and cite the passages you use with their numbers in "
    "square brackets, like [1]. If they do not contain the answer, say you don't know and "
    "offer to connect the user with a person. Never invent policies, prices or dates."
)
NOT_GROUNDED = (
    "The knowledge base has nothing relevant to this question. If the answer depends on facts "
    "about the company, its products or its policies, say you don't know and offer to connect "
    "the user with a person."
)
LANGUAGE_RULE = "Answer in the language of the user's last message."
SUMMARY_PROMPT = (
    "Summarise the conversation below for your own memory in at most 120 words: who asked "
    "what, facts and decisions, open questions. Keep names and numbers. Write in the "
    "conversation's language. Reply with the summary only."
)
APOLOGY = {
    "en": "Sorry, I can't answer right now: the AI service is not responding. I've asked a "
    "colleague to take over, and a person will reply here.",
    "zh": "抱歉，AI 服务暂时无法响应，我现在无法回答。已为您转接人工客服，稍后会有同事在这里回复您。",
}
APOLOGY_NO_HANDOFF = {
    "en": "Sorry, I can't answer right now: the AI service is not responding. Please try again "
    "in a few minutes.",
    "zh": "抱歉，AI 服务暂时无法响应，我现在无法回答。请过几分钟再试。",
}
HANDED_OFF = {
    "en": "I've asked a colleague to take over; a person will reply here.",
    "zh": "已为您转接人工客服，稍后会有同事在这里回复您。",
}
EMPTY_ANSWER = {
    "en": "Sorry, I have no answer to that.",
    "zh": "抱歉，我无法回答这个问题。",
}


# -- what goes in and what comes out ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnswerRequest:
    bot: BotConfig  # with its preset applied
    asker: Principal  # the asking user: tools and retrieval act as them
    messages: list[ChatMessage]  # the conversation's turns, oldest first, no system message
    conversation_id: str | None = None
    language: str | None = None  # "zh" / "en"; None: from the question
    # Each turn's seq in its conversation (same length as ``messages``), so the memory
    # summary can say what it covers; None outside a conversation.
    message_seqs: list[int | None] | None = None


@dataclass(frozen=True, slots=True)
class ToolActivity:
    name: str
    ok: bool


@dataclass(frozen=True, slots=True)
class Final:
    text: str
    usage: Usage
    citations: list[Citation]
    provider: str  # "openai:deepseek", "extractive", "curated", "" (none answered)
    model: str
    status: Status
    handoff: dict[str, Any] | None = None
    curated_answer_id: str | None = None
    latency_ms: int = 0
    tools: list[dict[str, Any]] = field(default_factory=list)  # [{name, ok}] in call order


AnswerEvent = TextDelta | StreamReset | ToolActivity | Final


@dataclass(slots=True)
class _Turn:
    """What one answer accumulates while the model and the tools go back and forth."""

    text: str = ""
    usage: Usage = field(default_factory=Usage)
    citations: list[Citation] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    handoff: dict[str, Any] | None = None
    done: Done | None = None


# -- the engine ---------------------------------------------------------------------------


class Engine:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.memory = Memory(services.db, count_text)

    async def answer(self, req: AnswerRequest) -> AsyncIterator[AnswerEvent]:
        """Stream the answer to the last user message of ``req.messages``.

        Raises ``QuotaExceeded`` (before any provider call), ``RedactionBlocked`` (before
        any provider call, only when ``req.conversation_id`` is None) and nothing else a
        caller must handle: provider failures end in an apology ``Final``.
        """
        started = time.monotonic()
        bot = req.bot
        await self.services.ai_quotas.check(bot, req.asker.user_id)
        question = _last_user_text(req.messages)
        language = "zh" if (req.language or language_of(question)).startswith("zh") else "en"
        retrieval = await self._retrieve(req, question)

        def elapsed() -> int:
            return int((time.monotonic() - started) * 1000)

        if retrieval is not None and retrieval.curated is not None:
            hit = retrieval.curated
            yield TextDelta(hit.answer)
            yield Final(
                text=hit.answer, usage=Usage(), citations=[hit.citation], provider="curated",
                model="", status="curated", curated_answer_id=hit.answer_id,
                latency_ms=elapsed(),
            )  # fmt: skip
            return

        try:
            redaction = await self.services.redaction.for_answer(
                bot.tenant_id, [p.kind for p in bot.providers], question, language
            )
        except RedactionBlocked as exc:
            if req.conversation_id is None:
                raise  # the OpenAI-compatible API: a typed 400 (pii_blocked); nothing was sent
            text = exc.user_message(language)
            yield TextDelta(text)
            yield Final(
                text=text, usage=Usage(), citations=[], provider="", model="", status="apology",
                latency_ms=elapsed(),
            )  # fmt: skip
            return
        provider = self._provider(bot, redaction)
        try:
            tools = await self._tools(bot) if bot.providers else []
            specs = tuple(t.spec for t in tools)
            model = bot.model or next((p.model for p in bot.providers if p.model), "")
            system, passages = self._system_prompt(bot, retrieval, model)
            recalled = await self._recall(req, provider, bot, system, specs, model)
            if recalled.summary:
                system += f"\n\nSummary of the earlier conversation:\n{recalled.summary}"
            messages = [ChatMessage("system", system), *recalled.turns]
            turn = _Turn(usage=recalled.usage)
            try:
                async for event in self._loop(req, provider, model, messages, tools, specs,
                                              retrieval, language, turn):  # fmt: skip
                    yield event
            except ProviderError as exc:
                log.warning("bot %s could not answer: %s", bot.id, exc.message)
                async for event in self._apologise(req, language, turn, elapsed()):
                    yield event
                return
        finally:
            await provider.aclose()

        done = turn.done
        extra = done.extra if done is not None else {}
        citations = list(extra.get("citations") or []) or _cited(turn.text, passages)
        citations = _unique([*citations, *turn.citations])
        if turn.handoff is not None:
            addition = ("\n\n" if turn.text.strip() else "") + HANDED_OFF[language]
            turn.text += addition
            yield TextDelta(addition)
        status: Status
        if not bot.providers:
            status = "answered" if extra.get("grounded") else "no_answer"
        else:
            status = "fallback" if extra.get("fallbacks") else "answered"
        text = turn.text.strip()
        if not text:
            text = EMPTY_ANSWER[language]
            yield StreamReset("the model gave no text")
            yield TextDelta(text)
        yield Final(
            text=text,
            usage=turn.usage,
            citations=citations,
            provider=str(extra.get("provider") or (EXTRACTIVE if not bot.providers else "")),
            model=done.model if done is not None else "",
            status=status,
            handoff=turn.handoff,
            curated_answer_id=extra.get("curated_answer_id"),
            latency_ms=elapsed(),
            tools=turn.tools,
        )

    # -- steps ------------------------------------------------------------------------------

    async def _retrieve(self, req: AnswerRequest, question: str) -> Retrieval | None:
        if not req.bot.kb_ids or not question.strip():
            return None
        try:
            result: Retrieval = await self.services.retriever.retrieve(
                req.asker, question[:MAX_QUERY_CHARS], kb_ids=list(req.bot.kb_ids)
            )
            return result
        except Exception:
            # No knowledge is better than no answer: the model is told nothing was found.
            log.warning("retrieval for bot %s failed", req.bot.id, exc_info=True)
            return None

    def _provider(self, bot: BotConfig, redaction: RedactionSession | None) -> ChatProvider:
        if not bot.providers:
            return ExtractiveProvider()
        # Tenant-configured URLs: every request goes through the SSRF policy. External
        # providers redact personal data with the answer's one session (security/redaction).
        return build_chain(
            bot.providers, self.settings, outbound=self.services.outbound, redaction=redaction
        )

    async def _tools(self, bot: BotConfig) -> list[Any]:
        if not bot.tools:
            return []
        try:
            return list(await self.services.tools.tools_for(bot.tenant_id, list(bot.tools)))
        except Exception:
            log.warning("loading the tools of bot %s failed", bot.id, exc_info=True)
            return []

    def _system_prompt(
        self, bot: BotConfig, retrieval: Retrieval | None, model: str
    ) -> tuple[str, list[Citation]]:
        """The system message and the citations its passage numbers stand for. Passages
        take at most half the context budget."""
        parts = [bot.persona.strip(), LANGUAGE_RULE]
        passages: list[Citation] = []
        if bot.kb_ids:
            if retrieval is not None and retrieval.grounded and retrieval.passages:
                lines: list[str] = []
                room = bot.context_tokens // 2
                for passage in retrieval.passages:
                    c = passage.citation
                    where = f"{c.title} > {c.title_path}" if c.title_path else c.title
                    line = f"[{len(lines) + 1}] {where}: {' '.join(passage.text.split())}"
                    cost = count_text(line, model)
                    if lines and cost > room:
                        break
                    room -= cost
                    lines.append(line)
                    passages.append(c)
                parts += [GROUNDING, "\n".join(lines)]
            else:
                parts.append(NOT_GROUNDED)
        return "\n\n".join(p for p in parts if p), passages

    async def _recall(
        self,
        req: AnswerRequest,
        provider: ChatProvider,
        bot: BotConfig,
        system: str,
        specs: Sequence[ToolSpec],
        model: str,
    ) -> Any:
        seqs = req.message_seqs if req.message_seqs is not None else [None] * len(req.messages)
        turns: list[Turn] = list(zip(seqs, req.messages, strict=True))
        from warbler.ai.tokens import count_tools

        budget = (
            bot.context_tokens
            - count_text(system, model)
            - count_tools(specs, model)
            - min(SUMMARY_RESERVE_TOKENS, bot.context_tokens // 5)
        )

        async def summarise(previous: str, older: Sequence[ChatMessage]) -> tuple[str, Usage]:
            transcript = "\n".join(f"{m.name or m.role}: {m.content}" for m in older)
            prompt = f"Summary so far:\n{previous or '(none)'}\n\nNew turns:\n{transcript}"
            request = ChatRequest(
                model=model,
                messages=(ChatMessage("system", SUMMARY_PROMPT), ChatMessage("user", prompt)),
                max_tokens=SUMMARY_MAX_TOKENS,
                temperature=0.2,
            )
            text, usage = "", Usage()
            async for event in _bounded(provider.stream(request), self._deadline(bot)):
                if isinstance(event, TextDelta):
                    text += event.text
                elif isinstance(event, StreamReset):
                    text = ""
                elif isinstance(event, Done):
                    usage = event.usage
            return text, usage

        return await self.memory.recall(
            turns,
            budget=budget,
            tenant_id=bot.tenant_id,
            bot_id=bot.id,
            conversation_id=req.conversation_id,
            summarise=summarise if bot.providers else None,
        )

    async def _loop(
        self,
        req: AnswerRequest,
        provider: ChatProvider,
        model: str,
        messages: list[ChatMessage],
        tools: list[Any],
        specs: tuple[ToolSpec, ...],
        retrieval: Retrieval | None,
        language: str,
        turn: _Turn,
    ) -> AsyncIterator[AnswerEvent]:
        """Model → tools → model, at most ``ai_max_tool_rounds`` tool rounds; then the model
        must answer in text (it is offered no tools)."""
        bot = req.bot
        rounds = 0
        while True:
            offered = specs if rounds < self.settings.ai_max_tool_rounds else ()
            request = ChatRequest(
                model=model,
                messages=tuple(messages),
                tools=offered,
                temperature=bot.temperature,
                max_tokens=bot.max_tokens,
                extra={
                    "retrieval": retrieval,
                    "language": language,
                    "tenant_id": bot.tenant_id,
                    "bot_id": bot.id,
                },
            )
            before = turn.text
            calls: tuple[ToolCall, ...] = ()
            async for event in _bounded(provider.stream(request), self._deadline(bot)):
                if isinstance(event, TextDelta):
                    turn.text += event.text
                    yield event
                elif isinstance(event, StreamReset):
                    # Only this round's text is void; earlier rounds' text stands.
                    turn.text = before
                    yield event
                    if before:
                        yield TextDelta(before)
                elif isinstance(event, ToolCallsReady):
                    calls = event.calls
                elif isinstance(event, Done):
                    turn.usage = turn.usage + event.usage
                    turn.done = event
            if not calls or not offered:
                return
            rounds += 1
            messages.append(ChatMessage("assistant", turn.text[len(before) :], tool_calls=calls))
            for call in calls:
                result = await self._run_tool(req, tools, call)
                turn.tools.append({"name": call.name, "ok": not result.is_error})
                yield ToolActivity(call.name, not result.is_error)
                messages.append(
                    ChatMessage("tool", result.content, tool_call_id=call.id, name=call.name)
                )
                turn.citations.extend(result.citations)
                if result.handoff is not None and turn.handoff is None:
                    turn.handoff = dict(result.handoff)
            if turn.handoff is not None:
                return  # a person takes over: the bot's turn ends here

    async def _run_tool(self, req: AnswerRequest, tools: list[Any], call: ToolCall) -> Any:
        from warbler.ai.tools.base import ToolContext

        ctx = ToolContext(
            principal=req.asker,
            bot_user_id=req.bot.user_id,
            conversation_id=req.conversation_id,
            services=self.services,
            kb_ids=req.bot.kb_ids,
            bot_id=req.bot.id,
        )
        return await self.services.tools.run(ctx, call, tools)

    async def _apologise(
        self, req: AnswerRequest, language: str, turn: _Turn, latency_ms: int
    ) -> AsyncIterator[AnswerEvent]:
        handoff = await self._hand_off(req, "The AI service did not respond; the user is waiting.")
        text = (APOLOGY if handoff is not None else APOLOGY_NO_HANDOFF)[language]
        if turn.text:
            yield StreamReset("every provider failed")
        yield TextDelta(text)
        yield Final(
            text=text, usage=turn.usage, citations=[], provider="", model="", status="apology",
            handoff=handoff, latency_ms=latency_ms, tools=turn.tools,
        )  # fmt: skip

    async def _hand_off(self, req: AnswerRequest, reason: str) -> dict[str, Any] | None:
        """Ask for a person with the built-in hand-off (whether or not the bot offers it to
        its model: the engine, not the model, decides here). None when there is nothing to
        hand over (no conversation: the OpenAI-compatible API) or it failed."""
        if req.conversation_id is None or req.asker.user_id is None:
            return None
        from warbler.ai.tools.builtin.handoff import Handoff

        call = ToolCall(
            id="engine-handoff", name=Handoff.spec.name,
            arguments={"reason": "other", "summary": reason},
        )  # fmt: skip
        # The tool's reason for the model is "other"; customer service records ``bot_error``.
        result = await self._run_tool(req, [Handoff(system_reason="bot_error")], call)
        if result.is_error or result.handoff is None:
            log.warning("handing conversation %s over failed: %s", req.conversation_id,
                        result.content)  # fmt: skip
            return None
        return dict(result.handoff)

    def _deadline(self, bot: BotConfig) -> float:
        """A safety net over one provider call through the whole chain: the providers bound
        their own waits, this bounds a chain that somehow does not."""
        s = self.settings
        if not bot.providers:
            return 60.0
        per = [p.request_timeout(s) * (p.retries(s) + 1) + 10 * p.retries(s) for p in bot.providers]
        return sum(per) + 5.0


# -- helpers --------------------------------------------------------------------------------


async def _bounded(events: AsyncIterator[Any], seconds: float) -> AsyncIterator[Any]:
    """``events`` with an overall deadline; past it, a ``ProviderTimeout``. The timeout
    wraps each wait only (never a ``yield``), in this task."""
    from warbler.ai.providers.base import ProviderTimeout

    ends = asyncio.get_running_loop().time() + seconds
    try:
        while True:
            try:
                async with asyncio.timeout_at(ends):
                    event = await anext(events)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise ProviderTimeout("the answer took longer than its deadline") from None
            yield event
    finally:
        with contextlib.suppress(Exception):
            await events.aclose()  # type: ignore[attr-defined]


def _last_user_text(messages: Sequence[ChatMessage]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message.content
    return ""


def _cited(text: str, passages: list[Citation]) -> list[Citation]:
    """The passages the answer cites with [n] markers, in order of first citation."""
    out = []
    for match in _MARKER.finditer(text):
        n = int(match.group(1))
        if 1 <= n <= len(passages):
            out.append(passages[n - 1])
    return out


def _unique(citations: list[Citation]) -> list[Citation]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for c in citations:
        key = (c.kb_id, c.document_id, c.chunk_id, c.curated_answer_id)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out
