"""The bounds of durations and times (`schedules.bounds`): every parser checks them and raises one error family."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from mcp_scheduler.errors import (
    InvalidArgumentError,
    InvalidJobInputError,
    InvalidScheduleError,
    InvalidTimezoneError,
    OutOfBoundsError,
    SchedulerError,
)
from mcp_scheduler.fire_times import backfill_times, preview_fire_times
from mcp_scheduler.policies import catchup_seconds
from mcp_scheduler.schedules import parse_interval, parse_moment, parse_schedule, parse_time
from mcp_scheduler.schedules.bounds import EARLIEST, LATEST, MAX_DURATION, MIN_DURATION, bounded_duration, bounded_time

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_every_argument_error_is_one_family_of_value_errors() -> None:
    for error in (InvalidScheduleError, InvalidTimezoneError, InvalidJobInputError, OutOfBoundsError):
        assert issubclass(error, InvalidArgumentError)
    assert issubclass(InvalidArgumentError, SchedulerError) and issubclass(InvalidArgumentError, ValueError)


def test_the_bounds_are_a_hundred_years_and_the_years_1970_to_9000() -> None:
    assert MAX_DURATION == timedelta(days=36525) and MIN_DURATION == timedelta(microseconds=1)
    assert (EARLIEST.year, LATEST.year) == (1970, 9000)
    assert LATEST + MAX_DURATION < datetime.max.replace(tzinfo=UTC)  # a fire after the last time is still a time


def test_a_duration_at_the_bounds_is_accepted_and_one_beyond_is_refused_naming_it() -> None:
    assert bounded_duration(MAX_DURATION.total_seconds(), "x") == MAX_DURATION
    assert bounded_duration(1e-6, "x") == MIN_DURATION
    for seconds, words in ((MAX_DURATION.total_seconds() + 1, "longer than 100 years"), (1e308, "longer than"),
                           (float("inf"), "longer than"), (float("nan"), "longer than"),
                           (1e-7, "shorter than one microsecond")):
        with pytest.raises(OutOfBoundsError, match=words) as caught:
            bounded_duration(seconds, "The wait 'w'")
        assert str(caught.value).startswith("The wait 'w' is")


def test_a_time_at_the_bounds_is_accepted_and_one_beyond_is_refused_naming_it() -> None:
    assert bounded_time(EARLIEST, "t") == EARLIEST and bounded_time(LATEST, "t") == LATEST
    plus14 = timezone(timedelta(hours=14))  # year 1 at +14:00 is before year 1 in UTC: refused before converting
    for moment in (EARLIEST - timedelta(microseconds=1), LATEST + timedelta(microseconds=1),
                   datetime(1, 1, 1, tzinfo=plus14), datetime.max.replace(tzinfo=UTC)):
        with pytest.raises(OutOfBoundsError, match="years 1970 to 9000") as caught:
            bounded_time(moment, "since 'x'")
        assert "give a time from 1970-01-01 to 9000-12-31" in str(caught.value)


@pytest.mark.parametrize("expression", ["9999999 weeks", "every 99999999 days", "2999999 days", "36526 days",
                                        "PT9999999999999999H", "P36526D", "876601h", "1" + "0" * 400 + " seconds"])
def test_an_interval_over_a_hundred_years_is_out_of_bounds_in_every_grammar(expression: str) -> None:
    with pytest.raises(OutOfBoundsError, match="longer than 100 years"):
        parse_schedule("interval", expression, "UTC", now=NOW)
    assert parse_interval("36525 days") == MAX_DURATION


@pytest.mark.parametrize("expression", ["9999-12-31T23:59:59", "9001-01-01", "9000-12-31T23:59:59-14:00",
                                        "0001-01-01T00:00:00+14:00", "in 36526 days", "in 9999999 weeks"])
def test_a_one_off_time_beyond_the_years_is_out_of_bounds(expression: str) -> None:
    with pytest.raises(OutOfBoundsError):
        parse_schedule("once", expression, "UTC", now=NOW, misfire_grace_time=None)


def test_an_early_one_off_time_is_out_of_bounds_before_it_is_too_old() -> None:
    with pytest.raises(OutOfBoundsError, match="'0001-01-01'"):
        parse_schedule("once", "0001-01-01", "UTC", now=NOW)
    assert parse_schedule("once", "1970-01-01", "UTC", now=NOW, misfire_grace_time=None).run_at == EARLIEST


@pytest.mark.parametrize("text", ["0001-01-01", "9999-12-31T23:59:59-14:00", "9999999 weeks", "9999999 weeks ago",
                                  "PT9999999999999999H", "1969-12-31T23:59:59Z", "30000 days"])
def test_since_and_until_beyond_the_bounds_are_out_of_bounds_naming_the_field(text: str) -> None:
    with pytest.raises(OutOfBoundsError, match="^since "):
        parse_moment(text, "since", "UTC", NOW)


def test_policy_times_beyond_the_years_are_out_of_bounds_and_others_keep_their_zone() -> None:
    with pytest.raises(OutOfBoundsError, match="^policy.start_at '9999-12-31'"):
        parse_time("9999-12-31", "policy.start_at", "UTC")
    with pytest.raises(InvalidJobInputError, match="not an ISO 8601 time"):
        parse_time("tomorrow", "policy.end_at", "UTC")
    assert parse_time("2030-01-01T09:00", "policy.end_at", "Europe/Berlin").utcoffset() == timedelta(hours=1)


def test_a_catchup_window_duration_over_a_hundred_years_is_out_of_bounds() -> None:
    with pytest.raises(OutOfBoundsError, match="^policy.catchup_window '99999999999999 days' is longer"):
        catchup_seconds("99999999999999 days")
    with pytest.raises(InvalidJobInputError, match="between 0 s and one year"):
        catchup_seconds(1e308)
    assert catchup_seconds("2h") == 7200


def test_schedules_have_no_fire_time_after_the_latest_time() -> None:
    hundred_years = parse_schedule("interval", "36525 days", "UTC", now=NOW)
    start = datetime(9000, 12, 31, tzinfo=UTC)
    assert preview_fire_times(hundred_years, 50, NOW, start_at=start) == []
    assert hundred_years.next_fire_time(LATEST - timedelta(days=1), LATEST) is None
    minutely = parse_schedule("cron", "* * * * *", "UTC", now=NOW)
    times = preview_fire_times(minutely, 50, NOW, start_at=datetime(9000, 12, 31, 23, 57, tzinfo=UTC))
    assert [t.minute for t in times] == [57, 58, 59]
    assert minutely.next_fire_time(None, LATEST) is None


def test_a_backfill_over_every_accepted_year_counts_without_overflowing() -> None:
    yearly = parse_schedule("cron", "0 0 1 1 *", "UTC", now=NOW)
    times, total = backfill_times(yearly, EARLIEST, NOW, 1000)
    assert total == len(times) == 57 and times[0] == EARLIEST
    hundred_years = parse_schedule("interval", "36525 days", "UTC", now=NOW)
    assert backfill_times(hundred_years, EARLIEST, NOW, 1000)[1] == 1
