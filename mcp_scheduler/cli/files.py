"""`mcp-scheduler apply FILE` and `export`: jobs as files (TOML, YAML with the `yaml` extra, or JSON).

apply opens a scheduler for the moment of the change, as pause / resume / cancel do (`job_actions.py`): a
standby of the server or runner that runs the jobs, which follows the change through the store at once. export
reads the store (no scheduler starts). The plan goes to stdout, messages to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TextIO

from .._argparse import Commands
from ..settings import Settings
from . import options
from .console import EXIT_OK, configure_logging, run_reported
from .options import add_command

__all__ = ["add_commands", "apply_file", "export_jobs"]

_FORMATS = ("toml", "yaml", "json")


def add_commands(commands: Commands) -> None:
    """`apply` and `export`."""
    apply = add_command(
        commands, "apply", _run, summary="create, update and (--prune) remove the jobs a TOML or YAML file names",
        description="Make the store's jobs what FILE says: each entry of its `jobs` array has the fields of the "
        "schedule_job tool (job_id required, if_exists left out), checked as the tool checks them. Jobs it creates "
        "or adopts are marked as managed by the file (its top-level `name`, else its absolute path); a model "
        "changing one is warned, or refused with serve --protect-managed-jobs. Applying the same file again "
        "changes nothing. A running server or runner follows the changes at once.",
        flags=(options.db, options.timezone, options.log_level, options.scheduler),
    )
    apply.add_argument("file", metavar="FILE", help="the jobs file (.toml, .yaml, .yml or .json)")
    apply.add_argument("--dry-run", action="store_true",
                       help="print what would change (create / update with the changed fields / adopt / unchanged / "
                       "prune) and change nothing")
    apply.add_argument("--prune", action="store_true",
                       help="also cancel the jobs this file created or adopted before and no longer names (never "
                       "other jobs)")
    apply.add_argument("--format", choices=_FORMATS, help="the file's format (default: from its suffix)")
    export = add_command(
        commands, "export", _run, summary="write the jobs as a jobs file (TOML by default) that apply takes back",
        description="Write the store's jobs (those not completed, or the --job ones) in the format of "
        "`mcp-scheduler apply`, so that applying the output changes nothing but marking the jobs as managed by it.",
        flags=(options.db, options.log_level),
    )
    export.add_argument("--job", action="append", default=None, metavar="JOB_ID",
                        help="export this job (repeatable; default: every job not completed)")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    export.add_argument("--format", choices=_FORMATS,
                        help="toml, yaml or json (default: from the --output suffix, else toml)")


def _run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    configure_logging(settings, quiet=True)
    if args.command == "apply":
        return run_reported("apply", settings, lambda: asyncio.run(apply_file(
            settings, Path(args.file), dry_run=args.dry_run, prune=args.prune, fmt=args.format)))
    return run_reported("export", settings, lambda: asyncio.run(export_jobs(
        settings, args.job or (), output=args.output, fmt=args.format)))


async def apply_file(settings: Settings, path: Path, *, dry_run: bool = False, prune: bool = False,
                     fmt: str | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Apply the jobs file at `path` to `settings.database` (or with `dry_run` only print the plan); the exit code.

    Raises `JobsFileError` naming the file, the entry and the field of a problem; nothing changes then."""
    import asyncio

    from .. import setup_checks
    from ..jobfiles import apply_plan, read_jobs_file, stored_jobs
    from ..runtime import is_postgres_url
    from ..schedules import local_timezone_name
    from ..store import require_database

    out, err = out or sys.stdout, err or sys.stderr
    database = settings.database or ""
    jobs_file = read_jobs_file(path, settings.timezone or local_timezone_name(), fmt)
    new_store = not is_postgres_url(database) and not await asyncio.to_thread(os.path.exists, database)
    if new_store:  # a first apply creates the store (as a first server would)
        setup_checks.prepare_database_folder(database)
    else:
        require_database(database)
    plan = jobs_file.plan({} if new_store else await stored_jobs(database), prune=prune)
    for change in plan.changes:
        out.write(change.describe() + "\n")
    if dry_run:
        err.write(f"Dry run of {path}: {plan.summary()}; nothing was changed\n")
        return EXIT_OK
    if not plan.changes_anything:
        err.write(f"{path}: nothing to change ({plan.summary()})\n")
        return EXIT_OK
    from .job_actions import action_runtime

    runtime, lease = action_runtime(settings, create=new_store)
    async with runtime:
        # Planned again once the scheduler is open: a job changed meanwhile by another process is planned anew.
        plan = jobs_file.plan(await stored_jobs(database), prune=prune)
        warnings = await apply_plan(runtime.service, plan, str(path))
        where = "" if runtime.service.is_runner else f"; the process running the jobs ({lease.holder()}) follows"
    for warning in warnings:
        err.write(f"warning: {warning}\n")
    err.write(f"Applied {path}: {plan.summary()}{where}\n")
    return EXIT_OK


async def export_jobs(settings: Settings, job_ids: tuple[str, ...] | list[str], *, output: str | None = None,
                      fmt: str | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Write the jobs file of the store's jobs to `output` (or stdout); the exit code."""
    import asyncio

    from ..jobfiles import dump_document, export_document, file_format

    out, err = out or sys.stdout, err or sys.stderr
    kind = fmt or (file_format(Path(output)) if output else "toml")
    document = await export_document(settings.database or "", job_ids)
    text = dump_document(document, kind)
    if output:
        await asyncio.to_thread(Path(output).write_text, text, encoding="utf-8")
        err.write(f"Exported {len(document['jobs'])} job(s) to {output}\n")
    else:
        out.write(text)
    return EXIT_OK
