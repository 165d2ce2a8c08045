"""Conversation memory: recent turns within the token budget, older ones summarised once."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from warbler.ai.memory import Memory, Turn, extractive_summary, message_tokens, split_by_budget
from warbler.ai.providers.base import ChatMessage, Usage
from warbler.ai.tokens import count_text
from warbler.clock import utcnow
from warbler.security.encryption.keyring import Keyring
from warbler.security.encryption.master import MasterKeys
from warbler.store import schema  # noqa: F401  (every table module, for create_all)
from warbler.store.db import Database
from warbler.store.models import Base, Conversation, Tenant, User
from warbler.store.models_ai import AiBot, AiConversationState


def chat(n: int, *, start: int = 1) -> list[Turn]:
    """``n`` alternating turns with seqs, each a couple of sentences long."""
    out: list[Turn] = []
    for i in range(start, start + n):
        role = "user" if i % 2 else "assistant"
        text = f"Turn {i} says something first. Then it adds more detail about topic {i}."
        out.append((i, ChatMessage(role, text)))  # type: ignore[arg-type]
    return out


def test_the_newest_turns_that_fit_the_budget_are_kept_verbatim() -> None:
    turns = chat(30)
    one = message_tokens(turns[0][1], count_text)
    older, recent = split_by_budget(turns, budget=one * 10 + 3, count=count_text)
    assert [seq for seq, _ in recent] == list(range(21, 31))
    assert [seq for seq, _ in older] == list(range(1, 21))
    assert sum(message_tokens(m, count_text) for _, m in recent) <= one * 10 + 3


def test_the_question_is_kept_even_when_it_alone_exceeds_the_budget() -> None:
    question = (99, ChatMessage("user", "长问题" * 500))
    older, recent = split_by_budget([*chat(3), question], budget=10, count=count_text)
    assert recent == [question]
    assert len(older) == 3


def test_the_extractive_summary_is_the_first_sentence_of_each_turn_and_capped() -> None:
    summary = extractive_summary(
        "",
        [
            ChatMessage("user", "我想退货。订单号是 123。", name="ann"),
            ChatMessage("assistant", "Sure. Which item?"),
            ChatMessage("tool", '{"result": "ignored"}'),
        ],
    )
    assert summary == "ann: 我想退货。\nassistant: Sure."
    long = extractive_summary("", [ChatMessage("user", f"Sentence {i}.") for i in range(500)])
    assert len(long) <= 1200
    assert long.endswith("Sentence 499.")  # the newest survive the cap


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[tuple[Database, str, str, str]]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}", sqlite_synchronous="OFF")
    async with database.write() as s:
        await (await s.connection()).run_sync(Base.metadata.create_all)
    now = utcnow()
    async with database.write() as s:
        s.add(Tenant(id="T1", slug="t", name="T", event_seq=0, created_at=now))
        await s.flush()
        s.add(User(id="U1", tenant_id="T1", username="bot", display_name="Bot", kind="bot",
                   role="bot", created_at=now, updated_at=now))  # fmt: skip
        s.add(Conversation(id="C1", tenant_id="T1", kind="direct", last_seq=0, created_at=now,
                           updated_at=now))  # fmt: skip
        await s.flush()
        s.add(AiBot(id="B1", tenant_id="T1", user_id="U1", name="Bot", created_at=now,
                    updated_at=now))  # fmt: skip
    # The summary is encrypted at rest: T1 needs data keys (made on first use).
    keyring = Keyring(database, MasterKeys(os.urandom(32)))
    yield database, "T1", "B1", "C1"
    keyring.close()
    await database.dispose()


class Recorder:
    """A summariser that records what it was asked to fold in."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, list[int]]] = []
        self.fail = fail

    async def __call__(self, previous: str, turns: Sequence[ChatMessage]) -> tuple[str, Usage]:
        numbers = [int(m.content.split()[1]) for m in turns]
        self.calls.append((previous, numbers))
        if self.fail:
            raise RuntimeError("the model is down")
        return f"{previous}+{numbers[0]}..{numbers[-1]}", Usage(40, 10)


async def test_older_turns_are_summarised_once_and_the_summary_is_reused(db) -> None:
    database, tenant, bot, conv = db
    memory = Memory(database, count_text)
    one = message_tokens(chat(1)[0][1], count_text)
    summarise = Recorder()
    first = await memory.recall(chat(20), budget=one * 6, tenant_id=tenant, bot_id=bot,
                                conversation_id=conv, summarise=summarise)  # fmt: skip
    assert [m.content.split()[1] for m in first.turns] == [str(i) for i in range(15, 21)]
    assert first.summary == "+1..14" and first.usage == Usage(40, 10)
    assert summarise.calls == [("", list(range(1, 15)))]
    async with database.read() as s:
        state = await s.get(AiConversationState, (conv, bot))
    assert state is not None and (state.summary, state.summary_upto_seq) == ("+1..14", 14)

    # The same history again: the stored summary is reused, nothing is summarised.
    again = await memory.recall(chat(20), budget=one * 6, tenant_id=tenant, bot_id=bot,
                                conversation_id=conv, summarise=summarise)  # fmt: skip
    assert again.summary == "+1..14" and again.usage == Usage()
    assert len(summarise.calls) == 1

    # Two more turns fall out: too few to pay for a summary yet; the stored one stands.
    later = await memory.recall(chat(22), budget=one * 6, tenant_id=tenant, bot_id=bot,
                                conversation_id=conv, summarise=summarise)  # fmt: skip
    assert later.summary == "+1..14" and len(summarise.calls) == 1
    assert later.turns[0].content.split()[1] == "17"

    # Four: only the turns that fell out since are folded into the old summary.
    latest = await memory.recall(chat(24), budget=one * 6, tenant_id=tenant, bot_id=bot,
                                 conversation_id=conv, summarise=summarise)  # fmt: skip
    assert summarise.calls[1] == ("+1..14", [15, 16, 17, 18])
    assert latest.summary == "+1..14+15..18"
    async with database.read() as s:
        state = await s.get(AiConversationState, (conv, bot))
    assert state is not None and state.summary_upto_seq == 18


async def test_a_failing_summariser_falls_back_to_the_extractive_summary(db) -> None:
    database, tenant, bot, conv = db
    memory = Memory(database, count_text)
    one = message_tokens(chat(1)[0][1], count_text)
    recalled = await memory.recall(chat(8), budget=one * 2, tenant_id=tenant, bot_id=bot,
                                   conversation_id=conv, summarise=Recorder(fail=True))  # fmt: skip
    assert recalled.summary.splitlines()[0] == "user: Turn 1 says something first."
    assert len(recalled.summary.splitlines()) == 6 and len(recalled.turns) == 2


async def test_without_a_conversation_nothing_is_stored(db) -> None:
    database, tenant, bot, _ = db
    memory = Memory(database, count_text)
    one = message_tokens(chat(1)[0][1], count_text)
    summarise = Recorder()
    recalled = await memory.recall(chat(5), budget=one * 2, tenant_id=tenant, bot_id=bot,
                                   conversation_id=None, summarise=summarise)  # fmt: skip
    assert recalled.summary.startswith("user: Turn 1") and not summarise.calls
    async with database.read() as s:
        assert await s.get(AiConversationState, ("C1", bot)) is None
