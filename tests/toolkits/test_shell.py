"""The `shell` AgenTool with real processes: allowlist, argv without a shell, output, exit codes, timeouts and
cancellation that leave no process of the run behind (whatever session it moved to), the supervisor that
makes that so on Linux (and the process-group fallback), and the limit of runs in progress at once."""

from __future__ import annotations

import asyncio
import os
import secrets
import select
import shutil
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from agentool_bridge import AgenToolInjector
from agentool_bridge.toolkits.config import ToolkitConfig
from agentool_bridge.toolkits.shell import (
    EnvironmentNotAllowedError,
    ExecutableNotAllowedError,
    ShellCommandError,
    ShellDisabledError,
    ShellRunner,
    ShellTimeoutError,
    WorkingDirectoryError,
    create_shell_agent,
)
from mcp_scheduler import JobExecutionError, SchedulerInput, SchedulerRuntime, ServiceConfig
from tests._net import eventually

PYTHON = sys.executable
WAIT = 10.0


async def run(injector: AgenToolInjector, data: dict[str, Any]) -> dict[str, Any]:
    output = await injector.run("shell", {"operation": "run", **data})
    assert output.success is True
    data_out: dict[str, Any] = output.data
    return data_out


def use_shell(
    injector: AgenToolInjector, *executables: str, supervise: bool | None = None, max_processes: int = 16
) -> ShellRunner:
    """Register a `shell` AgenTool over a runner of these settings in `injector`; return the runner."""
    runner = ShellRunner(executables, supervise=supervise, max_processes=max_processes)
    injector.registry.register(runner.agentool())
    return runner


@asynccontextmanager
async def runtime(
    tmp_path: Path, *executables: str, close_timeout: float = 10.0, max_processes: int = 16
) -> AsyncIterator[SchedulerRuntime]:
    config = ServiceConfig(database=str(tmp_path / "s.sqlite"), timezone="UTC", close_timeout=close_timeout)
    toolkits = ToolkitConfig(shell_executables=executables, shell_max_processes=max_processes)
    async with SchedulerRuntime(config, injector=AgenToolInjector(), toolkit_config=toolkits) as rt:
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


async def test_a_command_returns_its_exit_code_stdout_and_stderr(injector: AgenToolInjector) -> None:
    create_shell_agent([PYTHON])

    data = await run(injector, {"argv": [PYTHON, "-c", "import sys; print('out é'); print('err', file=sys.stderr)"]})

    assert data["exit_code"] == 0
    assert data["stdout"]["content"] == "out é\n" and data["stderr"]["content"] == "err\n"
    assert data["stdout_truncated"] is False and data["stderr_truncated"] is False
    assert data["argv"][0] == PYTHON and data["elapsed_ms"] >= 0


async def test_argv_never_goes_through_a_shell(injector: AgenToolInjector) -> None:
    create_shell_agent(["echo"])
    tricky = ["; rm -rf x", "$HOME", "*", "a | b", "`id`"]

    data = await run(injector, {"argv": ["echo", *tricky]})

    assert data["stdout"]["content"] == " ".join(tricky) + "\n"


async def test_env_cwd_and_stdin_reach_the_program(injector: AgenToolInjector, tmp_path: Path) -> None:
    code = "import os, sys; print(os.getcwd()); print(os.environ['GREETING'], os.environ['PATH'] != ''); " \
           "print(sys.stdin.read().upper())"

    create_shell_agent([PYTHON], env=["GREETING"])
    data = await run(injector, {"argv": [PYTHON, "-c", code], "cwd": str(tmp_path), "env": {"GREETING": "hi"},
                      "stdin": "piped"})

    assert data["stdout"]["content"].splitlines() == [str(tmp_path), "hi True", "PIPED"]


async def test_output_beyond_the_cap_is_read_to_the_end_and_marked_truncated(injector: AgenToolInjector) -> None:
    create_shell_agent([PYTHON])
    code = "import sys; sys.stdout.write('a' * 5_000_000); sys.stderr.write('b' * 5_000_000)"

    data = await run(injector, {"argv": [PYTHON, "-c", code], "max_output_bytes": 1000, "timeout": 30})

    assert data["exit_code"] == 0
    assert data["stdout"]["content"] == "a" * 1000 and data["stderr"]["content"] == "b" * 1000
    assert data["stdout_truncated"] is True and data["stderr_truncated"] is True
    assert data["stdout_bytes"] == data["stderr_bytes"] == 5_000_000


