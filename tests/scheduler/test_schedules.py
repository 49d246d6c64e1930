"""Tests of the schedule grammar in mcp_scheduler.schedules."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from pydantic import TypeAdapter

from mcp_scheduler.errors import InvalidScheduleError, InvalidTimezoneError, OutOfBoundsError
from mcp_scheduler.schedules import (
    BaseSchedule,
    CronSchedule,
    IntervalSchedule,
    OnceSchedule,
    Schedule,
    describe_interval,
    load_schedule,
    local_timezone_name,
    parse_interval,
    parse_schedule,
    resolve_timezone,
    zones,
)
from mcp_scheduler.schedules.zones import nearest_zones, zone_warning

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")

# 2026-06-01 is a Monday. 2026-03-29 and 2026-10-25 are the DST change days in Europe/Berlin.
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

CRON_FORMS_SNIPPET = "expected 5 fields 'minute hour day-of-month month day-of-week' (e.g. '0 9 * * 1-5')"
INTERVAL_FORMS_SNIPPET = "'30 seconds', '5 minutes'"
ONCE_FORMS_SNIPPET = "use 'now', an ISO 8601 date-time"


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN, fold=fold)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def instants(times: list[datetime]) -> list[datetime]:
    return [time.astimezone(UTC) for time in times]


def catch_up(schedule: BaseSchedule, previous: datetime, now: datetime) -> list[datetime]:
    """APScheduler 3's Job._get_run_times: the run times missed since ``previous``, up to ``now``."""
    missed: list[datetime] = []
    following = schedule.next_fire_time(previous, now)
    while following is not None and following <= now:
        missed.append(following)
        assert len(missed) < 10_000, "catch-up does not terminate"
        following = schedule.next_fire_time(following, now)
    return missed


# ---------------------------------------------------------------------------------------------
# Time zones
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Etc/GMT+5"])
def test_resolve_timezone_accepts_utc_and_iana_names(name: str) -> None:
    assert resolve_timezone(name).key == name


def test_resolve_timezone_maps_wrong_case_to_the_canonical_name() -> None:
    assert resolve_timezone("europe/berlin").key == "Europe/Berlin"
    assert resolve_timezone("utc").key == "UTC"


def test_resolve_timezone_none_uses_the_default() -> None:
    assert resolve_timezone(None, "Asia/Tokyo").key == "Asia/Tokyo"
    assert resolve_timezone("  ", "Asia/Tokyo").key == "Asia/Tokyo"


def test_resolve_timezone_without_default_uses_the_machine_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zones.tzlocal, "get_localzone_name", lambda: "America/Sao_Paulo")
    assert local_timezone_name() == "America/Sao_Paulo"
    assert resolve_timezone(None).key == "America/Sao_Paulo"


def _raise_lookup_error() -> str:
    raise LookupError("no zone configured")


@pytest.mark.parametrize("machine_zone", [lambda: None, lambda: "Not/AZone", _raise_lookup_error])
def test_local_timezone_name_falls_back_to_utc(monkeypatch: pytest.MonkeyPatch, machine_zone: object) -> None:
    monkeypatch.setattr(zones.tzlocal, "get_localzone_name", machine_zone)
    assert local_timezone_name() == "UTC"
    assert resolve_timezone(None).key == "UTC"


@pytest.mark.parametrize(
    "name", ["Mars/Olympus_Mons", "Europe", "../etc/passwd", "/etc/localtime", "localtime"]
)
def test_resolve_timezone_rejects_unknown_names(name: str) -> None:
    with pytest.raises(InvalidTimezoneError) as excinfo:
        resolve_timezone(name)
    assert excinfo.value.name == name
    assert "IANA" in str(excinfo.value)


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("America/Nework", "America/New_York"),
        ("Asia/Kolkatta", "Asia/Kolkata"),
        ("Kolkatta", "Asia/Kolkata"),  # the part after the '/' alone
        ("europe/berln", "Europe/Berlin"),
        ("New York", "America/New_York"),
        ("PST", "America/Los_Angeles"),  # an abbreviation of a zone with daylight saving time
    ],
)
def test_an_unknown_zone_is_answered_with_the_nearest_real_name(name: str, meant: str) -> None:
    with pytest.raises(InvalidTimezoneError) as excinfo:
        resolve_timezone(name)

    assert excinfo.value.suggestions == [meant]
    assert str(excinfo.value) == f"Unknown time zone {name!r} (not an IANA name): did you mean {meant!r}?"


def test_zone_suggestions_are_at_most_three_best_first_and_none_for_what_is_no_zone() -> None:
    assert len(nearest_zones("Europe")) == 3
    assert nearest_zones("Europe/Pariss")[0] == "Europe/Paris"
    for name in ("Mars/Olympus_Mons", "localtime", "/etc/localtime", "../etc/passwd", ""):
        assert nearest_zones(name) == [], name


@pytest.mark.parametrize(
    ("name", "offset", "meant"),
    [("EST", "UTC-05:00", "'America/New_York'"), ("MST", "UTC-07:00", "'America/Denver'"),
     ("Etc/GMT+5", "UTC-05:00", "the sign is reversed")],
)
def test_a_fixed_offset_zone_warns_that_it_has_no_daylight_saving_time(name: str, offset: str, meant: str) -> None:
    warning = zone_warning(resolve_timezone(name))

    assert warning is not None
    assert f"{name!r} is a fixed {offset} all year, with no daylight saving time" in warning and meant in warning


@pytest.mark.parametrize("name", ["UTC", "Etc/GMT", "America/New_York", "Asia/Kolkata", "America/Phoenix", "Japan"])
def test_zones_that_are_what_they_say_give_no_warning(name: str) -> None:
    assert zone_warning(ZoneInfo(name)) is None


def test_resolve_timezone_rejects_an_unknown_default() -> None:
    with pytest.raises(InvalidTimezoneError):
        resolve_timezone(None, "Nowhere/Special")


def test_parse_schedule_uses_the_default_timezone_when_none_is_given() -> None:
    schedule = parse_schedule("cron", "0 9 * * *", now=NOW, default_timezone="Asia/Tokyo")
    assert schedule.timezone == "Asia/Tokyo"
    assert schedule.next_fire_times(1, NOW) == [datetime(2026, 6, 2, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))]


def test_parse_schedule_explicit_timezone_beats_the_default() -> None:
    schedule = parse_schedule("cron", "0 9 * * *", "Europe/Berlin", now=NOW, default_timezone="Asia/Tokyo")
    assert schedule.timezone == "Europe/Berlin"


def test_parse_schedule_uses_the_machine_zone_without_any_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zones.tzlocal, "get_localzone_name", lambda: "Australia/Sydney")
    assert parse_schedule("interval", "5m", now=NOW).timezone == "Australia/Sydney"


def test_parse_schedule_rejects_an_unknown_zone() -> None:
    with pytest.raises(InvalidTimezoneError):
        parse_schedule("cron", "0 9 * * *", "Atlantis/Capital", now=NOW)


# ---------------------------------------------------------------------------------------------
# Schedule type and empty expressions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("schedule_type", ["weekly", "", "date", "crontab"])
def test_unknown_schedule_type_is_rejected_naming_the_valid_types(schedule_type: str) -> None:
    with pytest.raises(InvalidScheduleError) as excinfo:
        parse_schedule(schedule_type, "0 9 * * *", "UTC", now=NOW)
    message = str(excinfo.value)
    assert "'cron'" in message and "'interval'" in message and "'once'" in message


def test_schedule_type_is_case_insensitive() -> None:
    assert parse_schedule("CRON", "0 9 * * *", "UTC", now=NOW).schedule_type == "cron"


