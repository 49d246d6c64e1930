"""The `shell` AgenTool with real processes: allowlist, argv without a shell, output, exit codes, timeouts
that kill the whole process group, and cancellation by the scheduler's own timeout."""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from agentool_bridge import AgenToolInjector, get_injector
from agentool_bridge.toolkits.config import ToolkitConfig
from agentool_bridge.toolkits.shell import (
    ExecutableNotAllowedError,
    ShellCommandError,
    ShellDisabledError,
    ShellTimeoutError,
    WorkingDirectoryError,
    create_shell_agent,
)
from mcp_scheduler import JobExecutionError, SchedulerInput, SchedulerRuntime, ServiceConfig

PYTHON = sys.executable
WAIT = 10.0


async def run(data: dict[str, Any]) -> dict[str, Any]:
    output = await get_injector().run("shell", {"operation": "run", **data})
    assert output.success is True
    data_out: dict[str, Any] = output.data
    return data_out


@asynccontextmanager
async def runtime(tmp_path: Path, *executables: str) -> AsyncIterator[SchedulerRuntime]:
    config = ServiceConfig(database=str(tmp_path / "s.sqlite"), timezone="UTC")
    async with SchedulerRuntime(
        config, injector=AgenToolInjector(), toolkit_config=ToolkitConfig(shell_executables=executables)
    ) as rt:
        yield rt


@asynccontextmanager
async def pid_reports() -> AsyncIterator[tuple[int, asyncio.Queue[list[int]]]]:
    """A port on 127.0.0.1 where a child program reports pids ("1 2\\n"); the reports arrive on the queue."""
    reports: asyncio.Queue[list[int]] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        await reports.put([int(p) for p in line.split()])
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], reports
    finally:
        server.close()


def report_pids(then: str) -> str:
    """Python code: start `sleep 30` as a grandchild, send both pids to the port in argv[1], then `then`."""
    return (
        "import os, socket, subprocess, sys, time\n"
        "g = subprocess.Popen(['sleep', '30'])\n"
        "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
        "s.sendall(f'{os.getpid()} {g.pid}\\n'.encode()); s.close()\n"
        f"{then}\n"
    )


def has_exited(pidfd: int, within: float = WAIT) -> bool:
    """True once the process of `pidfd` has ended (the descriptor becomes readable then), waiting up to `within`."""
    readable, _, _ = select.select([pidfd], [], [], within)
    return bool(readable)


