"""Sending, history, idempotency, edit, recall and delete-for-me through the REST API."""

from __future__ import annotations

from tests.conftest import group_of, send


async def test_same_client_msg_id_twice_stores_one_message_and_returns_it_both_times(
    client, make_tenant
):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    body = {"text": "once only", "client_msg_id": "c-1"}
    first = await client.post(f"/conversations/{conv}/messages", json=body, headers=ann.headers)
    again = await client.post(f"/conversations/{conv}/messages", json=body, headers=ann.headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    history = (await client.get(f"/conversations/{conv}/messages", headers=bo.headers)).json()
    assert [m["text"] for m in history["messages"]].count("once only") == 1


async def test_sequence_numbers_are_gap_free_and_history_pages_back(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    sent = [await send(client, ann, conv, f"m{i}") for i in range(25)]
    seqs = [m["seq"] for m in sent]
    assert seqs == list(range(seqs[0], seqs[0] + 25))
    page = (await client.get(f"/conversations/{conv}/messages?limit=10", headers=bo.headers)).json()
    assert [m["text"] for m in page["messages"]] == [f"m{i}" for i in range(15, 25)]
    assert page["has_more"]
    older = (
        await client.get(
            f"/conversations/{conv}/messages?limit=10&before_seq={page['messages'][0]['seq']}",
            headers=bo.headers,
        )
    ).json()
    assert [m["text"] for m in older["messages"]] == [f"m{i}" for i in range(5, 15)]