@pytest.mark.parametrize("schedule_type", ["cron", "interval", "once"])
@pytest.mark.parametrize("expression", ["", "   "])
def test_empty_expression_is_rejected(schedule_type: str, expression: str) -> None:
    with pytest.raises(InvalidScheduleError, match="empty"):
        parse_schedule(schedule_type, expression, "UTC", now=NOW)


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_schedule("cron", "0 9 * * *", "UTC", now=datetime(2026, 6, 1, 12, 0))


# ---------------------------------------------------------------------------------------------
# Cron: semantics
# ---------------------------------------------------------------------------------------------


def test_cron_1_5_fires_monday_to_friday() -> None:
    sunday_noon = utc(2026, 5, 31, 12)
    schedule = parse_schedule("cron", "0 9 * * 1-5", "UTC", now=sunday_noon)
    times = schedule.next_fire_times(10, sunday_noon)
    assert [time.weekday() for time in times] == [0, 1, 2, 3, 4] * 2  # Mon..Fri, twice
    assert [time.day for time in times] == [1, 2, 3, 4, 5, 8, 9, 10, 11, 12]
    assert all((time.hour, time.minute) == (9, 0) for time in times)


def test_cron_mon_fri_names_fire_monday_to_friday() -> None:
    sunday_noon = utc(2026, 5, 31, 12)
    by_name = parse_schedule("cron", "0 9 * * mon-FRI", "UTC", now=sunday_noon)
    by_number = parse_schedule("cron", "0 9 * * 1-5", "UTC", now=sunday_noon)
    assert by_name.cron == "0 9 * * 1-5"
    assert by_name.next_fire_times(10, sunday_noon) == by_number.next_fire_times(10, sunday_noon)


@pytest.mark.parametrize("sunday", ["0", "7", "SUN", "sun"])
def test_cron_0_and_7_and_sun_all_mean_sunday(sunday: str) -> None:
    schedule = parse_schedule("cron", f"0 9 * * {sunday}", "UTC", now=NOW)
    times = schedule.next_fire_times(3, NOW)
    assert [time.weekday() for time in times] == [6, 6, 6]
    assert [time.date().isoformat() for time in times] == ["2026-06-07", "2026-06-14", "2026-06-21"]


def test_cron_day_of_week_range_may_end_on_sunday() -> None:
    schedule = parse_schedule("cron", "0 0 * * FRI-SUN", "UTC", now=NOW)
    assert schedule.cron == "0 0 * * 5-7"
    assert [time.weekday() for time in schedule.next_fire_times(6, NOW)] == [4, 5, 6, 4, 5, 6]


def test_cron_month_names_are_case_insensitive() -> None:
    schedule = parse_schedule("cron", "0 9 1 jan-Mar,DEC *", "UTC", now=NOW)
    assert schedule.cron == "0 9 1 1-3,12 *"
    assert [time.month for time in schedule.next_fire_times(5, NOW)] == [12, 1, 2, 3, 12]


@pytest.mark.parametrize(
    ("macro", "cron", "first"),
    [
        ("@hourly", "0 * * * *", utc(2026, 6, 1, 12)),
        ("@daily", "0 0 * * *", utc(2026, 6, 2)),
        ("@midnight", "0 0 * * *", utc(2026, 6, 2)),
        ("@weekly", "0 0 * * 0", utc(2026, 6, 7)),
        ("@monthly", "0 0 1 * *", utc(2026, 7, 1)),
        ("@yearly", "0 0 1 1 *", utc(2027, 1, 1)),
        ("@annually", "0 0 1 1 *", utc(2027, 1, 1)),
        ("@DAILY", "0 0 * * *", utc(2026, 6, 2)),
    ],
)
def test_cron_macros_expand_to_five_fields(macro: str, cron: str, first: datetime) -> None:
    schedule = parse_schedule("cron", macro, "UTC", now=NOW)
    assert schedule.expression == macro
    assert schedule.cron == cron
    assert schedule.cron_has_seconds is False
    assert schedule.next_fire_times(1, NOW) == [first]


def test_cron_six_fields_put_seconds_first() -> None:
    now = utc(2026, 6, 1, 12, 0, 5)
    schedule = parse_schedule("cron", "*/10 * * * * *", "UTC", now=now)
    assert schedule.cron_has_seconds is True
    assert schedule.next_fire_times(4, now) == [
        utc(2026, 6, 1, 12, 0, 10),
        utc(2026, 6, 1, 12, 0, 20),
        utc(2026, 6, 1, 12, 0, 30),
        utc(2026, 6, 1, 12, 0, 40),
    ]
    assert schedule.description == "Every 10 seconds (UTC)"


def test_cron_six_fields_fire_at_the_given_second() -> None:
    schedule = parse_schedule("cron", "30 15 9 * * *", "UTC", now=NOW)
    assert schedule.next_fire_times(2, NOW) == [utc(2026, 6, 2, 9, 15, 30), utc(2026, 6, 3, 9, 15, 30)]
    assert schedule.description == "At 09:15:30 (UTC)"


def test_cron_day_of_month_and_day_of_week_are_ored() -> None:
    # March 2026: Fridays are the 6th, 13th, 20th and 27th; the 10th is a Tuesday.
    now = utc(2026, 3, 1)
    schedule = parse_schedule("cron", "0 0 10 * 5", "UTC", now=now)
    times = schedule.next_fire_times(6, now)
    assert [(time.month, time.day) for time in times] == [(3, 6), (3, 10), (3, 13), (3, 20), (3, 27), (4, 3)]
    assert "or on Friday" in schedule.description


def test_cron_restricted_day_of_month_with_star_day_of_week_is_not_ored() -> None:
    now = utc(2026, 3, 1)
    schedule = parse_schedule("cron", "0 0 10 * *", "UTC", now=now)
    assert [time.day for time in schedule.next_fire_times(3, now)] == [10, 10, 10]


@pytest.mark.parametrize(
    ("expression", "minutes"),
    [
        ("0,30 * * * *", [0, 30, 0, 30]),
        ("*/20 * * * *", [0, 20, 40, 0]),
        ("10-12 * * * *", [10, 11, 12, 10]),
        ("0-30/15 * * * *", [0, 15, 30, 0]),
        ("5/15 * * * *", [5, 20, 35, 50]),
        ("1,2,40-41 * * * *", [1, 2, 40, 41]),
    ],
)
def test_cron_lists_ranges_and_steps(expression: str, minutes: list[int]) -> None:
    schedule = parse_schedule("cron", expression, "UTC", now=NOW)
    assert [time.minute for time in schedule.next_fire_times(4, NOW)] == minutes


def test_cron_range_with_equal_ends_is_a_single_value() -> None:
    # croniter alone would read "5-5" as the whole field.
    schedule = parse_schedule("cron", "0 5-5 * * *", "UTC", now=NOW)
    assert schedule.cron == "0 5 * * *"
    assert [time.hour for time in schedule.next_fire_times(3, NOW)] == [5, 5, 5]


def test_cron_l_means_the_last_day_of_the_month() -> None:
    schedule = parse_schedule("cron", "0 9 L * *", "UTC", now=NOW)
    assert [time.date().isoformat() for time in schedule.next_fire_times(3, NOW)] == [
        "2026-06-30",
        "2026-07-31",
        "2026-08-31",
    ]
    assert "last day of the month" in schedule.description


def test_cron_question_mark_means_any_day() -> None:
    schedule = parse_schedule("cron", "0 9 ? * MON", "UTC", now=NOW)
    assert schedule.cron == "0 9 * * 1"
    assert [time.weekday() for time in schedule.next_fire_times(2, NOW)] == [0, 0]


