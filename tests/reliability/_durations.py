"""Hypothesis strategies of durations and times at and beyond every bound, in every grammar the scheduler reads.

Durations: numbers from zero and 5e-324 up to 1e308 (and 10**30 as an integer), negative ones, and NaN / inf
spelled out, as "N unit", compact "1h30m", "every N minutes", ISO 8601 "PTnH" / "PnDTnH" / "PnW", and "in N
units" for one-off times. Times: ISO 8601 dates and date-times of the years 1 to 9999 (with offsets up to
+-14:00, "Z", or naive), "now", durations ago. Arguments built from them for schedule_job, update_job,
preview_schedule, get_history and backfill_job.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

UNITS = ["s", "sec", "seconds", "m", "min", "minutes", "h", "hr", "hours", "d", "days", "w", "wk", "weeks"]
EDGE_NUMBERS = [0, 1e-7, 5e-324, 1e-6, 36525, 36526, 5_259_600, 5_259_601, 3_155_760_000, 3_155_760_001,
                10**15, 10**30, 1e308, 2**63]
SPELLED = ["nan", "NaN", "inf", "Infinity", "-inf", "1e400", "1e308", "9" * 400]

# A number as the grammars write it: digits, with or without a fraction; never in exponent form (the grammars
# do not read it, which is an answer too, but not the bound this is about).
numbers: st.SearchStrategy[float | int] = st.one_of(
    st.sampled_from(EDGE_NUMBERS),
    st.integers(0, 10**20),
    st.floats(min_value=0, max_value=1e308, allow_nan=False, allow_infinity=False),
)


def written(number: float | int) -> str:
    text = f"{number:f}" if isinstance(number, float) else str(number)
    return text.rstrip("0").rstrip(".") if "." in text else text


amounts = numbers.map(written)
spelled = st.sampled_from(SPELLED)


@st.composite
def durations(draw: st.DrawFn) -> str:
    """A duration in one of the grammars, its amounts anywhere from 0 to 1e308, sometimes negative or NaN."""
    amount = draw(st.one_of(amounts, amounts, spelled))
    unit = draw(st.sampled_from(UNITS))
    form = draw(st.sampled_from(["plain", "compact", "every", "iso", "iso_mixed", "iso_week", "negative", "ago"]))
    if form == "plain":
        return f"{amount} {unit}"
    if form == "compact":
        return f"{amount}h{draw(amounts)}m"
    if form == "every":
        return f"every {amount} {unit}"
    if form == "iso":
        return f"PT{amount}{draw(st.sampled_from('HMS'))}"
    if form == "iso_mixed":
        return f"P{amount}DT{draw(amounts)}H{draw(amounts)}M"
    if form == "iso_week":
        return f"P{amount}W"
    if form == "negative":
        return f"-{amount} {unit}"
    return f"{amount} {unit} ago"


@st.composite
def iso_times(draw: st.DrawFn) -> str:
    """An ISO 8601 date or date-time of the years 1 to 9999: naive, "Z", or an offset up to +-14:00."""
    moment = draw(st.one_of(
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
        st.sampled_from([datetime(1, 1, 1), datetime(1969, 12, 31, 23, 59, 59), datetime(1970, 1, 1),
                         datetime(9000, 12, 31, 23, 59, 59), datetime(9001, 1, 1), datetime(9999, 12, 31, 23, 59, 59)]),
    ))
    zone = draw(st.sampled_from(["naive", "Z", "offset", "date"]))
    if zone == "date":
        return moment.date().isoformat()
    if zone == "naive":
        return moment.isoformat()
    if zone == "Z":
        return moment.isoformat() + "Z"
    minutes = draw(st.sampled_from([-14 * 60, 14 * 60, -1, 1, 0]) | st.integers(-14 * 60, 14 * 60))
    return moment.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat()


moments = st.one_of(iso_times(), durations(), st.just("now"))
once_times = st.one_of(iso_times(), durations().map(lambda d: f"in {d}"), st.just("now"))
seconds = st.one_of(numbers, numbers.map(lambda n: -n), st.sampled_from([float("nan"), float("inf")]))

LOG = {"operation": "log", "level": "INFO", "message": "bounds"}


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    """A `policy` object whose times and durations come from the strategies above."""
    policy: dict[str, Any] = {}
    if draw(st.booleans()):
        policy["start_at"] = draw(iso_times())
    if draw(st.booleans()):
        policy["end_at"] = draw(iso_times())
    if draw(st.booleans()):
        policy["catchup_window"] = draw(st.one_of(durations(), seconds))
    for name in ("jitter", "retry_delay", "retry_max_delay"):
        if draw(st.integers(0, 3)) == 0:
            policy[name] = draw(seconds)
    return policy


@st.composite
def bounds_calls(draw: st.DrawFn, job_ids: list[str]) -> tuple[str, dict[str, Any]]:
    """A call of schedule_job, update_job, preview_schedule, get_history or backfill_job with durations and
    times from the strategies above (`job_ids`: jobs that exist, for update_job and backfill_job)."""
    tool = draw(st.sampled_from(["schedule_job", "update_job", "preview_schedule", "get_history", "backfill_job"]))
    if tool == "get_history":
        arguments = {name: draw(moments) for name in ("since", "until") if draw(st.booleans())}
        return tool, arguments or {"since": draw(moments)}
    if tool == "backfill_job":
        arguments = {"job_id": draw(st.sampled_from(job_ids)), "since": draw(moments)}
        if draw(st.booleans()):
            arguments["until"] = draw(moments)
        return tool, arguments
    kind = draw(st.sampled_from(["interval", "once", "cron"]))
    expression = {"interval": durations(), "once": once_times, "cron": st.sampled_from(["* * * * *", "0 0 29 2 *"])}
    arguments = {"schedule_type": kind, "schedule": draw(expression[kind]), "timezone": "UTC"}
    if draw(st.booleans()):
        arguments["policy"] = draw(policies())
    if tool == "preview_schedule":
        arguments["count"] = draw(st.sampled_from([1, 50]))
        return tool, arguments
    if tool == "update_job":
        arguments["job_id"] = draw(st.sampled_from(job_ids))
    else:
        arguments.update(agentool_name="logging", input_data=LOG)
    for name in ("misfire_grace_time", "timeout"):
        if draw(st.integers(0, 3)) == 0:
            arguments[name] = draw(seconds)
    return tool, arguments
