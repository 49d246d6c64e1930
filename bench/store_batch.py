"""`write_batch` of 10,000 run records (with their jobs' bookkeeping) on each store backend.

`python -m bench.store_batch [ROUNDS]`: each round writes 10,000 new runs of 100 jobs, then writes
the same 10,000 runs again (each replaced, with a new seq), on a fresh SQLite file and on a fresh
PostgreSQL schema (the server that scripts/postgres.sh finds or starts). Reported: the median per
backend; the SQLite figure is the baseline, PostgreSQL/SQLite is the ratio. No goal: for context.
Not part of `python -m bench` (it needs a PostgreSQL server).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from mcp_scheduler import Job, JobDefinition
from mcp_scheduler.models import RunRecord
from mcp_scheduler.schedules import parse_schedule
from mcp_scheduler.store import Bookkeeping, SchedulerStore, SQLiteStore

from ._common import Report, Row, bench_main, postgres_schema, stats, temp_dir

NAME = "store_batch"
RUNS, JOBS = 10_000, 100


def _batch(tag: str) -> tuple[list[Job], list[RunRecord], list[Bookkeeping]]:
    t0 = datetime.now(UTC)
    schedule = parse_schedule("interval", "1 minute", "UTC")
    jobs = [
        Job(JobDefinition(job_id=f"job-{i}", agentool_name="noop", schedule=schedule, created_at=t0), "scheduled", t0)
        for i in range(JOBS)
    ]
    runs = [
        RunRecord(
            run_id=f"{tag}-{i}", job_id=f"job-{i % JOBS}", agentool_name="noop", trigger="schedule", status="success",
            scheduled_time=t0 + timedelta(seconds=i), started_at=t0 + timedelta(seconds=i),
            finished_at=t0 + timedelta(seconds=i, milliseconds=3), duration_ms=3.0, result={"ok": True, "n": i},
        )
        for i in range(RUNS)
    ]
    books = [Bookkeeping(j.job_id, "scheduled", t0 + timedelta(minutes=1), t0, "success") for j in jobs]
    return jobs, runs, books


async def _time(store: SchedulerStore, rounds: int) -> tuple[list[float], list[float]]:
    await store.open()
    try:
        jobs, _, _ = _batch("x")
        await store.insert_jobs(jobs)
        fresh, again = [], []
        for r in range(rounds):
            _, runs, books = _batch(f"r{r}")
            t = time.perf_counter()
            await store.write_batch(runs, books, 100)
            fresh.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await store.write_batch(runs, books, 100)
            again.append((time.perf_counter() - t) * 1000)
        return fresh, again
    finally:
        await store.close()


async def run(rounds: float = 5) -> Report:
    report = Report(NAME, f"write_batch of {RUNS:,} run records of {JOBS} jobs, SQLite vs PostgreSQL")
    n = int(rounds)
    with temp_dir("store-batch") as folder:
        sqlite_fresh, sqlite_again = await _time(SQLiteStore(folder / "batch.sqlite"), n)
    report.add(Row("write_batch, new runs: SQLite", stats(sqlite_fresh)["median"], "ms", n=n))
    report.add(Row("write_batch, same runs again: SQLite", stats(sqlite_again)["median"], "ms", n=n))
    data: dict[str, Any] = {"sqlite": {"fresh_ms": sqlite_fresh, "again_ms": sqlite_again}}
    async with postgres_schema("bench") as server:
        if server.url is None:
            report.note(f"no PostgreSQL: {server.reason}")
        else:
            from mcp_scheduler.store.postgres import PostgresStore

            pg_fresh, pg_again = await _time(PostgresStore(server.url), n)
            for what, ours, baseline in (
                ("new runs", pg_fresh, sqlite_fresh),
                ("same runs again", pg_again, sqlite_again),
            ):
                median, base = stats(ours)["median"], stats(baseline)["median"]
                report.add(Row(f"write_batch, {what}: PostgreSQL", median, "ms", "ratio", base, n=n))
            report.note(f"PostgreSQL at {server.base} (schema {server.schema}, dropped after)")
            data["postgres"] = {"fresh_ms": pg_fresh, "again_ms": pg_again}
    report.data = data
    return report


if __name__ == "__main__":
    bench_main(run, float)
