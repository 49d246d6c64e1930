"""Two server processes on one SQLite file: both serve, one fires; kill -9 the runner and the standby
takes over within 2 s, with no fire run twice and the run cut short recorded `interrupted`.

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


async def test_kill_9_of_the_runner_hands_the_jobs_to_the_standby(tmp_path: Path, figures: Figures) -> None:
    database, mark_file = tmp_path / "shared.db", tmp_path / "marks"
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}/mcp" for p in ports]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes: list[subprocess.Popen[bytes]] = [start_server(database, ports[0], logs[0])]
    processes.append(start_server(database, ports[1], logs[1]))
    takeovers: list[float] = []
    try:
        assert [await _role(u) for u in urls] == ["runner", "standby"]
        async with Client(urls[1]) as client:  # scheduled on the standby: it reaches the runner
            result = await client.call_tool("schedule_job", {
                "schedule_type": "interval", "schedule": "1 second", "agentool_name": "sleeper",
                "input_data": sleeper("tick", 0.6, mark_file), "job_id": "tick",
            })
            assert not result.is_error, result
        await eventually(lambda: len(marks(mark_file)) >= 2, within=10, what="the runner firing the job")

        for _ in range(CYCLES):
            runner = 0 if await _role(urls[0]) == "runner" else 1
            standby = 1 - runner
            starts_before = sum(1 for _, what in marks(mark_file) if what == "start")
            processes[runner].send_signal(signal.SIGKILL)
            processes[runner].wait(timeout=10)
            killed_at = time.monotonic()
            while await _role(urls[standby]) != "runner":
                assert time.monotonic() - killed_at < 10, "the standby did not take over within 10 s"
            takeovers.append(time.monotonic() - killed_at)
            await eventually(
                lambda n=starts_before: sum(1 for _, what in marks(mark_file) if what == "start") > n,
                within=10, what="the job firing in the new runner",
            )
            processes[runner] = start_server(database, ports[runner], logs[runner])
            assert await _role(urls[runner]) == "standby"
    finally:
        for process in processes:
            if process.poll() is None:
                stop(process)

    records = runs(database)
    ran = [r for r in records if r["status"] not in ("missed", "skipped")]
    started = Counter(r["scheduled_time"] for r in ran)
    doubles = {when: n for when, n in started.items() if n > 1}
    assert doubles == {}, f"fires run twice: {doubles}"
    assert not [r for r in records if r["status"] == "running"], "a run stayed 'running' after its runner died"
    sleeper_starts = Counter(token for token, what in marks(mark_file) if what == "start")
    assert sleeper_starts["tick"] == sum(started.values()), "the sleeper ran a different number of times"
    figures.add("failover (SQLite)", cycles=CYCLES, takeover_max_s=round(max(takeovers), 3),
                takeover_median_s=round(sorted(takeovers)[len(takeovers) // 2], 3), fires=sum(started.values()),
                double_runs=len(doubles), interrupted=sum(1 for r in records if r["status"] == "interrupted"))
    assert max(takeovers) < TAKEOVER_GOAL_S, f"takeover times {takeovers}"
