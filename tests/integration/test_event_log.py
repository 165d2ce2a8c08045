"""The resume log over REST: replay after a cursor, visibility, pruning and resync."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from tests.conftest import group_of, send
from warbler.clock import utcnow
from warbler.im.retention import EventPruner
from warbler.store.models import Event


async def test_events_after_a_cursor_come_in_order_and_only_from_my_conversations(
    client, make_tenant
):
    t = await make_tenant()
    ann, bo, cy = await t.user("ann"), await t.user("bo"), await t.user("cy")
    start = (await client.get("/events", headers=bo.headers)).json()["cursor"]
    mine = await group_of(client, ann, bo)
    other = await group_of(client, ann, cy)
    for i in range(5):
        await send(client, ann, mine, f"to bo {i}")
        await send(client, ann, other, f"not for bo {i}")
    page = (await client.get(f"/events?cursor={start}", headers=bo.headers)).json()
    texts = [
        e["data"]["message"]["text"]
        for e in page["events"]
        if e["event"] == "message.new" and e["data"]["message"]["kind"] == "text"
    ]
    assert texts == [f"to bo {i}" for i in range(5)]
    ids = [e["id"] for e in page["events"]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(e["conversation_id"] == mine for e in page["events"])
    again = (await client.get(f"/events?cursor={page['cursor']}", headers=bo.headers)).json()
    assert again["events"] == []


async def test_a_cursor_older_than_the_pruned_log_must_resync(client, make_tenant, services):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    for i in range(3):
        await send(client, ann, conv, f"old {i}")
    async with services.db.write() as s:
        await s.execute(update(Event).values(created_at=utcnow() - timedelta(days=40)))
    await send(client, ann, conv, "new")
    pruned = await EventPruner(services.db, retention_days=30).prune()
    assert pruned >= 4
    r = await client.get("/events?cursor=0", headers=bo.headers)
    assert r.status_code == 410 and r.json()["error"]["code"] == "gone"
    fresh = r.json()["error"]["details"]["cursor"]
    assert (await client.get(f"/events?cursor={fresh}", headers=bo.headers)).status_code == 200
    history = (await client.get(f"/conversations/{conv}/messages", headers=bo.headers)).json()
    assert [m["text"] for m in history["messages"] if m["kind"] == "text"] == [
        "old 0", "old 1", "old 2", "new",
    ]  # fmt: skip
