"""Calls in flight through a front-end when something stops: the front-end (SIGTERM, SIGINT, end of stdin) or
the runner (SIGTERM). Every call gets an answer; no run is lost because its client left."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.reliability._support import marks

from .conftest import WAIT, Machine, RawClient, eventually

ROOT = Path(__file__).resolve().parents[2]
CLOSE_TIMEOUT = 1.0
FLAGS = ("--timezone", "UTC", "--toolkit", "tests.reliability._support:create_sleeper", "--close-timeout",
         str(CLOSE_TIMEOUT))


def with_sleeper(machine: Machine) -> dict[str, str]:
    """The environment in which the front-end and the runner it starts find the `sleeper` toolkit."""
    return {**machine.env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), machine.env.get("PYTHONPATH")]))}


async def front_end(machine: Machine, database: str) -> RawClient:
    client = await RawClient.start(machine, "--db", database, *FLAGS, env=with_sleeper(machine))
    assert "result" in await client.initialize()
    return client


async def call_run_now(client: RawClient, request_id: str, seconds: float, mark_file: Path) -> None:
    await client.send({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": "run_now",
                       "arguments": {"agentool_name": "sleeper", "input_data": {
                           "operation": "sleep", "seconds": seconds, "token": request_id, "path": str(mark_file)}}}})
    await eventually(lambda: (request_id, "start") in marks(mark_file), what=f"the start of {request_id}")


async def answers_until_the_end(client: RawClient, since: float) -> dict[str, tuple[dict[str, Any], float]]:
    """Every answer the front-end writes until it closes stdout, with how long after `since` it came."""
    assert client.process.stdout is not None
    answers: dict[str, tuple[dict[str, Any], float]] = {}
    async with asyncio.timeout(WAIT):
        while line := await client.process.stdout.readline():
            message = json.loads(line)
            answers[message.get("id")] = (message, time.monotonic() - since)
        await client.process.wait()
    return answers


def run_statuses(database: str) -> list[str]:
    import sqlite3

    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
        rows = conn.execute("SELECT record FROM scheduler_runs ORDER BY seq").fetchall()
    return sorted(json.loads(row[0])["status"] for row in rows)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_front_end_stopped_with_calls_in_flight_answers_each_and_the_runs_go_on_in_the_runner(
    machine: Machine, sig: signal.Signals
) -> None:
    database = str(machine.home / "jobs.db")
    mark_file = machine.home / "marks"
    client = await front_end(machine, database)
    try:
        await call_run_now(client, "short", 0.5, mark_file)
        # Longer than the front-end waits after a signal (close_timeout + 1): it answers for the runner.
        await call_run_now(client, "long", 5.0, mark_file)
        signalled = time.monotonic()
        client.process.send_signal(sig)
        answers = await answers_until_the_end(client, signalled)
    finally:
        await client.kill()

    assert client.process.returncode == 0
    short, short_after = answers["short"]
    assert short["result"]["structuredContent"]["status"] == "success"
    long, long_after = answers["long"]
    message = long["error"]["message"]
    assert "It was not cancelled: it goes on in the runner" in message and "get_history" in message
    assert max(short_after, long_after) <= CLOSE_TIMEOUT + 1 + 0.5
    # The client is gone; the run it started ends in the runner and is recorded as it went.
    await eventually(lambda: ("long", "end") in marks(mark_file), within=WAIT, what="the end of the long run")
    await eventually(lambda: run_statuses(database) == ["success", "success"], what="both runs recorded success")


async def test_a_runner_stopped_with_calls_in_flight_answers_them_through_the_front_end(machine: Machine) -> None:
    database = str(machine.home / "jobs.db")
    mark_file = machine.home / "marks"
    client = await front_end(machine, database)
    try:
        info = machine.info(database)
        assert info is not None
        await call_run_now(client, "short", 0.5, mark_file)
        await call_run_now(client, "long", 30.0, mark_file)
        signalled = time.monotonic()
        os.kill(info.pid, signal.SIGTERM)
        answers = await answers_until_the_end(client, signalled)
    finally:
        await client.kill()

    assert answers["short"][0]["result"]["structuredContent"]["status"] == "success"
    long, long_after = answers["long"]
    text = long["result"]["content"][0]["text"]
    assert long["result"]["isError"] and "cancelled: the server shut down" in text and "recorded 'cancelled'" in text
    assert max(after for _, after in answers.values()) <= CLOSE_TIMEOUT + 1
    assert client.process.returncode == 1 and "background runner" in client.stderr  # then it says the runner went
    assert run_statuses(database) == ["cancelled", "success"]