def test_cron_february_29_is_accepted_and_fires_in_a_leap_year() -> None:
    schedule = parse_schedule("cron", "0 0 29 2 *", "UTC", now=NOW)
    assert schedule.next_fire_times(2, NOW) == [utc(2028, 2, 29), utc(2032, 2, 29)]


def test_cron_extra_whitespace_is_accepted_and_expression_kept_verbatim() -> None:
    schedule = parse_schedule("cron", "  0   9 *  * 1-5 ", "UTC", now=NOW)
    assert schedule.expression == "  0   9 *  * 1-5 "
    assert schedule.cron == "0 9 * * 1-5"


@pytest.mark.parametrize(
    "expression",
    [
        "* * * *",
        "* * * * * * *",
        "0 9 * * 1-5 2026",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * 32 * *",
        "* * * 0 *",
        "* * * 13 *",
        "* * * * 8",
        "60 * * * * *",
        "*/0 * * * *",
        "*/61 * * * *",
        "5-1 * * * *",
        "-1 * * * *",
        "1.5 * * * *",
        "a b c d e",
        "MON * * * *",
        "0 9 * JAN-XYZ *",
        "1,,2 * * * *",
        "? * * * *",
        "0 9 * * L",
        "0 9 L/2 * *",
        "0 9 1,L * *",
        "0 9 * * 5#3",
        "0 9 15W * *",
        "H * * * *",
        "R * * * *",
        "@reboot",
        "@every 5m",
        "every day at 9",
    ],
)
def test_invalid_cron_is_rejected_showing_the_accepted_forms(expression: str) -> None:
    with pytest.raises(InvalidScheduleError) as excinfo:
        parse_schedule("cron", expression, "UTC", now=NOW)
    message = str(excinfo.value)
    assert repr(expression) in message
    assert CRON_FORMS_SNIPPET in message
    assert "6 fields with seconds first" in message
    assert "@daily" in message


