"""Exceptions raised by the scheduler.

Every error subclasses a builtin so that callers can catch the familiar type
(`ValueError` for bad input, `LookupError` for unknown ids, `RuntimeError` for
execution and state failures) as well as `SchedulerError` for all of them.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Sequence

from agentool_bridge.errors import clip, did_you_mean

__all__ = [
    "SchedulerError",
    "InvalidArgumentError",
    "InvalidScheduleError",
    "InvalidTimezoneError",
    "InvalidJobInputError",
    "UnknownJobKindError",
    "OutOfBoundsError",
    "JobNotFoundError",
    "RunNotFoundError",
    "JobExistsError",
    "JobExecutionError",
    "LeaseHeldError",
    "SchedulerStateError",
    "StartRefusedError",
    "ManagedJobError",
    "JobsFileError",
    "TokenFileError",
    "RunnerSocketError",
    "QuotaExceededError",
    "WebhookReplayError",
    "MissingScopeError",
    "TooManyJobsError",
    "SetupError",
    "PortInUseError",
    "DiskFullError",
    "AuditWriteError",
    "is_disk_full",
]


class SchedulerError(Exception):
    """Base class of every error the scheduler raises on purpose."""


class InvalidArgumentError(SchedulerError, ValueError):
    """An argument is not acceptable: the message names it, what is wrong (a form, a limit) and what to give.

    Every parser of arguments raises one of its subclasses; both faces (MCP tools, the `scheduler` AgenTool)
    answer it as an error in the arguments, never as an internal error.
    """


class InvalidScheduleError(InvalidArgumentError):
    """A schedule expression could not be parsed, or names a time that cannot run."""


class InvalidTimezoneError(InvalidArgumentError):
    """A time zone name is not a known IANA zone."""

    def __init__(self, name: str, suggestions: Sequence[str] = ()) -> None:
        if suggestions:
            quoted = [repr(s) for s in suggestions]
            choice = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
            fix = f"did you mean {choice}?"
        else:
            fix = "use an IANA name such as 'UTC', 'Europe/Berlin' or 'America/New_York'."
        super().__init__(f"Unknown time zone {clip(name)} (not an IANA name): {fix}")
        self.name = name
        self.suggestions = list(suggestions)


class InvalidJobInputError(InvalidArgumentError):
    """The request or the job's input_data is not acceptable."""


class UnknownJobKindError(InvalidJobInputError, LookupError):
    """A job's `agentool_name` is no job kind (AgenTool) registered here; the message names the nearest ones."""

    def __init__(self, name: str, registered: Sequence[str]) -> None:
        super().__init__(
            f"Unknown job kind {clip(name)} (agentool_name).{did_you_mean(name, registered)} Job kinds on this "
            f"server: {', '.join(registered) or 'none'} (list_agentools describes them)."
        )
        self.name = name
        self.registered = list(registered)


class OutOfBoundsError(InvalidArgumentError):
    """A duration or a time is beyond what the scheduler accepts (`schedules.bounds`: at most 100 years,
    the years 1970 to 9000)."""


class JobNotFoundError(SchedulerError, LookupError):
    """No job has the given id."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"Job {clip(job_id)} not found: list the jobs (list_jobs) "
            "to see their ids."
        )
        self.job_id = job_id

    def __str__(self) -> str:  # LookupError would otherwise repr() the message
        return str(self.args[0])


class RunNotFoundError(SchedulerError, LookupError):
    """No run the caller may see has the given id."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"Run {clip(run_id)} not found: get_history lists the runs with their ids.")
        self.run_id = run_id

    def __str__(self) -> str:
        return str(self.args[0])


class JobExistsError(SchedulerError, ValueError):
    """A job with the requested id already exists."""

    def __init__(self, job_id: str, *, hidden: bool = False) -> None:
        super().__init__(  # hidden: another principal's job, which this one must not learn more of
            f"The job id {clip(job_id)} is taken: choose another job_id." if hidden else
            f"A job with id {clip(job_id)} already exists: cancel it first or choose another job_id."
        )
        self.job_id = job_id


class JobExecutionError(SchedulerError, RuntimeError):
    """Running a job's AgenTool failed."""


class LeaseHeldError(SchedulerError, RuntimeError):
    """Another process holds the runner lease of this database."""


class SchedulerStateError(SchedulerError, RuntimeError):
    """The operation is not possible in the scheduler's current state."""


class StartRefusedError(SchedulerStateError):
    """A run this process was to start is not started here: its start, a swap from the record the store held for
    it (the one this runner wrote when it took it), did not commit, because another runner took the run since or
    this process no longer holds the runner lease. That runner starts it; nothing is recorded here."""

    def __init__(self, job_id: str, run_id: str, trigger: str) -> None:
        super().__init__(
            f"Job {job_id!r}: run {run_id} ({trigger}) was not started in this process: another runner took it, or "
            "this process lost the runner lease; the runner that holds the lease starts it (get_history shows it)."
        )
        self.job_id, self.run_id = job_id, run_id


