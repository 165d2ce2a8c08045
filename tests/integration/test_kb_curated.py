"""Curated answers: matched by question similarity before retrieval, served as written,
edited and imported by admins, counted when served."""

from __future__ import annotations

import io
from pathlib import Path

from tests.integration.kb_seed import create_kb
from warbler.im.principal import Principal

FAQ = Path(__file__).parents[2] / "examples" / "kb" / "faq.csv"
PASSWORD_EN = (
    "On the sign-in page choose Forgot password, enter your email and follow the link we send "
    "you (valid for 30 minutes)."
)
PASSWORD_ZH = "在登录页面点击“忘记密码”，输入注册邮箱，按邮件中的链接重新设置，链接三十分钟内有效。"


def admin_of(tenant_id: str) -> Principal:
    return Principal(tenant_id=tenant_id, api_key_id="key", scopes=frozenset({"admin"}))


async def import_faq(client, headers: dict[str, str], kb_id: str) -> dict:
    r = await client.post(
        f"/kb/{kb_id}/curated/import",
        files={"file": ("faq.csv", FAQ.read_bytes(), "text/csv")},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_paraphrased_question_gets_the_curated_answer_and_others_do_not(
    services, client, make_tenant
):
    tenant = await make_tenant()
    admin = await tenant.user("ada", role="admin")
    kb_id = await create_kb(services, tenant.id)
    assert (await import_faq(client, admin.headers, kb_id))["created"] == 10
    member = await tenant.user("mo", role="member")

    async def ask(question: str) -> dict:
        r = await client.post("/kb/search", json={"query": question}, headers=member.headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    # Phrasings the sheet does not hold, in both languages.
    for question, answer in (
        ("I can't remember my password, help", PASSWORD_EN),
        ("密码忘了咋办", PASSWORD_ZH),
    ):
        found = await ask(question)
        assert found["curated"] is not None, question
        assert found["curated"]["answer"] == answer
        assert found["grounded"]
        citation = found["curated"]["citation"]
        assert citation["curated_answer_id"] == found["curated"]["answer_id"]
        assert citation["document_id"] is None and citation["kb_id"] == kb_id
    # Questions on the same topics that ask something else, and an unrelated one.
    for question in (
        "How do I turn on two-step verification?",
        "退款多久到账",
        "Do you refund shipping fees?",
        "What is the capital of France?",
    ):
        assert (await ask(question))["curated"] is None, question


async def test_admins_edit_curated_answers_and_retrieval_follows(services, client, make_tenant):
    tenant = await make_tenant()
    admin = await tenant.user("ada", role="admin")
    kb_id = await create_kb(services, tenant.id)
    base = f"/kb/{kb_id}/curated"
    body = {
        "questions": ["Do you have a loyalty card?", "会员卡怎么办理"],
        "answer": "Ask at the till.",
    }
    r = await client.post(base, json=body, headers=admin.headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["questions"] == body["questions"] and created["hits"] == 0
    principal = admin_of(tenant.id)
    hit = (await services.retriever.retrieve(principal, "Is there a loyalty card?")).curated
    assert hit is not None and hit.answer == "Ask at the till."

    # New phrasings replace the old ones; the next question sees it (content version bumped).
    r = await client.patch(
        f"{base}/{created['id']}",
        json={"questions": ["Can I bring my dog into the showroom?"], "answer": "Dogs welcome."},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["questions"] == ["Can I bring my dog into the showroom?"]
    assert (
        await services.retriever.retrieve(principal, "Is there a loyalty card?")
    ).curated is None
    dog = (
        await services.retriever.retrieve(principal, "Are dogs allowed in the showroom?")
    ).curated
    assert dog is not None and dog.answer == "Dogs welcome."

    # Turned off: not served. Deleted: gone.
    r = await client.patch(
        f"{base}/{created['id']}", json={"enabled": False}, headers=admin.headers
    )
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert (
        await services.retriever.retrieve(principal, "Are dogs allowed in the showroom?")
    ).curated is None
    listed = (await client.get(base, headers=admin.headers)).json()
    assert [a["id"] for a in listed] == [created["id"]]
    assert (
        await client.delete(f"{base}/{created['id']}", headers=admin.headers)
    ).status_code == 204
    assert (await client.get(f"{base}/{created['id']}", headers=admin.headers)).status_code == 404


async def test_serving_a_curated_answer_counts_a_hit(services, client, make_tenant):
    tenant = await make_tenant()
    admin = await tenant.user("ada", role="admin")
    kb_id = await create_kb(services, tenant.id)
    r = await client.post(
        f"/kb/{kb_id}/curated",
        json={"questions": ["Where is your showroom?"], "answer": "88 Huaihai Road."},
        headers=admin.headers,
    )
    answer_id = r.json()["id"]
    principal = admin_of(tenant.id)
    for _ in range(2):
        assert (await services.retriever.retrieve(principal, "Where's the showroom?")).curated
    # Previews and evaluations do not count.
    await services.retriever.retrieve(principal, "Where's the showroom?", record_hit=False)
    got = (await client.get(f"/kb/{kb_id}/curated/{answer_id}", headers=admin.headers)).json()
    assert got["hits"] == 2 and got["last_hit_at"] is not None


async def test_importing_a_sheet_twice_changes_nothing_and_xlsx_works(
    services, client, make_tenant
):
    from openpyxl import Workbook

    tenant = await make_tenant()
    admin = await tenant.user("ada", role="admin")
    kb_id = await create_kb(services, tenant.id)
    first = await import_faq(client, admin.headers, kb_id)
    assert first == {"rows": 10, "created": 10, "updated": 0, "unchanged": 0}
    again = await import_faq(client, admin.headers, kb_id)
    assert again == {"rows": 10, "created": 0, "updated": 0, "unchanged": 10}

    book = Workbook()
    sheet = book.active
    sheet.append(["问题", "相似问题", "答案"])
    # An existing question with a new answer updates it; a new row adds one.
    sheet.append(["怎么重置密码？", "忘记密码了怎么办\n找回密码", "请在登录页点击“忘记密码”。"])
    sheet.append(["发票怎么开", "怎么开发票", "结算时填写发票抬头。"])
    data = io.BytesIO()
    book.save(data)
    r = await client.post(
        f"/kb/{kb_id}/curated/import",
        files={"file": ("faq.xlsx", data.getvalue(), "application/octet-stream")},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"rows": 2, "created": 1, "updated": 1, "unchanged": 0}
    answers = (await client.get(f"/kb/{kb_id}/curated", headers=admin.headers)).json()
    assert len(answers) == 11
    reset = next(a for a in answers if a["questions"][0] == "怎么重置密码？")
    assert reset["questions"] == ["怎么重置密码？", "忘记密码了怎么办", "找回密码"]
    assert reset["answer"] == "请在登录页点击“忘记密码”。"


async def test_bad_sheets_are_refused_with_a_reason(services, client, make_tenant):
    tenant = await make_tenant()
    admin = await tenant.user("ada", role="admin")
    kb_id = await create_kb(services, tenant.id)
    url = f"/kb/{kb_id}/curated/import"
    r = await client.post(
        url, files={"file": ("faq.txt", b"hello", "text/plain")}, headers=admin.headers
    )
    assert r.status_code == 415
    no_header = b"what,ever\nHow?,This.\n"
    r = await client.post(
        url, files={"file": ("faq.csv", no_header, "text/csv")}, headers=admin.headers
    )
    assert r.status_code == 400
    assert "question" in r.json()["error"]["message"]


async def test_only_admins_and_kb_write_keys_change_curated_answers(services, client, make_tenant):
    tenant = await make_tenant()
    admin = await tenant.user("ada", role="admin")
    agent = await tenant.user("agnes", role="agent")
    kb_id = await create_kb(services, tenant.id, read_roles=["agent"])
    base = f"/kb/{kb_id}/curated"
    body = {"questions": ["Do you gift wrap?"], "answer": "Yes, for ¥10."}
    assert (await client.post(base, json=body, headers=agent.headers)).status_code == 403
    reader = {"Authorization": f"Bearer {await tenant.api_key('kb:read')}"}
    assert (await client.post(base, json=body, headers=reader)).status_code == 403
    writer = {"Authorization": f"Bearer {await tenant.api_key('kb:write')}"}
    created = await client.post(base, json=body, headers=writer)
    assert created.status_code == 201
    answer_id = created.json()["id"]
    # Readers of the KB may list them; the agent may not delete.
    assert len((await client.get(base, headers=agent.headers)).json()) == 1
    assert (await client.delete(f"{base}/{answer_id}", headers=agent.headers)).status_code == 403
    # Another tenant's admin cannot tell the KB or the answer exist.
    other = await make_tenant("globex")
    boss = await other.user("boss", role="owner")
    assert (await client.get(base, headers=boss.headers)).status_code == 404
    assert (await client.post(base, json=body, headers=boss.headers)).status_code == 404
    assert (await client.delete(f"{base}/{answer_id}", headers=boss.headers)).status_code == 404
    assert (await client.get(base, headers=admin.headers)).json()[0]["answer"] == "Yes, for ¥10."


async def test_a_new_embedding_model_re_embeds_the_curated_questions(services, make_tenant):
    from sqlalchemy import select

    from warbler.store.models_kb import CuratedQuestion, KnowledgeBase

    tenant = await make_tenant()
    kb_id = await create_kb(services, tenant.id)
    principal = admin_of(tenant.id)
    await services.curated.create(
        principal,
        kb_id,
        questions=["Where is your showroom?", "展厅在哪"],
        answer="88 Huaihai Road.",
    )

    class Renamed:  # the same vectors under another model name, as after a model change
        name, dim = "renamed-model", services.embedder.dim
        embed_queries = staticmethod(services.embedder.embed_queries)
        embed_passages = staticmethod(services.embedder.embed_passages)

    services.curated.embedder = Renamed()
    # Until re-embedded, phrasings of the old model are embedded again in memory to match.
    hit = (await services.retriever.retrieve(principal, "Where's the showroom?")).curated
    assert hit is not None and hit.answer == "88 Huaihai Road."
    async with services.db.read() as s:
        before = await s.scalar(
            select(KnowledgeBase.content_version).where(KnowledgeBase.id == kb_id)
        )
    assert await services.curated.reembed(tenant.id, kb_id) == 2
    assert await services.curated.reembed(tenant.id, kb_id) == 0
    async with services.db.read() as s:
        names = set((await s.scalars(select(CuratedQuestion.embedder))).all())
        after = await s.scalar(
            select(KnowledgeBase.content_version).where(KnowledgeBase.id == kb_id)
        )
    assert names == {"renamed-model"} and after == before + 1