@pytest.mark.parametrize("expression", ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 0 31 2 *"])
def test_cron_that_never_fires_is_rejected(expression: str) -> None:
    with pytest.raises(InvalidScheduleError, match="never fires") as excinfo:
        parse_schedule("cron", expression, "UTC", now=NOW)
    assert CRON_FORMS_SNIPPET in str(excinfo.value)


@pytest.mark.parametrize(
    ("expression", "timezone", "description"),
    [
        ("0 9 * * 1-5", "Europe/Berlin", "At 09:00, Monday through Friday (Europe/Berlin)"),
        ("0 9 * * MON-FRI", "UTC", "At 09:00, Monday through Friday (UTC)"),
        ("0 22 * * *", "UTC", "At 22:00 (UTC)"),
        ("30 14 * * 0", "America/New_York", "At 14:30, only on Sunday (America/New_York)"),
        ("0 9 * * 7", "UTC", "At 09:00, only on Sunday (UTC)"),
        ("*/15 * * * *", "UTC", "Every 15 minutes (UTC)"),
        ("@weekly", "UTC", "At 00:00, only on Sunday (UTC)"),
        ("@monthly", "UTC", "At 00:00, on day 1 of the month (UTC)"),
        ("0 0 * * FRI-SUN", "UTC", "At 00:00, Friday through Sunday (UTC)"),
        ("*/10 * * * * *", "UTC", "Every 10 seconds (UTC)"),
        ("0 */5 * * * *", "UTC", "Every 5 minutes (UTC)"),
        ("0 0 9 ? * MON", "UTC", "At 09:00, only on Monday (UTC)"),
    ],
)
def test_cron_description_is_plain_24_hour_english_with_the_zone(
    expression: str, timezone: str, description: str
) -> None:
    assert parse_schedule("cron", expression, timezone, now=NOW).description == description


# ---------------------------------------------------------------------------------------------
# Cron: APScheduler trigger semantics
# ---------------------------------------------------------------------------------------------


def test_cron_next_fire_time_includes_now_when_now_matches() -> None:
    schedule = parse_schedule("cron", "0 9 * * *", "UTC", now=NOW)
    assert schedule.next_fire_time(None, utc(2026, 6, 2, 9)) == utc(2026, 6, 2, 9)


def test_cron_next_fire_time_rounds_a_fractional_now_up() -> None:
    schedule = parse_schedule("cron", "* * * * *", "UTC", now=NOW)
    now = utc(2026, 6, 2, 9, 0, 0) + timedelta(microseconds=1)
    assert schedule.next_fire_time(None, now) == utc(2026, 6, 2, 9, 1)


def test_cron_next_fire_time_starts_after_the_previous_fire_time() -> None:
    schedule = parse_schedule("cron", "*/5 * * * *", "UTC", now=NOW)
    # The job ran at 09:00 and it is now 09:00:00.5: the next run is 09:05.
    assert schedule.next_fire_time(
        utc(2026, 6, 2, 9), utc(2026, 6, 2, 9) + timedelta(milliseconds=500)
    ) == utc(2026, 6, 2, 9, 5)


def test_cron_next_fire_time_returns_the_first_missed_time_when_now_is_later() -> None:
    schedule = parse_schedule("cron", "*/5 * * * *", "UTC", now=NOW)
    # min(now, previous + 1µs) is previous + 1µs, so the first missed run (09:05) comes back.
    assert schedule.next_fire_time(utc(2026, 6, 2, 9), utc(2026, 6, 2, 12, 34)) == utc(2026, 6, 2, 9, 5)


def test_cron_next_fire_time_uses_now_when_now_is_before_the_previous_fire_time() -> None:
    schedule = parse_schedule("cron", "*/5 * * * *", "UTC", now=NOW)
    # Clock went back: min(now, previous + 1µs) is now.
    assert schedule.next_fire_time(utc(2026, 6, 2, 9, 30), utc(2026, 6, 2, 9, 7)) == utc(2026, 6, 2, 9, 10)


def test_cron_next_fire_time_never_returns_the_previous_fire_time_when_now_equals_it() -> None:
    schedule = parse_schedule("cron", "*/5 * * * *", "UTC", now=NOW)
    previous = utc(2026, 6, 2, 9, 5)
    assert schedule.next_fire_time(previous, previous) == utc(2026, 6, 2, 9, 10)


def test_cron_catch_up_iteration_yields_each_missed_time() -> None:
    schedule = parse_schedule("cron", "*/10 * * * *", "UTC", now=NOW)
    missed = catch_up(schedule, utc(2026, 6, 2, 9), utc(2026, 6, 2, 9, 45))
    assert missed == [utc(2026, 6, 2, 9, minute) for minute in (10, 20, 30, 40)]


def test_cron_catch_up_includes_a_run_exactly_at_now() -> None:
    schedule = parse_schedule("cron", "*/10 * * * *", "UTC", now=NOW)
    missed = catch_up(schedule, utc(2026, 6, 2, 9), utc(2026, 6, 2, 9, 30))
    assert missed == [utc(2026, 6, 2, 9, 10), utc(2026, 6, 2, 9, 20), utc(2026, 6, 2, 9, 30)]


def test_cron_fire_times_are_aware_and_in_the_schedule_zone() -> None:
    schedule = parse_schedule("cron", "0 9 * * *", "Europe/Berlin", now=NOW)
    time = schedule.next_fire_time(None, NOW)
    assert time == berlin(2026, 6, 2, 9)
    assert time is not None and time.tzinfo == BERLIN and time.utcoffset() == timedelta(hours=2)


def test_cron_fire_times_match_a_minute_by_minute_scan_in_utc() -> None:
    schedule = parse_schedule("cron", "*/7 1-3 * * 1,3", "UTC", now=NOW)
    start = utc(2026, 6, 1)
    expected: list[datetime] = []
    moment = start
    while len(expected) < 40:
        if croniter.match("*/7 1-3 * * 1,3", moment):
            expected.append(moment)
        moment += timedelta(minutes=1)
    assert schedule.next_fire_times(40, start) == expected


def test_next_fire_time_rejects_naive_datetimes() -> None:
    schedule = parse_schedule("cron", "0 9 * * *", "UTC", now=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_fire_time(None, datetime(2026, 6, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_fire_time(datetime(2026, 6, 1), NOW)


# ---------------------------------------------------------------------------------------------
# Cron: daylight-saving time (Europe/Berlin: 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00)
# ---------------------------------------------------------------------------------------------


def test_dst_spring_forward_daily_0230_fires_once_when_the_gap_ends() -> None:
    now = berlin(2026, 3, 28, 12)
    schedule = parse_schedule("cron", "30 2 * * *", "Europe/Berlin", now=now)
    assert schedule.next_fire_times(3, now) == [
        berlin(2026, 3, 29, 3, 0),  # 02:30 does not exist that day
        berlin(2026, 3, 30, 2, 30),
        berlin(2026, 3, 31, 2, 30),
    ]


def test_dst_spring_forward_catch_up_terminates() -> None:
    schedule = parse_schedule("cron", "30 2 * * *", "Europe/Berlin", now=NOW)
    missed = catch_up(schedule, berlin(2026, 3, 27, 2, 30), berlin(2026, 3, 30, 12))
    assert missed == [berlin(2026, 3, 28, 2, 30), berlin(2026, 3, 29, 3, 0), berlin(2026, 3, 30, 2, 30)]


def test_dst_spring_forward_hourly_job_skips_the_missing_hour() -> None:
    now = berlin(2026, 3, 29, 0)
    schedule = parse_schedule("cron", "0 * * * *", "Europe/Berlin", now=now)
    times = schedule.next_fire_times(4, now)
    assert [(time.hour, time.utcoffset()) for time in times] == [
        (0, timedelta(hours=1)),
        (1, timedelta(hours=1)),
        (3, timedelta(hours=2)),
        (4, timedelta(hours=2)),
    ]
    gaps = {later - earlier for earlier, later in zip(instants(times), instants(times)[1:], strict=False)}
    assert gaps == {timedelta(hours=1)}


def test_dst_spring_forward_every_30_minutes_keeps_real_time_spacing() -> None:
    now = berlin(2026, 3, 29, 1)
    schedule = parse_schedule("cron", "*/30 * * * *", "Europe/Berlin", now=now)
    times = instants(schedule.next_fire_times(5, now))
    assert {later - earlier for earlier, later in zip(times, times[1:], strict=False)} == {
        timedelta(minutes=30)
    }


def test_dst_fall_back_hourly_job_fires_in_both_passes_never_twice_at_one_instant() -> None:
    now = berlin(2026, 10, 25, 0)
    schedule = parse_schedule("cron", "0 * * * *", "Europe/Berlin", now=now)
    times = schedule.next_fire_times(5, now)
    assert [(time.hour, time.utcoffset()) for time in times] == [
        (0, timedelta(hours=2)),
        (1, timedelta(hours=2)),
        (2, timedelta(hours=2)),
        (2, timedelta(hours=1)),
        (3, timedelta(hours=1)),
    ]
    real = instants(times)
    assert len(set(real)) == len(real)
    assert {later - earlier for earlier, later in zip(real, real[1:], strict=False)} == {timedelta(hours=1)}


def test_dst_fall_back_daily_0230_fires_once() -> None:
    now = berlin(2026, 10, 24, 12)
    schedule = parse_schedule("cron", "30 2 * * *", "Europe/Berlin", now=now)
    assert instants(schedule.next_fire_times(3, now)) == [
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST, the first of the two 02:30s
        utc(2026, 10, 26, 1, 30),  # 02:30 CET the next day
        utc(2026, 10, 27, 1, 30),
    ]


def test_dst_fall_back_fixed_time_job_created_in_the_second_pass_waits_for_the_next_day() -> None:
    now = berlin(2026, 10, 25, 2, 10, fold=1)  # 02:10 CET, after 02:30 CEST has passed
    schedule = parse_schedule("cron", "30 2 * * *", "Europe/Berlin", now=now)
    assert instants(schedule.next_fire_times(1, now)) == [utc(2026, 10, 26, 1, 30)]


def test_dst_fall_back_catch_up_over_the_repeated_hour_terminates() -> None:
    schedule = parse_schedule("cron", "0 * * * *", "Europe/Berlin", now=NOW)
    missed = catch_up(schedule, berlin(2026, 10, 25, 1), berlin(2026, 10, 25, 3, 30))
    assert instants(missed) == [utc(2026, 10, 25, 0), utc(2026, 10, 25, 1), utc(2026, 10, 25, 2)]


def test_dst_fall_back_every_15_minutes_keeps_real_time_spacing() -> None:
    now = berlin(2026, 10, 25, 1)
    schedule = parse_schedule("cron", "*/15 * * * *", "Europe/Berlin", now=now)
    times = instants(schedule.next_fire_times(16, now))  # 4 real hours across the change
    assert {later - earlier for earlier, later in zip(times, times[1:], strict=False)} == {
        timedelta(minutes=15)
    }


def test_dst_thirty_minute_fall_back_keeps_real_time_spacing() -> None:
    # Australia/Lord_Howe moves its clocks back by 30 minutes (02:00 -> 01:30) on 2026-04-05.
    now = datetime(2026, 4, 5, 0, 0, tzinfo=LORD_HOWE)
    schedule = parse_schedule("cron", "*/10 * * * *", "Australia/Lord_Howe", now=now)
    times = instants(schedule.next_fire_times(18, now))
    assert {later - earlier for earlier, later in zip(times, times[1:], strict=False)} == {
        timedelta(minutes=10)
    }


@pytest.mark.parametrize(
    ("expression", "day"),
    [
        ("0 * * * *", (2026, 3, 29)),
        ("0 * * * *", (2026, 10, 25)),
        ("*/20 1-3 * * *", (2026, 3, 29)),
        ("*/20 1-3 * * *", (2026, 10, 25)),
        ("15 2 * * *", (2026, 3, 29)),
        ("15 2 * * *", (2026, 10, 25)),
        ("30 1-3 * * *", (2026, 10, 25)),
        ("0 */2 * * *", (2026, 3, 29)),
    ],
)
def test_dst_fire_times_match_a_minute_by_minute_scan(expression: str, day: tuple[int, int, int]) -> None:
    """Scan every real minute of the day; the wall clock decides, with the documented DST rules."""
    schedule = parse_schedule("cron", expression, "Europe/Berlin", now=NOW)
    assert schedule.cron is not None
    minute_field, hour_field = expression.split(" ")[:2]
    fixed_time = not minute_field.startswith("*") and not hour_field.startswith("*")
    start = berlin(*day).astimezone(UTC)
    expected: list[datetime] = []
    previous_wall = (start - timedelta(minutes=1)).astimezone(BERLIN).replace(tzinfo=None)
    moment = start
    while moment < start + timedelta(hours=24):
        local = moment.astimezone(BERLIN)
        wall = local.replace(tzinfo=None)
        second_pass = local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()
        fires = croniter.match(schedule.cron, wall) and not (fixed_time and second_pass)
        skipped = [
            previous_wall + timedelta(minutes=k)
            for k in range(1, (wall - previous_wall) // timedelta(minutes=1))
        ]
        if fixed_time and any(croniter.match(schedule.cron, gap) for gap in skipped):
            fires = True  # a fixed time inside the spring-forward gap fires as the gap ends
        if fires:
            expected.append(moment)
        previous_wall = wall
        moment += timedelta(minutes=1)
    actual = [time for time in instants(schedule.next_fire_times(len(expected) + 1, start))]
    assert actual[: len(expected)] == expected
    assert actual[len(expected)] >= start + timedelta(hours=24)


# ---------------------------------------------------------------------------------------------
# Intervals
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("30 seconds", 30),
        ("1 second", 1),
        ("30 sec", 30),
        ("30 secs", 30),
        ("30s", 30),
        ("5 minutes", 300),
        ("1 minute", 60),
        ("5 min", 300),
        ("5 mins", 300),
        ("5m", 300),
        ("1 hour", 3600),
        ("2 hours", 7200),
        ("1 hr", 3600),
        ("2 hrs", 7200),
        ("1h", 3600),
        ("2 days", 172800),
        ("1 day", 86400),
        ("2d", 172800),
        ("1 week", 604800),
        ("2 weeks", 1209600),
        ("1w", 604800),
        ("1 wk", 604800),
        ("2 wks", 1209600),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("1 hour 30 minutes", 5400),
        ("1 hour and 30 minutes", 5400),
        ("1 hour, 30 minutes", 5400),
        ("2d12h", 216000),
        ("1.5 hours", 5400),
        ("0.5 days", 43200),
        (".5 minutes", 30),
        ("every 10 minutes", 600),
        ("every minute", 60),
        ("every hour", 3600),
        ("every day", 86400),
        ("every week", 604800),
        ("every second", 1),
        ("an hour", 3600),
        ("Every 2 Hours", 7200),
        ("  10   MINUTES  ", 600),
        ("PT15M", 900),
        ("PT1H30M", 5400),
        ("PT30S", 30),
        ("P1D", 86400),
        ("P1W", 604800),
        ("P1DT2H", 93600),
        ("pt1.5h", 5400),
        ("every PT5M", 300),
    ],
)
def test_parse_interval_accepts_each_form(expression: str, seconds: int) -> None:
    assert parse_interval(expression) == timedelta(seconds=seconds)
    schedule = parse_schedule("interval", expression, "UTC", now=NOW)
    assert schedule.interval_seconds == seconds


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("0 seconds", "greater than zero"),
        ("0m", "greater than zero"),
        ("PT0S", "greater than zero"),
        ("-5 minutes", "greater than zero"),
        ("every -1 hour", "greater than zero"),
        ("-PT5M", "greater than zero"),
        ("banana", "not a duration"),
        ("5", "not a duration"),
        ("every", "not a duration"),
        ("10 fortnights", "unknown unit 'fortnights'"),
        ("1h 2x", "unknown unit 'x'"),
        ("1h30", "not a duration"),
        ("5 minutes,", "not a duration"),
        ("P", "not a valid ISO 8601 duration"),
        ("PT", "not a valid ISO 8601 duration"),
        ("P1DT", "not a valid ISO 8601 duration"),
        ("PT5X", "not a valid ISO 8601 duration"),
        ("1e3 seconds", "unknown unit"),
    ],
)
def test_parse_interval_rejects_bad_values_showing_the_accepted_forms(expression: str, reason: str) -> None:
    with pytest.raises(InvalidScheduleError) as excinfo:
        parse_interval(expression)
    message = str(excinfo.value)
    assert reason in message
    assert INTERVAL_FORMS_SNIPPET in message and "PT15M" in message
    with pytest.raises(InvalidScheduleError):
        parse_schedule("interval", expression, "UTC", now=NOW)


@pytest.mark.parametrize(
    "expression", ["1 year", "2 years", "1 month", "3 months", "1y", "2mo", "P1Y", "P1M", "P1Y2M3D"]
)
def test_parse_interval_rejects_years_and_months_pointing_to_cron(expression: str) -> None:
    with pytest.raises(InvalidScheduleError) as excinfo:
        parse_interval(expression)
    message = str(excinfo.value)
    assert "use a cron schedule" in message
    assert INTERVAL_FORMS_SNIPPET in message


def test_parse_interval_rejects_an_absurdly_long_interval() -> None:
    with pytest.raises(OutOfBoundsError, match="longer than 100 years"):
        parse_interval("99999999999 weeks")


def test_interval_anchor_of_a_new_schedule_is_now_plus_interval() -> None:
    schedule = parse_schedule("interval", "90 minutes", "Europe/Berlin", now=NOW)
    assert schedule.anchor == NOW + timedelta(minutes=90)
    assert schedule.anchor is not None and schedule.anchor.tzinfo == BERLIN
    assert schedule.next_fire_times(3, NOW) == [NOW + timedelta(minutes=90 * k) for k in (1, 2, 3)]


def test_interval_given_anchor_is_kept_so_a_restored_job_keeps_its_phase() -> None:
    anchor = utc(2026, 5, 1, 0, 7)
    schedule = parse_schedule("interval", "1 hour", "UTC", now=NOW, anchor=anchor)
    assert schedule.anchor == anchor
    assert schedule.next_fire_times(2, NOW) == [utc(2026, 6, 1, 12, 7), utc(2026, 6, 1, 13, 7)]


def test_interval_next_fire_time_follows_apscheduler_interval_trigger() -> None:
    anchor = utc(2026, 6, 1, 12, 30)
    schedule = parse_schedule("interval", "10 minutes", "UTC", now=NOW, anchor=anchor)
    # previous given: previous + interval, whatever now is
    assert schedule.next_fire_time(utc(2026, 6, 1, 13, 3), utc(2026, 6, 1, 20)) == utc(2026, 6, 1, 13, 13)
    # anchor still ahead: the anchor
    assert schedule.next_fire_time(None, NOW) == anchor
    # anchor passed: anchor + ceil((now - anchor) / interval) * interval
    assert schedule.next_fire_time(None, utc(2026, 6, 1, 12, 51)) == utc(2026, 6, 1, 13, 0)
    # exactly on a fire time: that fire time
    assert schedule.next_fire_time(None, utc(2026, 6, 1, 12, 50)) == utc(2026, 6, 1, 12, 50)
    assert schedule.next_fire_time(None, anchor) == anchor


def test_interval_catch_up_iteration_yields_each_missed_time() -> None:
    schedule = parse_schedule("interval", "15m", "UTC", now=NOW, anchor=utc(2026, 6, 1, 8))
    missed = catch_up(schedule, utc(2026, 6, 1, 9), utc(2026, 6, 1, 10))
    assert missed == [
        utc(2026, 6, 1, 9, 15),
        utc(2026, 6, 1, 9, 30),
        utc(2026, 6, 1, 9, 45),
        utc(2026, 6, 1, 10),
    ]


def test_interval_keeps_absolute_spacing_across_dst() -> None:
    anchor = berlin(2026, 10, 25, 1, 30)
    schedule = parse_schedule("interval", "1 hour", "Europe/Berlin", now=NOW, anchor=anchor)
    times = schedule.next_fire_times(4, anchor)
    assert [time.strftime("%H:%M%z") for time in times] == [
        "01:30+0200",
        "02:30+0200",
        "02:30+0100",
        "03:30+0100",
    ]
    assert {
        later - earlier for earlier, later in zip(instants(times), instants(times)[1:], strict=False)
    } == {timedelta(hours=1)}


def test_interval_with_fractional_seconds_is_exact() -> None:
    schedule = parse_schedule("interval", "1.5 seconds", "UTC", now=NOW)
    assert schedule.next_fire_times(3, NOW) == [NOW + timedelta(milliseconds=1500 * k) for k in (1, 2, 3)]


@pytest.mark.parametrize(
    ("seconds", "description"),
    [
        (5400, "every 1 hour 30 minutes"),
        (30, "every 30 seconds"),
        (1, "every 1 second"),
        (60, "every 1 minute"),
        (3600, "every 1 hour"),
        (172800, "every 2 days"),
        (604800, "every 1 week"),
        (1209600, "every 2 weeks"),
        (90061, "every 1 day 1 hour 1 minute 1 second"),
        (0.5, "every 0.5 seconds"),
        (90.25, "every 1 minute 30.25 seconds"),
    ],
)
def test_describe_interval_uses_plain_words(seconds: float, description: str) -> None:
    assert describe_interval(seconds) == description


@pytest.mark.parametrize("seconds", [0, -5, float("nan"), float("inf")])
def test_describe_interval_rejects_non_positive_or_non_finite(seconds: float) -> None:
    with pytest.raises(ValueError):
        describe_interval(seconds)


def test_interval_schedule_description_comes_from_describe_interval() -> None:
    assert parse_schedule("interval", "PT1H30M", "UTC", now=NOW).description == "every 1 hour 30 minutes"
    assert parse_schedule("interval", "every 2 days", "UTC", now=NOW).description == "every 2 days"


# ---------------------------------------------------------------------------------------------
# One-off schedules
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("expression", ["now", "NOW", " Now "])
def test_once_now_runs_at_now(expression: str) -> None:
    schedule = parse_schedule("once", expression, "Europe/Berlin", now=NOW)
    assert schedule.run_at == NOW
    assert schedule.run_at is not None and schedule.run_at.tzinfo == BERLIN
    assert schedule.next_fire_times(5, NOW) == [NOW]


@pytest.mark.parametrize(
    "expression",
    [
        "2026-12-25T09:00:00",
        "2026-12-25T09:00",
        "2026-12-25 09:00",
        "2026-12-25 09:00:00",
        "2026-12-25T09:00:00+01:00",
        "2026-12-25T03:00:00-05:00",
        "2026-12-25T08:00:00Z",
        "2026-12-25T08:00:00z",
        "2026-12-25T08:00:00+00:00",
    ],
)
def test_once_accepts_iso_date_times_with_or_without_offset(expression: str) -> None:
    schedule = parse_schedule("once", expression, "Europe/Berlin", now=NOW)
    assert schedule.run_at == berlin(2026, 12, 25, 9)
    assert schedule.run_at is not None and schedule.run_at.tzinfo == BERLIN
    assert schedule.expression == expression
    assert schedule.description == "once at 2026-12-25 09:00:00 CET (Europe/Berlin)"


def test_once_naive_time_is_read_in_the_schedule_zone() -> None:
    schedule = parse_schedule("once", "2026-07-01T09:00", "America/New_York", now=NOW)
    assert schedule.run_at is not None
    assert schedule.run_at.astimezone(UTC) == utc(2026, 7, 1, 13)


def test_once_date_only_means_midnight_in_the_zone() -> None:
    schedule = parse_schedule("once", "2026-12-25", "Europe/Berlin", now=NOW)
    assert schedule.run_at == berlin(2026, 12, 25, 0)


def test_once_naive_time_in_the_spring_forward_gap_moves_forward() -> None:
    schedule = parse_schedule("once", "2026-03-29T02:30", "Europe/Berlin", now=utc(2026, 3, 1))
    assert schedule.run_at is not None
    assert schedule.run_at.strftime("%H:%M%z") == "03:30+0200"


def test_once_naive_time_in_the_repeated_hour_means_the_first_pass() -> None:
    schedule = parse_schedule("once", "2026-10-25T02:30", "Europe/Berlin", now=utc(2026, 10, 1))
    assert schedule.run_at is not None
    assert schedule.run_at.astimezone(UTC) == utc(2026, 10, 25, 0, 30)


@pytest.mark.parametrize(
    ("expression", "delay"),
    [
        ("in 10 minutes", timedelta(minutes=10)),
        ("in 2 hours", timedelta(hours=2)),
        ("in 1h30m", timedelta(minutes=90)),
        ("IN 45 SEC", timedelta(seconds=45)),
        ("in an hour", timedelta(hours=1)),
        ("in PT15M", timedelta(minutes=15)),
    ],
)
def test_once_accepts_relative_times(expression: str, delay: timedelta) -> None:
    schedule = parse_schedule("once", expression, "Europe/Berlin", now=NOW)
    assert schedule.run_at == NOW + delay
    assert schedule.run_at is not None and schedule.run_at.tzinfo == BERLIN


def test_once_in_the_past_is_rejected_stating_the_time_now_and_the_zone() -> None:
    with pytest.raises(InvalidScheduleError) as excinfo:
        parse_schedule("once", "2026-01-01T09:00", "Europe/Berlin", now=NOW)
    message = str(excinfo.value)
    assert "2026-01-01 09:00:00 CET" in message
    assert "2026-06-01 14:00:00 CEST" in message
    assert "Europe/Berlin" in message
    assert "past" in message


def test_once_slightly_in_the_past_within_the_grace_time_is_accepted() -> None:
    run_at = NOW - timedelta(seconds=20)
    schedule = parse_schedule("once", run_at.isoformat(), "UTC", now=NOW, misfire_grace_time=30)
    assert schedule.run_at == run_at
    assert schedule.next_fire_time(None, NOW) == run_at


def test_once_beyond_the_grace_time_is_rejected() -> None:
    run_at = NOW - timedelta(seconds=31)
    with pytest.raises(InvalidScheduleError, match="past"):
        parse_schedule("once", run_at.isoformat(), "UTC", now=NOW, misfire_grace_time=30)


def test_once_without_a_grace_limit_accepts_any_past_time() -> None:
    schedule = parse_schedule("once", "2001-01-01T00:00:00Z", "UTC", now=NOW, misfire_grace_time=None)
    assert schedule.run_at == utc(2001, 1, 1)


@pytest.mark.parametrize(
    "expression", ["tomorrow", "next friday", "in", "in soon", "2026-13-01T00:00", "25/12/2026"]
)
def test_once_rejects_unparseable_times_showing_the_accepted_forms(expression: str) -> None:
    with pytest.raises(InvalidScheduleError) as excinfo:
        parse_schedule("once", expression, "UTC", now=NOW)
    assert ONCE_FORMS_SNIPPET in str(excinfo.value)
    assert "in 10 minutes" in str(excinfo.value)


def test_once_next_fire_time_is_run_at_then_none() -> None:
    schedule = parse_schedule("once", "2026-12-25T09:00", "Europe/Berlin", now=NOW)
    run_at = berlin(2026, 12, 25, 9)
    assert schedule.next_fire_time(None, NOW) == run_at
    assert schedule.next_fire_time(run_at, run_at) is None
    assert schedule.next_fire_times(3, NOW) == [run_at]


# ---------------------------------------------------------------------------------------------
# next_fire_times
# ---------------------------------------------------------------------------------------------


def test_next_fire_times_zero_count_is_empty_and_negative_is_an_error() -> None:
    schedule = parse_schedule("cron", "* * * * *", "UTC", now=NOW)
    assert schedule.next_fire_times(0, NOW) == []
    with pytest.raises(ValueError):
        schedule.next_fire_times(-1, NOW)


def test_next_fire_times_defaults_now_to_the_current_time() -> None:
    schedule = parse_schedule("cron", "* * * * *", "UTC")
    before = datetime.now(UTC)
    (first,) = schedule.next_fire_times(1)
    after = datetime.now(UTC)
    assert before - timedelta(seconds=1) <= first <= after + timedelta(minutes=1)
    assert first.second == 0 and first.microsecond == 0


def test_next_fire_times_are_strictly_increasing() -> None:
    schedule = parse_schedule("cron", "*/5 9-17 * * 1-5", "Europe/Berlin", now=NOW)
    times = instants(schedule.next_fire_times(200, NOW))
    assert all(earlier < later for earlier, later in zip(times, times[1:], strict=False))


# ---------------------------------------------------------------------------------------------
# Descriptions and persistence
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule_type", "expression"),
    [("cron", "0 9 * * 1-5"), ("cron", "@daily"), ("cron", "*/10 * * * * *"), ("once", "in 5 minutes")],
)
def test_cron_and_once_descriptions_contain_the_zone(schedule_type: str, expression: str) -> None:
    schedule = parse_schedule(schedule_type, expression, "America/New_York", now=NOW)
    assert schedule.description.endswith("(America/New_York)")


