"""`mcp-scheduler runner [start|stop]`: run the store's jobs in this process without serving a client, or end
the store's background runner (the runner itself is `mcp_scheduler/runner.py`)."""

from __future__ import annotations

import argparse
import os

from .._argparse import Commands
from ..settings import Settings
from . import options
from .console import configure_logging
from .options import add_command

__all__ = ["add_commands", "run_runner_command"]


def add_commands(commands: Commands) -> None:
    """`runner`, with the scheduler's flags (a front-end or the user service passes its own on)."""
    parser = add_command(
        commands, "runner", run_runner_command,
        summary="run the jobs in this process without serving a client (start), or end the store's "
        "background runner (stop)",
        description="start (the default): take the store's runner lease and run its jobs, serving MCP to this "
        "machine's clients on a Unix socket; exit 0 at once if another process runs them. stop: end the store's "
        "background runner and wait until it let go of the store.",
        flags=(options.db, options.timezone, options.log_level, options.scheduler, options.runner_idle_exit,
               options.started_by, options.metrics),
    )
    parser.add_argument("action", nargs="?", choices=("start", "stop"), default="start", metavar="start|stop",
                        help="start (default) or stop")


def run_runner_command(args: argparse.Namespace, settings: Settings) -> int:
    """Start the runner, or stop the store's; the exit code returned."""
    configure_logging(settings, quiet=False)
    if args.action == "stop":
        from ..runner import stop_runner

        return stop_runner(settings)
    from ..runner import run_runner

    return run_runner(settings, os.environ)
