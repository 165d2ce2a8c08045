"""Placeholders for one request, and putting the values back into an answer, streamed or not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from warbler.ai.providers.base import (
    ChatMessage,
    ChatRequest,
    Done,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallsReady,
    Usage,
)
from warbler.security.redaction.provider import RedactingProvider, is_external
from warbler.security.redaction.scanner import Scanner
from warbler.security.redaction.session import RedactionSession
from warbler.security.redaction.vault import StreamRestorer, Vault

PHONE = "13812345678"
EMAIL = "zhang.san@example.com"


def test_the_same_value_gets_the_same_placeholder_and_each_kind_counts_on_its_own():
    session = RedactionSession(Scanner())
    a = session.text(f"我的手机{PHONE}，邮箱{EMAIL}")
    b = session.text(f"Call 138 1234 5678 or +86 {PHONE}; mail {EMAIL.upper()}; or 13900001111")
    assert a == "我的手机[PHONE_1]，邮箱[EMAIL_1]"
    assert b == "Call [PHONE_1] or [PHONE_1]; mail [EMAIL_1]; or [PHONE_2]"
    assert session.vault.restore("[PHONE_1] / [PHONE_2] / [EMAIL_1] / [PHONE_9]") == (
        f"{PHONE} / 13900001111 / {EMAIL} / [PHONE_9]"
    )


def test_tool_arguments_and_names_are_redacted_and_restored():
    session = RedactionSession(Scanner())
    args = {"phone": PHONE, "nested": [{"mail": f"to {EMAIL}"}], "count": 3}
    assert session.value(args) == {"phone": "[PHONE_1]", "nested": [{"mail": "to [EMAIL_1]"}],
                                   "count": 3}  # fmt: skip
    assert session.restore_arguments(session.value(args)) == args
    assert session.name(PHONE) == "PHONE_1"


def test_a_placeholder_split_across_deltas_at_any_point_is_restored():
    vault = Vault()
    session = RedactionSession(Scanner())
    session.vault = vault
    session.text(f"{PHONE} {EMAIL}")
    answer = "好的，[PHONE_1] 和 [EMAIL_1] 已记录 [1]。Done [x] [PHONE_"
    expected = f"好的，{PHONE} 和 {EMAIL} 已记录 [1]。Done [x] [PHONE_"
    for cut in range(1, len(answer)):
        for step in (1, 2, 3, 5):
            restorer = StreamRestorer(vault)
            pieces = [answer[:cut]] + [answer[i : i + step] for i in range(cut, len(answer), step)]
            out = "".join(restorer.feed(p) for p in pieces) + restorer.flush()
            assert out == expected, (cut, step)


def test_restore_off_leaves_placeholders_in_the_answer():
    session = RedactionSession(Scanner(), restore=False)
    session.text(PHONE)
    restorer = session.restorer()
    assert restorer.feed("call [PHONE_1]") + restorer.flush() == "call [PHONE_1]"
    assert session.restore_arguments({"p": "[PHONE_1]"}) == {"p": PHONE}  # tools run here


class Scripted:
    """A vendor stand-in: records what it is sent, answers with scripted events."""

    name = "openai:scripted"

    def __init__(self, *events: StreamEvent) -> None:
        self.events = events
        self.sent: list[ChatRequest] = []

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        self.sent.append(request)
        for event in self.events:
            yield event

    async def aclose(self) -> None:
        return None


async def collect(provider: RedactingProvider, request: ChatRequest) -> list[StreamEvent]:
    return [e async for e in provider.stream(request)]


def test_the_wrapper_sends_placeholders_and_gives_back_values():
    inner = Scripted(
        TextDelta("Your number [PHO"), TextDelta("NE_1] is saved; mail [EM"),
        ToolCallsReady((ToolCall("c1", "lookup", {"phone": "[PHONE_1]"}),)),
        Done(Usage(1, 1)),
    )  # fmt: skip
    session = RedactionSession(Scanner())
    provider = RedactingProvider(inner, session)
    request = ChatRequest(
        model="m",
        messages=(
            ChatMessage("system", f"Support line {EMAIL}"),
            ChatMessage("user", f"我的手机号{PHONE}谢谢", name="ann"),
            ChatMessage("assistant", "", tool_calls=(ToolCall("c0", "x", {"q": PHONE}),)),
            ChatMessage("tool", f"found {PHONE}", tool_call_id="c0", name="x"),
        ),
    )
    events = asyncio.run(collect(provider, request))
    sent = repr(inner.sent[0])
    assert PHONE not in sent and EMAIL not in sent
    assert [m.content for m in inner.sent[0].messages] == [
        "Support line [EMAIL_1]", "我的手机号[PHONE_1]谢谢", "", "found [PHONE_1]",
    ]  # fmt: skip
    assert inner.sent[0].messages[2].tool_calls[0].arguments == {"q": "[PHONE_1]"}
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    # The held-back "[EM" is let go when the turn ends: it never became a placeholder.
    assert text == f"Your number {PHONE} is saved; mail [EM"
    calls = next(e for e in events if isinstance(e, ToolCallsReady)).calls
    assert calls[0].arguments == {"phone": PHONE}
    assert isinstance(events[-1], Done)


def test_only_providers_that_leave_the_machine_are_external():
    assert is_external("openai") and is_external("anthropic")
    assert not is_external("local") and not is_external("extractive")