class ManagedJobError(SchedulerStateError):
    """A job that a jobs file manages was to be changed by other means, and the server protects such jobs
    (--protect-managed-jobs)."""

    def __init__(self, job_id: str, managed_by: str, action: str) -> None:
        self.job_id = job_id
        self.managed_by = managed_by
        super().__init__(
            f"Job {job_id!r} is managed by the jobs file {managed_by!r} and this server protects such jobs "
            f"(--protect-managed-jobs), so it was not {action}: ask the user to change the file and run "
            "`mcp-scheduler apply` on it, or schedule a job of your own under another job_id."
        )


class JobsFileError(InvalidArgumentError):
    """A jobs file (`mcp-scheduler apply`) cannot be read or one of its entries is invalid; the message names the
    file, the entry and the field."""


class TokenFileError(SchedulerError, OSError):
    """The bearer token file of the HTTP transports cannot be trusted (others may read it) or holds no token."""


class RunnerSocketError(SchedulerError, OSError):
    """The background runner's socket folder cannot be trusted (not the user's, or others may write to it)."""


class QuotaExceededError(SchedulerError, RuntimeError):
    """A limit the operator set (a `--max-...` flag) is reached: the request is refused, nothing changed."""


class WebhookReplayError(SchedulerError, ValueError):
    """A webhook delivery whose `webhook-id` was accepted already (within the tolerance window): not run again."""


class TooManyJobsError(QuotaExceededError):
    """The database holds as many jobs as `--max-jobs` allows, or a principal as many as `--max-jobs-per-principal`."""

    def __init__(self, count: int, limit: int, adding: int = 1, *, per_principal: str | None = None) -> None:
        more = "" if adding == 1 else f"; these {adding:,} would make {count + adding:,}"
        held, flag = ("The scheduler's database holds", "--max-jobs") if per_principal is None else (
            f"{per_principal} holds", "--max-jobs-per-principal")
        super().__init__(
            f"{held} {count:,} jobs, and its limit is {limit:,} ({flag}){more}. "
            "Cancel jobs that are no longer needed (cancel_job; completed jobs count until they are cancelled), "
            f"or ask the operator to raise {flag}."
        )
        self.count = count
        self.limit = limit


class MissingScopeError(SchedulerError, PermissionError):
    """The access token of the call does not grant what it asks for (OAuth's `insufficient_scope`): nothing done."""

    def __init__(self, scope: str, what: str) -> None:
        super().__init__(
            f"Forbidden: {what} needs the scope {scope!r}, which the access token of this call does not grant. "
            f"Ask the authorization server for a token with {scope!r} (or have its administrator grant it)."
        )
        self.scope = scope


class AuditWriteError(SchedulerError, RuntimeError):
    """A change was refused because the database would not take its audit entry (a change and its entry commit
    together or not at all): nothing was changed. The database's own error goes to the server's log, not to the
    caller."""

    def __init__(self, operation: str, job_id: str | None) -> None:
        what = f"the {operation} of job {clip(job_id)}" if job_id else f"the {operation}"
        super().__init__(
            f"Not done: {what} was refused because its audit entry could not be written, and every change is "
            "recorded in the audit log or not made at all; nothing was changed. Try again once the operator has "
            "fixed the audit log: the database's table scheduler_audit (a trigger, rule or permission that refuses "
            "inserts) or the database's disk; the server's log has the database's error."
        )
        self.operation = operation
        self.job_id = job_id


class SetupError(SchedulerError, OSError):
    """A setting of the operator names something this process cannot use (a folder, an address, a port).

    The message names the flag and what to do instead; the process does not start.
    """


class PortInUseError(SetupError):
    """Another process listens on the port the server was asked to listen on (`--port`)."""

    def __init__(self, message: str, *, port: int) -> None:
        super().__init__(message)
        self.port = port


_SQLITE_FULL = 13  # sqlite3's primary result code "database or disk is full"


def is_disk_full(exc: BaseException) -> bool:
    """True for SQLite's "database or disk is full" (SQLITE_FULL) and an `OSError` ENOSPC or EDQUOT."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    code = getattr(exc, "sqlite_errorcode", None)  # sqlite3.Error, without importing sqlite3 here
    return isinstance(code, int) and code & 0xFF == _SQLITE_FULL


def _free_space(path: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.isdir(folder) and folder != os.path.dirname(folder):
        folder = os.path.dirname(folder)
    try:
        free = float(shutil.disk_usage(folder).free)
    except OSError:
        return "free space unknown"
    units = ("bytes", "KB", "MB", "GB")
    power = 0
    while free >= 1024 and power < len(units) - 1:
        free, power = free / 1024, power + 1
    return f"{free:,.0f} bytes free" if power == 0 else f"{free:,.1f} {units[power]} free"


class DiskFullError(SchedulerError, OSError):
    """The disk that holds the scheduler's database (or a file beside it) is full: nothing was written.

    The message names the file and the free space left; the scheduler writes again by itself once there is
    room (nothing needs a restart).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        super().__init__(
            f"The database's disk is full: {self.path} could not be written ({_free_space(self.path)} on its "
            "file system); nothing was changed. Free space on that disk (or move the database elsewhere with "
            "--db): the scheduler writes again by itself once there is room, without a restart."
        )

    def __str__(self) -> str:  # OSError would otherwise format its arguments
        return str(self.args[0])
