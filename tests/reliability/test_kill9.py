"""kill -9 at random moments, then a restart: nothing acknowledged is lost and no fire runs twice.

Each cycle starts a real HTTP server on one SQLite file, keeps it busy (sleeper runs in progress,
`once` jobs firing every 50 ms, run_now calls), kills it with SIGKILL after a random delay and
starts it again. Then:
- every job whose schedule_job answered is there (a `once` job that started is `completed`);
- every run_now that answered has its record, as it answered;
- no fire ran twice: each (job, scheduled time) has at most one run that started, and each
  `once` job's sleeper started at most once (the sleeper's own file says what really ran);
- every run the kill cut short is recorded `interrupted`; no run stays `running`.

A second test kills a runner whose jobs keep skipping fires (1 s jobs whose runs take 3.5 s), on both stores:
after the restart every due fire either ran or has a record (skipped, or missed while nothing ran), once.

`make test` runs 1 cycle of each; `MCP_SCHEDULER_KILL9_CYCLES=20` (`make soak`) runs more. The totals are the
`kill9` and `kill9 with skipped fires (...)` figures (printed at the end, kept in bench/results/reliability.json).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests._net import TEST_TOKEN, authorized, eventually, free_port, stop, wait_until_listening
from tests.reliability._figures import Figures
from tests.reliability._support import account_fires, jobs, marks, runs
from tests.reliability.test_signals import ROOT, child_env, server_argv

CYCLES = int(os.environ.get("MCP_SCHEDULER_KILL9_CYCLES", "1"))
FIGURE_KEYS = ("cycles", "acknowledged_jobs", "acknowledged_run_now", "lost_jobs", "lost_records", "double_runs",
               "interrupted_recorded", "interrupted_unrecorded", "left_running")
STARTED = {"success", "error", "timeout", "cancelled", "interrupted", "running"}


@dataclass
class Acknowledged:
    """What the server answered before it was killed."""

    jobs: set[str] = field(default_factory=set)
    runs: dict[str, str] = field(default_factory=dict)  # run_id -> status answered
    calls: int = 0
    first: asyncio.Event = field(default_factory=asyncio.Event)  # set by the first job answered

    def job(self, job_id: str) -> None:
        self.jobs.add(job_id)
        self.first.set()


def _spawn_server(database: Path | str, port: int, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            server_argv(database, "--transport", "http", "--port", str(port), "--auth-token", TEST_TOKEN, *extra),
            cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sink,
        )


def start_server(database: Path | str, port: int, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """An HTTP server on `database` (the test's token), once it listens on `port`."""
    process = _spawn_server(database, port, log, *extra)
    wait_until_listening(process, port, log=str(log))
    return process


def start_servers(
    database: Path | str, ports: list[int], logs: list[Path], *extra: str
) -> list[subprocess.Popen[bytes]]:
    """One HTTP server on `database` per port, started side by side (each start takes seconds of imports); which
    of them becomes the runner is up to them."""
    processes = [_spawn_server(database, port, log, *extra) for port, log in zip(ports, logs, strict=True)]
    try:
        for process, port, log in zip(processes, ports, logs, strict=True):
            wait_until_listening(process, port, log=str(log))
    except BaseException:
        for process in processes:
            process.kill()
            process.wait(timeout=10)
        raise
    return processes


def sleeper(token: str, seconds: float, path: Path) -> dict[str, Any]:
    return {"operation": "sleep", "seconds": seconds, "token": token, "path": str(path)}


async def keep_busy(url: str, cycle: int, mark_file: Path, acknowledged: Acknowledged) -> None:
    """Schedule and run until the server dies under us."""
    rng = random.Random(cycle)
    try:
        async with Client(authorized(url)) as client:
            for k in range(6):  # runs in progress most of the time
                job_id = f"c{cycle}-every-{k}"
                args = {"schedule_type": "interval", "schedule": "1 second", "agentool_name": "sleeper",
                        "input_data": sleeper(job_id, rng.uniform(0.2, 0.8), mark_file), "job_id": job_id}
                result = await client.call_tool("schedule_job", args)
                acknowledged.calls += 1
                if not result.is_error:
                    acknowledged.job(job_id)
            for k in range(400):
                job_id = f"c{cycle}-once-{k}"
                args = {"schedule_type": "once", "schedule": f"in {0.3 + 0.05 * k:.2f} seconds",
                        "agentool_name": "sleeper", "input_data": sleeper(job_id, 0.05, mark_file), "job_id": job_id}
                result = await client.call_tool("schedule_job", args)
                acknowledged.calls += 1
                if not result.is_error:
                    acknowledged.job(job_id)
                if k % 5 == 0:
                    token = f"c{cycle}-now-{k}"
                    ran = await client.call_tool(
                        "run_now", {"agentool_name": "sleeper", "input_data": sleeper(token, 0.01, mark_file)}
                    )
                    acknowledged.calls += 1
                    if not ran.is_error and ran.structured_content:
                        acknowledged.runs[ran.structured_content["run_id"]] = ran.structured_content["status"]
    except BaseException as exc:  # the kill ends the session in whatever way the client reports it
        if isinstance(exc, asyncio.CancelledError):
            raise


async def one_cycle(cycle: int, tmp: Path, rng: random.Random, totals: Counter[str]) -> None:
    database, mark_file, log = tmp / "s.db", tmp / "marks", tmp / "server.log"
    port = free_port()
    process = start_server(database, port, log)
    acknowledged = Acknowledged()
    busy = asyncio.ensure_future(keep_busy(f"http://127.0.0.1:{port}/mcp", cycle, mark_file, acknowledged))
    # The random moment counts from the first answered job: on a loaded machine the client's first call can take
    # longer than the whole window, and a kill before any answer tests nothing.
    first = asyncio.ensure_future(acknowledged.first.wait())
    await asyncio.wait({busy, first}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    first.cancel()
    assert acknowledged.first.is_set(), f"cycle {cycle}: no schedule_job answered within 60 s (see {log})"
    await asyncio.wait({busy}, timeout=rng.uniform(0.3, 2.0))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    await asyncio.wait_for(busy, 30)
    marks_at_kill = marks(mark_file)
    running_at_kill = {r["run_id"] for r in runs(database) if r["status"] == "running"}

    # restart: the next scheduler finds what the killed one left
    port = free_port()
    process = start_server(database, port, log)
    try:
        async with Client(authorized(f"http://127.0.0.1:{port}/mcp")) as client:
            await client.call_tool("scheduler_status", {})  # it has opened, so unfinished runs are marked
        stored_jobs = jobs(database)
        stored = runs(database)
        started_tokens = Counter(token for token, what in marks(mark_file) if what == "start")
        started_at_kill = Counter(token for token, what in marks_at_kill if what == "start")
        ended_at_kill = Counter(token for token, what in marks_at_kill if what == "end")

        lost_jobs = acknowledged.jobs - stored_jobs.keys()
        by_id = {r["run_id"]: r for r in stored}
        lost_records = [run_id for run_id in acknowledged.runs if run_id not in by_id]
        wrong_records = [run_id for run_id, status in acknowledged.runs.items()
                         if run_id in by_id and by_id[run_id]["status"] != status]
        fires = Counter((r["job_id"], r["scheduled_time"]) for r in stored
                        if r["status"] in STARTED and r["scheduled_time"] is not None)
        double_fires = [key for key, n in fires.items() if n > 1]
        double_once = [t for t, n in started_tokens.items() if "-once-" in t and n > 1]
        # Runs the killed server left running are interrupted now, and not run again.
        still_running = [run_id for run_id in running_at_kill if by_id[run_id]["status"] != "interrupted"]
        # A once job whose sleeper had started and not ended at the kill was cut short: it must be on record.
        cut_short = {t for t in started_at_kill if "-once-" in t and ended_at_kill[t] < started_at_kill[t]}
        interrupted = {r["job_id"] for r in stored if r["status"] == "interrupted"}
        unrecorded_interruptions = sorted(cut_short - interrupted)
        started_but_scheduled = [t for t in started_at_kill if "-once-" in t and t in stored_jobs
                                 and stored_jobs[t]["state"] != "completed"]

        totals.update(
            cycles=1,
            acknowledged_jobs=len(acknowledged.jobs),
            acknowledged_run_now=len(acknowledged.runs),
            lost_jobs=len(lost_jobs),
            lost_records=len(lost_records) + len(wrong_records),
            double_runs=len(double_fires) + len(double_once),
            interrupted_recorded=len(cut_short & interrupted),
            interrupted_unrecorded=len(unrecorded_interruptions),
            left_running=len(still_running),
        )
        assert not lost_jobs, f"cycle {cycle}: acknowledged jobs missing after the restart: {sorted(lost_jobs)[:5]}"
        assert not lost_records, f"cycle {cycle}: answered run_now records missing: {lost_records[:5]}"
        assert not wrong_records, f"cycle {cycle}: answered run_now records changed: {wrong_records[:5]}"
        assert not double_fires, f"cycle {cycle}: fires that ran twice: {double_fires[:5]}"
        assert not double_once, f"cycle {cycle}: once jobs whose AgenTool ran twice: {double_once[:5]}"
        assert not unrecorded_interruptions, (
            f"cycle {cycle}: cut-short runs not recorded: {unrecorded_interruptions} "
            f"{[r for r in stored if r['job_id'] in unrecorded_interruptions]} "
            f"{[stored_jobs.get(t, {}).get('state') for t in unrecorded_interruptions]}"
        )
        assert not started_but_scheduled, f"cycle {cycle}: started once jobs not completed: {started_but_scheduled}"
        assert not still_running, f"cycle {cycle}: runs left running by the kill: {still_running}"
    finally:
        stop(process)


async def test_kill_9_at_random_moments_loses_nothing_acknowledged_and_runs_no_fire_twice(
    tmp_path: Path, figures: Figures
) -> None:
    rng = random.Random(int(os.environ.get("MCP_SCHEDULER_KILL9_SEED", "9")))
    totals: Counter[str] = Counter()
    try:
        for cycle in range(CYCLES):
            await one_cycle(cycle, tmp_path, rng, totals)
    finally:  # the figures so far, also when a cycle fails
        figures.add("kill9", **{key: totals[key] for key in FIGURE_KEYS})
    assert totals["cycles"] == CYCLES and totals["acknowledged_jobs"] > 0


SKIPPING_JOBS = 3
RUN_S = 3.5  # each run spans three more fires of its 1 s job, which are skipped (max_instances 1)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "skips.db")
    return str(request.getfixturevalue("postgres_url"))


async def skipping_cycle(cycle: int, database: str, tmp: Path, rng: random.Random, totals: Counter[str]) -> None:
    """Schedule jobs that skip most of their fires, kill -9 the server, restart it; then account for every fire."""
    mark_file, log = tmp / "marks", tmp / "server.log"
    keep_all = ("--history-limit", "100000")  # every record stays for the count (the default keeps 100 a job)
    job_ids = [f"c{cycle}-skips-{k}" for k in range(SKIPPING_JOBS)]
    port = free_port()
    process = start_server(database, port, log, *keep_all)
    try:
        async with Client(authorized(f"http://127.0.0.1:{port}/mcp")) as client:
            for job_id in job_ids:
                result = await client.call_tool("schedule_job", {
                    "schedule_type": "interval", "schedule": "1 second", "agentool_name": "sleeper",
                    "input_data": sleeper(job_id, RUN_S, mark_file), "job_id": job_id,
                })
                assert not result.is_error, result
        await asyncio.sleep(rng.uniform(2.5, 6.5))  # the moment of the kill is the point
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    killed_at = datetime.now().astimezone()

    port = free_port()
    process = start_server(database, port, log, *keep_all)
    try:
        def caught_up() -> bool:  # the new runner has fired each job (its downtime's fires are then recorded)
            started = {r["job_id"] for r in runs(database) if r["started_at"]
                       and datetime.fromisoformat(r["started_at"]) > killed_at}
            return started >= set(job_ids)

        await eventually(caught_up, within=20, what="the restarted runner firing every job")
        async with Client(authorized(f"http://127.0.0.1:{port}/mcp")) as client:
            for job_id in job_ids:  # the next cycle's server does not fire these
                assert not (await client.call_tool("cancel_job", {"job_id": job_id})).is_error
    finally:
        stop(process)

    records = [r for r in runs(database) if r["job_id"] in job_ids]
    accounts = {job_id: account_fires(records, job_id, 1.0) for job_id in job_ids}
    started = Counter((r["job_id"], r["scheduled_time"]) for r in records if r["status"] in STARTED)
    totals.update(
        cycles=1,
        due=sum(a.due for a in accounts.values()),
        ran=sum(started.values()),
        skipped_recorded=sum(1 for r in records if r["status"] == "skipped"),
        missed_recorded=sum(1 for r in records if r["status"] == "missed"),
        unrecorded=sum(len(a.lost) for a in accounts.values()),
        recorded_twice=sum(max(0, a.accounted - a.due) for a in accounts.values()),
        double_runs=sum(1 for n in started.values() if n > 1),
    )
    lost = {job_id: a.lost for job_id, a in accounts.items() if a.lost}
    assert not lost, f"cycle {cycle}: due fires with no record: {lost}"
    assert all(a.accounted == a.due for a in accounts.values()), f"cycle {cycle}: fires recorded twice: {accounts}"
    assert max(started.values()) == 1, f"cycle {cycle}: fires that ran twice: {started.most_common(3)}"


async def test_kill_9_with_skipped_fires_pending_leaves_a_record_of_every_due_fire(
    database: str, tmp_path: Path, figures: Figures
) -> None:
    rng = random.Random(int(os.environ.get("MCP_SCHEDULER_KILL9_SEED", "9")))
    totals: Counter[str] = Counter()
    backend = "PostgreSQL" if database.startswith("postgresql://") else "SQLite"
    began = time.monotonic()
    try:
        for cycle in range(CYCLES):
            await skipping_cycle(cycle, database, tmp_path, rng, totals)
    finally:
        figures.add(f"kill9 with skipped fires ({backend})", seconds=round(time.monotonic() - began), **totals)
    assert totals["cycles"] == CYCLES and totals["skipped_recorded"] > 0
