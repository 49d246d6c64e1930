"""`mcp-scheduler dashboard`: the dashboard in the user's browser, for those whose clients use stdio.

It serves the HTTP transport on 127.0.0.1 (the page at `/`, MCP at `/mcp`) over the user's default store (or
--db), as `serve --transport http` would: a standby beside the store's background runner, which it starts if none
runs. Once listening it prints the page's URL, whose fragment carries the bearer token (no request sends a
fragment; the page keeps it in memory), and opens it in the default browser unless --no-browser.
"""

from __future__ import annotations

import argparse
import sys
import webbrowser
from dataclasses import replace

from .._argparse import Commands
from ..settings import Settings
from . import options
from .options import add_command

__all__ = ["add_commands", "announce", "dashboard_url", "run_dashboard"]


def add_commands(commands: Commands) -> None:
    """`dashboard`: the store's flags, the scheduler's, and where to serve the page."""
    add_command(
        commands,
        "dashboard",
        run_dashboard,
        summary="open the dashboard in a browser (served on 127.0.0.1; prints its URL with the token)",
        description="Serve the dashboard (jobs, next runs, the last 24 hours of runs, failures; pause, resume, run "
        "and cancel) on 127.0.0.1 over the store, print its URL (carrying the bearer token) and open it in the "
        "default browser. It serves MCP at /mcp too, as `serve --transport http` does.",
        flags=(
            options.db,
            options.timezone,
            options.log_level,
            options.token_file,
            options.scheduler,
            options.no_background_runner,
            options.runner_idle_exit,
            _flags,
        ),
    )


def _flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dashboard")
    group.add_argument(
        "--port",
        type=options.port_number,
        default=0,
        help="port on 127.0.0.1 (default 0: any free port, in the URL printed)",
    )
    group.add_argument("--no-browser", action="store_true", help="print the URL only; open no browser")


def run_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the dashboard until a signal arrives (as `serve` does)."""
    from .serve import run_serve

    settings = replace(
        settings,
        transport="http",
        host="127.0.0.1",
        port=args.port,
        open_dashboard="print" if args.no_browser else "browser",
    )
    return run_serve(args, settings)


def dashboard_url(settings: Settings) -> str:
    """The page's URL on this machine, its fragment carrying the first bearer token (none without auth)."""
    from .listen import reachable_urls

    url = reachable_urls(settings.host, settings.port, "/")[0]
    return f"{url}#token={settings.auth_tokens[0]}" if settings.auth_tokens else url


def announce(settings: Settings) -> None:
    """The URL on stdout (one line, for scripts too), and in the browser when `settings.open_dashboard` says so."""
    url = dashboard_url(settings)
    sys.stdout.write(url + "\n")
    sys.stdout.flush()
    sys.stderr.write(
        "mcp-scheduler: the dashboard is at the URL above (it carries the token: keep it to yourself); "
        "Ctrl-C stops it\n"
    )
    if settings.open_dashboard == "browser":
        webbrowser.open(url)
