"""Lateness of 1,000 one-time jobs due at the same second, with SQLite persistence and history on.

Ours: a real `SchedulerService` on a temporary SQLite file; 1,000 'once' jobs (scheduled one by one
through `SchedulerService.schedule`) run a trivial AgenTool at one common instant a few seconds
ahead. Lateness = `started_at - scheduled_time` of each finished `RunRecord` (collected from the
event bus once all 1,000 have finished; history is then checked in the database).

Baseline, same run: bare APScheduler 3.11 `AsyncIOScheduler` + `MemoryJobStore`, 1,000 date jobs
at one instant calling a no-op coroutine function that measures `datetime.now() - scheduled`.
Rounds alternate (baseline, ours, baseline, ours) and the samples are pooled.
Goal (project issue 20): p99 ours / baseline <= 1.5.

With run policies: the same 1,000 jobs, each with retries (3 attempts), overlap buffer_all, pause after
5 failures and jitter 0 set, in the same run; goal: p99 within 2x of ours without policies.
"""

from __future__ import annotations

import asyncio
import gc
import math
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ._common import Report, Row, bench_main, quiet_logging, register_noop, stats, temp_dir

NAME = "lateness"
GOAL = 1.5
POLICY_GOAL = 2.0  # with run policies: p99 within 2x of ours without
JOBS = 1000
LEAD_S = 3.0


def _due_at(lead: float) -> datetime:
    """A whole second at least `lead` seconds from now."""
    return datetime.fromtimestamp(math.ceil(time.time() + lead), UTC)


async def bare_apscheduler(jobs: int, jobstore: Any = None) -> list[float]:
    """Lateness (ms) of `jobs` date jobs at one instant on a bare AsyncIOScheduler."""
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    lateness: list[float] = []
    done = asyncio.Event()

    scheduler = AsyncIOScheduler(timezone=UTC, jobstores={"default": jobstore or MemoryJobStore()})
    scheduler.start()
    try:
        due = _due_at(LEAD_S)
        if jobstore is not None:
            _STORED.update(lateness=lateness, done=done, jobs=jobs)
        for i in range(jobs):
            if jobstore is None:
                scheduler.add_job(
                    _bare_job,
                    "date",
                    run_date=due,
                    args=[due, lateness, done, jobs],
                    id=f"bare-{i}",
                    misfire_grace_time=None,
                )
            else:  # a persistent store pickles the job: module-level function, plain arguments
                scheduler.add_job(
                    _stored_job, "date", run_date=due, args=[due.isoformat()], id=f"bare-{i}", misfire_grace_time=None
                )
        assert datetime.now(UTC) < due, "scheduling took longer than the lead time"
        await asyncio.wait_for(done.wait(), LEAD_S + 120)
    finally:
        scheduler.shutdown(wait=False)
    return lateness


async def _bare_job(scheduled: datetime, lateness: list[float], done: asyncio.Event, jobs: int) -> None:
    lateness.append((datetime.now(UTC) - scheduled).total_seconds() * 1000)
    if len(lateness) >= jobs:
        done.set()


_STORED: dict[str, Any] = {}


async def _stored_job(scheduled: str) -> None:
    """The same, with picklable arguments only (for APScheduler's SQLAlchemy job store)."""
    lateness = _STORED["lateness"]
    lateness.append((datetime.now(UTC) - datetime.fromisoformat(scheduled)).total_seconds() * 1000)
    if len(lateness) >= _STORED["jobs"]:
        _STORED["done"].set()


def _stored_counts(database: str | Path) -> tuple[int, int]:
    """(run records of the 'late-' jobs, completed jobs) in the database (SQLite file or PostgreSQL URL)."""
    runs = "SELECT COUNT(*) FROM scheduler_runs WHERE job_id LIKE 'late-%'"
    completed = "SELECT COUNT(*) FROM scheduler_jobs WHERE state = 'completed'"
    if str(database).startswith(("postgresql://", "postgres://")):
        import psycopg

        with psycopg.connect(str(database)) as pg:
            stored = pg.execute(runs.replace("'late-%'", "%s"), ("late-%",)).fetchone()
            done = pg.execute(completed).fetchone()
        assert stored is not None and done is not None
        return int(stored[0]), int(done[0])
    with sqlite3.connect(database) as conn:
        counts = conn.execute(runs).fetchone()[0], conn.execute(completed).fetchone()[0]
    conn.close()
    return counts


POLICY = {"max_attempts": 3, "overlap": "buffer_all", "pause_after_failures": 5, "jitter": 0}
"""The run policies of the 'with policies' rounds (jitter 0: the same due instant as without)."""


