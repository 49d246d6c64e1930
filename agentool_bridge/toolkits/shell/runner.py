"""`ShellRunner`: checks a `shell` run against what the host allows, runs it, and builds the `shell` AgenTool."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Mapping, Sequence

import anyio

from ...errors import clip
from ...injector import get_injector
from ...models import RoutingConfig
from ...redaction import active
from ...registry import AgenTool, AgenToolRegistry
from ...untrusted import quote, untrusted
from .._common import ToolkitOutput
from .._run_slots import RunSlots
from ._env import SAFE_LISTING, is_safe_name, never_allowed, program_environment, safe_value_problem
from ._process import STDERR_TAIL, RunningProgram, can_supervise
from .errors import (
    EnvironmentNotAllowedError,
    ExecutableNotAllowedError,
    ShellCommandError,
    ShellDisabledError,
    ShellTimeoutError,
    WorkingDirectoryError,
)
from .inputs import DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT, ShellInput
from .paths import check_paths, expand_home

__all__ = ["AGENTOOL_NAME", "DEFAULT_MAX_PROCESSES", "ShellRunner", "create_shell_agent"]

AGENTOOL_NAME = "shell"
DEFAULT_MAX_PROCESSES = 16
"""Shell runs in progress at once, by default (`--max-processes`)."""


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class ShellRunner:
    """Runs the programs `executables` allows (names on PATH or absolute paths); none: `shell` is off.

    `env`: variable names, beyond the safe set (LANG, LANGUAGE, LC_*, TZ, TERM, NO_COLOR, COLUMNS, LINES),
    that jobs may set and that programs inherit from `environ`; a loader, interpreter or tool-config name
    among them raises `EnvironmentNotAllowedError` (the server does not start). `max_processes`: runs in
    progress at once; more wait their turn. `environ`: the server's environment, where the programs' base
    variables come from (default: this process's). `supervise`: run programs under the supervisor (default:
    on Linux); off, each runs in a process group of its own.
    """

    def __init__(
        self,
        executables: Sequence[str] = (),
        *,
        env: Sequence[str] = (),
        max_processes: int = DEFAULT_MAX_PROCESSES,
        environ: Mapping[str, str] | None = None,
        supervise: bool | None = None,
    ) -> None:
        self.executables = tuple(executables)
        for name in env:
            if not name or "=" in name or "\x00" in name:
                raise EnvironmentNotAllowedError(
                    f"--shell-env {clip(name)}: not an environment variable name (non-empty, no '=' or NUL)."
                )
            if (reason := never_allowed(name)) is not None:
                raise EnvironmentNotAllowedError(
                    f"--shell-env {clip(name)}: {reason}, so it would let a job run any command. Loader, "
                    "interpreter and tool-config variables cannot be allowed: remove it from --shell-env "
                    "(MCP_SCHEDULER_SHELL_ENV)."
                )
        self.env = tuple(env)
        self._environ = environ
        self._slots = RunSlots(max_processes)
        self.supervise = can_supervise() if supervise is None else supervise

    @property
    def max_processes(self) -> int:
        """Runs in progress at once; more wait their turn."""
        return self._slots.limit

    @property
    def running(self) -> int:
        """Runs in progress now."""
        return self._slots.held

    @property
    def waiting(self) -> int:
        """Runs waiting for their turn now."""
        return self._slots.waiting

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

    def check_env(self, env: Mapping[str, str] | None) -> None:
        """Raise `EnvironmentNotAllowedError` for the first variable of `env` a job may not set, saying why."""
        for name, value in (env or {}).items():
            if (reason := never_allowed(name)) is not None:
                raise EnvironmentNotAllowedError(
                    f"env: {clip(name)} is refused: {reason}, so it could turn the allowed program into any "
                    "command. Loader, interpreter and tool-config variables are never allowed, not even with the "
                    "server's --shell-env."
                )
            if is_safe_name(name):
                if (problem := safe_value_problem(name, value)) is not None:
                    raise EnvironmentNotAllowedError(f"env: {name} must be {problem}; its value is not.")
            elif name not in self.env:
                allowed = ", ".join(clip(n, 100) for n in self.env) if self.env else "none on this server"
                raise EnvironmentNotAllowedError(
                    f"env: {clip(name)} is not allowed: jobs may set {SAFE_LISTING} and the names the server "
                    f"allows with --shell-env ({allowed}). To allow {clip(name)}, restart the server with "
                    f"--shell-env {clip(name)} (or MCP_SCHEDULER_SHELL_ENV)."
                )

    def environment(self, env: Mapping[str, str] | None) -> dict[str, str]:
        """The whole environment a program gets with the job's `env` (checked first)."""
        self.check_env(env)
        return program_environment(os.environ if self._environ is None else self._environ, self.env, env)

    async def check(self, model: ShellInput) -> list[str]:
        """At schedule time: `shell` is on, argv[0] is allowed, the paths mean what they say (`check_paths`), cwd
        exists and `env` names only allowed variables. Returns what each `~` path is read as."""
        self.resolve(expand_home(model.argv[0]))
        notes = check_paths(model.argv, model.cwd)
        self._check_cwd(None if model.cwd is None else expand_home(model.cwd))
        self.check_env(model.env)
        return notes

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
        """Run `argv` and return its exit code and output; raises if it fails, times out or is not allowed.

        The run waits for its turn if `max_processes` runs are in progress; `time_limit` counts from the call.
        A leading `~` in an argument or in `cwd` is the home folder of the user the server runs as (`expand_home`).
        """
        argv = [expand_home(argument) for argument in argv]
        cwd = None if cwd is None else expand_home(cwd)
        program_path = self.resolve(argv[0])
        self._check_cwd(cwd)
        # The resolved path is what runs: a PATH in `env` (refused anyway) could not swap in another program.
        environment = self.environment(env)
        started = time.monotonic()
        with anyio.move_on_after(time_limit) as waited:
            await self._slots.acquire()
        if waited.cancelled_caught:
            raise ShellTimeoutError(
                f"Command {clip(argv[0])} timed out after {time_limit:g} s waiting for its turn: "
                f"{self.max_processes} shell runs were in progress (the server's --max-processes). It never "
                "started. Give a longer timeout, or run it when fewer commands are running."
            )
        try:
            program = await RunningProgram.start(
                program_path,
                argv,
                cwd=cwd,
                env=environment,
                stdin=stdin.encode() if stdin is not None else None,
                max_output_bytes=max_output_bytes,
                redactor=active(),
                supervise=self.supervise,
            )
            try:
                with anyio.move_on_after(time_limit - (time.monotonic() - started)) as scope:
                    await program.finish()
            finally:
                await program.stop()
        finally:
            self._slots.release()
        elapsed_ms = round((time.monotonic() - started) * 1000)
        if scope.cancelled_caught:
            raise ShellTimeoutError(
                f"Command {clip(argv[0])} timed out after {time_limit:g} s; it and the processes it started were "
                "killed. Give a longer timeout (seconds) if it needs more time."
            )
        code = program.returncode
        output = program.output
        assert code is not None
        origin = f"program {clip(argv[0], 100)}"
        if code not in ok_exit_codes:
            tail = output.stderr_end()
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
                "stdout": untrusted(output.text(1), origin),
                "stderr": untrusted(output.text(2), origin),
                "stdout_truncated": output.truncated(1),
                "stderr_truncated": output.truncated(2),
                "stdout_bytes": output.totals[1],
                "stderr_bytes": output.totals[2],
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

        async def check(model: ShellInput) -> list[str]:
            return await self.check(model)

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
                 "env": {"LANG": "C.UTF-8", "TZ": "Europe/Paris"}},
            ),
            backend=self,
            check=check,
        )


def create_shell_agent(
    executables: Sequence[str] = (),
    *,
    registry: AgenToolRegistry | None = None,
    env: Sequence[str] = (),
    max_processes: int = DEFAULT_MAX_PROCESSES,
) -> AgenTool:
    """Register (or replace) the `shell` AgenTool, allowed to run `executables` (none: it refuses every run).

    `env` and `max_processes` are `ShellRunner`'s. It goes into `registry` (default: the active injector's).
    """
    runner = ShellRunner(executables, env=env, max_processes=max_processes)
    return (registry if registry is not None else get_injector().registry).register(runner.agentool())
