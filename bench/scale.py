"""100,000 jobs in SQLite: schedule throughput, first page of list_jobs, restart time and memory.

1. Service: `SchedulerService.schedule` in a loop (interval and cron jobs mixed, none due during the
   run), until TARGET jobs or a time budget; the rest of the database is then built by bulk insert
   (`SQLiteStore.insert_jobs`) of definitions copied from the jobs really scheduled (same schedules,
   new job ids), so start-up parses and loads the same kind of rows. The table says which.
2. MCP: an in-memory `mcp.Client(build_server(...))` on that database calls `schedule_job` MCP_JOBS
   times (rate in jobs/s), then times the first page of `list_jobs` (default limit).
3. Restart: the service is closed; `python -m mcp_scheduler --db F` is spawned and timed from spawn to
   the first `tools/list` answer and to the first `list_jobs` answer; then its VmRSS is read.
Goals (project issue): first page <= 50 ms, restart <= 5 s, RSS <= 300 MB.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._common import LOG_INPUT, Report, Row, StdioRpc, bench_main, ours_argv, quiet_logging, rss_mb, stats, temp_dir

NAME = "scale"
TARGET = 100_000
MCP_JOBS = 2_000
SERVICE_BUDGET_S = 120.0
INTERVALS = ("1 hour", "2 hours", "90 minutes", "1 day", "6h", "PT3H")


def job_request(i: int, hour_now: int) -> dict[str, Any]:
    """Job i: even -> interval, odd -> cron at a time at least an hour away (nothing fires during the run)."""
    if i % 2 == 0:
        schedule_type, schedule = "interval", INTERVALS[(i // 2) % len(INTERVALS)]
    else:
        hour = (hour_now + 2 + (i // 2) % 20) % 24
        days = "* * *" if i % 4 == 1 else "* * 1-5"
        schedule_type, schedule = "cron", f"{(i // 40) % 60} {hour} {days}"
    return {
        "schedule_type": schedule_type,
        "schedule": schedule,
        "agentool_name": "logging",
        "input_data": LOG_INPUT,
        "job_id": f"job-{i:06d}",
        "job_name": f"benchmark job {i}",
    }


async def schedule_through_service(database: Path, budget_s: float) -> dict[str, Any]:
    from mcp_scheduler import SchedulerInput, SchedulerRuntime, ServiceConfig

    hour_now = datetime.now(UTC).hour
    marks: list[tuple[int, float]] = []
    # The benchmark's own job limit: the default (10,000, --max-jobs) would refuse most of its jobs.
    async with SchedulerRuntime(ServiceConfig(database=str(database), timezone="UTC", max_jobs=TARGET)) as runtime:
        service = runtime.service
        t0 = time.perf_counter()
        i = 0
        while i < TARGET - MCP_JOBS:
            await service.schedule(SchedulerInput(operation="schedule", **job_request(i, hour_now)))
            i += 1
            if i % 1000 == 0:
                marks.append((i, time.perf_counter() - t0))
                if time.perf_counter() - t0 > budget_s:
                    break
        elapsed = time.perf_counter() - t0
    return {"jobs": i, "seconds": elapsed, "rate": i / elapsed, "marks": marks}


async def bulk_fill(database: Path, scheduled: int, total: int) -> dict[str, Any]:
    """Copy the definitions of the `scheduled` real jobs (new ids) until `total` jobs exist."""
    from mcp_scheduler import Job
    from mcp_scheduler.store import SQLiteStore

    t0 = time.perf_counter()
    store = SQLiteStore(str(database))
    await store.open()
    try:
        templates = [job async for page in store.load_jobs() for job in page]
        assert len(templates) == scheduled, (len(templates), scheduled)
        copies = []
        for i in range(scheduled, total):
            template = templates[i % scheduled]
            definition = template.definition.model_copy(
                update={"job_id": f"job-{i:06d}", "job_name": f"benchmark job {i} (copy)"}
            )
            copies.append(Job(definition, template.state, template.next_run_time))
        for start in range(0, len(copies), 10_000):
            await store.insert_jobs(copies[start : start + 10_000])
    finally:
        await store.close()
    return {"jobs": total - scheduled, "seconds": time.perf_counter() - t0}


async def through_mcp(database: Path, first_id: int) -> dict[str, Any]:
    from mcp import Client

    from mcp_scheduler import SchedulerRuntime
    from mcp_scheduler.server import build_server
    from mcp_scheduler.settings import Settings

    settings = Settings(database=str(database), timezone="UTC", discover_entry_points=False, max_jobs=TARGET)
    runtime = SchedulerRuntime(settings.service_config())
    server = build_server(runtime, settings)
    hour_now = datetime.now(UTC).hour
    t_open = time.perf_counter()
    async with runtime, Client(server) as client:
        open_s = time.perf_counter() - t_open
        await client.list_tools()
        t0 = time.perf_counter()
        for i in range(first_id, first_id + MCP_JOBS):
            result = await client.call_tool("schedule_job", job_request(i, hour_now))
            assert not result.is_error, result.content
        schedule_s = time.perf_counter() - t0
        page_ms: list[float] = []
        total = None
        for k in range(23):
            t = time.perf_counter()
            result = await client.call_tool("list_jobs", {})
            if k >= 3:  # 3 warm-up calls
                page_ms.append((time.perf_counter() - t) * 1000)
            assert not result.is_error, result.content
            total = result.structured_content["total"]
            assert len(result.structured_content["jobs"]) == 20
    return {
        "open_s": open_s,
        "schedule_s": schedule_s,
        "rate": MCP_JOBS / schedule_s,
        "first_page_ms": page_ms,
        "total": total,
    }


async def restart(database: Path, errlog: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    rpc = await StdioRpc.spawn(ours_argv(database), errlog)
    try:
        await rpc.initialize()
        t_init = time.perf_counter()
        await rpc.request("tools/list")
        t_tools = time.perf_counter()
        result = await rpc.call_tool("list_jobs", {})
        t_list = time.perf_counter()
        total = result["structuredContent"]["total"]
        rss_first = rss_mb(rpc.pid)
        second = time.perf_counter()
        await rpc.call_tool("list_jobs", {})
        second_ms = (time.perf_counter() - second) * 1000
        await asyncio.sleep(1.0)
        rss_settled = rss_mb(rpc.pid)
    finally:
        await rpc.close(limit_s=60)
    return {
        "initialize_s": t_init - t0,
        "tools_list_s": t_tools - t0,
        "list_jobs_s": t_list - t0,
        "second_list_jobs_ms": second_ms,
        "rss_mb": max(rss_first, rss_settled),
        "rss_first_mb": rss_first,
        "rss_settled_mb": rss_settled,
        "total": total,
    }


async def run(budget_s: float = SERVICE_BUDGET_S, restarts: int = 2) -> Report:
    quiet_logging()
    report = Report(NAME, f"{TARGET:,} jobs in SQLite (interval and cron mixed)")
    with temp_dir(NAME) as tmp:
        db = tmp / "scale.sqlite"
        svc = await schedule_through_service(db, budget_s)
        bulk = await bulk_fill(db, svc["jobs"], TARGET - MCP_JOBS) if svc["jobs"] < TARGET - MCP_JOBS else None
        mcp = await through_mcp(db, TARGET - MCP_JOBS)
        assert mcp["total"] == TARGET, mcp["total"]
        errlog = tmp / "stderr.log"
        runs = [await restart(db, errlog) for _ in range(restarts)]
        size_mb = db.stat().st_size / 2**20
    page = stats(mcp["first_page_ms"])
    report.add(Row("schedule rate, SchedulerService.schedule", svc["rate"], "jobs/s", n=svc["jobs"]))
    report.add(Row("schedule rate, MCP schedule_job (in memory)", mcp["rate"], "jobs/s", n=MCP_JOBS))
    report.add(Row("list_jobs first page via MCP, median", page["median"], "ms", "limit", goal=50, n=page["n"]))
    report.add(Row("list_jobs first page via MCP, p90", page["p90"], "ms", "limit", goal=50, n=page["n"]))
    worst = max(runs, key=lambda r: r["list_jobs_s"])
    report.add(
        Row(
            "restart: spawn -> tools/list (worst)",
            max(r["tools_list_s"] for r in runs),
            "s",
            "limit",
            goal=5,
            n=restarts,
        )
    )
    report.add(Row("restart: spawn -> first list_jobs (worst)", worst["list_jobs_s"], "s", "limit", goal=5, n=restarts))
    report.add(
        Row(
            "resident memory with 100k jobs (worst)",
            max(r["rss_mb"] for r in runs),
            "MB",
            "limit",
            goal=300,
            n=restarts,
        )
    )
    report.add(Row("  in-process open of the service (via Client)", mcp["open_s"], "s"))
    report.add(
        Row(
            "  list_jobs over stdio after restart (2nd call)",
            stats([r["second_list_jobs_ms"] for r in runs])["median"],
            "ms",
            n=restarts,
        )
    )
    how = f"{svc['jobs']:,} jobs through SchedulerService.schedule ({svc['seconds']:.0f} s)"
    if bulk:
        how += (
            f", {bulk['jobs']:,} bulk-inserted with SQLiteStore.insert_jobs (definitions copied from the real "
            f"jobs, new ids; {bulk['seconds']:.1f} s)"
        )
    how += f", {MCP_JOBS:,} through MCP schedule_job; database {size_mb:.0f} MB"
    report.note(how)
    report.note(
        "restarts: "
        + "; ".join(
            f"tools/list {r['tools_list_s']:.2f} s, list_jobs {r['list_jobs_s']:.2f} s, RSS {r['rss_first_mb']:.0f} -> "
            f"{r['rss_settled_mb']:.0f} MB"
            for r in runs
        )
    )
    report.data = {"service": svc, "bulk": bulk, "mcp": mcp, "restarts": runs, "database_mb": size_mb}
    return report


if __name__ == "__main__":
    bench_main(run, float)
