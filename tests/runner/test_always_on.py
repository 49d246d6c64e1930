"""Jobs run while no chat client is open: a stdio server starts the store's background runner, which fires
the jobs after the client exits and leaves by itself once nothing is active (issue 19, 'Done when')."""

from __future__ import annotations

import sys
from datetime import datetime

from mcp import Client, StdioServerParameters

from tests.server.conftest import structured

from .conftest import WAIT, Machine, eventually, inbox_messages, runs_of

REMINDER_DELAY = 4
"""Seconds between scheduling the reminder and its fire time: longer than the runner's idle exit below."""


async def test_a_reminder_scheduled_from_a_stdio_client_that_exits_runs_on_time_with_no_client_connected(
    machine: Machine,
) -> None:
    # The default database and no flags, as Claude Desktop starts the server from its configuration; only the
    # quiet period of the runner is short (the default is 10 minutes).
    env = {**machine.env, "MCP_SCHEDULER_RUNNER_IDLE_EXIT": "1"}
    server = StdioServerParameters(command=sys.executable, args=["-m", "mcp_scheduler"], env=env)
    async with Client(server, mode="legacy") as client:
        reminder = structured(await client.call_tool("schedule_job", {
            "job_id": "stand-up", "schedule_type": "once", "schedule": f"in {REMINDER_DELAY} seconds",
            "agentool_name": "notify",
            "input_data": {"operation": "inbox", "title": "Stand-up", "message": "Stand-up in 5 minutes"},
        }))
    due = datetime.fromisoformat(reminder["next_run"])
    assert not runs_of(machine.default_database, "stand-up")  # not run yet, and the client is gone

    runs = await eventually(lambda: [r for r in runs_of(machine.default_database, "stand-up")
                                     if r["status"] != "running"],
                            within=REMINDER_DELAY + WAIT, what="the reminder's run")
    (run,) = runs
    assert run["status"] == "success", run
    started = datetime.fromisoformat(run["started_at"])
    assert datetime.fromisoformat(run["scheduled_time"]) == due
    assert (started - due).total_seconds() < 3, "the reminder ran late"
    (message,) = inbox_messages(machine.default_database)
    assert message["title"] == "Stand-up" and message["job_id"] == "stand-up"

    # Nothing is active any more: the runner leaves by itself after its quiet period.
    await eventually(lambda: not machine.runners(), what="the idle runner's exit")
    assert machine.info(machine.default_database) is None
    assert not machine.socket(machine.default_database).exists()
    assert "No active job and no client for 1 s: exiting" in machine.log(machine.default_database)
