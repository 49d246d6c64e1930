"""Sustained fire capacity, and how the scheduler behaves beyond it.

Capacity: N interval jobs every second running a trivial AgenTool on a real `SchedulerRuntime`
(SQLite file, history on, start of every run committed before it runs), for each N of a ramp;
fires/s = runs that finished successfully per second over the last seconds of each step. The
baseline, same run: bare APScheduler 3.11 (`AsyncIOScheduler`, memory job store, default
executor) with N interval jobs calling a no-op coroutine; fires/s = calls per second.
Capacity of each = the highest fires/s seen on the ramp. Goals (project issue): at 4,000 jobs a second at
least 0.8x bare APScheduler's fires/s in the same step, and no fall beyond our capacity (fires/s at the top of
the ramp and under overload at least 0.9x our best).

Overload: OVERLOAD_JOBS jobs every second (several times our capacity) for OVERLOAD_S seconds,
while a client calls `scheduler_status` over MCP (in memory) every 50 ms: its p99 round trip,
resident memory at the start and the end, history rows committed during the run, then the time
`close()` takes. Goals (project issue): tool calls p99 < 1 s, memory bounded, history committing,
close within close_timeout + 5 s.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from ._common import Report, Row, bench_main, quiet_logging, register_noop, rss_mb, stats, temp_dir

NAME = "overload"
RAMP = (500, 1000, 2000, 4000, 8000)
STEP_S = 6.0
OVERLOAD_JOBS = 10_000
OVERLOAD_S = 20.0
CLOSE_TIMEOUT_S = 10.0
CAPACITY_JOBS = 4000
CAPACITY_GOAL = 0.8  # fires/s at CAPACITY_JOBS jobs a second, as a share of bare APScheduler's (project issue)
NO_FALL_GOAL = 0.9  # fires/s beyond our capacity, as a share of our best: goodput must not fall under overload


async def bare_capacity(jobs: int, seconds: float) -> float:
    """Calls per second of a no-op coroutine, `jobs` interval jobs every second, bare APScheduler."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    calls: list[float] = []

    async def noop() -> None:
        calls.append(time.monotonic())

    scheduler = AsyncIOScheduler()
    for i in range(jobs):
        scheduler.add_job(noop, "interval", seconds=1, id=f"bare-{i}", misfire_grace_time=None)
    scheduler.start()
    try:
        await asyncio.sleep(seconds)
    finally:
        scheduler.pause()
        await asyncio.sleep(0.5)  # let the calls in flight end: shutdown would cancel them, logging each
        scheduler.shutdown(wait=False)
    return _rate(calls, seconds)


def _rate(times: list[float], seconds: float) -> float:
    """Events per second over the last two thirds of a step (the first third is ramp-up)."""
    if not times:
        return 0.0
    start = times[0] + seconds / 3
    end = times[0] + seconds - 0.5
    counted = [t for t in times if start <= t <= end]
    return len(counted) / max(end - start, 1e-9)


async def _runtime(database: Path, jobs: int, **config: Any) -> tuple[Any, list[float], float]:
    from mcp_scheduler import RunEvent, SchedulerInput, SchedulerRuntime, ServiceConfig

    config.setdefault("max_jobs", max(jobs, OVERLOAD_JOBS))  # its own job limit, whatever --max-jobs defaults to
    runtime = SchedulerRuntime(ServiceConfig(database=str(database), timezone="UTC", start_paused=True, **config))
    register_noop(registry=runtime.registry)
    finished: list[float] = []

    def on_event(event: Any) -> None:
        if isinstance(event, RunEvent) and event.kind == "finished" and event.record.status == "success":
            finished.append(time.monotonic())

    runtime.events.subscribe(on_event)
    await runtime.open()
    service = runtime.service
    t = time.perf_counter()
    for i in range(jobs):
        await service.schedule(
            SchedulerInput(
                operation="schedule", schedule_type="interval", schedule="1 second", agentool_name="noop",
                input_data={"operation": "noop"}, job_id=f"job-{i:05d}",
            )
        )
    scheduling_s = time.perf_counter() - t
    await service.start()  # every job's first fire one second from now, not spread over the scheduling time
    return runtime, finished, scheduling_s


async def our_capacity(database: Path, jobs: int, seconds: float) -> float:
    runtime, finished, _ = await _runtime(database, jobs)
    try:
        gc.freeze()
        finished.clear()
        await asyncio.sleep(seconds)
    finally:
        await runtime.close()
        gc.unfreeze()
    return _rate(finished, seconds)


