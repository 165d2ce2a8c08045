"""Support reports: volumes, first-response and resolution times, SLA, CSAT, reasons, per
agent and per team, over the tickets queued in a window.

Definitions (docs/support.md, "CSAT, SLA and reports"):
- a ticket is in the report when it was queued in ``[since, until)``;
- first-response time = ``first_response_at - queued_at`` (the first agent message after the
  ticket was queued); resolution time = ``resolved_at - queued_at``;
- SLA: a ticket's due times are those stored when it was queued (from its team's targets),
  or, when none was stored, ``queued_at`` + its team's current target; a due time is met when the response/resolution came at or before it, breached when it came later
  or has not come and the due time has passed; tickets with no target, or not yet due,
  count in neither;
- median, average and p90 (nearest rank) in seconds, ``null`` when nothing was measured.
The figures are computed in Python over at most ``MAX_TICKETS`` tickets (one query of a few
columns, the same on SQLite and PostgreSQL); a wider window is refused.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from warbler.clock import utcnow
from warbler.errors import InvalidRequest
from warbler.im.principal import Principal
from warbler.store.db import Database
from warbler.store.models import User
from warbler.store.models_support import SupportTeam, SupportTicket
from warbler.support.desk.access import load_team, require_agent

DEFAULT_DAYS = 30
MAX_DAYS = 366
MAX_TICKETS = 100_000


@dataclass(frozen=True, slots=True)
class Row:
    """What a report reads of one ticket."""

    team_id: str | None
    state: str
    reason: str
    assignee_id: str | None
    queued_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    sla_first_response_due: datetime | None
    sla_resolution_due: datetime | None
    csat_score: int | None

    @property
    def first_response_seconds(self) -> float | None:
        if self.first_response_at is None:
            return None
        return max(0.0, (self.first_response_at - self.queued_at).total_seconds())

    @property
    def resolution_seconds(self) -> float | None:
        if self.resolved_at is None:
            return None
        return max(0.0, (self.resolved_at - self.queued_at).total_seconds())


# -- the figures (pure functions) ---------------------------------------------------------


def durations(values: Iterable[float | None]) -> dict[str, Any]:
    """{median, average, p90, count} of the measured values (None: not measured)."""
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return {"median": None, "average": None, "p90": None, "count": 0}
    p90 = xs[math.ceil(0.9 * len(xs)) - 1]
    return {
        "median": round(statistics.median(xs), 1),
        "average": round(statistics.fmean(xs), 1),
        "p90": round(p90, 1),
        "count": len(xs),
    }


def csat(rows: Sequence[Row]) -> dict[str, Any]:
    scores = [r.csat_score for r in rows if r.csat_score is not None]
    counts = Counter(scores)
    return {
        "average": round(statistics.fmean(scores), 2) if scores else None,
        "count": len(scores),
        "distribution": {str(n): counts.get(n, 0) for n in range(1, 6)},
    }


def _judge(done: datetime | None, due: datetime | None, now: datetime) -> str | None:
    """Met, breached, or None (no target, or not due yet)."""
    if due is None:
        return None
    if done is not None:
        return "met" if done <= due else "breached"
    return "breached" if now > due else None


def sla(rows: Sequence[Row], now: datetime) -> dict[str, int]:
    first = Counter(_judge(r.first_response_at, r.sla_first_response_due, now) for r in rows)
    resolution = Counter(_judge(r.resolved_at, r.sla_resolution_due, now) for r in rows)
    return {
        "first_response_met": first["met"],
        "first_response_breached": first["breached"],
        "resolution_met": resolution["met"],
        "resolution_breached": resolution["breached"],
    }


def summary(rows: Sequence[Row], now: datetime) -> dict[str, Any]:
    return {
        "tickets": len(rows),
        "resolved": sum(1 for r in rows if r.resolved_at is not None),
        "first_response_seconds": durations(r.first_response_seconds for r in rows),
        "resolution_seconds": durations(r.resolution_seconds for r in rows),
        "csat": csat(rows),
        "sla": sla(rows, now),
    }


def agent_figures(rows: Sequence[Row], names: dict[str, str]) -> list[dict[str, Any]]:
    """Per assignee (the agent holding the ticket last), busiest first."""
    by_agent: dict[str, list[Row]] = {}
    for r in rows:
        if r.assignee_id is not None:
            by_agent.setdefault(r.assignee_id, []).append(r)
    out = []
    for agent_id, mine in by_agent.items():
        rated = csat(mine)
        out.append(
            {
                "agent_id": agent_id,
                "display_name": names.get(agent_id),
                "tickets": len(mine),
                "resolved": sum(1 for r in mine if r.resolved_at is not None),
                "first_response_median": durations(r.first_response_seconds for r in mine)[
                    "median"
                ],
                "resolution_median": durations(r.resolution_seconds for r in mine)["median"],
                "csat_average": rated["average"],
                "csat_count": rated["count"],
            }
        )
    out.sort(key=lambda a: (-a["tickets"], a["display_name"] or "", a["agent_id"]))
    return out


def team_figures(
    rows: Sequence[Row], teams: Sequence[tuple[str, str]], now: datetime
) -> list[dict[str, Any]]:
    """Per team, in the order given ((id, name) pairs), then tickets with no team."""
    by_team: dict[str | None, list[Row]] = {}
    for r in rows:
        by_team.setdefault(r.team_id, []).append(r)
    known = {team_id for team_id, _ in teams}
    out = [
        {"team_id": team_id, "name": name, **summary(by_team.get(team_id, []), now)}
        for team_id, name in teams
    ]
    # Tickets of no team, or of a team deleted since, in one bucket with no name.
    rest = [r for r in rows if r.team_id is None or r.team_id not in known]
    if rest:
        out.append({"team_id": None, "name": None, **summary(rest, now)})
    return out


def report(
    rows: Sequence[Row], teams: Sequence[tuple[str, str]], names: dict[str, str], now: datetime
) -> dict[str, Any]:
    figures = summary(rows, now)
    return {
        **figures,
        "reasons": dict(sorted(Counter(r.reason for r in rows).items())),
        "agents": agent_figures(rows, names),
        "teams": team_figures(rows, teams, now),
    }


# -- the service ----------------------------------------------------------------------------


def _with_targets(row: Row, targets: dict[str, tuple[int | None, int | None]]) -> Row:
    """The row with due times from its team's targets where none were stored."""
    first, resolution = targets.get(row.team_id or "", (None, None))
    first_due, resolution_due = row.sla_first_response_due, row.sla_resolution_due
    if first_due is None and first:
        first_due = row.queued_at + timedelta(seconds=first)
    if resolution_due is None and resolution:
        resolution_due = row.queued_at + timedelta(seconds=resolution)
    return replace(row, sla_first_response_due=first_due, sla_resolution_due=resolution_due)