@pytest.mark.parametrize(
    ("schedule_type", "expression", "timezone"),
    [
        ("cron", "0 9 * * MON-FRI", "Europe/Berlin"),
        ("cron", "*/10 * * * * *", "UTC"),
        ("cron", "@weekly", "America/New_York"),
        ("interval", "1h30m", "Europe/Berlin"),
        ("interval", "1.5 seconds", "UTC"),
        ("once", "2026-12-25T09:00", "Europe/Berlin"),
        ("once", "in 10 minutes", "Asia/Kolkata"),
    ],
)
def test_model_dump_is_json_and_round_trips_through_load_schedule(
    schedule_type: str, expression: str, timezone: str
) -> None:
    schedule = parse_schedule(schedule_type, expression, timezone, now=NOW)
    data = json.loads(json.dumps(schedule.model_dump(mode="json")))
    restored = load_schedule(data)
    assert restored == schedule
    assert restored.next_fire_times(5, NOW) == schedule.next_fire_times(5, NOW)
    for key in ("anchor", "run_at"):
        if data.get(key) is not None:
            assert datetime.fromisoformat(data[key]).utcoffset() is not None


def test_model_dump_writes_datetimes_as_iso_strings_with_offset() -> None:
    schedule = parse_schedule("once", "2026-12-25T09:00", "Europe/Berlin", now=NOW)
    assert schedule.model_dump(mode="json") == {
        "schedule_type": "once",
        "expression": "2026-12-25T09:00",
        "timezone": "Europe/Berlin",
        "description": "once at 2026-12-25 09:00:00 CET (Europe/Berlin)",
        "run_at": "2026-12-25T09:00:00+01:00",
    }


