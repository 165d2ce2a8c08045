"""The demo bot with no provider configured (what `make run` gives a newcomer): it answers
from the demo help center with a citation, and says it does not know otherwise."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import Actor
from tests.integration.test_ai_replies import finished_reply
from warbler.demo import BOT_USERNAME, TENANT, seed
from warbler.store.models import User

pytestmark = pytest.mark.slow  # ingests the 16 demo documents


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the embedded default is what the demo runs on


async def test_the_demo_bot_answers_from_the_demo_knowledge_and_admits_what_it_does_not_know(
    client, services
):
    await seed(services, "warbler-demo-pw")
    tenant = await services.users.tenant_by_slug(TENANT)
    assert tenant is not None
    async with services.db.read() as s:
        ids = dict(
            (
                await s.execute(select(User.username, User.id).where(User.tenant_id == tenant.id))
            ).all()
        )
    token = await services.auth.issue_token(tenant.id, ids["alice"])
    ann = Actor(ids["alice"], "alice", token["access_token"], tenant.id, "owner")
    r = await client.post(
        "/conversations", json={"kind": "direct", "user_id": ids[BOT_USERNAME]}, headers=ann.headers
    )
    conv = r.json()["id"]

    async def ask(text: str) -> dict:
        sent = await client.post(
            f"/conversations/{conv}/messages", json={"text": text}, headers=ann.headers
        )
        assert sent.status_code == 201, sent.text
        return await finished_reply(client, ann, conv, sent.json()["id"], within=30)

    refund = await ask("How many days do I have to return an item?")
    ai = refund["data"]["ai"]
    assert "30 days" in refund["text"]
    assert ai["sources"] and ai["sources"][0]["title"]
    assert ai["outcome"] in ("answered", "curated")

    zh = await ask("退款多久能到账？")
    assert zh["data"]["ai"]["sources"], zh
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh["text"])

    unrelated = await ask("Who won the football world cup in 1998?")
    assert unrelated["data"]["ai"]["outcome"] == "no_answer", unrelated
    assert "don't know" in unrelated["text"] or "do not know" in unrelated["text"]
    assert not unrelated["data"]["ai"]["sources"]
