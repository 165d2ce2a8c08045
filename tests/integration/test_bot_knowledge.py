"""What a bot may know: it reads knowledge bases as the user who asks, and a curated answer is
served without any model call."""

from __future__ import annotations

from tests.conftest import send
from tests.fakes.openai_wire import Reply
from tests.integration.test_ai_replies import (  # noqa: F401  (the module's settings fixture)
    REFUNDS,
    _tenant,
    dm,
    finished_reply,
    make_world,
    settings,
)


async def _agents_only_kb(services, admin) -> str:
    kb = await services.kb.create(admin, name="Internal", read_roles=["agent"])
    submitted = await services.kb_ingest.submit_file(
        admin, kb["id"], "refunds.md", REFUNDS.encode(), enqueue=False
    )
    await services.kb_ingest.ingest_now(admin, submitted)
    return str(kb["id"])


async def test_a_bot_never_gives_a_user_passages_of_a_kb_they_may_not_read(
    client, services, make_tenant, fake_openai
):
    w = await make_world(services, make_tenant, fake_openai)
    kb_id = await _agents_only_kb(services, w.admin)
    r = await client.patch(
        f"/bots/{w.bot['id']}", json={"kb_ids": [kb_id]}, headers=w.owner.headers
    )
    assert r.status_code == 200, r.text
    tenant = await _tenant(services, w)
    member, agent = await tenant.user("mia"), await tenant.user("aga", role="agent")

    for asker, may_read in ((member, False), (agent, True)):
        conv = await dm(client, asker, w.bot["user_id"])
        before = len(fake_openai.chat_requests)
        fake_openai.script(Reply(text="Within 5 business days [1]."))
        trigger = await send(client, asker, conv, "How long does a refund take?")
        reply = await finished_reply(client, asker, conv, trigger["id"])
        prompt = " ".join(
            m["content"] or "" for m in fake_openai.chat_requests[before].body["messages"]
        )
        assert ("5 business days" in prompt) is may_read, asker.username
        assert bool(reply["data"]["ai"]["sources"]) is may_read, reply


async def test_a_curated_answer_is_served_without_calling_the_model(
    client, services, make_tenant, fake_openai
):
    w = await make_world(services, make_tenant, fake_openai, kb_docs={"refunds.md": REFUNDS})
    kb_id = w.bot["kb_ids"][0]
    curated = await services.curated.create(
        w.admin, kb_id,
        questions=["How long does a refund take?", "退款多久到账？"],
        answer="Refunds reach your card within 5 business days.",
    )  # fmt: skip
    ann = await (await _tenant(services, w)).user("ann")
    conv = await dm(client, ann, w.bot["user_id"])
    trigger = await send(client, ann, conv, "How long will a refund take?")
    reply = await finished_reply(client, ann, conv, trigger["id"])
    assert reply["text"] == "Refunds reach your card within 5 business days."
    assert reply["data"]["ai"]["outcome"] == "curated"
    assert reply["data"]["ai"]["curated_answer_id"] == curated["id"]
    assert reply["data"]["ai"]["sources"]
    assert fake_openai.chat_requests == [], "no model call for a curated answer"
    hits = await services.curated.get(w.admin, kb_id, curated["id"])
    assert hits["hits"] == 1