def test_round_trip_keeps_the_second_pass_of_a_repeated_hour() -> None:
    schedule = parse_schedule("once", "2026-10-25T02:30:00+01:00", "Europe/Berlin", now=utc(2026, 10, 1))
    restored = load_schedule(json.loads(json.dumps(schedule.model_dump(mode="json"))))
    assert isinstance(restored, OnceSchedule)
    assert restored.run_at is not None
    assert restored.run_at.utcoffset() == timedelta(hours=1)
    assert restored.run_at.astimezone(UTC) == utc(2026, 10, 25, 1, 30)


def test_load_schedule_keeps_the_stored_times_instead_of_re_evaluating_the_expression() -> None:
    schedule = parse_schedule("once", "in 10 minutes", "UTC", now=NOW)
    restored = load_schedule(schedule.model_dump(mode="json"))
    assert isinstance(restored, OnceSchedule)
    assert restored.run_at == NOW + timedelta(minutes=10)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schedule_type": "weekly"}, "unknown schedule_type"),
        ({"cron": None}, "no cron expression"),
        ({"cron": "99 * * * *"}, "is invalid"),
        ({"expression": 5}, "non-string"),
    ],
)
def test_load_schedule_rejects_a_broken_cron_record(change: dict[str, object], message: str) -> None:
    data = parse_schedule("cron", "0 9 * * *", "UTC", now=NOW).model_dump(mode="json") | change
    with pytest.raises(InvalidScheduleError, match=message):
        load_schedule(data)


