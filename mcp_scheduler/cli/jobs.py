"""`mcp-scheduler jobs`, `history [JOB_ID]`, and `run | pause | resume | cancel JOB_ID`: the jobs of a store.

`jobs` and `history` read the store (no scheduler starts: they work while a server runs on it); the actions
open a scheduler of their own for the moment of the action (`job_actions.py`). Tables go to stdout, messages
to stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..settings import Settings
from . import options
from .console import EXIT_USAGE, configure_logging, run_reported
from .options import RUN_STATUSES, add_command, positive

__all__ = ["ACTIONS", "add_commands", "run_job_command"]

ACTIONS = {
    "run": "run a job now, in this process, and print its result (JSON)",
    "pause": "stop a job firing (a running server follows)",
    "resume": "let a paused job fire again",
    "cancel": "delete a job",
}


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """`jobs`, `history` and the actions on one job."""
    jobs = add_command(
        commands, "jobs", run_job_command, summary="print the jobs, with their schedules in words",
        description="Print the jobs of the store (--db), with their schedules in words, next and last runs.",
        flags=(options.db, options.timezone, options.log_level, _limit),
    )
    jobs.add_argument("--state", choices=["scheduled", "paused", "completed"], help="only jobs in this state")
    history = add_command(
        commands, "history", run_job_command, summary="print runs, newest first (of one job, or of all jobs)",
        description="Print the runs of one job, or of all jobs, newest first.",
        flags=(options.db, options.timezone, options.log_level, _limit),
    )
    history.add_argument("job_id", nargs="?", metavar="JOB_ID", help="the job (default: every job)")
    history.add_argument("--status", choices=RUN_STATUSES, help="only runs with this outcome")
    history.add_argument("--since", metavar="WHEN", help="runs at or after WHEN, an ISO time ('2026-12-01T09:00', "
                         "read in --timezone) or a duration ago ('1h', '30 minutes', '2 days')")
    history.add_argument("--until", metavar="WHEN", help="runs before WHEN (same forms as --since)")
    for action, summary in ACTIONS.items():
        parser = add_command(
            commands, action, run_job_command, summary=f"{summary}: {action} JOB_ID",
            description=f"{summary[0].upper()}{summary[1:]}. The scheduler's flags concern the scheduler this "
            "command opens for the moment of the action; `run` calls the job here, so give it the server's "
            "--allow-shell, --http-allow, --servers, --model and --toolkit.",
            flags=(options.db, options.timezone, options.log_level, options.scheduler),
        )
        parser.add_argument("job_id", metavar="JOB_ID", help="the job (mcp-scheduler jobs lists them)")


def _limit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=positive, default=50, help="rows to print (default 50)")


def run_job_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run `jobs`, `history` or an action; messages to stderr, the exit code returned."""
    import asyncio

    from ..schedules import local_timezone_name, parse_moment

    configure_logging(settings, quiet=True)
    database = settings.database or ""
    for flag in ("--since", "--until"):
        value = getattr(args, flag[2:], None)
        if value is not None:
            try:
                parse_moment(value, flag, settings.timezone or local_timezone_name())
            except ValueError as exc:
                sys.stderr.write(f"mcp-scheduler {args.command}: {exc}\n")
                return EXIT_USAGE

    def command() -> int:
        if args.command == "jobs":
            from .tables import print_jobs

            return asyncio.run(print_jobs(database, limit=args.limit, state=args.state, timezone=settings.timezone))
        if args.command == "history":
            from .tables import print_history

            return asyncio.run(print_history(
                database, args.job_id, limit=args.limit, status=args.status, since=args.since, until=args.until,
                timezone=settings.timezone,
            ))
        from .job_actions import act

        return asyncio.run(act(settings, args.command, args.job_id))

    return run_reported(args.command, settings, command)
