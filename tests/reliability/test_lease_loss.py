"""Fencing after a lease loss on PostgreSQL (issue 21): two server processes, `--lease-time 3`, one-time jobs that
run 4 s with retries on. While they run, the runner loses its lease: its lease session is terminated
(pg_terminate_backend), or the process is frozen (SIGSTOP) past the lease time and thawed once the retry started.
The side effects are counted outside the scheduler (the sleeper's marks): a job that opts in to retries of
interrupted runs does its work fully once, never in two runs at the same time; one with the default policy
(retry_on without `interrupted`) is not run again.

`make test` runs 1 loss of each kind; `MCP_SCHEDULER_LEASE_LOSSES=10` (`make soak`) runs 10 of each.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
from mcp import Client

from mcp_scheduler.postgres_lease import HOLDER_QUERY, WHERE, lease_key
from tests._net import authorized, eventually, free_port, stop
from tests.reliability._figures import Figures
from tests.reliability._support import marks, runs
from tests.reliability.test_failover import _role
from tests.reliability.test_kill9 import sleeper, start_servers

LOSSES = int(os.environ.get("MCP_SCHEDULER_LEASE_LOSSES", "1"))  # of each kind
LEASE_S = 3.0
RUN_S = 4.0
OPTED_IN = {"max_attempts": 3, "retry_delay": 1, "retry_on": ["error", "timeout", "interrupted"]}
DEFAULT = {"max_attempts": 3, "retry_delay": 1}


def _most_at_once(mark_file: Path, token: str) -> int:
    """The most runs of `token` that were between their start and their end or cut at the same time."""
    running = most = 0
    for name, what in marks(mark_file):
        if name != token:
            continue
        if what == "start":
            running += 1
            most = max(most, running)
        else:
            running = max(0, running - 1)
    return most


def _double_side_effects(mark_file: Path, token: str, how: str) -> bool:
    """Did `token`'s work happen more than once, or (after a session termination, where the old runner is awake)
    did two runs of it go on at the same time? A frozen runner's run is in progress, frozen, while the retry
    starts: it must be cut when thawed, not go on to its end."""
    if _ends(mark_file, token) != 1:
        return True
    if how == "terminate":
        return _most_at_once(mark_file, token) != 1
    lines = [what for name, what in marks(mark_file) if name == token]
    return lines != ["start", "start", "cut", "end"] and lines != ["start", "cut", "start", "end"]


def _ends(mark_file: Path, token: str) -> int:
    return sum(1 for name, what in marks(mark_file) if name == token and what == "end")


def _starts(mark_file: Path, token: str) -> int:
    return sum(1 for name, what in marks(mark_file) if name == token and what == "start")


def _records(database: str, job_id: str) -> list[dict[str, Any]]:
    return [r for r in runs(database) if r["job_id"] == job_id]


def _settled(database: str, job_id: str) -> bool:
    records = _records(database, job_id)
    return bool(records) and all(r["status"] != "running" for r in records)


async def _terminate_lease_session(database: str) -> None:
    async with await psycopg.AsyncConnection.connect(database, autocommit=True) as admin:
        where = (await (await admin.execute(WHERE)).fetchone() or [""])[0]
        row = await (await admin.execute(HOLDER_QUERY, (lease_key(str(where)),))).fetchone()
        assert row is not None, "nobody holds the lease"
        await admin.execute("SELECT pg_terminate_backend(%s)", (row[0],))


async def _runner_of(urls: list[str], within: float) -> int:
    deadline = time.monotonic() + within
    while True:
        roles = [await _role(u) for u in urls]
        if "runner" in roles:
            return roles.index("runner")
        assert time.monotonic() < deadline, f"no runner within {within} s: {roles}"


async def _lose_lease(
    how: str, database: str, processes: list[subprocess.Popen[bytes]], urls: list[str], runner: int, token: str,
    mark_file: Path,
) -> tuple[float, float | None]:
    """Make the runner lose its lease; returns how long until the other process took over and, after a session
    termination, until the old runner had cut its run short."""
    cut = time.monotonic()
    other = 1 - runner
    if how == "terminate":
        await _terminate_lease_session(database)
        while await _role(urls[other]) != "runner":
            assert time.monotonic() - cut < 3 * LEASE_S, "the standby did not take over"
        takeover = time.monotonic() - cut
        await eventually(lambda: (token, "cut") in marks(mark_file), within=2 * LEASE_S,
                         what="the old runner cutting its run short")
        return takeover, time.monotonic() - cut
    processes[runner].send_signal(signal.SIGSTOP)
    try:
        while await _role(urls[other]) != "runner":
            assert time.monotonic() - cut < 3 * LEASE_S, "the standby did not take over"
        takeover = time.monotonic() - cut
        # Thawed while the retry runs: the worst moment for the old runner to go on with its run.
        await eventually(lambda: _starts(mark_file, token) >= 2, within=3 * LEASE_S + RUN_S,
                         what="the retry of the frozen runner's run starting")
    finally:
        processes[runner].send_signal(signal.SIGCONT)
    return takeover, None


async def test_a_lease_lost_by_session_termination_or_sigstop_never_runs_a_fire_twice_at_once(
    postgres_url: str, tmp_path: Path, figures: Figures
) -> None:
    database, mark_file = postgres_url, tmp_path / "marks"
    rng = random.Random(21)
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}/mcp" for p in ports]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    lease = ("--lease-time", str(LEASE_S))
    processes = start_servers(database, ports, logs, *lease)
    kinds = ["terminate", "sigstop"] * LOSSES
    takeovers: dict[str, list[float]] = {"terminate": [], "sigstop": []}
    cancelled_after: list[float] = []  # from the termination of the lease session to the old run cut short
    try:
        for n, how in enumerate(kinds):
            runner = await _runner_of(urls, within=3 * LEASE_S)
            async with Client(authorized(urls[1 - runner])) as client:  # scheduled through the standby
                for job_id, policy in ((f"in-{n}", OPTED_IN), (f"once-{n}", DEFAULT)):
                    result = await client.call_tool("schedule_job", {
                        "job_id": job_id, "schedule_type": "once", "schedule": "in 0.1 seconds",
                        "agentool_name": "sleeper",
                        "input_data": {**sleeper(job_id, RUN_S, mark_file), "mark_cut": True},
                        "policy": policy,
                    })
                    assert not result.is_error, result
            await eventually(lambda n=n: _starts(mark_file, f"in-{n}") and _starts(mark_file, f"once-{n}"),
                             within=10, what="both runs starting")
            await asyncio.sleep(rng.uniform(0.2, 1.5))  # the moment of the loss within the run is the point
            takeover, cancelled = await _lose_lease(how, database, processes, urls, runner, f"in-{n}", mark_file)
            takeovers[how].append(takeover)
            if cancelled is not None:
                cancelled_after.append(cancelled)
            await eventually(lambda n=n: _ends(mark_file, f"in-{n}") >= 1 and _settled(database, f"in-{n}")
                             and _settled(database, f"once-{n}"), within=4 * LEASE_S + 2 * RUN_S,
                             what="the opted-in job doing its work once and both jobs' records settling")
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                stop(process)

    doubles = {}
    for n in range(len(kinds)):
        opted, default = f"in-{n}", f"once-{n}"
        if _double_side_effects(mark_file, opted, kinds[n]):
            doubles[opted] = [what for name, what in marks(mark_file) if name == opted]
        assert _starts(mark_file, default) == 1, f"{default} (retry_on without interrupted) ran again"
        assert "retry" not in [r["trigger"] for r in _records(database, default)]
        statuses = Counter(r["status"] for r in _records(database, opted))
        assert statuses["success"] == 1, statuses
        [retry] = [r for r in _records(database, opted) if r["trigger"] == "retry"]
        assert "held" in retry["note"] and "known stopped" in retry["note"], retry["note"]
    figures.add("lease loss with retries on (PostgreSQL)", lease_s=LEASE_S, terminated=LOSSES, sigstopped=LOSSES,
                takeover_after_termination_max_s=round(max(takeovers["terminate"]), 3),
                takeover_after_sigstop_max_s=round(max(takeovers["sigstop"]), 3),
                old_run_cut_after_termination_max_s=round(max(cancelled_after), 3),
                double_side_effects=len(doubles))
    assert doubles == {}
