"""The escalation rules over visitors' messages, Chinese and English: what goes to a person
and what the bot keeps (look-alikes that must not escalate)."""

from __future__ import annotations

import pytest

from warbler.support.escalation import (
    SAME_QUESTION,
    asks_for_person,
    detect,
    negative,
    similarity,
    small_talk,
)

ASKS = [
    "转人工", "我要转人工！", "人工客服在吗", "请帮我接人工服务", "我想找人工", "人工",
    "能不能找真人聊聊", "你们的客服电话是多少", "不要机器人，给我人工",
    "talk to a human", "Can I speak to someone?", "I need a real person please",
    "representative", "Agent!", "I want a human", "connect me with a live agent",
    "Let me chat with customer service", "human agent please",
]  # fmt: skip
NOT_ASKS = [
    "what is a human resources policy", "人工智能是什么？", "我想了解人工智能产品",
    "How do I transfer money to someone?", "Is the human body mostly water?",
    "what does a real estate agent do", "真人秀什么时候播", "how long do refunds take",
]  # fmt: skip


@pytest.mark.parametrize("text", ASKS)
def test_asking_for_a_person_is_recognised(text):
    assert asks_for_person(text) is not None
    found = detect(text, keywords=[], negative_words=[])
    assert found is not None and found.reason == "user_requested"


@pytest.mark.parametrize("text", NOT_ASKS)
def test_look_alikes_do_not_ask_for_a_person(text):
    assert asks_for_person(text) is None
    assert detect(text, keywords=[], negative_words=[]) is None


@pytest.mark.parametrize(
    "text",
    ["This is terrible, I'm so frustrated", "worst service ever", "我很生气", "你们的服务太差了",
     "我要投诉", "我对这个结果不满意", "what a waste of time"],
)  # fmt: skip
def test_negative_sentiment_zh_and_en(text):
    found = detect(text, keywords=[], negative_words=[])
    assert found is not None and found.reason == "negative_sentiment", text


@pytest.mark.parametrize(
    "text",
    ["not terrible at all", "我不生气，只是问问", "How do I return a product?", "运费怎么算？"],
)
def test_negations_and_neutral_questions_are_not_negative(text):
    assert negative(text) is None


def test_the_tenant_adds_negative_words():
    assert negative("this is meh") is None
    assert negative("this is meh", ["meh"]) == "meh"
    assert negative("太坑了吧", ["太坑"]) == "太坑"


def test_sensitive_topics_are_the_tenants_escalate_keywords():
    keywords = ["refund", "lawyer", "退款纠纷"]
    found = detect("I will call my lawyer about this", keywords=keywords, negative_words=[])
    assert found is not None and found.reason == "sensitive_topic"
    assert found.detail["matched"] == "lawyer"
    zh = detect("这是一个退款纠纷", keywords=keywords, negative_words=[])
    assert zh is not None and zh.reason == "sensitive_topic"
    # Whole words only in Latin script: "refunded" is not the keyword "refund".
    assert detect("it was refunded already", keywords=["refund"], negative_words=[]) is None


@pytest.mark.parametrize(
    "text", ["hi", "Hello there!", "thanks a lot", "谢谢", "你好吗", "ok", "好的"]
)
def test_small_talk(text):
    assert small_talk(text)


@pytest.mark.parametrize(
    "text", ["hi, how do refunds work?", "你好，退款多久到账", "thanks, and shipping?"]
)
def test_a_question_after_a_greeting_is_not_small_talk(text):
    assert not small_talk(text)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("How long do refunds take?", "how long does a refund take"),
        ("退款多久到账", "退款多久能到账？"),
        ("怎么退款", "到底怎么退款"),
        ("How do I get a refund?", "how do i get a refund??"),
    ],
)
def test_the_same_question_again_is_similar(a, b):
    assert similarity(a, b) >= SAME_QUESTION


@pytest.mark.parametrize(
    ("a", "b"),
    [("how long does shipping take", "how do I get a refund"), ("退款多久到账", "运费怎么算")],
)
def test_different_questions_are_not_similar(a, b):
    assert similarity(a, b) < SAME_QUESTION
