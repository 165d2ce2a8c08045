"""With no model configured, a bot answers extractively from its knowledge base: the most
relevant sentences with citations, in the question's language, saying honestly that no
language model wrote it; and "I don't know" (with an offer of a person) when nothing fits."""

from __future__ import annotations

from tests.conftest import send
from tests.integration.test_ai_replies import dm, finished_reply, make_world
from warbler.ai.providers.extractive import DONT_KNOW, HONEST, compose
from warbler.kb.types import Citation, Passage, Retrieval

HANDBOOK = {
    "refunds.md": """# Refund policy

You can ask for a refund within 30 days of purchase. Refunds are paid back to the original
card within 5 business days. Gift cards cannot be refunded.
""",
    "shipping.md": """# Shipping

We ship every order with SF Express. Delivery in mainland China takes 2 to 3 days, and
international delivery takes 7 to 14 days.
""",
    "退款.md": """# 退款政策

购买后 30 天内可以申请退款。退款会在 5 个工作日内退回原支付卡。礼品卡不支持退款。
""",
}


async def test_with_no_provider_the_bot_answers_from_the_knowledge_base_with_a_citation(
    client, services, make_tenant
):
    w = await make_world(services, make_tenant, kb_docs=HANDBOOK)
    ann = await _member(services, w)
    conv = await dm(client, ann, w.bot["user_id"])
    trigger = await send(client, ann, conv, "How long does a refund take to reach my card?")
    reply = await finished_reply(client, ann, conv, trigger["id"], within=30)
    ai = reply["data"]["ai"]
    assert (ai["status"], ai["outcome"], ai["provider"]) == ("done", "answered", "extractive")
    text = reply["text"]
    assert "5 business days" in text and "[1]" in text
    assert text.endswith(HONEST["en"])  # honest about what it is
    # The relevant sentences, not the whole passage or knowledge base.
    assert "Gift cards" not in text and "SF Express" not in text
    [source] = ai["sources"]
    assert source["title"] == "Refund policy" and source["document_id"]
    assert ai["usage"]["total_tokens"] == 0


async def test_a_chinese_question_gets_a_chinese_answer(client, services, make_tenant):
    w = await make_world(services, make_tenant, kb_docs=HANDBOOK)
    ann = await _member(services, w)
    conv = await dm(client, ann, w.bot["user_id"])
    trigger = await send(client, ann, conv, "退款多久能退回到卡上？")
    reply = await finished_reply(client, ann, conv, trigger["id"], within=30)
    assert "5 个工作日" in reply["text"] and "[1]" in reply["text"]
    assert reply["text"].endswith(HONEST["zh"])
    assert reply["data"]["ai"]["sources"][0]["title"] == "退款政策"


async def test_an_unrelated_question_gets_i_dont_know_and_an_offer_of_a_person(
    client, services, make_tenant
):
    w = await make_world(services, make_tenant, kb_docs=HANDBOOK)
    ann = await _member(services, w)
    conv = await dm(client, ann, w.bot["user_id"])
    trigger = await send(client, ann, conv, "Who won the football world cup in 1954?")
    reply = await finished_reply(client, ann, conv, trigger["id"], within=30)
    assert reply["text"] == DONT_KNOW["en"]
    ai = reply["data"]["ai"]
    assert ai["outcome"] == "no_answer" and ai["sources"] == []


def test_markers_number_the_citations_in_the_order_they_are_used() -> None:
    def passage(n: int, text: str) -> Passage:
        cite = Citation(kb_id="kb", document_id=f"d{n}", title=f"doc {n}", title_path="",
                        link=None, chunk_id=f"c{n}")  # fmt: skip
        return Passage(f"c{n}", "kb", f"d{n}", text, cite, score=1.0 / (n + 1))

    retrieval = Retrieval(
        query="",
        passages=(
            passage(0, "Parcels ship with SF Express. Shipping is free over 99 yuan."),
            passage(1, "Returns are free. Refunds reach the card in 5 business days."),
        ),
        grounded=True,
    )
    text, citations, grounded, _ = compose("Is shipping free, and are returns free?", retrieval,
                                           "en")  # fmt: skip
    assert grounded and [c.document_id for c in citations] == ["d0", "d1"]
    assert "Shipping is free over 99 yuan. [1]" in text and "Returns are free." in text
    assert "[2]" in text and "SF Express" not in text
    not_found, none, grounded, _ = compose("anything", Retrieval(query="anything"), "zh")
    assert (not_found, none, grounded) == (DONT_KNOW["zh"], [], False)


async def _member(services, w):  # type: ignore[no-untyped-def]
    from tests.conftest import Tenant

    return await Tenant(w.tenant_id, "acme", services).user("ann")
