"""Retries across a kill -9 of the runner: a standby that takes over runs the retry the dead runner had
pending, and retries the run the kill cut short (interrupted). Real server processes on one SQLite file."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mcp import Client

from tests._net import authorized, eventually, free_port, stop
from tests.reliability._support import marks, runs
from tests.reliability.test_failover import _role
from tests.reliability.test_kill9 import sleeper, start_server


def _attempts(database: Path, job_id: str) -> list[tuple[str, str, int | None]]:
    return [(r["trigger"], r["status"], r["attempt"]) for r in runs(database)
            if r["job_id"] == job_id and r["status"] != "running"]


async def test_a_standby_taking_over_from_a_killed_runner_runs_its_pending_retry_and_retries_the_cut_run(
    tmp_path: Path,
) -> None:
    database, mark_file = tmp_path / "shared.db", tmp_path / "marks"
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}/mcp" for p in ports]
    processes = [start_server(database, ports[0], tmp_path / "a.log")]
    processes.append(start_server(database, ports[1], tmp_path / "b.log"))
    once: dict[str, Any] = {"schedule_type": "once", "schedule": "in 0.1 seconds", "agentool_name": "sleeper"}
    try:
        assert [await _role(u) for u in urls] == ["runner", "standby"]
        async with Client(authorized(urls[0])) as client:
            # times out at once; its retry is due 2 s later, after the kill
            timed_out = {**once, "job_id": "t", "input_data": sleeper("t", 5, mark_file), "timeout": 0.2,
                         "policy": {"max_attempts": 2, "retry_delay": 2.0}}
            # still running at the kill: interrupted, and retried by the next runner
            cut = {**once, "job_id": "i", "input_data": sleeper("i", 1.0, mark_file),
                   "policy": {"max_attempts": 2, "retry_on": ["interrupted"], "retry_delay": 600}}
            for args in (timed_out, cut):
                assert not (await client.call_tool("schedule_job", args)).is_error
        await eventually(lambda: ("schedule", "timeout", 1) in _attempts(database, "t"), within=10,
                         what="the first attempt timing out")
        await eventually(lambda: ("i", "start") in marks(mark_file), within=10, what="the run to cut starting")

        processes[0].send_signal(signal.SIGKILL)
        processes[0].wait(timeout=10)
        killed = time.monotonic()
        while await _role(urls[1]) != "runner":
            assert time.monotonic() - killed < 10, "the standby did not take over"

        await eventually(lambda: len(_attempts(database, "i")) == 2 and len(_attempts(database, "t")) == 2,
                         within=10, what="the retries on the new runner")
    finally:
        for process in processes:
            if process.poll() is None:
                stop(process)

    assert _attempts(database, "i") == [("schedule", "interrupted", 1), ("retry", "success", 2)]
    # On SQLite the lock file is free only once its holder is gone with its runs: the retry did not wait.
    [retry] = [r for r in runs(database) if r["job_id"] == "i" and r["trigger"] == "retry" and r["status"] != "running"]
    assert "a retry of a run the last runner left interrupted (that runner had stopped" in retry["note"]
    assert _attempts(database, "t") == [("schedule", "timeout", 1), ("retry", "timeout", 2)]
    assert Counter(token for token, what in marks(mark_file) if what == "start") == {"t": 2, "i": 2}