def assert_reaped(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# ---------------------------------------------------------------------- running


async def test_a_command_returns_its_exit_code_stdout_and_stderr() -> None:
    create_shell_agent([PYTHON])

    data = await run({"argv": [PYTHON, "-c", "import sys; print('out é'); print('err', file=sys.stderr)"]})

    assert data["exit_code"] == 0
    assert data["stdout"]["content"] == "out é\n" and data["stderr"]["content"] == "err\n"
    assert data["stdout_truncated"] is False and data["stderr_truncated"] is False
    assert data["argv"][0] == PYTHON and data["elapsed_ms"] >= 0


async def test_argv_never_goes_through_a_shell() -> None:
    create_shell_agent(["echo"])
    tricky = ["; rm -rf x", "$HOME", "*", "a | b", "`id`"]

    data = await run({"argv": ["echo", *tricky]})

    assert data["stdout"]["content"] == " ".join(tricky) + "\n"


async def test_env_cwd_and_stdin_reach_the_program(tmp_path: Path) -> None:
    create_shell_agent([PYTHON])
    code = "import os, sys; print(os.getcwd()); print(os.environ['GREETING'], os.environ['PATH'] != ''); " \
           "print(sys.stdin.read().upper())"

    data = await run({"argv": [PYTHON, "-c", code], "cwd": str(tmp_path), "env": {"GREETING": "hi"},
                      "stdin": "piped"})

    assert data["stdout"]["content"].splitlines() == [str(tmp_path), "hi True", "PIPED"]


async def test_output_beyond_the_cap_is_read_to_the_end_and_marked_truncated() -> None:
    create_shell_agent([PYTHON])
    code = "import sys; sys.stdout.write('a' * 5_000_000); sys.stderr.write('b' * 5_000_000)"

    data = await run({"argv": [PYTHON, "-c", code], "max_output_bytes": 1000, "timeout": 30})

    assert data["exit_code"] == 0
    assert data["stdout"]["content"] == "a" * 1000 and data["stderr"]["content"] == "b" * 1000
    assert data["stdout_truncated"] is True and data["stderr_truncated"] is True
    assert data["stdout_bytes"] == data["stderr_bytes"] == 5_000_000


async def test_an_exit_code_outside_ok_exit_codes_fails_with_the_end_of_stderr() -> None:
    create_shell_agent([PYTHON])
    code = "import sys; sys.stderr.write('x' * 10000 + ' disk full'); sys.exit(3)"

    with pytest.raises(ShellCommandError) as caught:
        await run({"argv": [PYTHON, "-c", code]})
    assert caught.value.exit_code == 3
    assert "exited with code 3" in str(caught.value) and str(caught.value).endswith(' disk full"')
    assert "End of stderr: untrusted stderr from program" in str(caught.value)
    assert len(str(caught.value)) < 1000

    allowed = await run({"argv": [PYTHON, "-c", code], "ok_exit_codes": [0, 3]})
    assert allowed["exit_code"] == 3


# ---------------------------------------------------------------------- the allowlist


async def test_a_disabled_shell_refuses_runs_saying_how_to_enable_it() -> None:
    create_shell_agent([])

    with pytest.raises(ShellDisabledError) as caught:
        await run({"argv": ["echo", "hi"]})
    assert "--allow-shell" in str(caught.value) and "MCP_SCHEDULER_ALLOW_SHELL" in str(caught.value)


async def test_a_disabled_shell_is_listed_but_refuses_to_schedule(tmp_path: Path) -> None:
    async with runtime(tmp_path) as rt:
        assert "shell" in rt.registry.names()
        request = SchedulerInput(operation="schedule", schedule_type="interval", schedule="1 hour",
                                 agentool_name="shell", input_data={"operation": "run", "argv": ["echo", "hi"]})

        with pytest.raises(ShellDisabledError, match="--allow-shell"):
            await rt.service.schedule(request)
        assert rt.service.list_jobs() == ([], 0)


async def test_a_disallowed_executable_or_missing_cwd_is_refused_at_schedule_time(tmp_path: Path) -> None:
    async with runtime(tmp_path, "echo") as rt:

        def job(**input_data: Any) -> SchedulerInput:
            return SchedulerInput(operation="schedule", schedule_type="interval", schedule="1 hour",
                                  agentool_name="shell", input_data={"operation": "run", **input_data})

        with pytest.raises(ExecutableNotAllowedError, match="Allowed: 'echo'"):
            await rt.service.schedule(job(argv=["python3", "-c", "print(1)"]))
        with pytest.raises(WorkingDirectoryError, match="does not exist"):
            await rt.service.schedule(job(argv=["echo", "hi"], cwd=str(tmp_path / "nowhere")))
        assert rt.service.list_jobs() == ([], 0)

        await rt.service.schedule(job(argv=["echo", "hi"], cwd=str(tmp_path)))
        assert rt.service.list_jobs()[1] == 1


async def test_paths_and_symlinks_cannot_pass_for_an_allowed_program(tmp_path: Path) -> None:
    allowed, other = tmp_path / "allowed-python", tmp_path / "other-name"
    allowed.symlink_to(PYTHON)
    other.symlink_to(PYTHON)  # the same file under another name (think busybox: the name picks the program)
    disguised = tmp_path / "echo"
    disguised.symlink_to(PYTHON)  # another program under an allowed name
    create_shell_agent([str(allowed), "echo", "./allowed-python"])

    assert (await run({"argv": [str(allowed), "-c", "print(1)"]}))["stdout"]["content"] == "1\n"
    refused = [str(other), str(disguised), "./allowed-python", "allowed-python", "python3"]
    for program in refused:
        with pytest.raises(ExecutableNotAllowedError):
            await run({"argv": [program, "-c", "print(1)"], "cwd": str(tmp_path)})


async def test_a_path_in_env_cannot_swap_the_program(tmp_path: Path) -> None:
    (tmp_path / "echo").write_text("#!/bin/sh\necho swapped\n")
    (tmp_path / "echo").chmod(0o755)
    create_shell_agent(["echo"])

    data = await run({"argv": ["echo", "real"], "env": {"PATH": str(tmp_path)}})

    assert data["stdout"]["content"] == "real\n"


# ---------------------------------------------------------------------- process groups


async def test_a_timeout_kills_the_whole_process_group() -> None:
    create_shell_agent([PYTHON])
    async with pid_reports() as (port, reports):
        task = asyncio.create_task(
            run({"argv": [PYTHON, "-c", report_pids("time.sleep(30)"), str(port)], "timeout": 1.5})
        )
        child, grandchild = await asyncio.wait_for(reports.get(), WAIT)
        pidfd = os.pidfd_open(grandchild)
        try:
            with pytest.raises(ShellTimeoutError, match="timed out after 1.5 s"):
                await asyncio.wait_for(task, WAIT)
            assert_reaped(child)
            # Orphaned, the grandchild belongs to PID 1, which may never reap it: "gone" is "has exited".
            assert has_exited(pidfd)
        finally:
            os.close(pidfd)


async def test_what_a_finished_command_leaves_running_is_stopped() -> None:
    create_shell_agent([PYTHON])
    async with pid_reports() as (port, reports):
        data = await run({"argv": [PYTHON, "-c", report_pids("print('done')"), str(port)], "timeout": 20})
        child, grandchild = reports.get_nowait()

    assert data["stdout"]["content"] == "done\n" and data["elapsed_ms"] < 10_000
    assert_reaped(child)
    try:
        pidfd = os.pidfd_open(grandchild)
    except ProcessLookupError:
        return  # already reaped
    try:
        assert has_exited(pidfd)
    finally:
        os.close(pidfd)


async def test_a_run_stopped_by_the_jobs_own_timeout_leaves_no_process(tmp_path: Path) -> None:
    code = (
        "import os, socket, sys\n"
        "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
        "s.sendall(f'{os.getpid()}\\n'.encode()); s.close()\n"
        "os.execvp('sleep', ['sleep', '30'])\n"
    )
    async with runtime(tmp_path, PYTHON) as rt, pid_reports() as (port, reports):
        request = SchedulerInput(operation="run_now", agentool_name="shell", timeout=1.5,
                                 input_data={"operation": "run", "argv": [PYTHON, "-c", code, str(port)]})
        task = asyncio.create_task(rt.service.run_now(request))
        (pid,) = await asyncio.wait_for(reports.get(), WAIT)

        with pytest.raises(JobExecutionError, match="took longer than 1.5 s"):
            await asyncio.wait_for(task, WAIT)
        assert_reaped(pid)


async def test_a_failing_command_is_a_recorded_run_error(tmp_path: Path) -> None:
    sh = shutil.which("sh")
    assert sh is not None
    async with runtime(tmp_path, "sh") as rt:
        request = SchedulerInput(operation="run_now", agentool_name="shell", job_id="failing",
                                 input_data={"operation": "run", "argv": ["sh", "-c", "echo nope >&2; exit 3"]})

        with pytest.raises(JobExecutionError, match="exited with code 3"):
            await rt.service.run_now(request)

        (record,) = await rt.service.get_history("failing")
        assert record.status == "error" and record.error is not None
        assert record.error.type == "ShellCommandError" and "nope" in record.error.message
