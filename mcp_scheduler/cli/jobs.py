"""`mcp-scheduler jobs`, `history [JOB_ID]`, `audit`, `hook`, `run | pause | resume | cancel JOB_ID`: a store's jobs.

`jobs` and `history` read the store (no scheduler starts: they work while a server runs on it); `run` asks the
process that runs the jobs to run one now (`run_job.py`); pause, resume and cancel open a scheduler of their
own for the moment of the action (`job_actions.py`). Tables (or, with --json, their rows as JSON) go to
stdout, messages to stderr; times are in each job's time zone.
"""

from __future__ import annotations

import argparse
import sys

from .._argparse import Commands
from ..settings import Settings
from . import options
from .console import EXIT_USAGE, configure_logging, run_reported
from .options import RUN_STATUSES, add_command, positive

__all__ = ["ACTIONS", "add_commands", "run_job_command"]

ACTIONS = {
    "run": "have the process that runs the jobs run a job now, and print its run",
    "pause": "stop a job firing (a running server follows)",
    "resume": "let a paused job fire again",
    "cancel": "delete a job",
}


def add_commands(commands: Commands) -> None:
    """`jobs`, `history` and the actions on one job."""
    jobs = add_command(
        commands, "jobs", run_job_command, summary="print the jobs, with their schedules in words",
        description="Print the jobs of the store (--db), with their schedules in words, next and last runs.",
        flags=(options.db, options.log_level, _limit, _json),
    )
    jobs.add_argument("--state", choices=["scheduled", "paused", "completed"], help="only jobs in this state")
    history = add_command(
        commands, "history", run_job_command, summary="print runs, newest first (of one job, or of all jobs)",
        description="Print the runs of one job, or of all jobs, newest first.",
        flags=(options.db, options.timezone, options.log_level, _limit, _json),
    )
    history.add_argument("job_id", nargs="?", metavar="JOB_ID", help="the job (default: every job)")
    history.add_argument("--status", choices=RUN_STATUSES, help="only runs with this outcome")
    history.add_argument("--since", metavar="WHEN", help="runs at or after WHEN, an ISO time ('2026-12-01T09:00', "
                         "read in --timezone) or a duration ago ('1h', '30 minutes', '2 days')")
    history.add_argument("--until", metavar="WHEN", help="runs before WHEN (same forms as --since)")
    audit = add_command(
        commands, "audit", run_job_command, summary="print who changed what and when (the audit log)",
        description="Print the audit log of the store (--db), oldest first: every change of a job (create, update, "
        "pause, resume, cancel, run_now, backfill, apply) and of the scheduler (stop, start), with who made it "
        "(the token's principal, `local` for stdio and the CLI), from which client, and the fields it gave.",
        flags=(options.db, options.timezone, options.log_level, _limit, _json),
    )
    audit.add_argument("--job", metavar="JOB_ID", help="only the changes of this job")
    audit.add_argument("--since", metavar="WHEN", help="changes at or after WHEN, an ISO time ('2026-12-01T09:00', "
                       "read in --timezone) or a duration ago ('1h', '2 days')")
    run = add_command(
        commands, "run", run_job_command, summary=f"{ACTIONS['run']}: run JOB_ID",
        description="Have the process that runs the jobs of the store (a server, or the background runner) run a "
        "job now, with that process's flags (--allow-shell, --http-allow, ...), and wait for the run's record: "
        "its row on stdout (with --json: the run as JSON, result included), `Run RUN_ID of job JOB_ID: ...` on "
        "stderr. Exit 1 if the run failed, or if no process runs the jobs (nothing is run then).",
        flags=(options.db, options.log_level, _json),
    )
    run.add_argument("job_id", metavar="JOB_ID", help="the job (mcp-scheduler jobs lists them)")
    run.add_argument("--start-within", type=options.seconds, default=10.0, metavar="SECONDS",
                     help="how long the runner has to start the run before the request is withdrawn (default 10)")
    hook = add_command(
        commands, "hook", run_job_command, summary="create, list or remove a job's inbound webhooks",
        description="create JOB_ID: a hook that runs the job on a signed POST /hooks/NAME to the HTTP transport; "
        "prints its URL and signing secret, once. list JOB_ID: the job's hooks. remove NAME: a hook. "
        "See docs/webhooks.md.",
        flags=(options.db, options.timezone, options.log_level, options.scheduler, _json),
    )
    hook.add_argument("action", choices=["create", "list", "remove"])
    hook.add_argument("target", metavar="JOB_ID|NAME", help="the job (create, list) or the hook (remove)")
    hook.add_argument("--name", help="create: the hook's name, the last part of its URL (default: JOB_ID-<random>)")
    hook.add_argument("--base-url", metavar="URL", help="create: the server's address as senders reach it, e.g. "
                      "https://sched.example.com (default: http://HOST:PORT of MCP_SCHEDULER_HOST / _PORT)")
    for action, summary in ACTIONS.items():
        if action == "run":
            continue
        parser = add_command(
            commands, action, run_job_command, summary=f"{summary}: {action} JOB_ID",
            description=f"{summary[0].upper()}{summary[1:]}. The scheduler's flags concern the scheduler this "
            "command opens for the moment of the action.",
            flags=(options.db, options.timezone, options.log_level, options.scheduler, _json),
        )
        parser.add_argument("job_id", metavar="JOB_ID", help="the job (mcp-scheduler jobs lists them)")


def _limit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=positive, default=50, help="rows to print (default 50)")


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print JSON for scripts (the table's rows, unclipped) instead of the table")


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

            return asyncio.run(print_jobs(database, limit=args.limit, state=args.state, as_json=args.json))
        if args.command == "history":
            from .tables import print_history

            return asyncio.run(print_history(
                database, args.job_id, limit=args.limit, status=args.status, since=args.since, until=args.until,
                timezone=settings.timezone, as_json=args.json,
            ))
        if args.command == "audit":
            from .audit import print_audit

            return asyncio.run(print_audit(database, job_id=args.job, since=args.since, limit=args.limit,
                                           timezone=settings.timezone, as_json=args.json))
        if args.command == "hook":
            from .hooks import hook_command

            return asyncio.run(hook_command(settings, args.action, args.target, name=args.name, as_json=args.json,
                                           base_url=args.base_url))
        if args.command == "run":
            from .run_job import run_job

            return asyncio.run(run_job(settings, args.job_id, as_json=args.json, start_within=args.start_within))
        from .job_actions import act

        return asyncio.run(act(settings, args.command, args.job_id, as_json=args.json))

    return run_reported(args.command, settings, command)
