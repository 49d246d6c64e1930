"""Disk full under a real server: its SQLite file on a 3 MB tmpfs (skipped where one cannot be mounted), jobs firing
every second, then the disk taken by another file that keeps taking every byte freed, then 1 MB given back.

- the server's own WAL never fills the disk while there is room (it filled a 3 MB volume in 4 s before);
- while the disk is full no fire runs unless its start is committed: the sleeper's file (outside the small disk)
  shows each run that really happened, and each of them has a stored record; the fires that could not start are
  recorded `skipped`, once the disk has room again;
- clients get "the database's disk is full: FILE ... free" from the tools that write, never an internal error, and
  the tools that read answer;
- once 1 MB is free again, the same process takes writes again (no restart) and keeps them within that room (its WAL
  does not take it back); when it stops it leaves no stale file on the disk.

`make test` keeps the disk full for 5 s, `make soak` for 20 s. The totals are the `disk_full` figure (printed at
the end, kept in bench/results/reliability.json).
"""

from __future__ import annotations

import asyncio
import os
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
WITH_ROOM = 4.0  # seconds of fires before and after the disk is full
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


def sizes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file()}


def give_back(filler: Path, size: int) -> None:
    """Free `size` bytes of the disk by cutting the filler (the rest stays taken)."""
    os.truncate(filler, max(0, filler.stat().st_size - size))


async def keep_full(disk: Path, until: asyncio.Event) -> Path:
    """Take every byte the server frees (its WAL truncated) until `until` is set, as another program would."""
    filler = fill(disk)
    while not until.is_set():
        await asyncio.to_thread(fill, disk)
        await asyncio.sleep(0.05)
    return filler


class Answers:
    """The tool calls' answers, by kind: answered, a clear "disk is full", an internal error, anything else."""

    def __init__(self, database: Path) -> None:
        self.told = (f"The database's disk is full: {database} could not be written (", " free on its file system")
        self.counts: Counter[str] = Counter()

    def add(self, result: Any) -> None:
        said = text(result)
        if not result.is_error:
            self.counts["answered"] += 1
        elif "Internal error" in said:
            self.counts["internal"] += 1
        elif all(part in said for part in self.told):
            self.counts["disk_full"] += 1
        else:
            self.counts[f"other: {said[:200]}"] += 1


async def calls(client: Client, mark_file: Path, answers: Answers, seconds: float, tag: str) -> None:
    """For `seconds`: schedule a job, run one now, read history and status, five times a second."""
    deadline = time.monotonic() + seconds
    number = 0
    while time.monotonic() < deadline:
        number += 1
        job_id = f"{tag}-{number}"
        once = {"schedule_type": "once", "schedule": "in 1 hour", "job_id": job_id, "agentool_name": "sleeper",
                "input_data": sleeper(job_id, 0.0, mark_file)}
        for tool, args in (("schedule_job", once),
                           ("run_now", {"job_id": "every-0"}),
                           ("get_history", {"job_id": "every-1", "limit": 5}),
                           ("scheduler_status", {})):
            answers.add(await client.call_tool(tool, args))
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("full_for", [5.0, pytest.param(20.0, marks=pytest.mark.soak)])
async def test_on_a_full_disk_no_fire_runs_without_its_start_committed_clients_are_told_and_writes_resume(
    disk: Path, tmp_path: Path, figures: Figures, full_for: float
) -> None:
    database, mark_file, log = disk / "s.db", tmp_path / "marks", tmp_path / "server.log"
    port = free_port()
    process = start_server(database, port, log)  # 100 records per job: none pruned in this test
    full, after = Answers(database), Answers(database)
    try:
        async with Client(authorized(f"http://127.0.0.1:{port}/mcp")) as client:
            for k in range(JOBS):
                job_id = f"every-{k}"
                result = await client.call_tool("schedule_job", {
                    "schedule_type": "interval", "schedule": "1 second", "agentool_name": "sleeper",
                    "input_data": sleeper(job_id, 0.0, mark_file), "job_id": job_id})
                assert not result.is_error, text(result)

            largest_wal = 0
            for _ in range(int(WITH_ROOM / 0.1)):  # fires with room: the WAL stays well within the disk
                largest_wal = max(largest_wal, await asyncio.to_thread(wal_size, database))
                await asyncio.sleep(0.1)
            assert largest_wal < 2 << 20

            marks_before = len(marks(mark_file))
            done = asyncio.Event()
            hog = asyncio.ensure_future(keep_full(disk, done))
            await calls(client, mark_file, full, full_for, "while-full")
            done.set()
            filler = await hog
            marks_while_full = len(marks(mark_file)) - marks_before

            freed_at = time.monotonic()
            await asyncio.to_thread(give_back, filler, 1 << 20)
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
            await calls(client, mark_file, after, WITH_ROOM, "after")  # the 1 MB given back stays usable
            free_at_end = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            files_at_end = await asyncio.to_thread(sizes, disk)
    finally:
        code = stop(process)
    assert code == 0, (free_at_end, files_at_end, after.counts)

    stored = runs(database)
    started = Counter(r["job_id"] for r in stored if r["status"] in STARTED)
    ran = Counter(token for token, what in marks(mark_file) if what == "start")
    without_start = {job: n - started[job] for job, n in ran.items() if n > started[job]}
    not_run = [r for r in stored if r["status"] == "skipped" and "disk is full" in (r.get("note") or "")]
    left = names(disk)
    figures.add("disk_full", disk_mb=3, jobs=JOBS, full_s=full_for, runs=sum(ran.values()),
                runs_while_full=marks_while_full, runs_without_committed_start=sum(without_start.values()),
                fires_recorded_not_run=len(not_run), calls_answered_while_full=full.counts["answered"],
                disk_full_errors=full.counts["disk_full"], internal_errors=full.counts["internal"],
                largest_wal_kb=largest_wal // 1024, recovery_s=round(recovery, 2), freed_mb=1,
                errors_after_freeing=after.counts.total() - after.counts["answered"],
                free_kb_at_end=free_at_end // 1024)

    assert without_start == {}
    assert not_run, "fires due while the disk was full are recorded, once it has room"
    assert set(full.counts) == {"answered", "disk_full"}, full.counts  # no internal error, nothing unclear
    assert full.counts["disk_full"] >= 2 and full.counts["answered"] >= 2  # writes refused clearly, reads answered
    assert set(after.counts) == {"answered"}, after.counts
    assert "Internal error" not in log.read_text(encoding="utf-8")
    assert not [name for name in left if name.endswith(".tmp") or name.endswith(".procs")], left
