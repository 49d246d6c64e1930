"""`mcp-scheduler runner` and `runner stop` on real processes: what it registers, where `status` and
`scheduler_status` show it, its files' modes, the folders it refuses, and when it leaves by itself."""

from __future__ import annotations

import asyncio
import os
import re
import stat

import pytest

from mcp_scheduler.runner_paths import runner_log_path
from mcp_scheduler.status import sqlite_runner
from tests.server.conftest import hourly

from .conftest import WAIT, Machine, RawClient
from .test_frontend import ready_runner


async def test_runner_stop_ends_the_runner_cleanly_and_says_when_none_runs(machine: Machine) -> None:
    database = str(machine.home / "jobs.db")
    runner = machine.start("runner", "--db", database)
    info = await ready_runner(machine, database)

    stopped = machine.run("runner", "stop", "--db", database)
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped the runner (pid {info.pid})" in stopped.stderr
    assert runner.wait(timeout=WAIT) == 0  # a clean exit on SIGTERM
    assert sqlite_runner(database) is None  # the lease is free
    assert machine.info(database) is None and not machine.socket(database).exists()

    again = machine.run("runner", "stop", "--db", database)
    assert again.returncode == 1
    assert "no background runner runs the jobs of" in again.stderr


async def test_runner_stop_names_the_server_that_runs_the_jobs_when_it_is_no_background_runner(
    machine: Machine,
) -> None:
    database = str(machine.home / "jobs.db")
    client = await RawClient.start(machine, "--db", database, "--no-background-runner")
    try:
        await client.initialize()
        stopped = machine.run("runner", "stop", "--db", database)
        assert stopped.returncode == 1
        assert f"The jobs run in pid {client.process.pid} (a server, not a background runner)" in stopped.stderr
        assert client.process.returncode is None  # left alone
    finally:
        await client.kill()


async def test_status_and_scheduler_status_show_the_runner_pid_start_log_and_how_it_was_started(
    machine: Machine,
) -> None:
    database = str(machine.home / "jobs.db")
    runner = machine.start("runner", "--db", database)
    info = await ready_runner(machine, database)

    shown = machine.run("status", "--db", database)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert f"runner:   pid {runner.pid} on {info.host} since {info.since} (background runner, started by hand)" in lines
    assert f"log:      {runner_log_path(database)}" in lines
    assert f"socket:   {machine.socket(database)}" in lines
    assert "standby:  none" in lines

    client = await RawClient.start(machine, "--db", database)  # piped to the runner
    try:
        await client.initialize()
        answer = await client.request("tools/call", {"name": "scheduler_status", "arguments": {}})
        background = answer["result"]["structuredContent"]["background_runner"]
        assert background == {"pid": runner.pid, "since": info.since, "started_by": "manual",
                              "log_file": str(runner_log_path(database)), "socket": str(machine.socket(database))}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", background["since"])
    finally:
        await client.kill()


async def test_the_runner_keeps_its_socket_folder_private_and_its_files_to_the_user(machine: Machine) -> None:
    database = str(machine.home / "jobs.db")
    machine.start("runner", "--db", database)
    await ready_runner(machine, database)
    socket_path = machine.socket(database)
    folder = os.lstat(socket_path.parent)
    assert stat.S_ISDIR(folder.st_mode) and stat.S_IMODE(folder.st_mode) == 0o700
    sock = os.lstat(socket_path)
    assert stat.S_ISSOCK(sock.st_mode) and stat.S_IMODE(sock.st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(socket_path.with_suffix(".json")).st_mode) == 0o600
    log = runner_log_path(database)
    assert stat.S_IMODE(os.lstat(log).st_mode) == 0o600 and stat.S_IMODE(os.lstat(log.parent).st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o722])
async def test_a_socket_folder_others_may_write_to_is_refused_by_the_runner_and_the_front_end(
    machine: Machine, mode: int
) -> None:
    database = str(machine.home / "jobs.db")
    folder = machine.socket(database).parent
    folder.mkdir(mode=0o700)
    folder.chmod(mode)

    refused = machine.run("runner", "--db", database)
    assert refused.returncode == 1
    assert f"Permissions {mode:04o} for the runner's folder {folder} are too open" in refused.stderr
    assert f"chmod 700 {folder}" in refused.stderr

    client = await RawClient.start(machine, "--db", database)
    try:
        assert "result" in await client.initialize()  # served in-process
        assert (await client.close())[0] == 0
    finally:
        await client.kill()
    assert "are too open" in client.stderr and "Serving in-process" in client.stderr
    assert machine.runners() == [] and not machine.socket(database).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder another user's needs root")
async def test_a_socket_folder_of_another_user_is_refused(machine: Machine) -> None:
    database = str(machine.home / "jobs.db")
    folder = machine.socket(database).parent
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    refused = machine.run("runner", "--db", database)
    assert refused.returncode == 1
    assert f"The runner's folder {folder} belongs to uid 65534, not to this user" in refused.stderr


async def test_an_idle_runner_stays_while_a_client_is_connected_and_leaves_once_it_is_gone(machine: Machine) -> None:
    database = str(machine.home / "jobs.db")
    # An active job holds the runner until the client has connected (on a loaded machine the client's start can
    # take longer than the idle time): written first by a server that runs its jobs itself.
    writer = await RawClient.start(machine, "--db", database, "--no-background-runner")
    try:
        await writer.initialize()
        answer = await writer.request("tools/call", {"name": "schedule_job", "arguments": hourly("held")})
        assert not answer["result"].get("isError"), answer
        assert (await writer.close())[0] == 0
    finally:
        await writer.kill()
    runner = machine.start("runner", "--db", database, "--runner-idle-exit", "0.5")
    await ready_runner(machine, database)
    client = await RawClient.start(machine, "--db", database, "--runner-idle-exit", "0.5")
    try:
        await client.initialize()
        # A paused job is not active: only the connected client keeps the runner. Watch it for several idle
        # periods (nothing to wait for: the point is that nothing happens).
        answer = await client.request("tools/call", {"name": "pause_job", "arguments": {"job_id": "held"}})
        assert not answer["result"].get("isError"), answer
        await asyncio.sleep(2.5)
        assert runner.poll() is None
        assert (await client.close())[0] == 0
    finally:
        await client.kill()
    assert runner.wait(timeout=WAIT) == 0
    assert "No active job and no client for 0.5 s: exiting" in machine.log(database)


async def test_the_user_service_s_runner_does_not_leave_when_idle(machine: Machine) -> None:
    # systemd restarts a runner that fails (Restart=on-failure), not one that ends well: an idle exit would leave
    # the store without a runner while the service marker keeps front-ends from starting their own.
    database = str(machine.home / "jobs.db")
    runner = machine.start("runner", "--started-by", "service", "--db", database, "--runner-idle-exit", "0.2")
    await ready_runner(machine, database)
    await asyncio.sleep(2.0)  # ten idle periods; nothing to wait for, the point is that nothing happens
    assert runner.poll() is None
    assert "started by the user service, it stays until stopped" in machine.log(database)
    assert machine.run("runner", "stop", "--db", database).returncode == 0
    assert runner.wait(timeout=WAIT) == 0
