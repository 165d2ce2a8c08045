"""The bot's suggested reply for the agent: the real engine answering the visitor's last
question as the visitor (their knowledge bases only), never posted, billed as usage with the
source ``suggestion`` and held to the bot's quotas."""

from __future__ import annotations

import json

from sqlalchemy import select

from tests.fakes.openai_wire import Reply
from tests.integration.kb_seed import add_document, create_kb
from tests.integration.support_world import REFUND_QUESTION, messages_of, support_world
from tests.integration.test_ai_replies import settings  # noqa: F401  (outbound to 127.0.0.1)
from warbler.store.models_ai import AiUsage

WARRANTY = """# Warranty

## Extended warranty
The extended warranty of platinum members lasts seven years (zebrawarranty).
"""


async def _waiting_then_assigned(client, w, question: str):
    vera, conv = await w.visitor("vera")
    await w.say(client, vera, conv, "I want to talk to a human")
    amy = await w.agent("amy")
    asked = await w.say(client, vera, conv, question)  # the bot is silent now
    await w.say(client, vera, conv, "thanks")  # small talk is not the question
    ticket = await w.ticket(conv)
    assert ticket.assignee_id == amy.id
    return vera, conv, amy, ticket.id, asked


async def _suggest(client, actor, ticket_id: str, status: int = 200) -> dict:
    r = await client.get(f"/support/tickets/{ticket_id}/suggestion", headers=actor.headers)
    assert r.status_code == status, r.text
    return dict(r.json())


async def test_the_suggestion_answers_as_the_visitor_is_not_posted_and_is_billed(
    client, services, make_tenant, fake_openai
):
    w = await support_world(services, make_tenant)
    # A knowledge base only agents may read, on the bot too: the visitor may not read it.
    secret_kb = await create_kb(services, w.tenant_id, "internal", read_roles=["agent"])
    await add_document(services, w.tenant_id, secret_kb, "warranty.md", WARRANTY)
    provider = await services.ai_providers.create(
        w.admin, {"name": "fake", "kind": "openai", "base_url": fake_openai.base_url,
                  "model": "fake-model"}, api_key="sk-test-0000",
    )  # fmt: skip
    await services.bots.update(
        w.admin, w.bot["id"],
        {"kb_ids": [*w.bot["kb_ids"], secret_kb], "provider_ids": [provider["id"]]},
    )  # fmt: skip
    question = f"{REFUND_QUESTION} And how long is the extended warranty?"
    vera, conv, amy, ticket_id, asked = await _waiting_then_assigned(client, w, question)
    before = await messages_of(client, vera, conv)

    fake_openai.script(Reply(text="You have 30 days to return it [1].", usage=(120, 18)))
    got = await _suggest(client, amy, ticket_id)
    assert got["text"] == "You have 30 days to return it [1]."
    assert got["question"] == {"message_id": asked["id"], "text": question}
    assert got["grounded"] is True and got["status"] == "answered"
    assert got["sources"] and {s["kb_id"] for s in got["sources"]} == set(w.bot["kb_ids"])
    # The model saw the visitor's question last, and passages the visitor may read only.
    [request] = fake_openai.chat_requests
    sent = request.body["messages"]
    assert sent[-1] == {"role": "user", "content": question}
    prompt = json.dumps(sent, ensure_ascii=False)
    assert "30 days" in prompt and "zebrawarranty" not in prompt
    # The agent could read that passage: it is the visitor's permissions that kept it out.
    found = await services.retriever.retrieve(
        w.admin, "extended warranty platinum", kb_ids=[secret_kb], record_hit=False
    )
    assert any("zebrawarranty" in p.text for p in found.passages)

    # Nothing was posted; the usage row is the agent's, with the suggestion's source.
    assert await messages_of(client, vera, conv) == before
    async with services.db.read() as s:
        rows = (await s.scalars(select(AiUsage).where(AiUsage.tenant_id == w.tenant_id))).all()
    [row] = [r for r in rows if r.source == "suggestion"]
    assert (row.user_id, row.conversation_id, row.trigger_message_id) == (amy.id, conv, asked["id"])
    assert (row.prompt_tokens, row.completion_tokens, row.status) == (120, 18, "answered")
    r = await client.get("/ai/usage", params={"bot_id": w.bot["id"]}, headers=w.owner.headers)
    assert "suggestion" in [u["source"] for u in r.json()]

    # Held to the bot's quotas: past the monthly tokens, no model call, a typed 429.
    await services.bots.update(w.admin, w.bot["id"], {"quotas": {"tokens_per_month": 100}})
    refused = await _suggest(client, amy, ticket_id, status=429)
    assert refused["error"]["code"] == "quota_exceeded"
    assert refused["error"]["details"]["scope"] == "bot"
    assert len(fake_openai.chat_requests) == 1


async def test_the_extractive_bot_suggests_a_cited_answer_or_says_it_has_none(
    client, services, make_tenant
):
    w = await support_world(services, make_tenant)
    vera, conv, amy, ticket_id, _ = await _waiting_then_assigned(client, w, REFUND_QUESTION)
    got = await _suggest(client, amy, ticket_id)
    assert got["grounded"] is True and got["status"] == "answered"
    assert "30" in got["text"] and got["sources"]
    await w.say(client, vera, conv, "What is the name of the CEO's cat?")
    got = await _suggest(client, amy, ticket_id)
    assert got["question"]["text"] == "What is the name of the CEO's cat?"
    assert got["grounded"] is False and got["status"] == "no_answer"
    # Any agent (not only the assignee) and admins may ask; the visitor and members may not.
    bob = await w.agent("bob")
    assert (await _suggest(client, bob, ticket_id))["grounded"] is False
    member = await w.tenant.user("mona")
    for outsider in (vera, member):
        refused = await _suggest(client, outsider, ticket_id, status=403)
        assert refused["error"]["code"] == "forbidden"
    missing = await _suggest(client, amy, "01HZZZZZZZZZZZZZZZZZZZZZZZ", status=404)
    assert missing["error"]["code"] == "not_found"


async def test_no_suggestion_before_the_visitor_asked_anything(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    _vera, conv = await w.visitor("vera")
    amy = await w.agent("amy")
    r = await client.post(f"/support/conversations/{conv}/takeover", headers=amy.headers)
    assert r.status_code == 200, r.text
    refused = await _suggest(client, amy, r.json()["id"], status=409)
    assert refused["error"]["code"] == "no_question"
