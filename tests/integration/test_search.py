"""Search: Chinese words inside sentences, English words and prefixes, only what the
searcher may see, kept current by edits, recalls and deletes."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import group_of, send


async def search(client: httpx.AsyncClient, actor: Any, q: str, **params: Any) -> list[str]:
    r = await client.get("/search", params={"q": q, **params}, headers=actor.headers)
    assert r.status_code == 200, r.text
    return [hit["message"]["text"] for hit in r.json()["results"]]


async def test_search_finds_chinese_words_inside_sentences_and_english_words(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    await send(client, ann, conv, "我想申请退款")
    await send(client, bo, conv, "请问怎么修改收货地址？")
    await send(client, ann, conv, "Where is my parcel?")
    await send(client, bo, conv, "今天天气很好")
    assert await search(client, bo, "退款") == ["我想申请退款"]
    assert await search(client, bo, "申请") == ["我想申请退款"]
    assert await search(client, ann, "地址") == ["请问怎么修改收货地址？"]
    assert await search(client, ann, "parcel") == ["Where is my parcel?"]
    assert await search(client, ann, "PARCEL") == ["Where is my parcel?"]
    assert await search(client, ann, "香蕉") == []


async def test_results_show_where_the_words_are(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    await send(client, ann, conv, "我想申请退款")
    r = (await client.get("/search", params={"q": "退款"}, headers=bo.headers)).json()
    assert r["query_tokens"] == ["退款"]
    assert r["results"][0]["highlights"] == [[4, 6]]


async def test_every_word_of_a_multi_word_query_must_match(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    await send(client, ann, conv, "refund for order 42")
    await send(client, ann, conv, "order shipped")
    await send(client, ann, conv, "订单退款已经处理")
    await send(client, ann, conv, "订单已发货")
    assert await search(client, bo, "order refund") == ["refund for order 42"]
    assert sorted(await search(client, bo, "order")) == ["order shipped", "refund for order 42"]
    assert await search(client, bo, "订单 退款") == ["订单退款已经处理"]
    assert await search(client, bo, "订单退款") == ["订单退款已经处理"]
    assert await search(client, bo, "退款 shipped") == []


async def test_english_words_match_by_prefix(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    await send(client, ann, conv, "All refunds are processed on Fridays")
    assert await search(client, bo, "refund") == ["All refunds are processed on Fridays"]
    assert await search(client, bo, "process friday") == ["All refunds are processed on Fridays"]
    assert await search(client, bo, "refunding") == []


async def test_results_come_only_from_my_conversations_newest_first(client, make_tenant):
    t = await make_tenant()
    ann, bo, cy = await t.user("ann"), await t.user("bo"), await t.user("cy")
    ours = await group_of(client, ann, bo)
    theirs = await group_of(client, bo, cy)
    await send(client, ann, ours, "invoice one")
    await send(client, cy, theirs, "invoice secret")
    await send(client, bo, ours, "invoice two")
    assert await search(client, ann, "invoice") == ["invoice two", "invoice one"]
    assert await search(client, bo, "invoice") == ["invoice two", "invoice secret", "invoice one"]
    # Leaving a conversation takes its messages out of one's results.
    await client.delete(f"/conversations/{theirs}/members/{cy.id}", headers=cy.headers)
    assert await search(client, cy, "invoice") == []


async def test_results_page_with_limit_and_offset(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    for i in range(5):
        await send(client, ann, conv, f"ticket {i}")
    r = (await client.get("/search", params={"q": "ticket", "limit": 2}, headers=bo.headers)).json()
    assert [h["message"]["text"] for h in r["results"]] == ["ticket 4", "ticket 3"]
    assert r["has_more"] is True
    last = await search(client, bo, "ticket", limit=2, offset=4)
    assert last == ["ticket 0"]


async def test_deleted_for_me_and_recalled_messages_are_not_found(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    hidden = await send(client, ann, conv, "password is hunter2")
    recalled = await send(client, ann, conv, "wrong chat hunter2")
    r = await client.delete(f"/conversations/{conv}/messages/{hidden['id']}", headers=bo.headers)
    assert r.status_code == 204
    assert await search(client, bo, "hunter2") == ["wrong chat hunter2"]
    assert sorted(await search(client, ann, "hunter2")) == [
        "password is hunter2", "wrong chat hunter2",
    ]  # fmt: skip
    r = await client.post(
        f"/conversations/{conv}/messages/{recalled['id']}/recall", headers=ann.headers
    )
    assert r.status_code == 200
    assert await search(client, bo, "hunter2") == []
    assert await search(client, ann, "hunter2") == ["password is hunter2"]


async def test_an_edited_message_is_found_by_its_new_words_only(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    msg = await send(client, ann, conv, "meeting on monday 周一开会")
    r = await client.patch(f"/conversations/{conv}/messages/{msg['id']}",
                           json={"text": "meeting on tuesday 周二开会"}, headers=ann.headers)  # fmt: skip
    assert r.status_code == 200
    assert await search(client, bo, "monday") == []
    assert await search(client, bo, "周一") == []
    assert await search(client, bo, "tuesday") == ["meeting on tuesday 周二开会"]
    assert await search(client, bo, "周二") == ["meeting on tuesday 周二开会"]


async def test_search_can_be_scoped_to_one_conversation(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    one = await group_of(client, ann, bo, title="one")
    two = await group_of(client, ann, bo, title="two")
    await send(client, ann, one, "deadline one")
    await send(client, ann, two, "deadline two")
    assert await search(client, bo, "deadline", conversation_id=one) == ["deadline one"]
    assert await search(client, bo, "deadline", conversation_id=two) == ["deadline two"]
    cy = await t.user("cy")
    assert await search(client, cy, "deadline", conversation_id=one) == []


async def test_a_query_with_no_words_is_400(client, make_tenant):
    t = await make_tenant()
    ann = await t.user("ann")
    for q in ("?!", "，。！？", "   "):
        r = await client.get("/search", params={"q": q}, headers=ann.headers)
        assert r.status_code == 400, (q, r.text)
        assert r.json()["error"]["code"] == "invalid_request"
    r = await client.get("/search", params={"q": ""}, headers=ann.headers)
    assert r.status_code == 422
