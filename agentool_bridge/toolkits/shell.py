"""The `shell` AgenTool: run one program of an allowlist, with arguments, and capture what it printed.

It is off unless the host allows executables (`ToolkitConfig.shell_executables`, the CLI's
`--allow-shell EXECUTABLE`); while off it stays registered, so that its schema can be read, and
refuses every job and run with `ShellDisabledError`, saying how to switch it on.

A command is an argv list and never goes through a shell: `;`, `|`, `$VAR` and globs are plain
characters of an argument. `argv[0]` is looked up on the server's PATH (a path must be absolute) and
must be the very file an allowed entry names, under the same name (so a symlink, or a multi-call
binary such as busybox, cannot pass for an allowed program). The program runs in a process group
of its own: on a timeout, on cancellation (the job's own timeout, the scheduler stopping), and when
it exits leaving children behind, the whole group is stopped (SIGTERM, then SIGKILL), so that no
process outlives its run. Output is read to the end however long it is; only the first
`max_output_bytes` of each stream are kept.

What a program prints is labelled as outside content: `stdout` and `stderr` come as
`{"untrusted": true, "from": "program 'git'", "content": ...}`, and a failure quotes the end of stderr as
untrusted text (see `agentool_bridge.untrusted`). The operator allowed the program, not what it relays: a
`git log`, a `curl` or a mail filter prints text that someone outside wrote.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from typing import Literal

import anyio
from pydantic import Field, field_validator

from ..errors import clip
from ..injector import get_injector
from ..models import BaseOperationInput, RoutingConfig
from ..redaction import Redactor, active
from ..registry import AgenTool, AgenToolRegistry
from ..untrusted import quote, untrusted
from ._common import ToolkitOutput, check_text
from .errors import ToolkitError

__all__ = [
    "AGENTOOL_NAME",
    "ExecutableNotAllowedError",
    "ShellCommandError",
    "ShellDisabledError",
    "ShellInput",
    "ShellRunner",
    "ShellTimeoutError",
    "WorkingDirectoryError",
    "create_shell_agent",
]

AGENTOOL_NAME = "shell"
DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 3600.0
DEFAULT_MAX_OUTPUT = 64 * 1024
MAX_OUTPUT = 1024 * 1024
MAX_STDIN = 1024 * 1024
STDERR_TAIL = 500
"""Characters of stderr that the error of a failed command quotes (its end, where the reason usually is)."""
KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL when a process group is stopped."""
_CHUNK = 64 * 1024
_HOW_TO_ENABLE = (
    "start the server with --allow-shell EXECUTABLE (repeatable; a program name on PATH or an absolute "
    "path), or set MCP_SCHEDULER_ALLOW_SHELL=a,b"
)


class ShellDisabledError(ToolkitError, PermissionError):
    """`shell` is off: the server was started without any `--allow-shell` executable."""

    def __init__(self) -> None:
        super().__init__(f"The shell AgenTool is disabled on this server. To enable it, {_HOW_TO_ENABLE}.")


class ExecutableNotAllowedError(ToolkitError, PermissionError):
    """`argv[0]` is not one of the executables the server allows."""


class WorkingDirectoryError(ToolkitError, FileNotFoundError):
    """`cwd` does not exist on the server, or is not a directory."""


