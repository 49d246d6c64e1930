"""Three server processes on one database (a SQLite file, or PostgreSQL): all serve, one fires. kill -9
the runner again and again (runs in progress most of the time): a standby takes over within 2 s each
time on SQLite and within the lease time on PostgreSQL, no fire runs twice, none is lost (each due fire
ran or is recorded missed or interrupted), none stays `running`. On PostgreSQL also a runner frozen
(SIGSTOP, as if cut off by a partition) past its lease time: the standby takes over within the lease
time, and the thawed runner fires nothing more.

`make test` runs 1 kill cycle; `MCP_SCHEDULER_FAILOVER_CYCLES=20` (`make soak`) runs more.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests._net import authorized, eventually, free_port, stop
from tests.reliability._figures import Figures
from tests.reliability._support import account_fires, marks, runs
from tests.reliability.test_kill9 import sleeper, start_server, start_servers

CYCLES = int(os.environ.get("MCP_SCHEDULER_FAILOVER_CYCLES", "1"))
TAKEOVER_GOAL_S = {"SQLite": 2.0, "PostgreSQL": 10.0}
"""The README's goals: 2 s on a SQLite file; on PostgreSQL the lease time (10 s by default). PostgreSQL's takeover
after a kill -9 usually takes under a second too, but it also waits for the server to notice the dead session."""


async def _role(url: str) -> str | None:
    try:
        async with Client(authorized(url)) as client:
            result = await client.call_tool("scheduler_status", {})
    except Exception:
        return None
    content: dict[str, Any] = result.structured_content or {}
    return content.get("role")


@pytest.fixture(params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "shared.db")
    return str(request.getfixturevalue("postgres_url"))


def _tick(mark_file: Path) -> dict[str, Any]:
    return {"schedule_type": "interval", "schedule": "1 second", "agentool_name": "sleeper",
            "input_data": sleeper("tick", 0.6, mark_file), "job_id": "tick"}


def _starts(mark_file: Path) -> int:
    return sum(1 for _, what in marks(mark_file) if what == "start")


def _check_no_double_runs(database: str, mark_file: Path) -> tuple[int, int]:
    """Each fire ran at most once, none stayed `running`, the sleeper agrees; returns (fires, interrupted)."""
    records = runs(database)
    ran = [r for r in records if r["status"] not in ("missed", "skipped")]
    started = Counter((r["job_id"], r["scheduled_time"]) for r in ran)
    doubles = {fire: n for fire, n in started.items() if n > 1}
    assert doubles == {}, f"fires run twice: {doubles}"
    assert not [r for r in records if r["status"] == "running"], "a run stayed 'running' after its runner died"
    interrupted = sum(1 for r in ran if r["status"] == "interrupted")
    # Every run that was not cut short started the sleeper once; one cut short may have been killed between
    # the commit of its start and the sleeper's first line.
    assert len(ran) - interrupted <= _starts(mark_file) <= len(ran), "the sleeper ran more or less than recorded"
    return len(ran), interrupted


LEASE_S = 3.0


async def test_a_runner_cut_off_past_its_lease_is_replaced_and_fires_nothing_after(
    postgres_url: str, tmp_path: Path, figures: Figures
) -> None:
    mark_file = tmp_path / "marks"
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}/mcp" for p in ports]
    lease = ("--lease-time", str(LEASE_S))
    processes = [start_server(postgres_url, ports[0], tmp_path / "a.log", *lease)]
    processes.append(start_server(postgres_url, ports[1], tmp_path / "b.log", *lease))
    try:
        assert [await _role(u) for u in urls] == ["runner", "standby"]
        async with Client(authorized(urls[1])) as client:
            assert not (await client.call_tool("schedule_job", _tick(mark_file))).is_error
        await eventually(lambda: _starts(mark_file) >= 2, within=10, what="the runner firing the job")

        processes[0].send_signal(signal.SIGSTOP)  # no pings, no fires: as if the network were cut
        frozen = time.monotonic()
        while await _role(urls[1]) != "runner":
            assert time.monotonic() - frozen < 3 * LEASE_S, "the standby did not take over"
        takeover = time.monotonic() - frozen
        starts = _starts(mark_file)
        await eventually(lambda: _starts(mark_file) > starts, within=10, what="the new runner firing")

        processes[0].send_signal(signal.SIGCONT)  # thawed: its lease is gone and it must notice
        thawed = time.monotonic()
        deadline = thawed + 10
        while await _role(urls[0]) != "standby":
            assert time.monotonic() < deadline, "the thawed runner did not step down"
        stepped_down = time.monotonic()
        starts = _starts(mark_file)
        await eventually(lambda: _starts(mark_file) >= starts + 2, within=10, what="fires going on")
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                stop(process)
    fires, interrupted = _check_no_double_runs(postgres_url, mark_file)
    figures.add("partition (PostgreSQL)", lease_s=LEASE_S, takeover_s=round(takeover, 3),
                thawed_runner_stepped_down_s=round(stepped_down - thawed, 3), fires=fires, double_runs=0)
    assert takeover <= LEASE_S + 2


async def test_three_processes_kill_9_the_runner_again_and_again_no_fire_lost_or_doubled(
    shared: str, tmp_path: Path, figures: Figures
) -> None:
    database, mark_file = shared, tmp_path / "marks"
    rng = random.Random(7)
    ports = [free_port() for _ in range(3)]
    urls = [f"http://127.0.0.1:{p}/mcp" for p in ports]
    logs = [tmp_path / f"{i}.log" for i in range(3)]
    keep_all = ("--history-limit", "100000")  # every record stays for the count (the default keeps 100 a job)
    processes = start_servers(database, ports, logs, *keep_all)
    jobs = [f"every-{k}" for k in range(20)]
    takeovers: list[float] = []
    try:
        for k, job_id in enumerate(jobs):  # scheduled through all three processes
            async with Client(authorized(urls[k % 3])) as client:
                result = await client.call_tool("schedule_job", {
                    "schedule_type": "interval", "schedule": "1 second", "agentool_name": "sleeper",
                    "input_data": sleeper(job_id, 0.3, mark_file), "job_id": job_id,
                })
                assert not result.is_error, result
        for _ in range(CYCLES):
            await asyncio.sleep(rng.uniform(1.0, 2.5))  # the moment of the kill is the point
            roles = [await _role(u) for u in urls]
            runner = roles.index("runner")
            processes[runner].send_signal(signal.SIGKILL)
            processes[runner].wait(timeout=10)
            killed_at = time.monotonic()
            while "runner" not in [await _role(urls[i]) for i in range(3) if i != runner]:
                assert time.monotonic() - killed_at < 10, "no standby took over within 10 s"
            takeovers.append(time.monotonic() - killed_at)
            processes[runner] = start_server(database, ports[runner], logs[runner], *keep_all)
        await asyncio.sleep(1.5)  # fires after the last takeover
    finally:
        for process in processes:
            if process.poll() is None:
                stop(process)

    fires, interrupted = _check_no_double_runs(database, mark_file)
    records = runs(database)
    lost = {job_id: account_fires(records, job_id, 1.0).lost for job_id in jobs}
    backend = "PostgreSQL" if database.startswith("postgresql://") else "SQLite"
    figures.add(f"three processes, kill -9 of the runner ({backend})", cycles=CYCLES, fires=fires,
                takeover_max_s=round(max(takeovers), 3), double_runs=0, interrupted=interrupted,
                lost_fires=sum(map(len, lost.values())),
                missed=sum(1 for r in records if r["status"] == "missed"))
    assert {job_id: times for job_id, times in lost.items() if times} == {}
    assert max(takeovers) < TAKEOVER_GOAL_S[backend], f"takeover times {takeovers}"
