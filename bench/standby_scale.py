"""100,000 jobs on one SQLite file, a runner and a standby: the standby's first `list_jobs` page.

Setup: as `bench.scale` builds its database (jobs through `SchedulerService.schedule` for a short
budget, the rest bulk-inserted with `SQLiteStore.insert_jobs` from copies of those definitions; interval
and cron mixed, none due during the run), until 100,000 jobs.
Then a runner (`python -m mcp_scheduler --db F --transport http`) is started and waited for; then a
standby on the same file, timed from spawn to its first `list_jobs` answer through an `mcp.Client`
(streamable HTTP on 127.0.0.1). Through a client connected to the standby, `list_jobs` (first page,
default limit) is called 3 times untimed, then PAGES times timed; the standby's VmRSS is read after.
The standby is stopped and started again STARTS times; the pages are pooled. The same page through
the runner is reported as context.
Goal (project issue): first page served by a standby <= 50 ms (median).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from ._common import (
    HTTP_TOKEN,
    PY,
    Report,
    Row,
    bench_main,
    child_env,
    http_transport,
    quiet_logging,
    rss_mb,
    stats,
    temp_dir,
)
from .multiprocess import _free_port, _role
from .scale import bulk_fill, schedule_through_service

NAME = "standby_scale"
TARGET = 100_000
PAGES = 20
STARTS = 2
SERVICE_BUDGET_S = 10.0


def _spawn(database: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [PY, "-m", "mcp_scheduler", "--db", str(database), "--transport", "http", "--port", str(port),
             "--timezone", "UTC", "--log-level", "WARNING", "--auth-token", HTTP_TOKEN],
            env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sink,
        )


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


async def _first_answer(url: str, process: subprocess.Popen[bytes], log: Path, limit_s: float = 120) -> int:
    """Poll `list_jobs` at `url` until it answers; return the job total."""
    from mcp import Client

    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {_tail(log)}")
        try:
            async with Client(http_transport(url)) as client:
                result = await client.call_tool("list_jobs", {})
        except Exception:
            await asyncio.sleep(0.02)
            continue
        if result.is_error:
            raise RuntimeError(str(result.content))
        return int((result.structured_content or {})["total"])
    raise RuntimeError(f"no list_jobs answer within {limit_s:.0f} s")


async def _pages(url: str) -> list[float]:
    from mcp import Client

    times: list[float] = []
    async with Client(http_transport(url)) as client:
        for k in range(3 + PAGES):
            t = time.perf_counter()
            result = await client.call_tool("list_jobs", {})
            if k >= 3:
                times.append((time.perf_counter() - t) * 1000)
            assert not result.is_error, result.content
            assert len((result.structured_content or {})["jobs"]) == 20
    return times


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def run(budget_s: float = SERVICE_BUDGET_S) -> Report:
    quiet_logging()
    report = Report(NAME, f"{TARGET:,} jobs on one SQLite file, runner + standby: the standby's first page")
    starts: list[dict[str, Any]] = []
    standby_pages: list[float] = []
    with temp_dir(NAME) as tmp:
        db = tmp / "standby.sqlite"
        svc = await schedule_through_service(db, budget_s)
        bulk = await bulk_fill(db, svc["jobs"], TARGET)
        ports = [_free_port(), _free_port()]
        urls = [f"http://127.0.0.1:{p}/mcp" for p in ports]
        t0 = time.monotonic()
        runner = _spawn(db, ports[0], tmp / "runner.log")
        standby: subprocess.Popen[bytes] | None = None
        try:
            total = await _first_answer(urls[0], runner, tmp / "runner.log")
            runner_start_s = time.monotonic() - t0
            assert total == TARGET, total
            if await _role(urls[0]) != "runner":
                raise RuntimeError("the first server is not the runner")
            for k in range(STARTS):
                t0 = time.monotonic()
                standby = _spawn(db, ports[1], tmp / f"standby{k}.log")
                total = await _first_answer(urls[1], standby, tmp / f"standby{k}.log")
                start_s = time.monotonic() - t0
                assert total == TARGET, total
                role = await _role(urls[1])
                if role != "standby":
                    raise RuntimeError(f"the second server answers as {role}, not standby")
                pages = await _pages(urls[1])
                standby_pages += pages
                starts.append({"start_s": start_s, "rss_mb": rss_mb(standby.pid), "pages_ms": pages})
                _stop(standby)
            runner_pages = await _pages(urls[0])
            runner_rss = rss_mb(runner.pid)
        finally:
            if standby is not None:
                _stop(standby)
            _stop(runner)
        size_mb = db.stat().st_size / 2**20
    page, rpage = stats(standby_pages), stats(runner_pages)
    report.add(Row("standby: list_jobs first page via MCP, median", page["median"], "ms", "limit", goal=50,
                   n=page["n"]))
    report.add(Row("standby: list_jobs first page via MCP, p90", page["p90"], "ms", n=page["n"]))
    report.add(Row("standby: spawn -> first list_jobs answer (worst)", max(s["start_s"] for s in starts), "s",
                   n=STARTS))
    report.add(Row("standby: resident memory after the pages (worst)", max(s["rss_mb"] for s in starts), "MB",
                   n=STARTS))
    report.add(Row("  runner (context): list_jobs first page via MCP, median", rpage["median"], "ms", n=rpage["n"]))
    report.add(Row("  runner (context): spawn -> first list_jobs answer", runner_start_s, "s", n=1))
    report.add(Row("  runner (context): resident memory", runner_rss, "MB", n=1))
    report.note(
        f"{svc['jobs']:,} jobs through SchedulerService.schedule ({svc['seconds']:.0f} s), {bulk['jobs']:,} "
        f"bulk-inserted with SQLiteStore.insert_jobs ({bulk['seconds']:.1f} s); database {size_mb:.0f} MB"
    )
    report.note(
        "standby starts: "
        + "; ".join(f"first answer {s['start_s']:.2f} s, RSS {s['rss_mb']:.0f} MB, page median "
                    f"{stats(s['pages_ms'])['median']:.1f} ms" for s in starts)
    )
    report.data = {"service": svc, "bulk": bulk, "starts": starts, "runner_pages_ms": runner_pages,
                   "runner_start_s": runner_start_s, "runner_rss_mb": runner_rss, "database_mb": size_mb}
    return report


if __name__ == "__main__":
    bench_main(run, float)