class ShellCommandError(ToolkitError, RuntimeError):
    """The command exited with a code that is not in `ok_exit_codes`; the error quotes the end of its stderr
    as untrusted text."""

    def __init__(self, message: str, *, exit_code: int, stderr: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.stderr = stderr


class ShellTimeoutError(ToolkitError, TimeoutError):
    """The command ran longer than its `timeout`; its process group was killed."""


class ShellInput(BaseOperationInput):
    """Run an allowed program with arguments (never through a shell) and return its exit code, stdout and stderr."""

    operation: Literal["run"] = Field(description="The shell operation to perform: run a program.")
    argv: list[str] = Field(
        min_length=1,
        max_length=1000,
        description="The program and its arguments, e.g. [\"git\", \"-C\", \"/srv/repo\", \"pull\"]. No shell is "
        "involved: ';', '|', '>', '$VAR' and '*' are passed literally. argv[0] must be a program the server "
        "allows (a name on the server's PATH, or an absolute path).",
    )
    cwd: str | None = Field(
        default=None, description="Directory to run in (must exist); default: the server's working directory."
    )
    env: dict[str, str] | None = Field(
        default=None,
        description="Extra environment variables, added to the server's environment. Use '!env:NAME' values for "
        "secrets (NAME must be a secret the operator allows with --secret NAME).",
    )
    stdin: str | None = Field(
        default=None, max_length=MAX_STDIN, description="Text to write to the program's standard input; default: none."
    )
    timeout: float = Field(
        default=DEFAULT_TIMEOUT,
        gt=0,
        le=MAX_TIMEOUT,
        description=f"Seconds the program may run (at most {MAX_TIMEOUT:g}); then it and every process it started "
        "are killed and the run fails.",
    )
    max_output_bytes: int = Field(
        default=DEFAULT_MAX_OUTPUT,
        ge=1,
        le=MAX_OUTPUT,
        description="Bytes of stdout and of stderr kept (each; at most 1 MB). Longer output is read to the end but "
        "cut, and marked as truncated.",
    )
    ok_exit_codes: list[int] = Field(
        default_factory=lambda: [0],
        min_length=1,
        max_length=256,
        description="Exit codes that count as success; any other one fails the run.",
    )

    @field_validator("argv")
    @classmethod
    def check_argv(cls, value: list[str]) -> list[str]:
        """Arguments are text without NUL characters; the program name is not blank."""
        for index, argument in enumerate(value):
            check_text(f"argv[{index}]", argument)
        if not value[0].strip():
            raise ValueError("argv[0] must name a program")
        return value

    @field_validator("cwd")
    @classmethod
    def check_cwd(cls, value: str | None) -> str | None:
        """A directory path is text without NUL characters."""
        return None if value is None else check_text("cwd", value)

    @field_validator("env")
    @classmethod
    def check_env(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        """Variable names are non-empty and have no '='; names and values have no NUL characters."""
        for name, text in (value or {}).items():
            if not name or "=" in name:
                raise ValueError(f"env: invalid variable name {clip(name)} (non-empty, no '=')")
            check_text(f"env name {clip(name, 50)}", name)
            check_text(f"env[{clip(name, 50)}]", text)
        return value


class _Program(asyncio.SubprocessProtocol):
    """A running program's output (the first `limit` bytes of each stream kept, the rest counted) and its end.

    Reading is never paused, so the program never blocks on a full pipe. The secrets revealed to the run
    (`redactor`) are replaced before an output is cut: heads and the stderr tail are kept `margin` bytes
    longer than shown, so that a secret across a cut is replaced whole.
    """

    def __init__(self, limit: int, redactor: Redactor) -> None:
        self.limit = limit
        self.redactor = redactor
        self._keep = limit + redactor.margin
        self._tail_keep = 4 * STDERR_TAIL + redactor.margin
        self.heads: dict[int, bytearray] = {1: bytearray(), 2: bytearray()}
        self.totals: dict[int, int] = {1: 0, 2: 0}
        self.stderr_tail = b""
        self.exited = asyncio.Event()  # the program itself ended
        self.closed = asyncio.Event()  # ... and every pipe to it is closed

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.totals[fd] += len(data)
        head = self.heads[fd]
        if len(head) < self._keep:
            head += data[: self._keep - len(head)]
        if fd == 2:
            self.stderr_tail = (self.stderr_tail + data)[-self._tail_keep :]

    def process_exited(self) -> None:
        self.exited.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.exited.set()
        self.closed.set()

    def text(self, fd: int) -> str:
        """The first `limit` bytes of a stream as text (redacted: a secret across the cut is replaced whole)."""
        head = bytes(self.heads[fd])
        if not self.truncated(fd):
            return self.redactor.text(head.decode("utf-8", errors="replace"))
        return self.redactor.head_bytes(head, self.limit, lambda part: part.decode("utf-8", errors="replace"))

    def truncated(self, fd: int) -> bool:
        return self.totals[fd] > self.limit

    def stderr_end(self) -> str:
        """The end of stderr that was kept, stripped and redacted. When stderr was longer, its first `margin`
        characters are left out: a secret cut there by the buffer could not be recognised."""
        text = self.stderr_tail.decode("utf-8", errors="replace")
        start = min(len(text), self.redactor.margin) if self.totals[2] > len(self.stderr_tail) else 0
        return self.redactor.tail(text, start).strip()


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False if it has no process left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # the group id was reused by someone else's processes: not ours to signal
        return False
    return True


async def _stop_group(transport: asyncio.SubprocessTransport, program: _Program) -> None:
    """Stop the program's process group: SIGTERM, up to `KILL_GRACE` s for the program to exit, SIGKILL.

    Runs also while the run is being cancelled: the waits are shielded, and if the task is cancelled
    natively anyway, SIGKILL goes out at once.
    """
    pgid = transport.get_pid()
    try:
        if transport.get_returncode() is None and _signal_group(pgid, signal.SIGTERM):
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(KILL_GRACE):
                    await program.exited.wait()
                _signal_group(pgid, signal.SIGKILL)
                await program.exited.wait()
        _signal_group(pgid, signal.SIGKILL)
    except asyncio.CancelledError:
        _signal_group(pgid, signal.SIGKILL)
        raise
    finally:
        transport.close()


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class ShellRunner:
    """Runs the programs `executables` allows (names on PATH or absolute paths); none: `shell` is off."""

    def __init__(self, executables: Sequence[str] = ()) -> None:
        self.executables = tuple(executables)

    @property
    def enabled(self) -> bool:
        """True when at least one executable is allowed."""
        return bool(self.executables)

    def resolve(self, program: str) -> str:
        """The absolute path to run for `argv[0]`, if it is allowed; raises the error that says why not.

        A name is looked up on the server's PATH; a path must be absolute. The file found must be
        the file an allowed entry resolves to (symlinks followed on both sides), under the same name.
        """
        if not self.enabled:
            raise ShellDisabledError()
        has_separator = os.sep in program or (os.altsep is not None and os.altsep in program)
        if has_separator and not os.path.isabs(program):
            raise ExecutableNotAllowedError(
                f"argv[0] {clip(program)} is a relative path: give a program name on the server's PATH or an "
                f"absolute path. Allowed: {self._listing()}."
            )
        found = shutil.which(program)
        if found is None:
            where = "is not an executable file" if has_separator else "is not found on the server's PATH"
            raise ExecutableNotAllowedError(f"argv[0] {clip(program)} {where}. Allowed: {self._listing()}.")
        real, name = os.path.realpath(found), os.path.basename(program)
        for entry in self.executables:
            entry_is_path = os.sep in entry or (os.altsep is not None and os.altsep in entry)
            if entry_is_path and not os.path.isabs(entry):
                continue  # a relative path would depend on the server's working directory: never allowed
            if has_separator and not entry_is_path:
                continue  # a path must match an allowed path, not a name that happens to resolve to it
            allowed = shutil.which(entry)
            if allowed is None or os.path.realpath(allowed) != real:
                continue
            if name in (os.path.basename(entry), os.path.basename(allowed)):
                return os.path.abspath(found)
        hint = " (a path must match an allowed absolute path)" if has_separator else ""
        raise ExecutableNotAllowedError(
            f"argv[0] {clip(program)} ({clip(real)}) is not an allowed executable{hint}. Allowed: "
            f"{self._listing()}. To allow another, restart the server with --allow-shell EXECUTABLE."
        )

    def _listing(self) -> str:
        return ", ".join(clip(e, 100) for e in self.executables)

    @staticmethod
    def _check_cwd(cwd: str | None) -> None:
        if cwd is None:
            return
        if not os.path.exists(cwd):
            raise WorkingDirectoryError(f"cwd {clip(cwd)} does not exist on the server: give an existing directory.")
        if not os.path.isdir(cwd):
            raise WorkingDirectoryError(f"cwd {clip(cwd)} is not a directory: give an existing directory.")

    async def check(self, model: ShellInput) -> None:
        """At schedule time: `shell` is on, argv[0] is allowed and cwd exists."""
        self.resolve(model.argv[0])
        self._check_cwd(model.cwd)

    async def run(
        self,
        argv: list[str],
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
        time_limit: float = DEFAULT_TIMEOUT,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT,
        ok_exit_codes: Sequence[int] = (0,),
    ) -> ToolkitOutput:
        """Run `argv` and return its exit code and output; raises if it fails, times out or is not allowed."""
        program_path = self.resolve(argv[0])
        self._check_cwd(cwd)
        # The resolved path is what runs: a PATH in `env` cannot swap in another program.
        environ = {**os.environ, **env} if env else None
        data = stdin.encode() if stdin is not None else None
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        transport, program = await loop.subprocess_exec(
            lambda: _Program(max_output_bytes, active()),
            *argv,
            executable=program_path,
            cwd=cwd,
            env=environ,
            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            with anyio.move_on_after(time_limit) as scope:
                if data is not None:
                    stdin_pipe = transport.get_pipe_transport(0)
                    assert isinstance(stdin_pipe, asyncio.WriteTransport)
                    stdin_pipe.write(data)
                    stdin_pipe.close()  # after the data is written (the program need not read it all)
                await program.exited.wait()
                # What the program left running would hold the pipes open, and outlive the run.
                _signal_group(transport.get_pid(), signal.SIGKILL)
                await program.closed.wait()
        finally:
            await _stop_group(transport, program)
        elapsed_ms = round((time.monotonic() - started) * 1000)
        if scope.cancelled_caught:
            raise ShellTimeoutError(
                f"Command {clip(argv[0])} timed out after {time_limit:g} s; it and the processes it started were "
                "killed. Give a longer timeout (seconds) if it needs more time."
            )
        code = transport.get_returncode()
        assert code is not None
        origin = f"program {clip(argv[0], 100)}"
        if code not in ok_exit_codes:
            tail = program.stderr_end()
            said = quote(tail, origin, what="stderr", limit=STDERR_TAIL, tail=True)
            raise ShellCommandError(
                f"Command {clip(argv[0])} {_describe_exit(code)} (allowed exit codes: {list(ok_exit_codes)}). "
                + (f"End of stderr: {said}" if tail else "It wrote nothing to stderr."),
                exit_code=code,
                stderr=tail[-STDERR_TAIL:],
            )
        return ToolkitOutput(
            operation="run",
            message=f"Command {clip(argv[0])} {_describe_exit(code)} after {elapsed_ms} ms.",
            data={
                "exit_code": code,
                "stdout": untrusted(program.text(1), origin),
                "stderr": untrusted(program.text(2), origin),
                "stdout_truncated": program.truncated(1),
                "stderr_truncated": program.truncated(2),
                "stdout_bytes": program.totals[1],
                "stderr_bytes": program.totals[2],
                "elapsed_ms": elapsed_ms,
                "argv": list(argv),
            },
        )

    def agentool(self) -> AgenTool:
        """The `shell` AgenTool over this runner (not registered)."""

        async def run(
            argv: list[str],
            cwd: str | None,
            env: dict[str, str] | None,
            stdin: str | None,
            time_limit: float,
            max_output_bytes: int,
            ok_exit_codes: list[int],
        ) -> ToolkitOutput:
            return await self.run(argv, cwd, env, stdin, time_limit, max_output_bytes, ok_exit_codes)

        async def check(model: ShellInput) -> None:
            await self.check(model)

        routing = RoutingConfig(
            operation_map={
                "run": (
                    "run",
                    lambda m: {
                        "argv": m.argv,
                        "cwd": m.cwd,
                        "env": m.env,
                        "stdin": m.stdin,
                        "time_limit": m.timeout,
                        "max_output_bytes": m.max_output_bytes,
                        "ok_exit_codes": m.ok_exit_codes,
                    },
                ),
            }
        )
        return AgenTool(
            name=AGENTOOL_NAME,
            input_schema=ShellInput,
            routing_config=routing,
            tools=(run,),
            output_type=ToolkitOutput,
            tags=("builtin", "shell"),
            examples=(
                {"operation": "run", "argv": ["git", "-C", "/srv/site", "pull", "--ff-only"], "timeout": 120},
                {"operation": "run", "argv": ["backup.sh", "--quiet"], "cwd": "/srv",
                 "env": {"BACKUP_TOKEN": "!env:BACKUP_TOKEN"}},
            ),
            backend=self,
            check=check,
        )


def create_shell_agent(
    executables: Sequence[str] = (), *, registry: AgenToolRegistry | None = None
) -> AgenTool:
    """Register (or replace) the `shell` AgenTool, allowed to run `executables` (none: it refuses every run).

    It goes into `registry` (default: the active injector's).
    """
    return (registry or get_injector().registry).register(ShellRunner(executables).agentool())
