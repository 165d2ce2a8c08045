"""Each reason code, from a real visitor message (Chinese and English) to a ticket: a request
for a person, negative sentiment, an escalate-list topic, no grounded answer, the same
question failing twice, a bot error; and the look-alikes the bot keeps answering."""

from __future__ import annotations

import pytest

from tests.conftest import backend_settings
from tests.fakes.openai_wire import Reply
from tests.integration.support_world import (
    REFUND_QUESTION,
    bot_messages,
    messages_of,
    notices,
    support_world,
)
from warbler.ai.engine import APOLOGY
from warbler.config import Settings


@pytest.fixture
def settings(tmp_path, backend, request) -> Settings:
    return backend_settings(
        backend, request, tmp_path / "data",
        outbound_allow_private=True,  # the fake vendor listens on 127.0.0.1
        ai_max_retries=0, ai_retry_base_seconds=0.01, ai_request_timeout_seconds=3.0,
        ai_user_messages_per_minute=0, ai_bot_messages_per_minute=0,
        ai_tenant_messages_per_minute=0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "locale", "reason", "told"),
    [
        ("转人工", "zh", "user_requested", "您要求转接人工"),
        ("Can I speak to a real person?", "en", "user_requested", "you asked for a person"),
        ("你们的服务太差了，我很生气", "zh", "negative_sentiment", "不满意"),
        ("This is ridiculous, worst service ever", "en", "negative_sentiment", "unhappy"),
        ("我要找律师处理这件事", "zh", "sensitive_topic", "需要人工处理"),
        ("I will forward this to my lawyer", "en", "sensitive_topic", "a person should handle"),
    ],
)
async def test_a_message_that_needs_a_person_is_queued_with_its_reason_and_not_answered(
    client, services, make_tenant, text, locale, reason, told
):
    w = await support_world(services, make_tenant, escalate_keywords=["lawyer", "律师"])
    await w.agent("busy", capacity=0)  # online but full: the ticket waits
    v, conv = await w.visitor("vera", locale=locale)
    sent = await w.say(client, v, conv, text)
    await w.quiet()
    ticket = await w.ticket(conv)
    assert (ticket.state, ticket.reason) == ("waiting", reason)
    assert ticket.reason_detail["message_id"] == sent["id"]
    notice = notices(await messages_of(client, v, conv))[-1]
    assert notice["data"]["support"]["reason"] == reason
    assert told in notice["text"]
    assert bot_messages(await messages_of(client, v, conv), w.bot["user_id"]) == []


@pytest.mark.parametrize(
    ("text", "no_answer_escalates"),
    [("what is a human resources policy", False), ("人工智能是什么？", False),
     ("How many days do I have to return an item? Not terrible, just asking", False),
     ("the lawyers' section of the site", False), ("hello", True), ("你好", True)],
)  # fmt: skip
async def test_look_alikes_and_small_talk_stay_with_the_bot(
    client, services, make_tenant, text, no_answer_escalates
):
    """Look-alikes of a request or a complaint are answered by the bot; small talk is never
    a failed answer, even where unanswered questions go to people."""
    w = await support_world(services, make_tenant, escalate_keywords=["lawyer"],
                            escalate_on_no_answer=no_answer_escalates)  # fmt: skip
    v, conv = await w.visitor("vera")
    reply = await w.ask_bot(client, v, conv, text)
    assert reply["sender_id"] == w.bot["user_id"]
    await w.quiet()
    assert (await w.state(conv)).state == "bot"
    assert await w.transitions(conv) == []


@pytest.mark.parametrize(
    ("text", "locale"),
    [("Who won the football world cup in 1998?", "en"), ("1998年世界杯冠军是哪个国家？", "zh")],
)
async def test_no_grounded_answer_hands_over_with_no_answer(
    client, services, make_tenant, text, locale
):
    w = await support_world(services, make_tenant)
    await w.agent("busy", capacity=0)
    v, conv = await w.visitor("vera", locale=locale)
    reply = await w.ask_bot(client, v, conv, text)
    assert reply["data"]["ai"]["outcome"] == "no_answer" and not reply["data"]["ai"]["sources"]
    await w.quiet()
    ticket = await w.ticket(conv)
    assert (ticket.state, ticket.reason) == ("waiting", "no_answer")
    assert ticket.reason_detail["reply_id"] == reply["id"]
    assert await w.transitions(conv) == [("bot", "waiting", "no_answer")]


async def test_no_answer_is_not_escalated_when_the_tenant_turns_it_off(
    client, services, make_tenant
):
    w = await support_world(services, make_tenant, escalate_on_no_answer=False)
    v, conv = await w.visitor("vera")
    await w.ask_bot(client, v, conv, "Who won the football world cup in 1998?")
    await w.quiet()
    assert (await w.state(conv)).state == "bot"


@pytest.mark.parametrize(
    ("asks", "locale"),
    [
        ([REFUND_QUESTION, "How many days do I have to return an item??",
          "how many days do I have to return items"], "en"),
        (["退款多久能到账？", "退款多久到账", "到底退款多久能到账"], "zh"),
    ],
)  # fmt: skip
async def test_the_same_question_failing_twice_hands_over(
    client, services, make_tenant, asks, locale
):
    w = await support_world(services, make_tenant, escalate_on_no_answer=False)
    await w.agent("busy", capacity=0)
    v, conv = await w.visitor("vera", locale=locale)
    for question in asks[:2]:
        await w.ask_bot(client, v, conv, question)
    assert (await w.state(conv)).failed_answers == 1
    last = await w.say(client, v, conv, asks[2])
    await w.quiet()
    ticket = await w.ticket(conv)
    assert (ticket.state, ticket.reason) == ("waiting", "repeated_failure")
    assert ticket.reason_detail["failed_answers"] == 2
    replies = bot_messages(await messages_of(client, v, conv), w.bot["user_id"])
    assert len(replies) == 2 and all(r["reply_to_id"] != last["id"] for r in replies)


async def test_a_different_question_in_between_starts_the_count_again(
    client, services, make_tenant
):
    w = await support_world(services, make_tenant, escalate_on_no_answer=False)
    v, conv = await w.visitor("vera")
    for question in (REFUND_QUESTION, "How many days do I have to return an item??",
                     "How long does shipping take?", REFUND_QUESTION):  # fmt: skip
        await w.ask_bot(client, v, conv, question)
    state = await w.state(conv)
    assert (state.state, state.failed_answers) == ("bot", 0)


async def test_a_bot_error_hands_over_with_bot_error(client, services, make_tenant, fake_openai):
    w = await support_world(services, make_tenant)
    provider = await services.ai_providers.create(
        w.admin, {"name": "flaky", "kind": "openai", "base_url": fake_openai.base_url,
                  "model": "fake-model"}, api_key="sk-test-0000",
    )  # fmt: skip
    await services.bots.update(w.admin, w.bot["id"], {"provider_ids": [provider["id"]]})
    await w.agent("busy", capacity=0)
    fake_openai.script(Reply(status=500), Reply(status=500))
    v, conv = await w.visitor("vera", locale="zh")
    reply = await w.ask_bot(client, v, conv, "我的订单在哪里？")
    assert reply["data"]["ai"]["outcome"] == "apology" and reply["text"] == APOLOGY["zh"]
    await w.quiet()
    ticket = await w.ticket(conv)
    assert (ticket.state, ticket.reason) == ("waiting", "bot_error")
    assert ticket.reason_detail["source"] == "handoff_tool"
    notice = notices(await messages_of(client, v, conv))[-1]
    assert "我遇到了问题" in notice["text"]
