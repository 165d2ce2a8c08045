"""Office hours of a team: weekly opening hours in an IANA time zone, minus holidays.

``office_hours`` is ``{"mon": [["09:00", "18:00"]], "tue": [...], ...}``: each day lists
opening intervals in the team's local time; ``"24:00"`` closes at midnight and an interval
that ends before it starts runs past midnight (``["22:00", "06:00"]``). A day that is not
listed is closed; an empty dict means always open. ``holidays`` lists local dates
(``"2026-12-25"``) closed all day. Time zones come from ``zoneinfo`` (the ``tzdata`` package
supplies them where the OS has none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from warbler.errors import InvalidRequest

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
MAX_INTERVALS_PER_DAY = 6
MAX_HOLIDAYS = 366
# How far ahead next_open looks: a year and a bit covers a year of holidays.
LOOKAHEAD_DAYS = 400
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")

Interval = tuple[int, int]  # [start, end) in minutes of the local day, end <= 1440


@dataclass(frozen=True, slots=True)
class Hours:
    zone: ZoneInfo
    weekly: tuple[tuple[Interval, ...], ...]  # per weekday (Monday first), midnight-split
    holidays: frozenset[date]
    always_open: bool

    @property
    def timezone(self) -> str:
        return self.zone.key


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # a directory, a long name
        raise InvalidRequest(
            f"unknown time zone '{name}': use an IANA name such as Asia/Shanghai",
            details={"field": "timezone"},
        ) from exc


def normalize(
    office_hours: dict[str, Any], holidays: list[Any]
) -> tuple[dict[str, Any], list[str]]:
    """Validated, canonical forms of the admin's input (raises ``InvalidRequest``)."""
    if not isinstance(office_hours, dict):
        raise InvalidRequest("office_hours is an object of days", details={"field": "office_hours"})
    hours: dict[str, list[list[str]]] = {}
    for day, intervals in office_hours.items():
        if day not in DAYS:
            raise InvalidRequest(
                f"unknown day '{day}': use {', '.join(DAYS)}", details={"field": "office_hours"}
            )
        if not isinstance(intervals, list) or len(intervals) > MAX_INTERVALS_PER_DAY:
            raise InvalidRequest(
                f"each day lists at most {MAX_INTERVALS_PER_DAY} [start, end] intervals",
                details={"field": "office_hours", "day": day},
            )
        out = []
        for pair in intervals:
            if (
                not isinstance(pair, list | tuple)
                or len(pair) != 2
                or not all(isinstance(p, str) and _HHMM.match(p) for p in pair)
                or pair[0] == pair[1]
                or pair[0] == "24:00"
            ):
                raise InvalidRequest(
                    'an interval is ["HH:MM", "HH:MM"] with different times (24:00 only ends)',
                    details={"field": "office_hours", "day": day, "interval": pair},
                )
            out.append([pair[0], pair[1]])
        hours[day] = out
    if not isinstance(holidays, list) or len(holidays) > MAX_HOLIDAYS:
        raise InvalidRequest(
            f"holidays is a list of at most {MAX_HOLIDAYS} dates", details={"field": "holidays"}
        )
    days: list[str] = []
    for value in holidays:
        try:
            days.append(date.fromisoformat(str(value)).isoformat())
        except ValueError as exc:
            raise InvalidRequest(
                f"a holiday is a date like 2026-12-25, not '{value}'", details={"field": "holidays"}
            ) from exc
    return hours, sorted(set(days))


def parse(timezone: str, office_hours: dict[str, Any] | None, holidays: list[Any] | None) -> Hours:
    hours, days = normalize(office_hours or {}, holidays or [])
    weekly: list[list[Interval]] = [[] for _ in DAYS]
    for day, intervals in hours.items():
        index = DAYS.index(day)
        for start_text, end_text in intervals:
            start, end = _minutes(start_text), _minutes(end_text)
            if end > start:
                weekly[index].append((start, end))
            else:  # runs past midnight into the next day
                weekly[index].append((start, DAY_MINUTES))
                if end > 0:
                    weekly[(index + 1) % 7].append((0, end))
    return Hours(
        zone=zone_of(timezone or "UTC"),
        weekly=tuple(tuple(sorted(_merge(d))) for d in weekly),
        holidays=frozenset(date.fromisoformat(d) for d in days),
        always_open=not hours,
    )


def is_open(hours: Hours, now: datetime) -> bool:
    if hours.always_open:
        return True
    local = now.astimezone(hours.zone)
    if local.date() in hours.holidays:
        return False
    minute = local.hour * 60 + local.minute
    return any(s <= minute < e for s, e in hours.weekly[local.weekday()])


def next_open(hours: Hours, now: datetime) -> datetime | None:
    """When the office is next open (``now`` itself when open), in UTC; None: never."""
    if is_open(hours, now):
        return now
    local = now.astimezone(hours.zone)
    today = local.date()
    minute_now = local.hour * 60 + local.minute
    for offset in range(LOOKAHEAD_DAYS):
        day = today + timedelta(days=offset)
        if day in hours.holidays:
            continue
        for start, end in hours.weekly[day.weekday()]:
            if offset == 0 and end <= minute_now:
                continue
            if offset == 0 and start <= minute_now:
                continue  # open now would have returned above; a DST gap lands here
            when = datetime.combine(day, time(start // 60, start % 60), tzinfo=hours.zone)
            return when.astimezone(UTC)
    return None


def _minutes(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def _merge(intervals: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
