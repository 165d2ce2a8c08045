"""Knowledge-base retrieval: Chinese and English, across languages, with citations, only from
the KBs the asker may read, and "no grounded answer" rather than noise."""

from __future__ import annotations

from sqlalchemy import delete, func, select, text

from tests.integration.kb_seed import add_document, create_kb, demo_kb
from warbler.im.principal import Principal
from warbler.kb.retrieve import Retriever
from warbler.store.models_kb import KbChunk, KnowledgeBase


def longest_common_substring(a: str, b: str) -> int:
    best = 0
    for i in range(len(a)):
        for j in range(i + best + 1, len(a) + 1):
            if a[i:j] not in b:
                break
            best = j - i
    return best


# Enough of the demo help centre for every case below, at half the embedding time: English
# pages, Chinese pages, and topics documented in only one language.
PAGES = (
    "gift-cards.md", "warranty.md", "membership-pricing.md", "international-orders.md",
    "zh-trade-in.md", "zh-invoices.md", "zh-returns-refunds.md", "zh-account.md",
)  # fmt: skip


def admin_of(tenant_id: str) -> Principal:
    return Principal(tenant_id=tenant_id, api_key_id="key", scopes=frozenset({"admin"}))


async def test_chinese_questions_find_chinese_passages_that_share_no_words(services, make_tenant):
    tenant = await make_tenant()
    _, docs = await demo_kb(services, tenant.id, *PAGES)
    asked = {
        # question: (source, heading of the passage it must find first)
        "旧家电可以折价吗": ("zh-trade-in.md", "活动说明"),
        "不用的老电视能换新的吗": ("zh-trade-in.md", "活动说明"),
        "给单位报销要专票，怎么弄": ("zh-invoices.md", "增值税专用发票"),
        "报销凭证上名字写错了怎么办": ("zh-invoices.md", "修改或补开发票"),
    }
    for question, (source, heading) in asked.items():
        result = await services.retriever.retrieve(admin_of(tenant.id), question)
        assert result.grounded, question
        top = result.passages[0]
        assert top.document_id == docs[source], question
        assert top.citation.title_path.endswith(heading), (question, top.citation.title_path)
        # The point of the test: nothing longer than two characters in common, so keyword
        # search alone could not have found it.
        assert longest_common_substring(question, top.text) <= 2, (question, top.text)
        assert longest_common_substring(question, top.citation.title_path) <= 2


async def test_english_questions_find_english_passages(services, make_tenant):
    tenant = await make_tenant()
    _, docs = await demo_kb(services, tenant.id, *PAGES)
    asked = {
        "Is there a discount for students?": ("membership-pricing.md", "Student discount"),
        "Who pays customs fees on orders shipped abroad?": (
            "international-orders.md", "Customs duties and taxes",
        ),
    }  # fmt: skip
    for question, (source, heading) in asked.items():
        result = await services.retriever.retrieve(admin_of(tenant.id), question)
        assert result.grounded, question
        assert result.passages[0].document_id == docs[source]
        assert result.passages[0].citation.title_path.endswith(heading)


async def test_a_chinese_question_finds_an_english_passage(services, make_tenant):
    tenant = await make_tenant()
    _, docs = await demo_kb(services, tenant.id, *PAGES)
    # Gift cards are documented only in English; the KB has Chinese pages on other topics
    # (one of which even mentions 礼品卡 in passing).
    result = await services.retriever.retrieve(admin_of(tenant.id), "礼品卡过了三年还能用吗")
    assert result.grounded
    top = result.passages[0]
    assert top.document_id == docs["gift-cards.md"]
    assert top.citation.title_path == "Gift cards > Expiry and balance"


async def test_an_unrelated_question_gets_no_grounded_answer(services, make_tenant):
    tenant = await make_tenant()
    await demo_kb(services, tenant.id, *PAGES)
    for question in ("How do I bake sourdough bread?", "怎么做红烧肉", "给我推荐一部电影"):
        result = await services.retriever.retrieve(admin_of(tenant.id), question)
        assert not result.grounded, question
        assert result.passages == (), question


async def test_passages_cite_their_document(services, make_tenant):
    tenant = await make_tenant()
    kb_id = await create_kb(services, tenant.id)
    linked = await add_document(
        services, tenant.id, kb_id, "gift-cards.md",
        (await _demo_text("gift-cards.md")), link="https://help.example/gift-cards",
    )  # fmt: skip
    plain = await add_document(
        services, tenant.id, kb_id, "warranty.md", await _demo_text("warranty.md")
    )
    principal = admin_of(tenant.id)
    gift = (await services.retriever.retrieve(principal, "Can I pay with two gift cards?")).passages
    assert gift[0].citation.link == "https://help.example/gift-cards"
    assert gift[0].citation.title == "Gift cards"
    assert gift[0].citation.document_id == linked and gift[0].citation.chunk_id == gift[0].chunk_id
    repair = (
        await services.retriever.retrieve(principal, "How much is a repair diagnosis?")
    ).passages
    assert repair[0].citation.link == f"/api/v1/kb/{kb_id}/documents/{plain}"
    assert repair[0].citation.title_path == "Warranty and repairs > Repairs after the warranty"
    assert repair[0].citation.kb_id == kb_id


async def _demo_text(name: str) -> str:
    from tests.integration.kb_seed import DEMO_DOCS

    return (DEMO_DOCS / name).read_text()


