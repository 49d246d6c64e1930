"""Two server processes on one database (a SQLite file, or PostgreSQL): both serve, one fires; kill -9 the
runner and the standby takes over within 2 s, with no fire run twice and the run cut short recorded
`interrupted`. On PostgreSQL also a runner frozen (SIGSTOP, as cut off by a network partition) past
its lease time: the standby takes over within the lease time, and the old runner, thawed, fires
nothing more.

Each cycle kills whichever process is the runner (SIGKILL, with a sleeper run in progress most of the
time), times until the other answers `scheduler_status` as the runner, waits for the job to fire
again there, and starts the killed one again as the new standby. `make test` runs 3 cycles;
`MCP_SCHEDULER_FAILOVER_CYCLES` sets more (`make soak`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests._net import eventually, free_port, stop
from tests.reliability._figures import Figures
from tests.reliability._support import marks, runs
from tests.reliability.test_kill9 import sleeper, start_server

CYCLES = int(os.environ.get("MCP_SCHEDULER_FAILOVER_CYCLES", "3"))
TAKEOVER_GOAL_S = 2.0


async def _role(url: str) -> str | None:
    try:
        async with Client(url) as client:
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
    started = Counter(r["scheduled_time"] for r in ran)
    doubles = {when: n for when, n in started.items() if n > 1}
    assert doubles == {}, f"fires run twice: {doubles}"
    assert not [r for r in records if r["status"] == "running"], "a run stayed 'running' after its runner died"
    assert _starts(mark_file) == len(ran), "the sleeper ran a different number of times than recorded"
    return len(ran), sum(1 for r in records if r["status"] == "interrupted")


async def test_kill_9_of_the_runner_hands_the_jobs_to_the_standby(
    shared: str, tmp_path: Path, figures: Figures
) -> None:
    database, mark_file = shared, tmp_path / "marks"
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}/mcp" for p in ports]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes: list[subprocess.Popen[bytes]] = [start_server(database, ports[0], logs[0])]
    processes.append(start_server(database, ports[1], logs[1]))
    takeovers: list[float] = []
    try:
        assert [await _role(u) for u in urls] == ["runner", "standby"]
        async with Client(urls[1]) as client:  # scheduled on the standby: it reaches the runner
            result = await client.call_tool("schedule_job", _tick(mark_file))
            assert not result.is_error, result
        await eventually(lambda: _starts(mark_file) >= 2, within=10, what="the runner firing the job")

        for _ in range(CYCLES):
            runner = 0 if await _role(urls[0]) == "runner" else 1
            standby = 1 - runner
            starts_before = _starts(mark_file)
            processes[runner].send_signal(signal.SIGKILL)
            processes[runner].wait(timeout=10)
            killed_at = time.monotonic()
            while await _role(urls[standby]) != "runner":
                assert time.monotonic() - killed_at < 10, "the standby did not take over within 10 s"
            takeovers.append(time.monotonic() - killed_at)
            await eventually(
                lambda n=starts_before: _starts(mark_file) > n, within=10, what="the job firing in the new runner"
            )
            processes[runner] = start_server(database, ports[runner], logs[runner])
            assert await _role(urls[runner]) == "standby"
    finally:
        for process in processes:
            if process.poll() is None:
                stop(process)

    fires, interrupted = _check_no_double_runs(database, mark_file)
    backend = "PostgreSQL" if database.startswith("postgresql://") else "SQLite"
    figures.add(f"failover ({backend})", cycles=CYCLES, takeover_max_s=round(max(takeovers), 3),
                takeover_median_s=round(sorted(takeovers)[len(takeovers) // 2], 3), fires=fires,
                double_runs=0, interrupted=interrupted)
    assert max(takeovers) < TAKEOVER_GOAL_S, f"takeover times {takeovers}"


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
        async with Client(urls[1]) as client:
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