async def ours(
    jobs: int, database: str | Path, policy: dict[str, Any] | None = None
) -> tuple[list[float], dict[str, Any]]:
    """Lateness (ms) of `jobs` 'once' jobs at one instant on a real SchedulerService.

    `database`: a SQLite file, or a PostgreSQL URL (then the runner lease is a `PostgresLease`, which
    claims every fire through its session).
    """
    from mcp_scheduler import RunEvent, SchedulerInput, SchedulerRuntime, ServiceConfig

    records: list[Any] = []
    done = asyncio.Event()

    def on_event(event: Any) -> None:
        if isinstance(event, RunEvent) and event.kind == "finished" and event.job_id.startswith("late-"):
            records.append(event.record)
            if len(records) >= jobs:
                done.set()

    runtime = SchedulerRuntime(ServiceConfig(database=str(database), timezone="UTC", history_limit=100))
    register_noop(registry=runtime.registry)
    async with runtime:
        service = runtime.service
        gc.freeze()  # as the server does once its jobs are loaded
        unsubscribe = service.events.subscribe(on_event)
        # calibrate the lead so that scheduling ends well before the jobs are due
        t0 = time.perf_counter()
        for i in range(20):
            await service.schedule(
                SchedulerInput(
                    operation="schedule",
                    schedule_type="interval",
                    schedule="1 hour",
                    agentool_name="noop",
                    input_data={"operation": "noop"},
                    job_id=f"calib-{i}",
                )
            )
        per_job = (time.perf_counter() - t0) / 20
        for i in range(20):
            await service.cancel(f"calib-{i}")
        due = _due_at(LEAD_S + 2 * per_job * jobs)
        t0 = time.perf_counter()
        for i in range(jobs):
            await service.schedule(
                SchedulerInput(
                    operation="schedule",
                    schedule_type="once",
                    schedule=due.isoformat(),
                    agentool_name="noop",
                    input_data={"operation": "noop", "value": i},
                    job_id=f"late-{i}",
                    policy=policy,
                )
            )
        schedule_s = time.perf_counter() - t0
        assert datetime.now(UTC) < due - timedelta(seconds=0.5), "scheduling took longer than the lead time"
        await asyncio.wait_for(done.wait(), (due - datetime.now(UTC)).total_seconds() + 120)
        all_done = datetime.now(UTC)
        unsubscribe()
    lateness = [
        (r.started_at - r.scheduled_time).total_seconds() * 1000
        for r in records
    ]
    statuses = {r.status for r in records}
    stored_runs, completed = await asyncio.to_thread(_stored_counts, database)
    assert statuses == {"success"}, statuses
    assert stored_runs == jobs, f"history has {stored_runs} runs, expected {jobs}"
    assert completed == jobs, f"{completed} jobs completed in the database, expected {jobs}"
    info = {
        "schedule_rate_per_s": jobs / schedule_s,
        "all_finished_after_ms": (all_done - due).total_seconds() * 1000,
        "stored_runs": stored_runs,
    }
    return lateness, info


async def run(rounds: int = 2) -> Report:
    quiet_logging()
    report = Report(NAME, f"{JOBS} jobs due at the same second: lateness (ms)")
    bare: list[float] = []
    mine: list[float] = []
    policed: list[float] = []
    per_round: list[dict[str, Any]] = []
    with temp_dir(NAME) as tmp:
        for r in range(rounds):
            round_bare = await bare_apscheduler(JOBS)
            round_ours, info = await ours(JOBS, tmp / f"round{r}.sqlite")
            round_policed, _ = await ours(JOBS, tmp / f"policies{r}.sqlite", POLICY)
            bare += round_bare
            mine += round_ours
            policed += round_policed
            per_round.append({"bare": stats(round_bare), "ours": stats(round_ours), "policies": stats(round_policed),
                              **info})
        sqla: list[float] | None = None
        try:
            import sqlalchemy  # noqa: F401
        except ImportError:
            report.note("APScheduler SQLAlchemyJobStore on SQLite: skipped (sqlalchemy is not installed)")
        else:
            from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

            store = SQLAlchemyJobStore(url=f"sqlite:///{tmp / 'sqla.sqlite'}")
            sqla = await bare_apscheduler(JOBS, store)
    o, b = stats(mine), stats(bare)
    report.add(Row("lateness p50", o["median"], "ms", "info", b["median"], n=o["n"]))
    report.add(Row("lateness p99", o["p99"], "ms", "ratio", b["p99"], GOAL, n=o["n"]))
    report.add(Row("lateness max", o["max"], "ms", "info", b["max"], n=o["n"]))
    p = stats(policed)
    report.add(Row("p99 with run policies (vs ours without)", p["p99"], "ms", "ratio", o["p99"], POLICY_GOAL,
                   n=p["n"]))
    if sqla is not None:
        s = stats(sqla)
        report.add(Row("context: APScheduler SQLAlchemyJobStore p99", s["p99"], "ms", "info", b["p99"], n=s["n"]))
    finished = [p["all_finished_after_ms"] for p in per_round]
    rate = [p["schedule_rate_per_s"] for p in per_round]
    report.note(
        f"{rounds} alternating rounds of {JOBS} jobs each, pooled; per-round p99 ours "
        + ", ".join(f"{p['ours']['p99']:.0f}" for p in per_round)
        + " ms, baseline "
        + ", ".join(f"{p['bare']['p99']:.0f}" for p in per_round)
        + " ms"
    )
    report.note(
        "ours: all 1,000 runs finished "
        + ", ".join(f"{f:.0f}" for f in finished)
        + " ms after the due second; scheduled at "
        + ", ".join(f"{x:.0f}" for x in rate)
        + " jobs/s through SchedulerService.schedule"
    )
    report.note(f"with policies: {POLICY}")
    report.data = {"rounds": per_round, "stats": {"ours": o, "bare": b, "policies": p}}
    return report


if __name__ == "__main__":
    bench_main(run, int)