@pytest.mark.parametrize(
    "change",
    [
        {"interval_seconds": 0},
        {"interval_seconds": None},
        {"interval_seconds": True},
        {"anchor": None},
        {"anchor": "soon"},
    ],
)
def test_load_schedule_rejects_a_broken_interval_record(change: dict[str, object]) -> None:
    data = parse_schedule("interval", "5m", "UTC", now=NOW).model_dump(mode="json") | change
    with pytest.raises(InvalidScheduleError):
        load_schedule(data)


def test_load_schedule_rejects_a_one_off_record_without_run_at() -> None:
    data = parse_schedule("once", "now", "UTC", now=NOW).model_dump(mode="json") | {"run_at": None}
    with pytest.raises(InvalidScheduleError, match="run_at"):
        load_schedule(data)


def test_load_schedule_rejects_a_missing_field() -> None:
    data = parse_schedule("once", "now", "UTC", now=NOW).model_dump(mode="json")
    del data["timezone"]
    with pytest.raises(InvalidScheduleError, match="'timezone'"):
        load_schedule(data)


def test_load_schedule_rejects_an_unknown_zone() -> None:
    data = parse_schedule("once", "now", "UTC", now=NOW).model_dump(mode="json") | {"timezone": "Gone/Away"}
    with pytest.raises(InvalidTimezoneError):
        load_schedule(data)


# ---------------------------------------------------------------------------------------------
# One class per kind, the Schedule union and stored rows
# ---------------------------------------------------------------------------------------------

KINDS = [
    ("cron", "0 9 * * MON-FRI", "Europe/Berlin", CronSchedule),
    ("cron", "*/10 * * * * *", "UTC", CronSchedule),
    ("interval", "1h30m", "Europe/Berlin", IntervalSchedule),
    ("once", "2026-12-25T09:00", "America/New_York", OnceSchedule),
]


@pytest.mark.parametrize(("schedule_type", "expression", "timezone", "cls"), KINDS)
def test_parse_schedule_returns_the_class_of_its_type(
    schedule_type: str, expression: str, timezone: str, cls: type[BaseSchedule]
) -> None:
    schedule = parse_schedule(schedule_type, expression, timezone, now=NOW)
    assert type(schedule) is cls
    assert schedule.schedule_type == schedule_type
    assert schedule.zone == ZoneInfo(timezone)


@pytest.mark.parametrize(("schedule_type", "expression", "timezone", "cls"), KINDS)
def test_each_kind_round_trips_through_json_via_the_union(
    schedule_type: str, expression: str, timezone: str, cls: type[BaseSchedule]
) -> None:
    adapter: TypeAdapter[Schedule] = TypeAdapter(Schedule)
    schedule = parse_schedule(schedule_type, expression, timezone, now=NOW)
    text = adapter.dump_json(schedule)

    for restored in (adapter.validate_json(text), load_schedule(text), load_schedule(json.loads(text))):
        assert type(restored) is cls
        assert restored == schedule
        assert restored.next_fire_times(3, NOW) == schedule.next_fire_times(3, NOW)
        for key in ("anchor", "run_at"):
            value = getattr(restored, key, None)
            if value is not None:
                assert value.tzinfo == ZoneInfo(timezone)


