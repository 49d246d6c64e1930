"""The errors of the `shell` AgenTool: each says what was refused and what to do."""

from __future__ import annotations

from ..errors import ToolkitError

__all__ = [
    "EnvironmentNotAllowedError",
    "ExecutableNotAllowedError",
    "PathNotUsableError",
    "ShellCommandError",
    "ShellDisabledError",
    "ShellTimeoutError",
    "WorkingDirectoryError",
]

_HOW_TO_ENABLE = (
    "start the server with --allow-shell EXECUTABLE (repeatable; a program name on PATH or an absolute "
    "path), or set MCP_SCHEDULER_ALLOW_SHELL=a,b"
)


class ShellDisabledError(ToolkitError, PermissionError):
    """`shell` is off: the server was started without any `--allow-shell` executable."""

    def __init__(self) -> None:
        super().__init__(f"The shell job kind is disabled on this server. To enable it, {_HOW_TO_ENABLE}.")


class ExecutableNotAllowedError(ToolkitError, PermissionError):
    """`argv[0]` is not one of the executables the server allows."""


class PathNotUsableError(ToolkitError, ValueError):
    """A path in `argv` or `cwd` would not mean what it says when the job runs: a relative path without a
    `cwd`, or `~name` of no user."""


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
    """The command ran longer than its `timeout` (waiting for its turn included); everything it started was killed."""


class EnvironmentNotAllowedError(ToolkitError, PermissionError):
    """A variable in `env` (or in the host's `--shell-env` list) is one a `shell` program may not be given."""