async def test_every_node_sees_new_and_removed_chunks_on_its_next_question(services, make_tenant):
    tenant = await make_tenant()
    kb_id, docs = await demo_kb(services, tenant.id, "warranty.md", "zh-invoices.md")
    principal = admin_of(tenant.id)
    # A second node: its own retriever and in-memory indexes over the same database.
    other = Retriever(services.db, services.embedder, services.curated, services.settings)
    for node in (services.retriever, other):
        assert not (await node.retrieve(principal, "旧家电可以折价吗")).grounded
    await add_document(
        services, tenant.id, kb_id, "zh-trade-in.md", await _demo_text("zh-trade-in.md")
    )
    for node in (services.retriever, other):
        found = await node.retrieve(principal, "旧家电可以折价吗")
        assert found.grounded and found.passages[0].citation.title == "以旧换新"
    # Removing a document's chunks (and bumping the version, as ingestion does) removes it.
    async with services.db.write() as s:
        await s.execute(delete(KbChunk).where(KbChunk.document_id == docs["zh-invoices.md"]))
        kb = await s.scalar(select(KnowledgeBase).where(KnowledgeBase.id == kb_id))
        kb.content_version += 1
    for node in (services.retriever, other):
        gone = await node.retrieve(principal, "给单位报销要专票，怎么弄")
        assert all(p.document_id != docs["zh-invoices.md"] for p in gone.passages)


async def test_retrieval_searches_only_the_kbs_asked_for(services, make_tenant):
    tenant = await make_tenant()
    warranty_kb, _ = await demo_kb(services, tenant.id, "warranty.md")
    gift_kb = await create_kb(services, tenant.id, "gifts")
    await add_document(
        services, tenant.id, gift_kb, "gift-cards.md", await _demo_text("gift-cards.md")
    )
    principal = admin_of(tenant.id)
    both = await services.retriever.retrieve(principal, "How long is a gift card valid?")
    assert set(both.searched_kb_ids) == {warranty_kb, gift_kb}
    assert both.passages[0].kb_id == gift_kb
    only = await services.retriever.retrieve(
        principal, "How long is a gift card valid?", kb_ids=[warranty_kb]
    )
    assert only.searched_kb_ids == (warranty_kb,)
    assert all(p.kb_id == warranty_kb for p in only.passages)


async def test_without_read_permission_the_api_returns_none_of_a_kbs_passages(
    services, client, make_tenant
):
    tenant = await make_tenant()
    agent = await tenant.user("agnes", role="agent")
    member = await tenant.user("mo", role="member")
    visitor = await tenant.user("vi", role="visitor", kind="visitor")
    kb_id, _ = await demo_kb(services, tenant.id, "warranty.md", read_roles=["agent"])
    question = {"query": "What does the warranty cover?"}

    async def search(headers: dict[str, str], **extra: object) -> dict:
        r = await client.post("/kb/search", json={**question, **extra}, headers=headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    allowed = await search(agent.headers)
    assert allowed["grounded"] and allowed["passages"][0]["kb_id"] == kb_id
    assert allowed["passages"][0]["citation"]["title"] == "Warranty and repairs"
    for actor in (member, visitor):
        for extra in ({}, {"kb_ids": [kb_id]}):
            denied = await search(actor.headers, **extra)
            assert denied["passages"] == [] and not denied["grounded"]
            assert denied["searched_kb_ids"] == []
    # An API key reads KBs only with the kb:read scope.
    no_scope = {"Authorization": f"Bearer {await tenant.api_key('users:read')}"}
    assert (await search(no_scope))["passages"] == []
    reader = {"Authorization": f"Bearer {await tenant.api_key('kb:read')}"}
    assert (await search(reader))["passages"][0]["kb_id"] == kb_id
    # Another tenant's owner never sees it, even naming its id.
    other = await make_tenant("globex")
    boss = await other.user("boss", role="owner")
    assert (await search(boss.headers, kb_ids=[kb_id]))["passages"] == []


async def test_the_search_endpoint_validates_its_input(client, make_tenant):
    tenant = await make_tenant()
    agent = await tenant.user("agnes", role="agent")
    for body in ({"query": ""}, {"query": "x", "top_k": 0}, {"query": "x", "nope": 1}):
        r = await client.post("/kb/search", json=body, headers=agent.headers)
        assert r.status_code == 422, body
        assert r.json()["error"]["code"] == "invalid_request"
    r = await client.post("/kb/search", json={"query": "   "}, headers=agent.headers)
    assert r.status_code == 400
    assert r.json()["error"]["details"]["field"] == "query"


async def test_vector_search_runs_in_postgresql_when_it_has_pgvector(services, make_tenant):
    tenant = await make_tenant()
    kb_id, _ = await demo_kb(services, tenant.id, "warranty.md")
    assert (
        await services.retriever.retrieve(admin_of(tenant.id), "What does the warranty cover?")
    ).grounded
    index = await services.retriever.vector_index()
    if services.db.is_sqlite:
        assert index.name == "memory"
        return
    async with services.db.read() as s:
        available = await s.scalar(
            text("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")
        )
        if not available:  # Debian's PostgreSQL 15, for one: exact search in memory
            assert index.name == "memory"
            return
        assert index.name == "pgvector"
        chunks = await s.scalar(select(func.count()).where(KbChunk.kb_id == kb_id))
        copied = await s.scalar(
            text("SELECT count(*) FROM kb_chunk_vectors_384 WHERE kb_id = :kb"), {"kb": kb_id}
        )
    assert copied == chunks == 3
