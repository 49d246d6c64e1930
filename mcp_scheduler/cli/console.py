"""What every command does with the console: exit codes, the stderr log, errors told in one line."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from ..settings import Settings

__all__ = ["EXIT_FAILED", "EXIT_NOT_FOUND", "EXIT_OK", "EXIT_PIPE", "EXIT_USAGE", "configure_logging",
           "describe_error", "run_reported"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND = 0, 1, 2, 3
EXIT_PIPE = 141  # 128 + SIGPIPE: what `cat` or `ls` end with when the reader of their output went away


def configure_logging(settings: Settings, *, quiet: bool) -> None:
    """The stderr log at `settings.log_level`, without secrets' values or libraries' URL queries.

    `quiet`: a terminal command, whose output is its table or result, not the scheduler's life cycle
    (INFO becomes WARNING).
    """
    level = settings.log_level
    if quiet and level == "INFO":
        level = "WARNING"
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # APScheduler's INFO lines ('Added job "dispatch" to job store "default"') name its internals,
        # not the user's jobs, and cost a write per schedule, cancel and one-time fire; httpx2 writes one
        # line per request of a job, with its whole URL.
        for name in ("apscheduler", "httpx2", "httpcore2"):
            logging.getLogger(name).setLevel(logging.WARNING)
    _filter_log(settings)


def _filter_log(settings: Settings) -> None:
    """Keep the values of the allowed secrets, and the query strings of libraries' URLs, out of stderr."""
    from ..secret_names import secret_values
    from .log_filter import SecretLogFilter

    log_filter = SecretLogFilter(secret_values(settings.secrets, os.environ))
    for handler in logging.getLogger().handlers:
        handler.addFilter(log_filter)


def describe_error(exc: BaseException, settings: Settings) -> str:
    """The message of an error a start or a command ends with, with what to do when the error does not say."""
    import sqlite3

    from agentool_bridge.errors import ToolkitLoadError

    from ..setup_checks import describe_database_error

    if isinstance(exc, sqlite3.Error):
        return describe_database_error(settings.database, exc)
    if isinstance(exc, ToolkitLoadError) and isinstance(exc.__cause__, ImportError):
        return (f"{exc} (--toolkit MODULE:FACTORY: the module must be importable by {sys.executable}; install it "
                "into that environment, or set PYTHONPATH)")
    return " ".join(str(exc).split()) or type(exc).__name__


def _stdout_closed() -> int:
    """The reader of stdout went away (`mcp-scheduler jobs | head`): end quietly, as Python's documentation
    recommends: what is still buffered goes to /dev/null instead of failing again at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_PIPE


def run_reported(command: str, settings: Settings, action: Callable[[], int]) -> int:
    """`action()`'s exit code; an error it raises told on stderr in one line, as `mcp-scheduler COMMAND: ...`."""
    import sqlite3

    from agentool_bridge.errors import AgenToolError

    from ..errors import JobNotFoundError, SchedulerError

    database = settings.database or ""
    try:
        code = action()
        sys.stdout.flush()  # here, not at exit: a closed pipe is then told below, not as a traceback
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except KeyboardInterrupt:
        return EXIT_FAILED
    except JobNotFoundError as exc:
        sys.stderr.write(f"mcp-scheduler {command}: no job {exc.job_id!r} in {database} "
                         "(mcp-scheduler jobs lists the jobs)\n")
        return EXIT_NOT_FOUND
    except (SchedulerError, AgenToolError, ValueError, OSError, sqlite3.Error) as exc:
        sys.stderr.write(f"mcp-scheduler {command}: {describe_error(exc, settings)}\n")
        return EXIT_FAILED
    except Exception as exc:  # a driver's error (psycopg: the server is unreachable), told in one line
        sys.stderr.write(f"mcp-scheduler {command}: {type(exc).__name__}: {exc}\n")
        return EXIT_FAILED
