"""Office hours: open or closed at a given instant, and when a team next opens, in its own
time zone, across holidays, midnight and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from warbler.errors import InvalidRequest
from warbler.support import notices
from warbler.support.office_hours import is_open, next_open, normalize, parse

WEEKDAYS = {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_shanghai_weekday_hours_are_read_in_local_time():
    hours = parse("Asia/Shanghai", WEEKDAYS, [])
    # Tuesday 2026-03-03 10:00 in Shanghai is 02:00 UTC.
    assert is_open(hours, utc(2026, 3, 3, 2, 0))
    assert not is_open(hours, utc(2026, 3, 3, 0, 59))  # 08:59 local
    assert not is_open(hours, utc(2026, 3, 3, 10, 0))  # 18:00 local: closed at the end
    assert is_open(hours, utc(2026, 3, 3, 9, 59))  # 17:59 local


def test_next_open_after_friday_evening_is_monday_morning_local():
    hours = parse("Asia/Shanghai", WEEKDAYS, [])
    friday_evening = utc(2026, 3, 6, 12, 0)  # Fri 20:00 in Shanghai
    assert next_open(hours, friday_evening) == utc(2026, 3, 9, 1, 0)  # Mon 09:00 local


def test_next_open_is_now_when_open():
    hours = parse("Europe/Berlin", WEEKDAYS, [])
    now = utc(2026, 3, 3, 10, 0)
    assert next_open(hours, now) == now


def test_holidays_close_the_whole_local_day():
    hours = parse("Asia/Shanghai", WEEKDAYS, ["2026-10-01", "2026-10-02"])
    thursday_noon = utc(2026, 10, 1, 4, 0)  # Thu 12:00 local, a holiday
    assert not is_open(hours, thursday_noon)
    # Fri 2 is a holiday too, then the weekend: Monday 5 October 09:00 local.
    assert next_open(hours, thursday_noon) == utc(2026, 10, 5, 1, 0)


def test_an_interval_past_midnight_belongs_to_two_days():
    hours = parse("UTC", {"sat": [["22:00", "02:00"]]}, [])
    assert is_open(hours, utc(2026, 3, 7, 23, 0))  # Saturday night
    assert is_open(hours, utc(2026, 3, 8, 1, 30))  # Sunday early morning
    assert not is_open(hours, utc(2026, 3, 8, 2, 0))
    assert next_open(hours, utc(2026, 3, 8, 3, 0)) == utc(2026, 3, 14, 22, 0)


def test_daylight_saving_moves_the_utc_opening():
    hours = parse("America/New_York", {"mon": [["09:00", "17:00"]]}, [])
    # Winter: 09:00 EST is 14:00 UTC; summer: 09:00 EDT is 13:00 UTC.
    assert next_open(hours, utc(2026, 3, 1, 0, 0)) == utc(2026, 3, 2, 14, 0)
    assert next_open(hours, utc(2026, 3, 14, 0, 0)) == utc(2026, 3, 16, 13, 0)


def test_no_hours_means_always_open_and_empty_days_mean_never():
    always = parse("UTC", {}, [])
    assert is_open(always, utc(2026, 1, 1, 3, 0))
    never = parse("UTC", {"mon": []}, [])
    assert not is_open(never, utc(2026, 1, 5, 10, 0))
    assert next_open(never, utc(2026, 1, 5, 10, 0)) is None


@pytest.mark.parametrize(
    ("hours", "holidays"),
    [
        ({"monday": [["09:00", "18:00"]]}, []),
        ({"mon": [["9:00", "18:00"]]}, []),
        ({"mon": [["09:00", "09:00"]]}, []),
        ({"mon": [["24:00", "02:00"]]}, []),
        ({"mon": [["09:00"]]}, []),
        ({}, ["2026-02-30"]),
    ],
)
def test_bad_office_hours_are_refused_with_a_clear_error(hours, holidays):
    with pytest.raises(InvalidRequest):
        normalize(hours, holidays)


def test_unknown_time_zone_is_refused():
    with pytest.raises(InvalidRequest) as err:
        parse("Mars/Olympus", WEEKDAYS, [])
    assert "IANA" in err.value.message


def test_the_visitor_is_told_the_local_opening_time_in_their_language():
    opens = utc(2026, 3, 9, 1, 0)
    en = notices.closed("user_requested", opens, "Asia/Shanghai", "en")
    zh = notices.closed("user_requested", opens, "Asia/Shanghai", "zh")
    assert "Monday 9 March 09:00 (Asia/Shanghai time)" in en
    assert "3月9日（周一）09:00（Asia/Shanghai 时间）" in zh
    assert "人工客服" in zh