async def test_an_exit_code_outside_ok_exit_codes_fails_with_the_end_of_stderr(injector: AgenToolInjector) -> None:
    create_shell_agent([PYTHON])
    code = "import sys; sys.stderr.write('x' * 10000 + ' disk full'); sys.exit(3)"

    with pytest.raises(ShellCommandError) as caught:
        await run(injector, {"argv": [PYTHON, "-c", code]})
    assert caught.value.exit_code == 3
    assert "exited with code 3" in str(caught.value) and str(caught.value).endswith(' disk full"')
    assert "End of stderr: untrusted stderr from program" in str(caught.value)
    assert len(str(caught.value)) < 1000

    allowed = await run(injector, {"argv": [PYTHON, "-c", code], "ok_exit_codes": [0, 3]})
    assert allowed["exit_code"] == 3


# ---------------------------------------------------------------------- the allowlist


async def test_a_disabled_shell_refuses_runs_saying_how_to_enable_it(injector: AgenToolInjector) -> None:
    create_shell_agent([])

    with pytest.raises(ShellDisabledError) as caught:
        await run(injector, {"argv": ["echo", "hi"]})
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


async def test_paths_and_symlinks_cannot_pass_for_an_allowed_program(
    injector: AgenToolInjector, tmp_path: Path
) -> None:
    allowed, other = tmp_path / "allowed-python", tmp_path / "other-name"
    allowed.symlink_to(PYTHON)
    other.symlink_to(PYTHON)  # the same file under another name (think busybox: the name picks the program)
    disguised = tmp_path / "echo"
    disguised.symlink_to(PYTHON)  # another program under an allowed name
    create_shell_agent([str(allowed), "echo", "./allowed-python"])

    assert (await run(injector, {"argv": [str(allowed), "-c", "print(1)"]}))["stdout"]["content"] == "1\n"
    refused = [str(other), str(disguised), "./allowed-python", "allowed-python", "python3"]
    for program in refused:
        with pytest.raises(ExecutableNotAllowedError):
            await run(injector, {"argv": [program, "-c", "print(1)"], "cwd": str(tmp_path)})


async def test_a_path_in_env_is_refused_and_cannot_swap_the_program(injector: AgenToolInjector, tmp_path: Path) -> None:
    (tmp_path / "echo").write_text("#!/bin/sh\necho swapped\n")
    (tmp_path / "echo").chmod(0o755)
    create_shell_agent(["echo"])

    with pytest.raises(EnvironmentNotAllowedError, match="PATH"):
        await run(injector, {"argv": ["echo", "real"], "env": {"PATH": str(tmp_path)}})
    data = await run(injector, {"argv": ["echo", "real"]})

    assert data["stdout"]["content"] == "real\n"


# ---------------------------------------------------------------------- stopping a run


