"""A user's machine for the background runner's tests: HOME and the runtime folder of the test's own, the
background runner allowed again, and every runner started under it ended by pid when the test ends."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mcp_scheduler.runner_info import RunnerInfo, read_runner_info
from mcp_scheduler.runner_paths import runner_log_path, runner_socket_path
from tests._processes import end_runners_under, runners_under

WAIT = 60.0
"""Upper bound for what involves starting a process (a runner imports the scheduler: seconds under load)."""

_numbers = itertools.count()


@dataclass
class Machine:
    """HOME, XDG_RUNTIME_DIR and the environment of the processes a test starts, as a user's machine has them."""

    home: Path
    runtime: Path
    env: dict[str, str]
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def default_database(self) -> str:
        return str(self.home / ".local" / "share" / "mcp-scheduler" / "scheduler.sqlite")

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "mcp_scheduler", *args]

    def run(self, *args: str, timeout: float = WAIT) -> subprocess.CompletedProcess[str]:
        """`mcp-scheduler ARGS` to completion."""
        return subprocess.run(self.command(*args), capture_output=True, text=True, timeout=timeout, env=self.env)

    def start(self, *args: str, stdin: Any = subprocess.DEVNULL, stdout: Any = subprocess.DEVNULL,
              stderr: Any = subprocess.DEVNULL, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """`mcp-scheduler ARGS` in the background (ended at teardown if still running)."""
        process = subprocess.Popen(self.command(*args), stdin=stdin, stdout=stdout, stderr=stderr,
                                   env=env or self.env)
        self.started.append(process)
        return process

    def runners(self) -> list[int]:
        """The pids of the runner processes started on this machine that are alive."""
        return runners_under(self.runtime)

    def info(self, database: str) -> RunnerInfo | None:
        return read_runner_info(database)

    def socket(self, database: str) -> Path:
        return runner_socket_path(database)

    def log(self, database: str) -> str:
        path = runner_log_path(database)
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture
def machine(tmp_path: Path, runtime_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Machine]:
    home = tmp_path / "home"
    home.mkdir()
    runtime = runtime_root / f"t{next(_numbers)}"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "MCP_SCHEDULER_NO_BACKGROUND_RUNNER"):
        monkeypatch.delenv(name, raising=False)
    m = Machine(home, runtime, dict(os.environ))
    yield m
    for process in m.started:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=WAIT)
    end_runners_under(runtime)


async def eventually(condition: Any, *, within: float = WAIT, what: str = "the condition") -> Any:
    """Wait until `condition()` gives something true (checked every 20 ms) and return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = condition()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not happen within {within} s")
        await asyncio.sleep(0.02)


def runs_of(database: str, job_id: str) -> list[dict[str, Any]]:
    """The run records of a job as the database holds them (read by SQLite, not by the scheduler)."""
    if not os.path.exists(database):
        return []
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute("SELECT record FROM scheduler_runs WHERE job_id = ? ORDER BY seq", (job_id,)).fetchall()
    except sqlite3.OperationalError:  # the tables do not exist yet
        return []
    return [json.loads(row[0]) for row in rows]


def inbox_messages(database: str) -> list[dict[str, Any]]:
    """The messages of the inbox queue (read by SQLite)."""
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute("SELECT payload FROM agentool_queue_messages WHERE queue_name = 'inbox'").fetchall()
    except sqlite3.OperationalError:
        return []
    return [json.loads(row[0]) for row in rows]


class RawClient:
    """A stdio front-end (`mcp-scheduler ARGS`) driven by hand: one JSON-RPC message per line, its stderr in a file."""

    def __init__(self, process: asyncio.subprocess.Process, errlog: Path) -> None:
        self.process = process
        self.errlog = errlog
        self._ids = itertools.count(1)

    @classmethod
    async def start(cls, machine: Machine, *args: str, env: dict[str, str] | None = None,
                    errlog: Path | None = None) -> RawClient:
        errlog = errlog or machine.home / f"frontend-{next(_numbers)}.err"
        with errlog.open("ab") as err:
            process = await asyncio.create_subprocess_exec(
                *machine.command(*args), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
                env=env or machine.env, limit=16 * 1024 * 1024,
            )
        return cls(process, errlog)

    @property
    def stderr(self) -> str:
        return self.errlog.read_text(errors="replace")

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()

    async def send_line(self, line: bytes) -> dict[str, Any]:
        """Send one raw line; the next message that comes back."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + b"\n")
        await self.process.stdin.drain()
        async with asyncio.timeout(WAIT):
            answer: dict[str, Any] = json.loads(await self.process.stdout.readline())
        return answer

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The answer (result or error) to a request."""
        request_id = next(self._ids)
        await self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}})
        assert self.process.stdout is not None
        async with asyncio.timeout(WAIT):
            while True:
                line = await self.process.stdout.readline()
                assert line, f"the front-end closed stdout while {method} waited; stderr:\n{self.stderr[-3000:]}"
                message: dict[str, Any] = json.loads(line)
                if message.get("id") == request_id:
                    return message

    async def initialize(self) -> dict[str, Any]:
        answer = await self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                                   "clientInfo": {"name": "raw", "version": "0"}})
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return answer

    async def close(self) -> tuple[int, bytes]:
        """Close stdin as a client does, and read stdout to its end: the exit code and what was still written."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        async with asyncio.timeout(WAIT):
            rest, _ = await self.process.communicate()
        assert self.process.returncode is not None
        return self.process.returncode, rest

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


def imported_modules(stderr: str) -> set[str]:
    """The modules a process imported, from its `-X importtime` (PYTHONPROFILEIMPORTTIME=1) lines on stderr."""
    return {line.split("|")[-1].strip() for line in stderr.splitlines() if line.startswith("import time:")} - {
        "package"}


HEAVY = ("mcp", "pydantic", "pydantic_core", "anyio", "apscheduler", "platformdirs", "asyncio", "agentool_bridge",
         "pydantic_ai", "httpx2", "sqlite3")
"""What a front-end that pipes its client to the runner must not import."""
