"""Disk full under a real server: its SQLite file on a 3 MB tmpfs (skipped where one cannot be mounted), jobs firing
every second, then the disk taken by another file that keeps taking every byte freed.

- the server's own WAL never fills the disk while there is room (it filled a 3 MB volume in 4 s before);
- while the disk is full no fire runs unless its start is committed: the sleeper's file (outside the small disk)
  shows each run that really happened, and each of them has a stored record; the fires that could not start are
  recorded `skipped`, once the disk has room again;
- clients get "the database's disk is full: FILE ... free" from the tools that write, never an internal error, and
  the tools that read answer;
- once the space returns, the same process takes writes again (no restart), and when it stops it leaves no stale
  file on the disk.

The totals are the `disk_full` figure (printed at the end, kept in bench/results/reliability.json).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests._disk import fill, small_disk
from tests._net import authorized, free_port, stop
from tests.reliability._figures import Figures
from tests.reliability._support import marks, runs
from tests.reliability.test_kill9 import STARTED, sleeper, start_server

JOBS = 20
FULL_FOR = 5.0  # seconds the disk stays full
WITHIN = 30.0


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with small_disk(tmp_path / "disk", "3m") as folder:
        yield folder


def text(result: Any) -> str:
    return " ".join(getattr(part, "text", "") for part in result.content)


def wal_size(database: Path) -> int:
    wal = Path(f"{database}-wal")
    return wal.stat().st_size if wal.exists() else 0


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*"))


async def keep_full(disk: Path, until: asyncio.Event) -> Path:
    """Take every byte the server frees (its WAL truncated) until `until` is set, as another program would."""
    filler = fill(disk)
    while not until.is_set():
        await asyncio.to_thread(fill, disk)
        await asyncio.sleep(0.05)
    return filler


async def test_on_a_full_disk_no_fire_runs_without_its_start_committed_clients_are_told_and_writes_resume(
    disk: Path, tmp_path: Path, figures: Figures
) -> None:
    database, mark_file, log = disk / "s.db", tmp_path / "marks", tmp_path / "server.log"
    port = free_port()
    process = start_server(database, port, log)
    answers: Counter[str] = Counter()
    try:
        async with Client(authorized(f"http://127.0.0.1:{port}/mcp")) as client:
            for k in range(JOBS):
                job_id = f"every-{k}"
                result = await client.call_tool("schedule_job", {
                    "schedule_type": "interval", "schedule": "1 second", "agentool_name": "sleeper",
                    "input_data": sleeper(job_id, 0.0, mark_file), "job_id": job_id})
                assert not result.is_error, text(result)

            largest_wal = 0
            for _ in range(40):  # 4 s of fires with room: the WAL stays well within the disk
                largest_wal = max(largest_wal, await asyncio.to_thread(wal_size, database))
                await asyncio.sleep(0.1)
            assert largest_wal < 2 << 20

            marks_before = len(marks(mark_file))
            done = asyncio.Event()
            hog = asyncio.ensure_future(keep_full(disk, done))
            deadline = time.monotonic() + FULL_FOR
            while time.monotonic() < deadline:
                for tool, args in (("schedule_job", {"schedule_type": "once", "schedule": "in 1 hour",
                                                     "agentool_name": "sleeper", "job_id": "while-full",
                                                     "input_data": sleeper("while-full", 0.0, mark_file)}),
                                   ("run_now", {"job_id": "every-0"}),
                                   ("get_history", {"job_id": "every-1", "limit": 5}),
                                   ("scheduler_status", {})):
                    result = await client.call_tool(tool, args)
                    said = text(result)
                    if not result.is_error:
                        answers["answered"] += 1
                    elif "Internal error" in said:
                        answers["internal"] += 1
                    elif "The database's disk is full: " in said and f"{database} could not be written (" in said \
                            and " free on its file system" in said:
                        answers["disk_full"] += 1
                    else:
                        answers[f"other: {said[:200]}"] += 1
                await asyncio.sleep(0.2)
            done.set()
            filler = await hog
            marks_while_full = len(marks(mark_file)) - marks_before

            freed_at = time.monotonic()
            await asyncio.to_thread(filler.unlink)
            await asyncio.to_thread(fill, disk, "more")  # the hog's last bytes too
            (disk / "more").unlink()
            result = await client.call_tool("schedule_job", {
                "schedule_type": "once", "schedule": "now", "agentool_name": "sleeper", "job_id": "after",
                "input_data": sleeper("after", 0.0, mark_file)})
            assert not result.is_error, text(result)
            for _ in range(int(WITHIN / 0.05)):
                history = await client.call_tool("get_history", {"job_id": "after"})
                found = (history.structured_content or {}).get("runs")
                if found and found[0]["status"] != "running":
                    break
                await asyncio.sleep(0.05)
            recovery = time.monotonic() - freed_at
            assert (history.structured_content or {})["runs"][0]["status"] == "success"
    finally:
        code = stop(process)
    assert code == 0

    stored = runs(database)
    started = Counter(r["job_id"] for r in stored if r["status"] in STARTED)
    ran = Counter(token for token, what in marks(mark_file) if what == "start")
    without_start = {job: n - started[job] for job, n in ran.items() if n > started[job]}
    not_run = [r for r in stored if r["status"] == "skipped" and "disk is full" in (r.get("note") or "")]
    left = names(disk)
    figures.add("disk_full", disk_mb=3, jobs=JOBS, full_s=FULL_FOR, runs=sum(ran.values()),
                runs_while_full=marks_while_full, runs_without_committed_start=sum(without_start.values()),
                fires_recorded_not_run=len(not_run), tool_answers=answers["answered"],
                disk_full_errors=answers["disk_full"], internal_errors=answers["internal"],
                largest_wal_kb=largest_wal // 1024, recovery_s=round(recovery, 2))

    assert without_start == {}
    assert not_run, "fires due while the disk was full are recorded, once it has room"
    assert answers["internal"] == 0 and set(answers) == {"answered", "disk_full"}, answers
    assert answers["disk_full"] >= 2 and answers["answered"] >= 2  # writes refused clearly, reads answered
    assert "Internal error" not in log.read_text(encoding="utf-8")
    assert not [name for name in left if name.endswith(".tmp") or name.endswith(".procs")], left