def _history_rows(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        count = int(conn.execute("SELECT COUNT(*) FROM scheduler_runs").fetchone()[0])
    conn.close()
    return count


async def overload(database: Path) -> dict[str, Any]:
    """OVERLOAD_JOBS jobs every second; a client probing with scheduler_status; memory, history, close."""
    from mcp import Client

    from mcp_scheduler.server import build_server

    runtime, finished, scheduling_s = await _runtime(database, OVERLOAD_JOBS, close_timeout=CLOSE_TIMEOUT_S)
    server = build_server(runtime)
    round_trips: list[float] = []
    rss: list[float] = []
    rows: list[int] = []
    gc.freeze()
    try:
        async with Client(server) as client:
            began = time.monotonic()
            finished.clear()
            while time.monotonic() - began < OVERLOAD_S:
                t = time.perf_counter()
                await client.call_tool("scheduler_status", {})
                round_trips.append((time.perf_counter() - t) * 1000)
                if len(round_trips) % 20 == 1:
                    rss.append(rss_mb(os.getpid()))
                    rows.append(await asyncio.to_thread(_history_rows, database))
                await asyncio.sleep(0.05)
            fires = _rate(finished, OVERLOAD_S)
    finally:
        t = time.perf_counter()
        await runtime.close()
        close_s = time.perf_counter() - t
        gc.unfreeze()
    return {"round_trips_ms": round_trips, "rss_mb": rss, "history_rows": rows, "fires_per_s": fires,
            "close_s": close_s, "scheduling_s": scheduling_s}


async def run(step_s: float = STEP_S) -> Report:
    quiet_logging()
    report = Report(NAME, "fires/s with history on vs bare APScheduler; behaviour beyond capacity")
    ours: dict[int, float] = {}
    bare: dict[int, float] = {}
    with temp_dir(NAME) as tmp:
        for jobs in RAMP:
            bare[jobs] = await bare_capacity(jobs, step_s)
            ours[jobs] = await our_capacity(tmp / f"ramp-{jobs}.sqlite", jobs, step_s)
            print(f"   {jobs:>6} jobs/s: ours {ours[jobs]:8,.0f} fires/s, bare {bare[jobs]:8,.0f} fires/s", flush=True)
        over = await overload(tmp / "overload.sqlite")
    capacity, bare_capacity_ = max(ours.values()), max(bare.values())
    report.add(Row("sustained capacity (fires/s, best of the ramp)", capacity, "fires/s", kind="ratio",
                   baseline=bare_capacity_, higher_is_better=True,
                   note="ramp " + ", ".join(f"{j}: {ours[j]:,.0f} vs {bare[j]:,.0f}" for j in RAMP)))
    report.add(Row(f"capacity at {CAPACITY_JOBS:,} jobs/s, times slower than bare (goal: at least "
                   f"{CAPACITY_GOAL:g}x bare)", ours[CAPACITY_JOBS], "fires/s", kind="ratio",
                   baseline=bare[CAPACITY_JOBS], goal=1 / CAPACITY_GOAL, higher_is_better=True))
    top = RAMP[-1]
    report.add(Row(f"no fall beyond capacity: fires/s at {top:,} jobs/s vs our best (goal: at least "
                   f"{NO_FALL_GOAL:g}x)", ours[top], "fires/s", kind="ratio", baseline=capacity,
                   goal=1 / NO_FALL_GOAL, higher_is_better=True))
    report.add(Row(f"schedule {OVERLOAD_JOBS:,} jobs, one call each (before they run)", over["scheduling_s"], "s"))
    trips = stats(over["round_trips_ms"])
    report.add(Row(f"overload ({OVERLOAD_JOBS:,} jobs/s): scheduler_status p99", trips["p99"], "ms", kind="limit",
                   goal=1000.0, n=trips["n"]))
    report.add(Row("overload: scheduler_status median", trips["median"], "ms", n=trips["n"]))
    report.add(Row(f"overload: fires/s done vs our best (goal: at least {NO_FALL_GOAL:g}x)", over["fires_per_s"],
                   "fires/s", kind="ratio", baseline=capacity, goal=1 / NO_FALL_GOAL, higher_is_better=True))
    first, last = over["rss_mb"][0], over["rss_mb"][-1]
    report.add(Row("overload: resident memory, start -> end", last, "MB", note=f"from {first:.0f} MB"))
    committed = over["history_rows"]
    report.add(Row("overload: history rows committed during the run", committed[-1] - committed[0], "rows",
                   note="rows seen: " + ", ".join(str(r) for r in committed)))
    report.add(Row("overload: close()", over["close_s"], "s", kind="limit", goal=CLOSE_TIMEOUT_S + 5))
    return report


if __name__ == "__main__":
    bench_main(run, float)
