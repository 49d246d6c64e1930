"""The `shell` AgenTool: run one program of an allowlist, with arguments, and capture what it printed.

It is off unless the host allows executables (`ToolkitConfig.shell_executables`, the CLI's
`--allow-shell EXECUTABLE`); while off it stays registered, so that its schema can be read, and
refuses every job and run with `ShellDisabledError`, saying how to switch it on.

A command is an argv list and never goes through a shell: `;`, `|`, `$VAR` and globs are plain
characters of an argument. `argv[0]` is looked up on the server's PATH (a path must be absolute) and
must be the very file an allowed entry names, under the same name (so a symlink, or a multi-call
binary such as busybox, cannot pass for an allowed program).

The program does not get the server's environment: only a minimal base of it (PATH, HOME, USER,
LOGNAME, LANG, LC_*, TZ, TMPDIR, TERM), the server's values of the names the host lists
(`ToolkitConfig.shell_env`, `--shell-env`), and the job's `env`, which may name only a small safe set
and the listed names; loader, interpreter and tool-config variables are refused whatever the host
lists (`_env.py`).

On Linux the program runs under a supervisor (`_supervisor.py`), a child subreaper to which
everything the program leaves behind is reparented: when the program exits, on a timeout, on
cancellation (the job's own timeout, the scheduler stopping) and when the server dies, every process
of the run is stopped, whatever session it moved to. Elsewhere the program runs in a process group of
its own, which is stopped (SIGTERM, then SIGKILL) in the same cases; a process that starts a session
of its own escapes that. At most `max_processes` runs are in progress at once; others wait their turn
within their timeout. Output is read to the end however long it is; only the first
`max_output_bytes` of each stream are kept.

What a program prints is labelled as outside content: `stdout` and `stderr` come as
`{"untrusted": true, "from": "program 'git'", "content": ...}`, and a failure quotes the end of stderr as
untrusted text (see `agentool_bridge.untrusted`). The operator allowed the program, not what it relays: a
`git log`, a `curl` or a mail filter prints text that someone outside wrote.

Modules: `inputs` (`ShellInput` and its limits), `paths` (what `~` and relative paths mean), `errors`, `runner`
(`ShellRunner`, the AgenTool), `_env` (the program's environment), `_process` (one run) and `_supervisor` (the
Linux supervisor, run as a file by `python -I -S`).
"""

from ._process import KILL_GRACE
from .errors import (
    EnvironmentNotAllowedError,
    ExecutableNotAllowedError,
    PathNotUsableError,
    ShellCommandError,
    ShellDisabledError,
    ShellTimeoutError,
    WorkingDirectoryError,
)
from .inputs import ShellInput
from .runner import AGENTOOL_NAME, DEFAULT_MAX_PROCESSES, ShellRunner, create_shell_agent

__all__ = [
    "AGENTOOL_NAME",
    "DEFAULT_MAX_PROCESSES",
    "EnvironmentNotAllowedError",
    "ExecutableNotAllowedError",
    "KILL_GRACE",
    "PathNotUsableError",
    "ShellCommandError",
    "ShellDisabledError",
    "ShellInput",
    "ShellRunner",
    "ShellTimeoutError",
    "WorkingDirectoryError",
    "create_shell_agent",
]
