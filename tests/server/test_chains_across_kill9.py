"""A chain across a kill -9 of the runner, with real processes (issue 25): a runner and a standby are two
`mcp-scheduler --transport http` servers on one SQLite file, and the `sleeper` toolkit writes down in a file of its
own each run that really happened (whatever the records say).

Job `b` runs after each successful run of job `a`; its sleeper's token is the id of the run of `a` it follows
(`!trigger:run_id`), so the file tells each chained run apart. Killed after `a`'s run ended and before the chained
run started (it waits for room: `--max-runs-per-job 1`, a run of `b` in progress, overlap `buffer_one`), the standby
that takes over starts the chained run, once; killed after it started, it is recorded `interrupted` and not started
again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcp_scheduler.scheduler.chains import chain_run_id
from tests._net import eventually
from tests.reliability._support import marks, runs
from tests.reliability.test_signals import ROOT, TOOLKIT
from tests.server.test_address_policy_across_processes import Server, call, serving

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

YEARLY = {"schedule_type": "cron", "schedule": "0 3 1 1 *"}  # the jobs run by hand and by the chain only


@dataclass
class Pair:
    database: str
    logs: Path
    marks: Path
    runner: Server
    standby: Server

    def sleeper(self, job_id: str, token: str, seconds: float, **policy: Any) -> dict[str, Any]:
        data = {"operation": "sleep", "seconds": seconds, "token": token, "path": str(self.marks)}
        return {"job_id": job_id, **YEARLY, "agentool_name": "sleeper", "input_data": data,
                **({"policy": policy} if policy else {})}

    def records(self, job_id: str, trigger: str | None = None) -> list[dict[str, Any]]:
        return [r for r in runs(self.database) if r["job_id"] == job_id and trigger in (None, r["trigger"])]

    def kill_runner(self) -> None:
        self.runner.process.kill()  # SIGKILL, by its pid
        self.runner.process.wait(timeout=10)


@pytest.fixture
def pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pair]:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the sleeper toolkit is imported from the repository's tests
    database = str(tmp_path / "shared.db")
    flags = ("--toolkit", TOOLKIT, "--max-runs-per-job", "1")
    with serving(tmp_path, "runner", database, "127.0.0.1", *flags) as runner:
        assert asyncio.run(call(runner, "scheduler_status", {}))["role"] == "runner"
        with serving(tmp_path, "standby", database, "127.0.0.1", *flags) as standby:
            assert asyncio.run(call(standby, "scheduler_status", {}))["role"] == "standby"
            yield Pair(database, tmp_path, tmp_path / "marks.txt", runner, standby)


async def test_a_chained_run_waiting_for_room_when_the_runner_is_killed_runs_once_in_the_standby(pair: Pair) -> None:
    await call(pair.runner, "schedule_job", pair.sleeper("a", "a", 0))
    await call(pair.runner, "schedule_job", pair.sleeper("b", "!trigger:run_id", 3, overlap="buffer_one",
                                                         after={"job": "a", "on": "success"}))
    by_hand = asyncio.create_task(call(pair.runner, "run_now", {"job_id": "b"}))  # b's one place is taken
    await eventually(lambda: ("!trigger:run_id", "start") in marks(pair.marks), what="b's run by hand to start")

    ran = await call(pair.runner, "run_now", {"job_id": "a"})
    key = chain_run_id(ran["run_id"], "b")
    await eventually(lambda: [r["status"] for r in pair.records("a")] == ["success"], what="a's finished record")
    # The chained run, decided in the same commit as the record of the run it follows, is waiting for room.
    assert [(r["run_id"], r["status"], r["started_at"]) for r in pair.records("b", "chain")] == [(key, "running", None)]
    pair.kill_runner()
    with contextlib.suppress(Exception):
        await by_hand  # the runner it asked is gone

    await eventually(lambda: [r["status"] for r in pair.records("b", "chain")] == ["success"], within=30,
                     what="the chained run in the standby")
    assert marks(pair.marks) == [("!trigger:run_id", "start"), ("a", "start"), ("a", "end"),  # b by hand: killed
                                 (ran["run_id"], "start"), (ran["run_id"], "end")]  # the chained run, once
    assert [(r["run_id"], r["trigger"], r["status"]) for r in pair.records("b")] == [
        (pair.records("b", "run_now")[0]["run_id"], "run_now", "interrupted"), (key, "chain", "success")]
    assert "1 chained run(s) had not started when the last runner stopped" in (pair.logs / "standby.log").read_text()


async def test_a_chained_run_that_started_before_the_runner_was_killed_is_interrupted_not_run_again(
    pair: Pair,
) -> None:
    await call(pair.runner, "schedule_job", pair.sleeper("a", "a", 0))
    await call(pair.runner, "schedule_job", pair.sleeper("b", "!trigger:run_id", 30, after={"job": "a"}))
    await call(pair.runner, "schedule_job", pair.sleeper("probe", "probe", 0))

    ran = await call(pair.runner, "run_now", {"job_id": "a"})
    await eventually(lambda: (ran["run_id"], "start") in marks(pair.marks), what="the chained run to start")
    pair.kill_runner()

    key = chain_run_id(ran["run_id"], "b")
    await eventually(lambda: [(r["run_id"], r["status"]) for r in pair.records("b")] == [(key, "interrupted")],
                     within=30, what="the standby to take over")
    await call(pair.standby, "run_now", {"job_id": "probe"})  # the new runner has started whatever it would start
    assert [m for m in marks(pair.marks) if m[0] == ran["run_id"]] == [(ran["run_id"], "start")]
    assert [(r["run_id"], r["status"]) for r in pair.records("b")] == [(key, "interrupted")]
