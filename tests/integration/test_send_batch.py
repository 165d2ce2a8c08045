"""Group commit: concurrent sends share a transaction, and nothing about a send changes.

Each send still gets its own answer: its message, its idempotent duplicate, or its own error;
sequence numbers stay gap-free and in each sender's order; a send that breaks the batch's
transaction fails alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.conftest import group_of
from warbler.errors import NotFound
from warbler.im.messages import Draft


async def _principal(services: Any, actor: Any) -> Any:
    return await services.auth.authenticate(actor.token)


async def test_concurrent_sends_are_stored_together_each_answered_as_if_alone(
    client, services, make_tenant
):
    t = await make_tenant()
    users = [await t.user(f"u{i}") for i in range(4)]
    outsider = await t.user("outsider")
    conv = await group_of(client, users[0], *users[1:])
    other = await group_of(client, users[1], users[2], title="other")
    principals = [await _principal(services, u) for u in users]
    send = services.messages.send

    calls: list[Any] = []
    for n in range(10):
        for i, p in enumerate(principals):
            calls.append(send(p, conv, Draft(text=f"u{i} #{n} 消息", client_msg_id=f"{i}-{n}")))
    calls.append(send(principals[1], other, Draft(text="to the other group")))
    calls.append(send(await _principal(services, outsider), conv, Draft(text="not a member")))
    calls.append(send(principals[0], conv, Draft(text="reply", reply_to_id="01NOSUCHMESSAGE0000000000")))  # fmt: skip
    calls.append(send(principals[2], conv, Draft(text="twice", client_msg_id="dup")))
    calls.append(send(principals[2], conv, Draft(text="twice", client_msg_id="dup")))
    batches_before = services.messages.batcher.batches
    results = await asyncio.gather(*calls, return_exceptions=True)

    # Sharing happened: fewer transactions than sends.
    assert services.messages.batcher.batches - batches_before < len(calls) / 2

    ordinary = results[:40]
    assert all(isinstance(r, tuple) and r[1] is True for r in ordinary), ordinary
    seqs = sorted(r[0]["seq"] for r in ordinary)
    # Its own numbering: right after the group's creation notice (seq 1).
    assert isinstance(results[40], tuple) and results[40][0]["seq"] == 2
    assert isinstance(results[41], NotFound)
    assert isinstance(results[42], NotFound)
    first, second = results[43], results[44]
    assert isinstance(first, tuple) and isinstance(second, tuple)
    assert first[0]["id"] == second[0]["id"]
    assert sorted([first[1], second[1]]) == [False, True]

    # Gap-free, and each sender's messages in the order they were sent.
    all_seqs = sorted([*seqs, first[0]["seq"]])
    assert all_seqs == list(range(all_seqs[0], all_seqs[0] + 41))
    for i in range(4):
        mine = [r[0] for r in ordinary if r[0]["sender_id"] == users[i].id]
        assert [m["text"] for m in sorted(mine, key=lambda m: m["seq"])] == [
            f"u{i} #{n} 消息" for n in range(10)
        ]

    history = (
        await client.get(f"/conversations/{conv}/messages?limit=200", headers=users[3].headers)
    ).json()["messages"]
    assert [m["text"] for m in history].count("twice") == 1
    assert "not a member" not in [m["text"] for m in history]
    assert len(history) == 1 + 41  # the creation notice and the 41 stored sends
    # A retry after the batch returns the stored message (idempotency across batches).
    again = await send(principals[0], conv, Draft(text="u0 #3 消息", client_msg_id="0-3"))
    assert again[1] is False and again[0]["text"] == "u0 #3 消息"


async def test_a_send_that_breaks_the_batch_fails_alone(client, services, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    pa, pb = await _principal(services, ann), await _principal(services, bo)

    async def explode(s, after, conversation, message, sender) -> None:
        if message["text"] == "boom":
            raise RuntimeError("a hook failed for this message only")

    services.messages.send_hooks.append(explode)
    try:
        results = await asyncio.gather(
            *(services.messages.send(pa, conv, Draft(text=f"a{i}")) for i in range(5)),
            services.messages.send(pb, conv, Draft(text="boom")),
            *(services.messages.send(pb, conv, Draft(text=f"b{i}")) for i in range(5)),
            return_exceptions=True,
        )
    finally:
        services.messages.send_hooks.remove(explode)
    assert isinstance(results[5], RuntimeError)
    stored = [r[0] for r in results if isinstance(r, tuple)]
    assert len(stored) == 10
    seqs = sorted(m["seq"] for m in stored)
    assert seqs == list(range(seqs[0], seqs[0] + 10))  # the failed send left no gap
    history = (await client.get(f"/conversations/{conv}/messages", headers=bo.headers)).json()
    assert "boom" not in [m["text"] for m in history["messages"]]


async def test_sends_of_two_tenants_at_once_are_each_sealed_for_their_tenant(
    client, services, make_tenant
):
    acme, globex = await make_tenant("acme"), await make_tenant("globex")
    a1, a2 = await acme.user("a1"), await acme.user("a2")
    g1, g2 = await globex.user("g1"), await globex.user("g2")
    ca, cg = await group_of(client, a1, a2), await group_of(client, g1, g2)
    pa, pg = await _principal(services, a1), await _principal(services, g1)
    await asyncio.gather(
        *(services.messages.send(pa, ca, Draft(text=f"acme {i}")) for i in range(8)),
        *(services.messages.send(pg, cg, Draft(text=f"globex {i}")) for i in range(8)),
    )
    for actor, conv, name in ((a2, ca, "acme"), (g2, cg, "globex")):
        page = (await client.get(f"/conversations/{conv}/messages", headers=actor.headers)).json()
        texts = [m["text"] for m in page["messages"] if m["kind"] == "text"]
        assert texts == [f"{name} {i}" for i in range(8)]
        found = (await client.get("/search", params={"q": name}, headers=actor.headers)).json()
        assert len(found["results"]) == 8


async def test_a_lone_send_is_a_batch_of_one(client, services, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    before = (services.messages.batcher.batches, services.messages.batcher.batched_sends)
    r = await client.post(
        f"/conversations/{conv}/messages", json={"text": "hi"}, headers=ann.headers
    )
    assert r.status_code == 201
    after = (services.messages.batcher.batches, services.messages.batcher.batched_sends)
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


async def test_the_send_answer_is_byte_for_byte_the_message_as_read_back(client, make_tenant):
    """The send route encodes its answer directly (no response model on the hot path): it
    must read exactly as the same message does through the modelled GET route."""
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    for body in (
        {"text": "hello 你好", "client_msg_id": "x-1"},
        {"kind": "card", "data": {"title": "Card", "n": 1.5, "items": [1, None]}},
        {"text": "@bo look", "mentions": [bo.id]},
    ):
        sent = await client.post(f"/conversations/{conv}/messages", json=body, headers=ann.headers)
        assert sent.status_code == 201, sent.text
        got = await client.get(
            f"/conversations/{conv}/messages/{sent.json()['id']}", headers=ann.headers
        )
        assert sent.content == got.content
        assert sent.headers["content-type"] == got.headers["content-type"]


async def test_a_sender_that_stops_waiting_still_has_its_message_stored(
    client, services, make_tenant
):
    t = await make_tenant()
    ann, bob = await t.user("ann"), await t.user("bob")
    conv = await group_of(client, ann, bob)
    p = await _principal(services, ann)
    # One send holds the batch's transaction; the next two wait for the next batch.
    first = asyncio.create_task(services.messages.send(p, conv, Draft(text="first")))
    await asyncio.sleep(0)
    gone = asyncio.create_task(
        services.messages.send(p, conv, Draft(text="gone", client_msg_id="g"))
    )
    kept = asyncio.create_task(services.messages.send(p, conv, Draft(text="kept")))
    await asyncio.sleep(0)
    gone.cancel()  # the client went away while its send was queued
    await first
    kept_message, _ = await kept
    assert gone.cancelled()
    history = await client.get(f"/conversations/{conv}/messages", headers=ann.headers)
    texts = [m["text"] for m in history.json()["messages"]]
    assert texts[-3:] == ["first", "gone", "kept"]
    # Its retry finds it: the same message, not a second one.
    again, created = await services.messages.send(p, conv, Draft(text="gone", client_msg_id="g"))
    assert created is False and again["seq"] == kept_message["seq"] - 1
