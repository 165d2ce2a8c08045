"""Saving an agent's answer as a curated answer in one click: the bot then answers a
paraphrase of the question with it, without calling the model."""

from __future__ import annotations

from tests.fakes.openai_wire import Reply
from tests.integration.kb_seed import create_kb
from tests.integration.support_world import REFUND_QUESTION, support_world
from tests.integration.test_ai_replies import settings  # noqa: F401  (outbound to 127.0.0.1)

PAYMENT = "Can I pay with Alipay or WeChat Pay?"
ANSWER = "Yes: Alipay and WeChat Pay are both accepted at checkout."


async def _with_model(services, w, fake_openai) -> None:
    provider = await services.ai_providers.create(
        w.admin, {"name": "fake", "kind": "openai", "base_url": fake_openai.base_url,
                  "model": "fake-model"}, api_key="sk-test-0000",
    )  # fmt: skip
    await services.bots.update(w.admin, w.bot["id"], {"provider_ids": [provider["id"]]})


async def _save(client, actor, ticket_id: str, status: int = 201, **body) -> dict:
    r = await client.post(f"/support/tickets/{ticket_id}/curated", json=body,
                          headers=actor.headers)  # fmt: skip
    assert r.status_code == status, r.text
    return dict(r.json())


async def test_an_agents_answer_saved_in_one_click_answers_the_next_visitor_without_a_model(
    client, services, make_tenant, fake_openai
):
    w = await support_world(services, make_tenant)
    await _with_model(services, w, fake_openai)
    kb_id = w.bot["kb_ids"][0]
    vera, conv = await w.visitor("vera")
    # The model finds nothing in the knowledge base: an ungrounded answer goes to a person.
    fake_openai.script(Reply(text="Sorry, I don't know that."))
    unanswered = await w.ask_bot(client, vera, conv, PAYMENT)
    assert not unanswered["data"]["ai"]["sources"]
    await w.quiet()  # the hand-off follows the finished reply, in the same job
    ticket = await w.ticket(conv)
    assert (ticket.state, ticket.reason) == ("waiting", "no_answer")
    amy = await w.agent("amy")
    await w.say(client, amy, conv, "Let me check.")
    answer = await w.say(client, amy, conv, ANSWER)
    await w.say(client, vera, conv, "thank you!")

    saved = await _save(client, amy, ticket.id, kb_id=kb_id)
    assert saved["kb_id"] == kb_id and saved["questions"] == [PAYMENT]
    assert saved["answer"] == ANSWER and saved["created_by"] == amy.id and saved["enabled"]
    again = await _save(client, amy, ticket.id, 409, kb_id=kb_id, answer_message_id=answer["id"])
    assert again["error"]["code"] == "already_curated"
    assert again["error"]["details"]["answer_id"] == saved["id"]

    r = await client.post(f"/support/tickets/{ticket.id}/resolve", headers=amy.headers)
    assert r.status_code == 200, r.text
    calls = len(fake_openai.chat_requests)
    other, other_conv = await w.visitor("walt")
    reply = await w.ask_bot(client, other, other_conv, "Can I pay with WeChat Pay or Alipay?")
    assert reply["text"] == ANSWER
    assert reply["data"]["ai"]["outcome"] == "curated"
    assert reply["data"]["ai"]["curated_answer_id"] == saved["id"]
    assert len(fake_openai.chat_requests) == calls, "no model call for a curated answer"
    assert (await w.state(other_conv)).state == "bot", "a curated answer needs no person"


async def test_the_question_defaults_to_the_one_before_the_request_for_a_person(
    client, services, make_tenant
):
    w = await support_world(services, make_tenant)
    kb_id = w.bot["kb_ids"][0]
    vera, conv = await w.visitor("vera", locale="zh")
    await w.ask_bot(client, vera, conv, "退货运费谁出？")
    await w.say(client, vera, conv, "转人工")
    amy = await w.agent("amy")
    nothing = await _save(client, amy, (await w.ticket(conv)).id, 400, kb_id=kb_id)
    assert nothing["error"]["details"]["field"] == "answer"
    first = await w.say(client, amy, conv, "质量问题的退货运费由我们承担。")
    await w.say(client, amy, conv, "还有其他问题吗？")
    ticket = await w.ticket(conv)
    # An agent message chosen by id; the question is the visitor's before it.
    saved = await _save(client, amy, ticket.id, kb_id=kb_id, answer_message_id=first["id"])
    assert saved["questions"] == ["退货运费谁出？"]
    assert saved["answer"] == "质量问题的退货运费由我们承担。"
    # Both given explicitly.
    saved = await _save(
        client, amy, ticket.id, kb_id=kb_id, question="退货 运费\n谁承担？", answer=" 我们承担。 "
    )
    assert (saved["questions"], saved["answer"]) == (["退货 运费 谁承担？"], "我们承担。")


async def test_agents_save_to_the_support_bots_knowledge_bases_and_admins_to_any(
    client, services, make_tenant
):
    w = await support_world(services, make_tenant)
    vera, conv = await w.visitor("vera")
    await w.ask_bot(client, vera, conv, REFUND_QUESTION)
    await w.say(client, vera, conv, "talk to a human please")
    amy = await w.agent("amy")
    reply = await w.say(client, amy, conv, "30 days, and we pay the return shipping.")
    ticket = await w.ticket(conv)
    other_kb = await create_kb(services, w.tenant_id, "sales")
    refused = await _save(client, amy, ticket.id, 403, kb_id=other_kb)
    assert refused["error"]["code"] == "forbidden"
    assert refused["error"]["details"]["allowed_kb_ids"] == w.bot["kb_ids"]
    by_owner = await _save(client, w.owner, ticket.id, kb_id=other_kb)
    assert by_owner["questions"] == [REFUND_QUESTION] and by_owner["created_by"] == w.owner.id
    r = await client.get(f"/kb/{other_kb}/curated", headers=w.owner.headers)
    assert [a["id"] for a in r.json()] == [by_owner["id"]]
    # An id of no KB is a 404 for an admin, a 403 for an agent (only the bot's are theirs).
    missing = "01HZZZZZZZZZZZZZZZZZZZZZZZ"
    assert (await _save(client, w.owner, ticket.id, 404, kb_id=missing))["error"]["code"] == (
        "not_found"
    )
    await _save(client, amy, ticket.id, 403, kb_id=missing)
    # Bad references and bodies.
    kb_id = w.bot["kb_ids"][0]
    mine = await w.say(client, vera, conv, "ok")
    bad = await _save(client, amy, ticket.id, 400, kb_id=kb_id, answer_message_id=mine["id"])
    assert bad["error"]["details"]["field"] == "answer_message_id"
    gone = await _save(client, amy, ticket.id, 404, kb_id=kb_id, answer_message_id=missing)
    assert gone["error"]["code"] == "not_found"
    both = await _save(client, amy, ticket.id, 400, kb_id=kb_id, answer="x",
                       answer_message_id=reply["id"])  # fmt: skip
    assert both["error"]["code"] == "invalid_request"
    await _save(client, amy, ticket.id, 422, kb_id=kb_id, question="q" * 501)
    await _save(client, amy, ticket.id, 422, kb_id=kb_id, answer="")
    member = await w.tenant.user("mona")
    await _save(client, member, ticket.id, 403, kb_id=kb_id)
    await _save(client, vera, ticket.id, 403, kb_id=kb_id)
    await _save(client, amy, missing, 404, kb_id=kb_id)
    # Nothing of the refused calls was written: the bot's KB holds no curated answer.
    r = await client.get(f"/kb/{kb_id}/curated", headers=w.owner.headers)
    assert r.json() == []