def test_utc_times_are_stored_with_plus_zero_offset_not_z() -> None:
    schedule = parse_schedule("interval", "5 minutes", "UTC", now=NOW)
    assert schedule.model_dump(mode="json")["anchor"] == "2026-06-01T12:05:00+00:00"
    assert b'"2026-06-01T12:05:00+00:00"' in TypeAdapter(Schedule).dump_json(schedule)
    assert schedule.model_dump()["anchor"] == NOW + timedelta(minutes=5)  # Python mode keeps the datetime


# Rows as the code before the split (ParsedSchedule.to_dict) stored them: every key, nulls for the other kinds.
OLD_ROWS: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (
        {
            "schedule_type": "cron",
            "expression": "0 9 * * MON-FRI",
            "timezone": "Europe/Berlin",
            "description": "At 09:00, Monday through Friday (Europe/Berlin)",
            "cron": "0 9 * * 1-5",
            "cron_has_seconds": False,
            "interval_seconds": None,
            "anchor": None,
            "run_at": None,
        },
        {"cron": "0 9 * * 1-5", "cron_has_seconds": False, "first": berlin(2026, 6, 2, 9)},
    ),
    (
        {
            "schedule_type": "interval",
            "expression": "1h30m",
            "timezone": "Europe/Berlin",
            "description": "every 1 hour 30 minutes",
            "cron": None,
            "cron_has_seconds": False,
            "interval_seconds": 5400.0,
            "anchor": "2026-06-01T15:30:00+02:00",
            "run_at": None,
        },
        {"interval_seconds": 5400.0, "anchor": berlin(2026, 6, 1, 15, 30), "first": berlin(2026, 6, 1, 15, 30)},
    ),
    (
        {
            "schedule_type": "once",
            "expression": "in 10 minutes",
            "timezone": "Asia/Kolkata",
            "description": "once at 2026-06-01 17:40:00 IST (Asia/Kolkata)",
            "cron": None,
            "cron_has_seconds": False,
            "interval_seconds": None,
            "anchor": None,
            "run_at": "2026-06-01T17:40:00+05:30",
        },
        {"run_at": NOW + timedelta(minutes=10), "first": NOW + timedelta(minutes=10)},
    ),
]


@pytest.mark.parametrize(("row", "expected"), OLD_ROWS, ids=[row["schedule_type"] for row, _ in OLD_ROWS])
def test_a_row_in_the_old_stored_shape_still_loads(row: dict[str, Any], expected: dict[str, Any]) -> None:
    for data in (row, json.dumps(row)):
        schedule = load_schedule(data)
        assert type(schedule).__name__ == f"{row['schedule_type'].capitalize()}Schedule"
        for key in ("expression", "timezone", "description"):
            assert getattr(schedule, key) == row[key]
        for key, value in expected.items():
            if key != "first":
                assert getattr(schedule, key) == value
        assert schedule.next_fire_times(1, NOW) == [expected["first"]]
        assert schedule.next_fire_times(1, NOW)[0].tzinfo == ZoneInfo(row["timezone"])
        # saved again, it has the new shape: only its own kind's keys
        dumped = schedule.model_dump(mode="json")
        assert None not in dumped.values()
        assert {key: row[key] for key in dumped} == dumped


def test_an_old_row_keeps_the_second_pass_of_a_repeated_hour_and_reads_a_naive_time_in_its_zone() -> None:
    row = OLD_ROWS[2][0] | {"timezone": "Europe/Berlin", "run_at": "2026-10-25T02:30:00+01:00"}
    repeated = load_schedule(row)
    assert isinstance(repeated, OnceSchedule)
    run_at = repeated.run_at
    assert (run_at.utcoffset(), run_at.fold, run_at.tzinfo) == (timedelta(hours=1), 1, BERLIN)
    naive = load_schedule(row | {"run_at": "2026-12-25T09:00:00"})
    assert isinstance(naive, OnceSchedule)
    assert naive.run_at == berlin(2026, 12, 25, 9) and naive.run_at.tzinfo == BERLIN


@pytest.mark.parametrize(
    ("data", "problems"),
    [
        ("{not json", ["not valid JSON"]),
        ("[1, 2]", ["must be a JSON object", "list"]),
        ({"expression": "5m"}, ["'schedule_type' field is missing"]),
        (
            OLD_ROWS[0][0] | {"schedule_type": "hourly"},
            ["unknown schedule_type 'hourly'", "'cron', 'interval', 'once'"],
        ),
        (OLD_ROWS[0][0] | {"cron": None}, ["Stored cron schedule", "cron: no cron expression"]),
        (OLD_ROWS[0][0] | {"cron": "0 9 * * 8"}, ["Stored cron schedule", "'0 9 * * 8' is invalid"]),
        (
            OLD_ROWS[1][0] | {"interval_seconds": -60.0},
            ["Stored interval schedule", "interval_seconds: -60.0", "greater than 0"],
        ),
        (OLD_ROWS[1][0] | {"interval_seconds": "5400"}, ["interval_seconds: '5400' is invalid"]),
        (OLD_ROWS[1][0] | {"anchor": "soon"}, ["anchor: 'soon' is not an ISO 8601 date-time"]),
        (OLD_ROWS[2][0] | {"run_at": None}, ["Stored once schedule", "run_at: no one-off time"]),
        (
            {"schedule_type": "once", "expression": 5, "timezone": "UTC"},
            ["expression: non-string value 5", "'description' field is missing", "'run_at' field is missing"],
        ),
    ],
)
def test_load_schedule_of_a_broken_row_names_the_problem(data: Any, problems: list[str]) -> None:
    with pytest.raises(InvalidScheduleError) as excinfo:
        load_schedule(data)
    for problem in problems:
        assert problem in str(excinfo.value)


def test_load_schedule_of_an_unknown_zone_raises_the_zone_error() -> None:
    with pytest.raises(InvalidTimezoneError) as excinfo:
        load_schedule(OLD_ROWS[1][0] | {"timezone": "Nowhere/Special"})
    assert excinfo.value.name == "Nowhere/Special"


def test_loaded_schedules_share_their_strings_and_their_fields_set() -> None:
    rows = [json.loads(json.dumps(OLD_ROWS[0][0])) for _ in range(2)]
    first, second = (load_schedule(row) for row in rows)
    assert rows[0]["expression"] is not rows[1]["expression"]
    for key in ("expression", "description", "timezone", "cron"):
        assert getattr(first, key) is getattr(second, key) is sys.intern(rows[0][key])
    assert first.model_fields_set is second.model_fields_set
    assert first.model_fields_set == set(CronSchedule.model_fields)


def test_a_schedule_is_frozen_and_the_base_class_is_abstract() -> None:
    schedule = parse_schedule("cron", "0 9 * * *", "UTC", now=NOW)
    with pytest.raises(ValueError, match="frozen"):
        schedule.cron = "0 10 * * *"  # type: ignore[misc]
    with pytest.raises(TypeError, match="abstract"):
        BaseSchedule(schedule_type="cron", expression="x", timezone="UTC", description="x")  # type: ignore[abstract]


def test_loaded_cron_schedules_are_shared_and_interval_schedules_are_not() -> None:
    cron = parse_schedule("cron", "0 9 * * 1-5", "Europe/Berlin", now=NOW).model_dump(mode="json")
    interval = parse_schedule("interval", "5m", "UTC", now=NOW).model_dump(mode="json")

    assert load_schedule(dict(cron)) is load_schedule(json.dumps(cron))
    first, second = load_schedule(interval), load_schedule(interval)
    assert first == second and first is not second  # an interval keeps its own anchor
