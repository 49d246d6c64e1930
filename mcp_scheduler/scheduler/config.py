"""The settings of a scheduler (`ServiceConfig`) and the constants of its life cycle."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..clocks import CLOCK_JUMP, Clocks
from ..downtime import DEFAULT_CATCHUP_WINDOW

__all__ = ["ServiceConfig"]

CANCEL_GRACE_SECONDS = 5.0  # how long cancelled runs get to record themselves when the scheduler closes
INTERRUPTED_NOTE = ("the scheduler stopped while the run was in progress (a crash, a kill or a lost runner lease); "
                    "it was not run again")
# The same, of a run that is retried: its job's retry_on has `interrupted` (at least once).
INTERRUPTED_RETRIED_NOTE = ("the scheduler stopped while the run was in progress (a crash, a kill or a lost runner "
                            "lease); retried, as its job's retry_on has interrupted")
# Why stop_runs stops a job's runs in flight: "<reason> while this run was in progress" is the note of each.
CANCELLED_JOB = "the job was cancelled"
UPDATED_JOB = "the job was updated"
STOPPED_SCHEDULER = "the scheduler was stopped (stop_scheduler)"
LEASE_LOST = "lease lost (this process could no longer confirm the runner lease; another may run the jobs now)"
SHUT_DOWN = "the server shut down and its close timeout ({seconds:g} s) ran out"


@dataclass(frozen=True)
class ServiceConfig:
    """Settings of a scheduler.

    `database`: SQLite file, a `postgresql://` URL, or None to keep everything in memory. `timezone`: default IANA zone
    of schedules (None: the machine's). `history_limit`: runs kept per job. `flush_delay`: how long
    run records are gathered before one batched write. `start_paused`: open without running jobs.
    `use_lease`: take part in the runner lease of a database file: of all processes on one file, the
    lease holder runs the jobs and the others (standbys) serve the same jobs and take over when it stops.
    `close_timeout`: how long `close()` lets runs in progress finish (then they are cancelled and recorded so).
    `lease_time` (PostgreSQL): how long the runner lease outlives a runner that died or was cut off.
    `max_concurrent_runs`: runs in progress at a time in this process (scheduled ones, retries, backfills and
    run_now); more due fires wait for a slot (within their misfire_grace_time), which keeps the server
    answering however many jobs are due; a run_now that finds none free is refused.
    `environ`: where `!env:NAME` values in jobs' input_data are read from (None: this process's environment).
    `secrets`: the variable names that `!env:NAME` may name (the operator's allow-list); any other name
    is refused, without saying whether it is set. Names starting with MCP_SCHEDULER_ (the server's own
    settings) are refused even when listed.
    `max_jobs`: jobs a store may hold (scheduled, paused or completed; counted in the store, so for every
    process on it). `max_jobs_per_principal`: jobs one principal without scheduler:admin may hold (counted among the
    jobs this process knows of; admins, the operator included, have `max_jobs` only). `min_interval`: the shortest
    time (seconds) between two fires of a schedule, checked when a job is scheduled, updated or previewed.
    `max_runs_per_job`: runs of one job in progress at once in this process, whatever its max_instances or overlap
    policy asks (a larger max_instances is refused).
    `inbox_limit`: unread inbox messages kept; further posts are refused until some are read.
    `catchup_window`: seconds a fire due while nothing ran (no process of the store was running, the machine was
    off or asleep, its clock jumped forward) may still start late; jobs may set their own (policy.catchup_window).
    Beyond it the fire is recorded missed and the inbox says so. Lateness while the scheduler runs (a fire waiting
    for a run slot) is judged by each job's misfire_grace_time instead.
    `protect_managed_jobs`: refuse (`ManagedJobError`) instead of warn when a job that a jobs file manages is
    changed by other means than that file's `mcp-scheduler apply`.
    `clocks`: the wall and monotonic clocks compared to notice sleep and clock jumps (None: the real ones);
    `clock_jump`: by how many seconds they may part between two looks before it counts as one.
    """

    database: str | None = None
    timezone: str | None = None
    history_limit: int = 100
    flush_delay: float = 0.05
    start_paused: bool = False
    use_lease: bool = True
    close_timeout: float = 10.0
    max_concurrent_runs: int = 1000
    lease_time: float = 10.0
    environ: Mapping[str, str] | None = None
    secrets: tuple[str, ...] = ()
    max_jobs: int = 10_000
    max_jobs_per_principal: int = 1000
    min_interval: float = 1.0
    max_runs_per_job: int = 10
    inbox_limit: int = 1000
    catchup_window: float = DEFAULT_CATCHUP_WINDOW
    protect_managed_jobs: bool = False
    clocks: Clocks | None = None
    clock_jump: float = CLOCK_JUMP
