"""The command line behaves like the server (issue 22 item 6): `run` is done by the process that runs the jobs,
with its flags; times are in each job's zone, named; results are summaries, --json gives the rows for scripts;
a reader that stops early (`jobs | head`) ends the command quietly.

The server is a real `mcp-scheduler --transport http --allow-shell echo` process; each command is a real
`python -m mcp_scheduler ...` process.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from mcp import Client

from mcp_scheduler import SchedulerRuntime, ServiceConfig
from mcp_scheduler.models import SchedulerInput
from tests._net import authorized
from tests.server.conftest import WAIT, HttpServer, hosted, http_server, run_cli, scheduler_command, structured
from tests.server.test_job_commands_cli import cli, rows, table


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    with http_server(tmp_path_factory.mktemp("cli-like-server"), "--transport", "http",
                     "--allow-shell", "echo") as running:
        yield running


@pytest.fixture
async def client(server: HttpServer) -> AsyncIterator[Client]:
    async with hosted(Client(authorized(f"{server.base}/mcp", server.token))) as c:
        yield c


async def test_run_of_a_shell_job_is_done_by_the_server_with_its_flags_not_by_the_command(
    server: HttpServer, client: Client
) -> None:
    structured(await client.call_tool("schedule_job", {
        "job_id": "greet", "schedule_type": "interval", "schedule": "1 hour", "agentool_name": "shell",
        "input_data": {"operation": "run", "argv": ["echo", "hello from the server"]},
    }))

    ran = await cli("run", "greet", "--db", server.database)  # no --allow-shell here: the server's flag counts

    assert ran.returncode == 0, ran.stderr
    [run] = rows(ran.stdout)
    assert run[1:4] == ["greet", "run_now", "success"]
    assert run[-1].startswith("Command 'echo' exited with code 0")  # the result's summary, not its JSON
    assert "disabled" not in ran.stderr
    runs = json.loads((await cli("history", "greet", "--db", server.database, "--json")).stdout)
    assert [(r["status"], r["trigger"]) for r in runs] == [("success", "run_now")]
    assert "hello from the server" in json.dumps(runs[0]["result"])  # the raw result stays in --json
    assert runs[0]["summary"] == run[-1]


async def test_jobs_print_next_runs_in_each_job_s_zone_with_its_name(server: HttpServer, client: Client) -> None:
    expected = {}
    for job_id, zone in (("berlin-9am", "Europe/Berlin"), ("kolkata-9am", "Asia/Kolkata")):
        answer = structured(await client.call_tool("schedule_job", {
            "job_id": job_id, "schedule_type": "cron", "schedule": "0 9 * * *", "timezone": zone,
            "agentool_name": "storage_kv", "input_data": {"operation": "set", "key": job_id, "value": 1},
        }))
        expected[job_id] = (zone, datetime.fromisoformat(answer["next_run"]))

    listed = await cli("jobs", "--db", server.database)
    as_json = await cli("jobs", "--db", server.database, "--json")

    assert listed.returncode == 0 and as_json.returncode == 0, listed.stderr + as_json.stderr
    shown = table(listed.stdout)
    by_id = {job["job_id"]: job for job in json.loads(as_json.stdout)}
    for job_id, (zone, next_run) in expected.items():
        local = next_run.astimezone(ZoneInfo(zone))
        assert shown[job_id][4] == f"{local:%Y-%m-%d} 09:00 {zone}"  # the server is in UTC: the job's zone counts
        assert by_id[job_id]["timezone"] == zone
        assert datetime.fromisoformat(by_id[job_id]["next_run"]) == next_run
        assert by_id[job_id]["next_run"].endswith(local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:])


async def test_a_request_no_runner_takes_is_withdrawn_and_said_so(tmp_path: Path) -> None:
    database = str(tmp_path / "held.db")
    config = ServiceConfig(database=database, timezone="UTC", start_paused=True)
    # The runner holds the lease and follows the store, but is paused (as `pause` opens one for a moment): it
    # takes no request.
    async with SchedulerRuntime(config) as runtime:
        await runtime.service.schedule(SchedulerInput(
            operation="schedule", job_id="kv", schedule_type="interval", schedule="1 hour",
            agentool_name="storage_kv", input_data={"operation": "set", "key": "k", "value": 1},
        ))
        assert runtime.service.is_runner

        ran = await cli("run", "kv", "--db", database, "--start-within", "0.5")

        assert ran.returncode == 1 and ran.stdout == ""
        assert "not taken: no runner started the run within 0.5 s" in ran.stderr
        [record] = await runtime.service.get_history("kv", limit=10)
        assert record.status == "cancelled" and record.started_at is None
    [stored] = json.loads((await cli("history", "kv", "--db", database, "--json")).stdout)
    assert stored["status"] == "cancelled" and stored["summary"].startswith("not taken")


async def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path) -> None:
    database = str(tmp_path / "many.db")
    async with SchedulerRuntime(ServiceConfig(database=database, timezone="UTC", start_paused=True)) as runtime:
        for number in range(500):  # about 100 KB of table: more than a pipe holds (64 KB)
            await runtime.service.schedule(SchedulerInput(
                operation="schedule", job_id=f"job-{number:04d}-" + "x" * 90, schedule_type="interval",
                schedule="1 hour", agentool_name="storage_kv", input_data={"operation": "set", "key": "k", "value": 1},
            ))

    def head() -> tuple[str, int, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # the whole rows, ~90 KB
        process = subprocess.Popen(scheduler_command("jobs", "--db", database, "--limit", "1000"),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert process.stdout is not None and process.stderr is not None
        first = os.read(process.stdout.fileno(), 100).decode()  # the first bytes only, unbuffered
        process.stdout.close()  # as `head -c 100` does once it has them
        errors = process.stderr.read().decode()
        return first, process.wait(timeout=WAIT), errors

    first, code, errors = await asyncio.to_thread(head)

    assert first.startswith("JOB ")
    assert errors == ""
    assert code == 141  # as `cat` ends when its reader went away
    assert run_cli("jobs", "--db", database, "--limit", "1").returncode == 0  # the table itself is fine
