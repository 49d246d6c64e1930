"""`mcp-scheduler status`: which process runs the jobs of a store, and which stand by (no scheduler starts)."""

from __future__ import annotations

import argparse

from .._argparse import Commands
from ..settings import Settings
from . import options
from .console import configure_logging, run_reported
from .options import add_command

__all__ = ["add_commands", "run_status"]


def add_commands(commands: Commands) -> None:
    """`status`: the store is its only flag."""
    add_command(
        commands, "status", run_status, summary="print which process runs the jobs and which stand by",
        description="Print which process runs the jobs of the store (--db) and which stand by; exit 0 when a "
        "process runs them, 1 when none does.",
        flags=(options.db, options.log_level),
    )


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    """Print the store's processes; the exit code returned."""
    from ..status import print_status

    configure_logging(settings, quiet=True)
    return run_reported(args.command, settings, lambda: print_status(settings.database or ""))
