"""`mcp-scheduler install CLIENT` and `mcp-scheduler service install|uninstall|status` (`mcp_scheduler.install`
does the work): each takes the flags of the server it sets up, which it writes into the entry or the unit."""

from __future__ import annotations

import argparse
import os
import sys

from .._argparse import Commands
from ..settings import Settings, default_database_path
from . import options
from .console import configure_logging
from .options import add_command

__all__ = ["add_commands", "run_install"]


CLIENTS = "claude-desktop, claude-code, vscode, cursor"


def add_commands(commands: Commands) -> None:
    """`install` (the flags of a stdio server) and `service` (the flags of a background runner)."""
    install = add_command(
        commands, "install", run_install,
        summary=f"add this server to a client's configuration ({CLIENTS})",
        description="Add this server to a client's configuration, started by its absolute command with the "
        "server flags given here (the client starts it over stdio).",
        flags=(_print, options.db, options.timezone, options.log_level, options.scheduler, options.no_background_runner,
               options.runner_idle_exit),
    )
    install.add_argument("client", nargs="?", metavar="CLIENT", help=CLIENTS)
    install.add_argument("--client-config", metavar="FILE",
                         help="merge the server into this file instead of the client's user-level one (e.g. a "
                         "project's .mcp.json, .vscode/mcp.json or .cursor/mcp.json)")
    install.set_defaults(own_parser=install)
    service = add_command(
        commands, "service", run_install,
        summary="install|uninstall|status: a user service that runs the jobs at login",
        description="A user service (systemd, launchd, Task Scheduler) that runs the store's background runner "
        "from login on, with the flags given here.",
        flags=(_print, options.db, options.timezone, options.log_level, options.scheduler, options.runner_idle_exit),
    )
    service.add_argument("client", nargs="?", metavar="install|uninstall|status", help="the action")
    service.set_defaults(client_config=None, own_parser=service)


def _print(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--print", dest="print_only", action="store_true",
                        help="print what would be written instead of writing it")


def run_install(args: argparse.Namespace, settings: Settings) -> int:
    """`install CLIENT` or `service ACTION`, with this machine as the environment describes it."""
    from ..install import InstallRequest, Machine, install_client_command, service_command

    configure_logging(settings, quiet=True)
    request = InstallRequest(
        target=args.client, settings=settings, argv=list(args.argv), parser=args.own_parser,
        machine=Machine.current(os.environ), default_database=default_database_path(),
        print_only=args.print_only, client_config=args.client_config, cwd=os.getcwd(),
    )
    run = install_client_command if args.command == "install" else service_command
    return run(request, out=sys.stdout, err=sys.stderr)
