"""Run policies: what a job does when runs overlap, after downtime, on failure, and within which bounds.

`RunPolicy` is part of a job's definition (stored with it). It is given as the `policy` object of
schedule_job / update_job (`PolicyInput`, whose `catchup_window` may also be a duration such as "2h").
`describe_policy` says a policy in words for `get_job`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from agentool_bridge.errors import clip

from ._frozen import FrozenModel
from .errors import InvalidJobInputError
from .schedules.interval import parse_interval
from .success import SuccessCheck
from .timestamps import Timestamp

__all__ = [
    "BUFFER_LIMIT",
    "Catchup",
    "ChainAfter",
    "ChainOn",
    "ConditionWhen",
    "OnMessage",
    "Overlap",
    "PolicyInput",
    "RetryOn",
    "RunPolicy",
    "catchup_seconds",
    "describe_policy",
    "retry_delay",
]

Overlap = Literal["skip", "buffer_one", "buffer_all", "allow_all", "cancel_other"]
Catchup = Literal["latest", "all", "none"]
RetryOn = Literal["error", "timeout", "interrupted"]
ChainOn = Literal["success", "failure", "any"]

BUFFER_LIMIT = 100
"""Most fires `buffer_all` keeps waiting behind a run in progress (and `all` catches up); later ones are skipped."""
MAX_DELAY = 7 * 86400.0
MAX_WINDOW = 366 * 86400
"""Longest catch-up window (one year, in seconds)."""


class ChainAfter(FrozenModel):
    """`policy.after`: the job runs when a run of another job ends (docs/chains.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    job: str = Field(min_length=1, max_length=200, description="Job id whose runs start this one.")
    on: ChainOn = Field(default="success", description="Its outcome that does: success, failure or any.")


class ConditionWhen(FrozenModel):
    """`policy.when`: the job runs when a condition becomes true, an http or mcp call checked every `every` seconds
    whose result `holds` judges as a success check would (docs/triggers.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agentool_name: Literal["http", "mcp"] = Field(description="The check's job kind: http or mcp.")
    input_data: dict[str, Any] = Field(description="Its input, as a job of that kind takes.")
    holds: SuccessCheck = Field(
        default=SuccessCheck(), description="When its result counts as true (success checks); {}: the call succeeded."
    )
    every: float = Field(ge=5, le=86400, description="Seconds between two checks (5 to 86400).")


class OnMessage(FrozenModel):
    """`policy.on_message`: the job runs once for each message arriving on a queue (docs/triggers.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    queue: str = Field(min_length=1, max_length=200, description="Queue whose messages each start a run.")


class _PolicyFields(FrozenModel):
    overlap: Overlap = Field(
        default="skip",
        description="A fire during a run: skip, buffer_one, buffer_all (100 max), allow_all (max_instances) "
        "or cancel_other (stops it).",
    )
    catchup: Catchup | None = Field(
        default=None,
        description="Fires missed while down: latest (all if not coalesce), all or none.",
    )
    max_attempts: int = Field(default=1, ge=1, le=100, description="Tries per fire.")
    retry_delay: float = Field(default=30.0, gt=0, le=MAX_DELAY, description="1st retry's wait (s).")
    retry_multiplier: float = Field(default=2.0, ge=1, le=10, description="Next wait's factor.")
    retry_max_delay: float = Field(default=3600.0, gt=0, le=MAX_DELAY, description="Longest wait.")
    retry_on: tuple[RetryOn, ...] = Field(
        default=("error", "timeout"),
        description="Retried outcomes (interrupted: if idempotent).",
    )
    pause_after_failures: int | None = Field(
        default=None, ge=1, le=1000, description="Failures in a row to pause at."
    )
    jitter: float | None = Field(
        default=None, ge=0, le=86400,
        description="Random delay per fire (max s).",
    )
    max_runs: int | None = Field(
        default=None, ge=1, le=10_000_000, description="Then it finishes."
    )
    after: ChainAfter | None = Field(
        default=None, exclude_if=lambda after: after is None,  # rows of jobs without one stay as they were
        description="{job, on: success|failure|any}: run as its run ends (!trigger:result)."
    )
    on_message: OnMessage | None = Field(
        default=None, exclude_if=lambda on: on is None,
        description="{queue}: run per message (!trigger:message).",
    )
    when: ConditionWhen | None = Field(
        default=None, exclude_if=lambda when: when is None,
        description="{agentool_name: http|mcp, input_data, holds: as success, every: s}: run as it turns true."
    )

    @field_validator("retry_on")
    @classmethod
    def _no_repeats(cls, value: tuple[RetryOn, ...]) -> tuple[RetryOn, ...]:
        return tuple(dict.fromkeys(value))


class RunPolicy(_PolicyFields):
    """A job's run policy, as stored: overlap, catch-up, retries, pause on failures, jitter and bounds."""

    start_at: Timestamp | None = Field(default=None, description="No fire before this time.")
    end_at: Timestamp | None = Field(default=None, description="No fire after this time; then the job finishes.")
    catchup_window: int | None = Field(
        default=None, ge=0, le=MAX_WINDOW,
        description="Seconds a fire due while nothing ran (no scheduler process, the machine off or asleep) may "
        "still start late; None: the server's window (--catchup-window), or the job's misfire_grace_time if it set "
        "one other than 30 s.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> RunPolicy:
        if self.start_at is not None and self.end_at is not None and self.end_at <= self.start_at:
            raise ValueError("end_at must be later than start_at")
        return self


class PolicyInput(_PolicyFields):
    """The `policy` object of schedule_job and update_job (every field optional)."""

    model_config = ConfigDict(frozen=True, extra="forbid")  # a misspelt policy field is refused, not ignored

    catchup_window: float | str | None = Field(
        default=None,
        description="How late a missed fire may run: s or '2h'.",
    )
    start_at: str | None = Field(
        default=None, max_length=100,
        description="Not before (ISO).",
    )
    end_at: str | None = Field(
        default=None, max_length=100,
        description="Not after (ISO).",
    )


def catchup_seconds(value: float | str | None) -> int | None:
    """A `PolicyInput.catchup_window` as whole seconds (None: the server's window).

    Raises `InvalidJobInputError` (or `InvalidScheduleError` / `OutOfBoundsError` for a string that is not a
    duration, or one over 100 years) when it is not from 0 s to a year.
    """
    if value is None:
        return None
    if isinstance(value, str):
        seconds = parse_interval(value, what=f"policy.catchup_window {clip(value)}").total_seconds()
    else:
        seconds = float(value)
    if not 0 <= seconds <= MAX_WINDOW:
        raise InvalidJobInputError(
            f"policy.catchup_window must be between 0 s and one year (got {seconds:g} s): give seconds or a duration "
            "such as '2h'."
        )
    return round(seconds)


def _seconds(value: float) -> str:
    if value >= 3600 and value % 3600 == 0:
        return f"{value / 3600:g} h"
    if value >= 60 and value % 60 == 0:
        return f"{value / 60:g} min"
    return f"{value:g} s"


def retry_delay(policy: RunPolicy, attempt: int) -> float:
    """Seconds to wait before attempt `attempt + 1`, after attempt `attempt` (1-based) failed."""
    return min(policy.retry_delay * policy.retry_multiplier ** (attempt - 1), policy.retry_max_delay)


def describe_policy(
    policy: RunPolicy, *, coalesce: bool = True, max_instances: int = 1, runs_per_job: int = BUFFER_LIMIT
) -> str:
    """The policy in words, e.g. "skips a fire while running; retries 3 times, 30 s then 60 s then 120 s";
    `runs_per_job` is the server's limit of runs of one job at once (--max-runs-per-job)."""
    wide = min(max_instances if max_instances > 1 else BUFFER_LIMIT, runs_per_job)
    overlap = {
        "skip": "skips a fire while a run is in progress" if max_instances <= 1
        else f"skips a fire while {max_instances} runs are in progress",
        "buffer_one": "runs a fire that comes during a run right after it (at most one waiting)",
        "buffer_all": f"runs fires that come during a run one after another (up to {BUFFER_LIMIT} waiting)",
        "allow_all": f"runs overlapping fires at once (up to {wide} at a time)",
        "cancel_other": "cancels the run in progress when the next fire comes",
    }[policy.overlap]
    parts = [overlap]
    catchup = policy.catchup or ("latest" if coalesce else "all")
    caught = {"latest": "catches up once after downtime", "all": "catches up every missed fire after downtime",
              "none": "does not catch up after downtime"}[catchup]
    if policy.catchup_window is not None and catchup != "none":
        caught += f" (within {_seconds(policy.catchup_window)})"
    parts.append(caught)
    if policy.max_attempts > 1:
        retries = policy.max_attempts - 1
        delays = " then ".join(_seconds(retry_delay(policy, n)) for n in range(1, min(retries, 4) + 1))
        more = " ..." if retries > 4 else ""
        on = ", ".join(policy.retry_on)
        parts.append(f"retries {retries} time{'s' if retries > 1 else ''} on {on}, {delays}{more}")
    if (failures := policy.pause_after_failures) is not None:
        parts.append(f"pauses after {failures} failure{'s' if failures > 1 else ''} in a row")
    if policy.jitter:
        parts.append(f"starts up to {_seconds(policy.jitter)} late (jitter)")
    if policy.start_at is not None:
        parts.append(f"starts at {_when(policy.start_at)}")
    if policy.end_at is not None:
        parts.append(f"ends at {_when(policy.end_at)}")
    if (after := policy.after) is not None:
        parts.append(f"runs after each run of job {after.job!r} that ends " + {
            "success": "in success", "failure": "in failure", "any": "(any outcome)"}[after.on])
    if (when := policy.when) is not None:
        parts.append(f"runs when its {when.agentool_name} check turns true (checked every {_seconds(when.every)})")
    if (on_message := policy.on_message) is not None:
        parts.append(f"runs once for each message on queue {on_message.queue!r}")
    if policy.max_runs is not None:
        parts.append(f"stops after {policy.max_runs} run{'s' if policy.max_runs > 1 else ''}")
    return "; ".join(parts)


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")