def window(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """[since, until): default the last ``DEFAULT_DAYS`` days; at most ``MAX_DAYS`` wide."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidRequest(
                f"{name} needs a time zone (e.g. 2026-01-31T00:00:00Z)", details={"field": name}
            )
    end = until or now
    start = since or end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise InvalidRequest("since must be before until", details={"field": "since"})
    if end - start > timedelta(days=MAX_DAYS):
        raise InvalidRequest(
            f"a report covers at most {MAX_DAYS} days", details={"limit_days": MAX_DAYS}
        )
    return start, end


class Reports:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(
        self,
        principal: Principal,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        team_id: str | None = None,
    ) -> dict[str, Any]:
        require_agent(principal, write=False)
        now = utcnow()
        start, end = window(since, until, now)
        t = principal.tenant_id
        where = [
            SupportTicket.tenant_id == t,
            SupportTicket.queued_at >= start,
            SupportTicket.queued_at < end,
        ]
        async with self.db.read() as s:
            if team_id:
                await load_team(s, t, team_id)
                where.append(SupportTicket.team_id == team_id)
            all_teams = (
                await s.scalars(
                    select(SupportTeam).where(SupportTeam.tenant_id == t).order_by(SupportTeam.name)
                )
            ).all()
            targets = {
                team.id: (team.sla_first_response_seconds, team.sla_resolution_seconds)
                for team in all_teams
            }
            teams = [(team.id, team.name) for team in all_teams if team_id in (None, team.id)]
            count = await s.scalar(select(func.count()).select_from(SupportTicket).where(*where))
            if (count or 0) > MAX_TICKETS:
                raise InvalidRequest(
                    f"more than {MAX_TICKETS} tickets in this window: narrow since/until",
                    details={"limit": MAX_TICKETS, "tickets": count},
                )
            result = await s.execute(
                select(
                    SupportTicket.team_id, SupportTicket.state, SupportTicket.reason,
                    SupportTicket.assignee_id, SupportTicket.queued_at,
                    SupportTicket.first_response_at, SupportTicket.resolved_at,
                    SupportTicket.sla_first_response_due, SupportTicket.sla_resolution_due,
                    SupportTicket.csat_score,
                ).where(*where)
            )  # fmt: skip
            rows = [_with_targets(Row(**r._mapping), targets) for r in result.all()]
            agent_ids = sorted({r.assignee_id for r in rows if r.assignee_id})
            names: dict[str, str] = {}
            if agent_ids:
                found_users = await s.execute(
                    select(User.id, User.display_name).where(
                        User.tenant_id == t, User.id.in_(agent_ids)
                    )
                )
                names = {uid: name for uid, name in found_users.all()}
        return {"since": start, "until": end, "team_id": team_id or None,
                **report(rows, teams, names, now)}  # fmt: skip