@pytest.mark.parametrize("supervise", [True, False], ids=["supervised", "process group"])
async def test_a_timeout_kills_the_program_and_its_children(injector: AgenToolInjector, supervise: bool) -> None:
    use_shell(injector, PYTHON, supervise=supervise)
    async with pid_reports() as (port, reports):
        task = asyncio.create_task(
            run(injector, {"argv": [PYTHON, "-c", report_pids("time.sleep(30)"), str(port)], "timeout": 1.5})
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


@pytest.mark.parametrize("supervise", [True, False], ids=["supervised", "process group"])
async def test_what_a_finished_command_leaves_running_is_stopped(injector: AgenToolInjector, supervise: bool) -> None:
    use_shell(injector, PYTHON, supervise=supervise)
    async with pid_reports() as (port, reports):
        data = await run(injector, {"argv": [PYTHON, "-c", report_pids("print('done')"), str(port)], "timeout": 20})
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


# ---------------------------------------------------------------------- nothing of a run survives it

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the supervisor runs on Linux only")


def alive_with(marker: str) -> list[int]:
    """The processes whose command line holds `marker` (a zombie's is empty: it does not count)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry))
    return found


@pytest.fixture
def escapees(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A shell script that starts `sleep`s that leave the run's session (`setsid -f`) and its process tree (a
    double fork through `sh -c`), then creates the file `ready`; and the unique markers of those sleeps.

    Whatever still runs after the test is killed (an old or broken version would leave them for minutes).
    """
    token = f"{secrets.randbelow(10**9):09d}"
    markers = [f"601.{token}", f"602.{token}"]
    ready = tmp_path / "ready"
    script = f"setsid -f sleep {markers[0]}; sh -c 'sleep {markers[1]} &'; touch {ready}"
    yield script, ready, markers
    for marker in markers:
        for pid in alive_with(marker):
            os.kill(pid, signal.SIGKILL)


def assert_none_alive(markers: list[str]) -> None:
    assert {marker: alive_with(marker) for marker in markers} == {marker: [] for marker in markers}


@linux_only
async def test_nothing_a_finished_run_started_survives_it(
    injector: AgenToolInjector, escapees: tuple[str, Path, list[str]]
) -> None:
    script, ready, markers = escapees
    create_shell_agent(["sh"])

    data = await run(injector, {"argv": ["sh", "-c", f"{script}; echo done"], "timeout": 30})

    assert data["stdout"]["content"] == "done\n" and ready.exists()
    assert_none_alive(markers)


@linux_only
async def test_nothing_a_timed_out_run_started_survives_it(
    injector: AgenToolInjector, escapees: tuple[str, Path, list[str]]
) -> None:
    script, ready, markers = escapees
    create_shell_agent(["sh"])

    with pytest.raises(ShellTimeoutError):
        await run(injector, {"argv": ["sh", "-c", f"{script}; sleep 60"], "timeout": 3})

    assert ready.exists()  # the escapees were started before the timeout
    assert_none_alive(markers)


@linux_only
async def test_nothing_a_cancelled_run_started_survives_it(
    injector: AgenToolInjector, escapees: tuple[str, Path, list[str]]
) -> None:
    script, ready, markers = escapees
    create_shell_agent(["sh"])
    task = asyncio.create_task(run(injector, {"argv": ["sh", "-c", f"{script}; sleep 60"], "timeout": 60}))
    await eventually(ready.exists, within=WAIT, what="the escapees' start")

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert_none_alive(markers)


@linux_only
@pytest.mark.parametrize("how", ["job timeout", "scheduler stopping"])
async def test_nothing_survives_a_run_the_scheduler_stops(
    tmp_path: Path, escapees: tuple[str, Path, list[str]], how: str
) -> None:
    script, ready, markers = escapees
    async with runtime(tmp_path, "sh", close_timeout=0.5) as rt:
        request = SchedulerInput(operation="run_now", agentool_name="shell", timeout=60 if how != "job timeout" else 3,
                                 input_data={"operation": "run", "argv": ["sh", "-c", f"{script}; sleep 60"]})
        task = asyncio.create_task(rt.service.run_now(request))
        await eventually(ready.exists, within=WAIT, what="the escapees' start")
        if how == "scheduler stopping":
            await rt.close()
        outcome = await asyncio.gather(task, return_exceptions=True)

    assert isinstance(outcome[0], JobExecutionError | asyncio.CancelledError)
    assert_none_alive(markers)


_SERVER = """
import asyncio, sys
from agentool_bridge.toolkits.shell import ShellRunner
asyncio.run(ShellRunner(["sh"]).run(["sh", "-c", sys.argv[1]], time_limit=120))
"""


@linux_only
async def test_nothing_of_a_run_survives_the_server_being_killed(escapees: tuple[str, Path, list[str]]) -> None:
    script, ready, markers = escapees
    server = await asyncio.create_subprocess_exec(PYTHON, "-c", _SERVER, f"{script}; sleep 60")
    try:
        await eventually(ready.exists, within=WAIT, what="the escapees' start")
        assert all(alive_with(marker) for marker in markers)
        server.kill()
        await asyncio.wait_for(server.wait(), WAIT)

        await eventually(lambda: not any(alive_with(marker) for marker in markers), within=WAIT,
                         what="the end of the run's processes")
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()


# ---------------------------------------------------------------------- the supervisor


@linux_only
@pytest.mark.parametrize(
    ("script", "code"),
    [("exit 0", 0), ("exit 3", 3), ("exit 255", 255), ("kill -TERM $$", -signal.SIGTERM),
     ("kill -KILL $$", -signal.SIGKILL), ("kill -HUP $$", -signal.SIGHUP), ("kill -SEGV $$", -signal.SIGSEGV)],
)  # fmt: skip
async def test_the_supervisor_reports_the_programs_exit_code_or_signal(
    injector: AgenToolInjector, tmp_path: Path, script: str, code: int
) -> None:
    runner = use_shell(injector, "sh")
    assert runner.supervise is True

    data = await run(injector, {"argv": ["sh", "-c", script], "cwd": str(tmp_path), "ok_exit_codes": [code]})

    assert data["exit_code"] == code
    if code < 0:
        with pytest.raises(ShellCommandError, match=f"was killed by signal {signal.Signals(-code).name}"):
            await run(injector, {"argv": ["sh", "-c", script], "cwd": str(tmp_path)})


@linux_only
async def test_the_supervisor_keeps_no_copy_of_the_programs_pipes(injector: AgenToolInjector) -> None:
    use_shell(injector, PYTHON)
    # The program looks at its parent's (the supervisor's) descriptors, until none is one of its own pipes.
    code = (
        "import os, sys, time\n"
        "mine = {os.readlink(f'/proc/self/fd/{fd}') for fd in (0, 1, 2)}\n"
        "deadline = time.monotonic() + 10\n"
        "while True:\n"
        "    held = {os.readlink(f'/proc/{os.getppid()}/fd/{fd}') for fd in os.listdir(f'/proc/{os.getppid()}/fd')}\n"
        "    if not held & mine or time.monotonic() > deadline:\n"
        "        break\n"
        "print(sorted(held & mine))\n"
    )

    data = await run(injector, {"argv": [PYTHON, "-c", code], "stdin": "input"})

    assert data["stdout"]["content"] == "[]\n"


# ---------------------------------------------------------------------- runs at once


def gated_program(tmp_path: Path, name: str) -> list[str]:
    """A program that creates `<name>.started`, waits until the FIFO `gate` is opened for writing, then appends
    `<name> end` to `order`."""
    code = (
        "import pathlib, sys\n"
        "d = pathlib.Path(sys.argv[1])\n"
        f"(d / '{name}.started').touch()\n"
        "(d / 'gate').read_bytes()\n"
        f"with open(d / 'order', 'a') as f: f.write('{name} end\\n')\n"
    )
    return [PYTHON, "-c", code, str(tmp_path)]


def marking_program(tmp_path: Path, name: str) -> list[str]:
    """A program that appends `<name> start` to `order`."""
    code = f"import sys; open(sys.argv[1] + '/order', 'a').write('{name} start\\n')"
    return [PYTHON, "-c", code, str(tmp_path)]


def open_gate(tmp_path: Path) -> threading.Thread:
    """Open the FIFO `gate` for writing (in a thread: the open waits for the reader), then close it."""
    thread = threading.Thread(target=lambda: (tmp_path / "gate").write_bytes(b""), daemon=True)
    thread.start()
    return thread


async def test_runs_beyond_max_processes_wait_their_turn(injector: AgenToolInjector, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "gate")
    runner = use_shell(injector, PYTHON, max_processes=1)
    first = asyncio.create_task(run(injector, {"argv": gated_program(tmp_path, "A"), "timeout": 30}))
    await eventually((tmp_path / "A.started").exists, within=WAIT, what="the first run's start")

    second = asyncio.create_task(run(injector, {"argv": marking_program(tmp_path, "B"), "timeout": 30}))
    await eventually(lambda: runner.waiting == 1, within=WAIT, what="the second run waiting")
    assert runner.running == 1 and not (tmp_path / "order").exists()

    open_gate(tmp_path).join(WAIT)
    await asyncio.wait_for(asyncio.gather(first, second), WAIT)

    assert (tmp_path / "order").read_text() == "A end\nB start\n"
    assert runner.running == 0 and runner.waiting == 0


async def test_a_run_waiting_for_its_turn_still_times_out(injector: AgenToolInjector, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "gate")
    use_shell(injector, PYTHON, max_processes=1)
    first = asyncio.create_task(run(injector, {"argv": gated_program(tmp_path, "A"), "timeout": 30}))
    await eventually((tmp_path / "A.started").exists, within=WAIT, what="the first run's start")

    with pytest.raises(ShellTimeoutError, match="waiting for its turn") as caught:
        await run(injector, {"argv": marking_program(tmp_path, "B"), "timeout": 0.5})
    assert "--max-processes" in str(caught.value) and "never started" in str(caught.value)

    open_gate(tmp_path).join(WAIT)
    await asyncio.wait_for(first, WAIT)
    assert (tmp_path / "order").read_text() == "A end\n"


async def test_the_scheduler_gives_shell_the_operators_max_processes(tmp_path: Path) -> None:
    async with runtime(tmp_path, "sh", max_processes=3) as rt:
        runner = rt.registry.get("shell").backend
        assert isinstance(runner, ShellRunner) and runner.max_processes == 3


async def test_a_run_cancelled_while_waiting_for_its_turn_takes_no_slot(
    injector: AgenToolInjector, tmp_path: Path
) -> None:
    os.mkfifo(tmp_path / "gate")
    runner = use_shell(injector, PYTHON, max_processes=1)
    first = asyncio.create_task(run(injector, {"argv": gated_program(tmp_path, "A"), "timeout": 30}))
    await eventually((tmp_path / "A.started").exists, within=WAIT, what="the first run's start")
    second = asyncio.create_task(run(injector, {"argv": marking_program(tmp_path, "B"), "timeout": 30}))
    await eventually(lambda: runner.waiting == 1, within=WAIT, what="the second run waiting")

    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    open_gate(tmp_path).join(WAIT)
    await asyncio.wait_for(first, WAIT)
    await run(injector, {"argv": marking_program(tmp_path, "C"), "timeout": 30})

    assert (tmp_path / "order").read_text() == "A end\nC start\n"
    assert runner.running == 0 and runner.waiting == 0
