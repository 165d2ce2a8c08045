"""Support reports: first-response and resolution times, SLA per team targets, CSAT, reasons,
per agent and per team, checked against figures worked out by hand over tickets with known
timestamps (written straight into the tickets)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.integration.support_world import support_world
from warbler.clock import utcnow
from warbler.ids import new_id
from warbler.security.encryption import tenant_scope
from warbler.store.models_support import SupportTicket

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WINDOW = {"since": "2026-03-01T00:00:00Z", "until": "2026-03-31T00:00:00Z"}


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


async def _ticket(services, w, conv: str, *, team, reason: str, queued: datetime,
                  assignee=None, first: float | None = None, resolved: float | None = None,
                  csat: int | None = None, dues: tuple[float, float] | None = None) -> str:  # fmt: skip
    """A ticket of ``conv`` as it would stand: times in seconds after ``queued``."""
    state = "resolved" if resolved is not None else ("assigned" if assignee else "waiting")
    row = SupportTicket(
        id=new_id(), tenant_id=w.tenant_id, conversation_id=conv,
        team_id=team["id"] if team else None, state=state, reason=reason, reason_detail={},
        assignee_id=assignee.id if assignee else None, queued_at=queued,
        assigned_at=queued if assignee else None,
        first_response_at=queued + _s(first) if first is not None else None,
        resolved_at=queued + _s(resolved) if resolved is not None else None,
        resolved_by=assignee.id if resolved is not None and assignee else None,
        sla_first_response_due=queued + _s(dues[0]) if dues else None,
        sla_resolution_due=queued + _s(dues[1]) if dues else None,
        csat_score=csat, csat_at=queued + _s(resolved or 0) if csat else None,
        created_at=queued, updated_at=queued,
    )  # fmt: skip
    async with tenant_scope(w.tenant_id), services.db.write() as s:
        s.add(row)
    return row.id


async def _report(client, actor, status: int = 200, **params) -> dict:
    r = await client.get("/support/reports", params=params, headers=actor.headers)
    assert r.status_code == status, r.text
    return dict(r.json())


async def _world_with_tickets(services, make_tenant):
    w = await support_world(services, make_tenant)
    amy, bob = await w.agent("amy", status="offline"), await w.agent("bob", status="offline")
    alpha = await services.support.teams.create(
        w.admin, {"name": "Alpha", "sla_first_response_seconds": 60,
                  "sla_resolution_seconds": 3600},
    )  # fmt: skip
    beta = await services.support.teams.create(
        w.admin, {"name": "Beta", "sla_first_response_seconds": 300}
    )
    convs = [(await w.visitor(f"v{i}"))[1] for i in range(7)]
    hour = timedelta(hours=1)
    # 1: Alpha, amy: answered in 30 s, resolved in 10 min (due times stored), rated 5.
    await _ticket(services, w, convs[0], team=alpha, reason="user_requested", queued=T0,
                  assignee=amy, first=30, resolved=600, csat=5, dues=(60, 3600))  # fmt: skip
    # 2: Alpha, amy: answered in 90 s (late), resolved in 2 h (late), rated 3.
    await _ticket(services, w, convs[1], team=alpha, reason="no_answer", queued=T0 + hour,
                  assignee=amy, first=90, resolved=7200, csat=3)  # fmt: skip
    # 3: Beta, bob: answered in 2 min, resolved in 30 min (Beta has no resolution target).
    await _ticket(services, w, convs[2], team=beta, reason="user_requested",
                  queued=T0 + 2 * hour, assignee=bob, first=120, resolved=1800, csat=4)  # fmt: skip
    # 4: Beta, bob: never answered, still open: the first response is overdue.
    await _ticket(services, w, convs[3], team=beta, reason="negative_sentiment",
                  queued=T0 + 3 * hour, assignee=bob)  # fmt: skip
    # 5: Alpha, still waiting: both due times passed.
    await _ticket(services, w, convs[4], team=alpha, reason="user_requested",
                  queued=T0 + 4 * hour)  # fmt: skip
    # Outside the window, before and after (until is exclusive): not counted.
    await _ticket(services, w, convs[5], team=alpha, reason="bot_error",
                  queued=datetime(2026, 2, 20, tzinfo=UTC), assignee=amy, first=1, resolved=2,
                  csat=1)  # fmt: skip
    await _ticket(services, w, convs[6], team=None, reason="bot_error",
                  queued=datetime(2026, 3, 31, tzinfo=UTC), assignee=amy, first=1, resolved=2,
                  csat=1)  # fmt: skip
    return w, amy, bob, alpha, beta


async def test_the_report_figures_match_the_hand_computed_ones(client, services, make_tenant):
    w, amy, bob, alpha, beta = await _world_with_tickets(services, make_tenant)
    # Another tenant's tickets in the same window change nothing.
    other = await support_world(services, make_tenant, slug="other")
    _, other_conv = await other.visitor("x")
    await _ticket(services, other, other_conv, team=None, reason="other", queued=T0,
                  first=5, resolved=10, csat=1)  # fmt: skip

    report = await _report(client, amy, **WINDOW)
    assert report["since"] == "2026-03-01T00:00:00Z" and report["until"] == "2026-03-31T00:00:00Z"
    assert (report["tickets"], report["resolved"]) == (5, 3)
    # First responses 30, 90, 120 s; resolutions 600, 7200, 1800 s (p90: nearest rank).
    assert report["first_response_seconds"] == {"median": 90.0, "average": 80.0, "p90": 120.0,
                                                "count": 3}  # fmt: skip
    assert report["resolution_seconds"] == {"median": 1800.0, "average": 3200.0, "p90": 7200.0,
                                            "count": 3}  # fmt: skip
    assert report["csat"] == {"average": 4.0, "count": 3,
                              "distribution": {"1": 0, "2": 0, "3": 1, "4": 1, "5": 1}}  # fmt: skip
    # First response: met 1 (30<=60), 3 (120<=300); breached 2 (90>60), 4 and 5 (overdue).
    # Resolution: met 1; breached 2 (7200>3600) and 5 (overdue); Beta has no target.
    assert report["sla"] == {"first_response_met": 2, "first_response_breached": 3,
                             "resolution_met": 1, "resolution_breached": 2}  # fmt: skip
    assert report["reasons"] == {"negative_sentiment": 1, "no_answer": 1, "user_requested": 3}
    assert report["agents"] == [
        {"agent_id": amy.id, "display_name": "amy", "tickets": 2, "resolved": 2,
         "first_response_median": 60.0, "resolution_median": 3900.0, "csat_average": 4.0,
         "csat_count": 2},
        {"agent_id": bob.id, "display_name": "bob", "tickets": 2, "resolved": 1,
         "first_response_median": 120.0, "resolution_median": 1800.0, "csat_average": 4.0,
         "csat_count": 1},
    ]  # fmt: skip
    teams = {t["name"]: t for t in report["teams"]}
    assert [t["name"] for t in report["teams"]] == ["Alpha", "Beta"]
    a = teams["Alpha"]
    assert (a["team_id"], a["tickets"], a["resolved"]) == (alpha["id"], 3, 2)
    assert a["first_response_seconds"] == {"median": 60.0, "average": 60.0, "p90": 90.0,
                                           "count": 2}  # fmt: skip
    assert a["resolution_seconds"]["median"] == 3900.0 and a["csat"]["average"] == 4.0
    assert a["sla"] == {"first_response_met": 1, "first_response_breached": 2,
                        "resolution_met": 1, "resolution_breached": 2}  # fmt: skip
    b = teams["Beta"]
    assert (b["team_id"], b["tickets"], b["resolved"]) == (beta["id"], 2, 1)
    assert b["sla"] == {"first_response_met": 1, "first_response_breached": 1,
                        "resolution_met": 0, "resolution_breached": 0}  # fmt: skip
    assert b["csat"]["distribution"]["4"] == 1

    # One team: its tickets and agents only.
    only_beta = await _report(client, w.owner, team_id=beta["id"], **WINDOW)
    assert (only_beta["tickets"], only_beta["team_id"]) == (2, beta["id"])
    assert [t["name"] for t in only_beta["teams"]] == ["Beta"]
    assert [x["agent_id"] for x in only_beta["agents"]] == [bob.id]
    assert only_beta["reasons"] == {"negative_sentiment": 1, "user_requested": 1}
    # The default window is the last 30 days: none of these March tickets.
    recent = await _report(client, amy)
    assert recent["tickets"] == 0 and recent["first_response_seconds"]["median"] is None
    assert recent["csat"]["average"] is None and recent["agents"] == []
    until = datetime.fromisoformat(recent["until"].replace("Z", "+00:00"))
    since = datetime.fromisoformat(recent["since"].replace("Z", "+00:00"))
    assert until - since == timedelta(days=30) and abs(until - utcnow()) < timedelta(minutes=5)


async def test_a_real_ticket_shows_its_first_response_time_and_rating(
    client, services, make_tenant
):
    w = await support_world(services, make_tenant)
    vera, conv = await w.visitor("vera")
    await w.say(client, vera, conv, "I want to talk to a human")
    amy = await w.agent("amy")
    await w.say(client, amy, conv, "Hello, how can I help?")
    ticket = await w.ticket(conv)
    r = await client.post(f"/support/tickets/{ticket.id}/resolve", headers=amy.headers)
    assert r.status_code == 200
    r = await client.post(f"/support/tickets/{ticket.id}/csat", json={"score": 5},
                          headers=vera.headers)  # fmt: skip
    assert r.status_code == 201
    ticket = await w.ticket(conv)
    assert ticket.first_response_at is not None and ticket.resolved_at is not None
    report = await _report(client, amy)
    first = round((ticket.first_response_at - ticket.queued_at).total_seconds(), 1)
    assert report["tickets"] == 1 and report["first_response_seconds"]["median"] == first
    assert report["csat"] == {"average": 5.0, "count": 1,
                              "distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}}  # fmt: skip
    assert report["reasons"] == {"user_requested": 1}
    assert [a["agent_id"] for a in report["agents"]] == [amy.id]
    assert report["agents"][0]["csat_average"] == 5.0
    # The tenant has no team: the ticket is in the bucket of no team.
    [no_team] = report["teams"]
    assert (no_team["team_id"], no_team["name"], no_team["tickets"]) == (None, None, 1)


async def test_report_requests_are_checked(client, services, make_tenant):
    w = await support_world(services, make_tenant)
    amy = await w.agent("amy")
    vera, _ = await w.visitor("vera")
    member = await w.tenant.user("mona")
    for outsider in (vera, member):
        assert (await _report(client, outsider, 403))["error"]["code"] == "forbidden"
    bad = [
        {"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"},
        {"since": "2024-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        {"since": "2026-03-01T00:00:00"},  # no time zone
    ]
    for params in bad:
        assert (await _report(client, amy, 400, **params))["error"]["code"] == "invalid_request"
    assert (await _report(client, amy, 422, since="yesterday"))["error"]["code"] == (
        "invalid_request"
    )
    missing = await _report(client, amy, 404, team_id="01HZZZZZZZZZZZZZZZZZZZZZZZ")
    assert missing["error"]["code"] == "not_found"
    key = {"Authorization": f"Bearer {await w.tenant.api_key('support:read')}"}
    r = await client.get("/support/reports", headers=key)
    assert r.status_code == 200 and r.json()["tickets"] == 0
