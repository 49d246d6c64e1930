"""Lateness of 1,000 one-time jobs due at the same second on PostgreSQL (fire claims) vs SQLite.

Ours: `bench.lateness.ours` on a real `SchedulerService` whose database is a fresh PostgreSQL schema
(the server that scripts/postgres.sh finds or starts; each round its own schema, dropped after). The
runner lease is then a `PostgresLease`, which claims every fire through its session before the run.
Lateness = `started_at - scheduled_time` of each finished `RunRecord`; history is checked in the
database (1,000 run records, 1,000 completed jobs).

Baseline, same run: the same 1,000 jobs on a single-process `SchedulerService` on a SQLite file.
Rounds alternate (SQLite, PostgreSQL, SQLite, PostgreSQL) and the samples are pooled.
Goal (project issue): p99 PostgreSQL / SQLite <= 2. Without a PostgreSQL server the SQLite rows are
reported alone and a note says why.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ._common import Report, Row, bench_main, postgres_schema, quiet_logging, stats, temp_dir
from .lateness import JOBS, ours

NAME = "lateness_pg"
GOAL = 2.0  # p99 on PostgreSQL (every fire claimed) / on SQLite


async def claims_alone(url: str, jobs: int) -> list[float]:
    """ms per `PostgresLease.claim` of `jobs` fires at one instant, gathered at once (no scheduler)."""
    import time
    from datetime import UTC, datetime

    from mcp_scheduler.postgres_lease import PostgresLease

    lease = PostgresLease(url)
    assert await lease.try_acquire()
    try:
        due = datetime.now(UTC)
        finished: list[float] = []

        async def one(i: int) -> None:
            assert await lease.claim(f"claim-{i}", due)
            finished.append((time.perf_counter() - t0) * 1000)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(jobs)))
        return finished
    finally:
        await lease.release()


async def run(rounds: int = 2) -> Report:
    quiet_logging()
    report = Report(NAME, f"{JOBS} jobs due at the same second: PostgreSQL with fire claims vs SQLite (ms)")
    sqlite: list[float] = []
    pg: list[float] = []
    per_round: list[dict[str, Any]] = []
    skipped = ""
    with temp_dir(NAME) as tmp:
        for r in range(rounds):
            round_sqlite, sqlite_info = await ours(JOBS, tmp / f"round{r}.sqlite")
            sqlite += round_sqlite
            entry: dict[str, Any] = {"sqlite": stats(round_sqlite) | sqlite_info}
            async with postgres_schema("bench_late") as server:
                if server.url is None:
                    skipped = server.reason
                else:
                    round_pg, pg_info = await ours(JOBS, server.url)
                    pg += round_pg
                    entry["postgres"] = stats(round_pg) | pg_info
                    entry["server"] = server.base
            per_round.append(entry)
        claims: list[float] = []
        async with postgres_schema("bench_claims") as server:
            if server.url is not None:
                claims = await claims_alone(server.url, JOBS)
    s = stats(sqlite)
    if pg:
        p = stats(pg)
        report.add(Row("lateness p50, PostgreSQL (claims) vs SQLite", p["median"], "ms", "info", s["median"],
                       n=p["n"]))
        report.add(Row("lateness p99, PostgreSQL (claims) vs SQLite", p["p99"], "ms", "ratio", s["p99"], GOAL,
                       n=p["n"]))
        report.add(Row("lateness max, PostgreSQL (claims) vs SQLite", p["max"], "ms", "info", s["max"], n=p["n"]))
        c = stats(claims)
        report.add(Row(f"  context: {JOBS} PostgresLease.claim gathered at once, last done after", c["max"], "ms",
                       n=c["n"], note=f"median {c['median']:.0f} ms"))
        report.note(
            f"{rounds} alternating rounds of {JOBS} jobs each, pooled; per-round p99 PostgreSQL "
            + ", ".join(f"{e['postgres']['p99']:.0f}" for e in per_round)
            + " ms, SQLite "
            + ", ".join(f"{e['sqlite']['p99']:.0f}" for e in per_round)
            + " ms"
        )
        report.note(
            "all 1,000 runs finished after the due second: PostgreSQL "
            + ", ".join(f"{e['postgres']['all_finished_after_ms']:.0f}" for e in per_round)
            + " ms, SQLite "
            + ", ".join(f"{e['sqlite']['all_finished_after_ms']:.0f}" for e in per_round)
            + " ms; scheduled at "
            + ", ".join(f"{e['postgres']['schedule_rate_per_s']:.0f}" for e in per_round)
            + " (PostgreSQL) and "
            + ", ".join(f"{e['sqlite']['schedule_rate_per_s']:.0f}" for e in per_round)
            + " (SQLite) jobs/s through SchedulerService.schedule"
        )
        report.note(f"PostgreSQL at {per_round[0]['server']}, a fresh schema per round, dropped after")
    else:
        report.add(Row("lateness p50, SQLite only", s["median"], "ms", n=s["n"]))
        report.add(Row("lateness p99, SQLite only", s["p99"], "ms", n=s["n"]))
        report.note(f"PostgreSQL skipped: {skipped}")
    report.data = {"rounds": per_round, "sqlite_ms": sqlite, "postgres_ms": pg, "claims_alone_ms": claims}
    return report


if __name__ == "__main__":
    bench_main(run, int)
