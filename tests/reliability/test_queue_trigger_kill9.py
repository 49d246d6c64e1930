"""A queue trigger across a kill -9 of the runner: two server processes on one store (a SQLite file, or PostgreSQL),
a job that runs for each message of a queue (the sleeper, 0.15 s a message), messages enqueued by another program
(this test) before and after the runner is killed mid-way. The standby takes over and works through the rest.
Afterwards every message has exactly one run (history by trigger `queue` and message id): none lost, none doubled;
the sleeper's own file agrees; the queue is empty, nothing is left in flight and no run stays `running`.

A second test kills the runner at the moment a random kill rarely hits: a message taken in flight (its claim
committed) whose run waits for a run slot (`--max-concurrent-runs 1`, held by another job's long run). The new runner
finds the claim without a started run, puts the message back and runs it, once.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mcp import Client

from agentool_bridge.toolkits import QueueStore
from tests._net import authorized, eventually, free_port, stop
from tests.reliability._figures import Figures
from tests.reliability._support import marks, runs
from tests.reliability.test_failover import _role, shared  # noqa: F401  (the fixture: SQLite and PostgreSQL)
from tests.reliability.test_kill9 import sleeper, start_servers

MESSAGES = 30
BEFORE_KILL = 20  # enqueued before the kill; the rest after it, for the new runner to hear of
MESSAGE = re.compile(r"^message (\w+) of queue 'work'")


def _queue_runs(database: str) -> list[dict[str, Any]]:
    return [r for r in runs(database) if r["trigger"] == "queue"]


def _message_of(record: dict[str, Any]) -> str:
    found = MESSAGE.match(record.get("note") or "")
    assert found, f"a queue run's note does not name its message: {record}"
    return found.group(1)


def _starts(mark_file: Path) -> Counter[str]:
    return Counter(token for token, what in marks(mark_file) if what == "start")


async def test_each_message_runs_exactly_once_across_a_kill_9_of_the_runner(
    shared: str, tmp_path: Path, figures: Figures  # noqa: F811
) -> None:
    database, mark_file = shared, tmp_path / "marks"
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}/mcp" for p in ports]
    processes = start_servers(database, ports, [tmp_path / "a.log", tmp_path / "b.log"], "--history-limit", "100000")
    queues = QueueStore(database)
    sent: dict[str, str] = {}  # message id -> the sleeper's token
    try:
        roles = [await _role(url) for url in urls]
        assert sorted(roles) == ["runner", "standby"], roles  # type: ignore[type-var]
        runner = roles.index("runner")
        async with Client(authorized(urls[1 - runner])) as client:  # scheduled on the standby, as anywhere
            result = await client.call_tool("schedule_job", {
                "schedule_type": "cron", "schedule": "0 3 1 1 *", "agentool_name": "sleeper", "job_id": "consume",
                "input_data": {**sleeper("!trigger:message/token", 0.15, mark_file)},
                "policy": {"on_message": {"queue": "work"}},
            })
            assert not result.is_error, result

        def send(k: int) -> None:
            sent[queues.enqueue("work", {"token": f"m{k}"}).message_id] = f"m{k}"

        for k in range(BEFORE_KILL):
            send(k)
        await eventually(lambda: sum(_starts(mark_file).values()) >= 8, within=30,
                         what="the runner working through the queue")
        await asyncio.sleep(random.uniform(0.0, 0.15))  # the moment within a message's run is the point
        processes[runner].kill()
        processes[runner].wait(timeout=10)
        killed = time.monotonic()
        for k in range(BEFORE_KILL, MESSAGES):
            send(k)

        def all_ran() -> bool:
            counts = queues.counts("work")
            done = {_message_of(r) for r in _queue_runs(database) if r["status"] != "running"}
            return counts.size == 0 and counts.in_flight == 0 and done >= set(sent)

        await eventually(all_ran, within=60, what="every message run by the runner or the one that took over")
        took = time.monotonic() - killed
        assert await _role(urls[1 - runner]) == "runner"
    finally:
        queues.close()
        for process in processes:
            if process.poll() is None:
                stop(process)

    records = _queue_runs(database)
    per_message = Counter(_message_of(r) for r in records)
    assert per_message == Counter(set(sent)), f"messages not run exactly once: {per_message - Counter(set(sent))}"
    statuses = Counter(r["status"] for r in records)
    assert set(statuses) <= {"success", "interrupted"} and statuses["interrupted"] <= 1, statuses
    starts = _starts(mark_file)
    assert max(starts.values()) == 1, f"the sleeper ran a message twice: {starts.most_common(3)}"
    for record in records:  # each run had its own message as input
        token = sent[_message_of(record)]
        assert starts[token] == 1 or record["status"] == "interrupted", (token, record)
    figures.add(f"queue trigger kill -9 ({'PostgreSQL' if database.startswith('postgresql') else 'SQLite'})",
                messages=MESSAGES, runs=len(records), interrupted=statuses["interrupted"], double_runs=0, lost=0,
                all_done_after_kill_s=round(took, 2))


async def test_a_message_taken_whose_run_had_not_started_runs_once_on_the_runner_that_takes_over(
    shared: str, tmp_path: Path  # noqa: F811
) -> None:
    database, mark_file = shared, tmp_path / "marks"
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}/mcp" for p in ports]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes = start_servers(database, ports, logs, "--max-concurrent-runs", "1")
    queues = QueueStore(database)
    try:
        roles = [await _role(url) for url in urls]
        runner = roles.index("runner")
        async with Client(authorized(urls[runner])) as client:
            for args in (
                {"schedule_type": "once", "schedule": "now", "agentool_name": "sleeper", "job_id": "blocker",
                 "input_data": sleeper("blocker", 60, mark_file)},  # holds the one run slot
                {"schedule_type": "cron", "schedule": "0 3 1 1 *", "agentool_name": "sleeper", "job_id": "consume",
                 "input_data": sleeper("!trigger:message/token", 0.05, mark_file),
                 "policy": {"on_message": {"queue": "work"}}},
            ):
                result = await client.call_tool("schedule_job", args)
                assert not result.is_error, result
        await eventually(lambda: ("blocker", "start") in marks(mark_file), within=20, what="the blocker's start")
        message_id = queues.enqueue("work", {"token": "waited"}).message_id
        await eventually(lambda: queues.counts("work").in_flight == 1, within=20,
                         what="the runner taking the message while its run waits for the slot")
        assert _queue_runs(database) == []  # taken, not started

        processes[runner].kill()
        processes[runner].wait(timeout=10)
        await eventually(lambda: [r["status"] for r in _queue_runs(database)] == ["success"], within=30,
                         what="the message run by the runner that took over")
    finally:
        queues.close()
        for process in processes:
            if process.poll() is None:
                stop(process)

    [record] = _queue_runs(database)
    assert _message_of(record) == message_id
    assert _starts(mark_file)["waited"] == 1
    assert "its run had not started; it runs now" in logs[1 - runner].read_text(encoding="utf-8")
