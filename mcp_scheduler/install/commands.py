"""`mcp-scheduler install CLIENT` and `mcp-scheduler service install|uninstall|status`, as the CLI runs them.

Messages go to stderr; what `--print` shows (a JSON configuration, a unit file) and `service status` go to
stdout, so that they can be piped or redirected. Exit codes: 0 done, 1 failed (a file that cannot be merged,
a service its manager could not start), 2 usage (unknown client or action, a flag that has no place here).
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ..settings import Settings
from .clients import CLIENTS, SERVER_NAME, Client, client_document, client_entry
from .errors import InstallError
from .json_config import dump_json, merge_entry
from .launcher import ephemeral_reason, launch_command, server_flags
from .machine import Machine
from .service import install_service, service_plan, service_status, uninstall_service

__all__ = ["InstallRequest", "install_client_command", "service_command"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SERVICE_ACTIONS = ("install", "uninstall", "status")
ENV_PREFIX = "MCP_SCHEDULER_"


@dataclass(frozen=True)
class InstallRequest:
    """One `install` or `service` command line, as the CLI parsed it."""

    target: str | None
    """The client (install) or the action (service): the word after the command."""
    settings: Settings
    argv: Sequence[str]
    """The whole command line (for the server flags to pass on)."""
    parser: argparse.ArgumentParser
    machine: Machine
    default_database: str
    print_only: bool = False
    client_config: str | None = None
    cwd: str | None = None


def _usage_checks(request: InstallRequest, what: str, err: TextIO) -> bool:
    settings = request.settings
    if settings.transport != "stdio":
        err.write(f"{what}: {ENV_PREFIX}TRANSPORT={settings.transport} has no place here: clients start the "
                  "server over stdio, and the service runs the jobs without serving clients. To serve HTTP clients, "
                  "run `mcp-scheduler --transport http` (README, 'Connect a client').\n")
        return False
    return True


def _environment_notes(machine: Machine, err: TextIO, who: str) -> None:
    names = sorted(name for name in machine.environ if name.startswith(ENV_PREFIX))
    if names:
        err.write(f"Note: {', '.join(names)} set in this shell {'is' if len(names) == 1 else 'are'} not passed on: "
                  f"{who} starts the server with its own environment. Give the setting as a flag instead.\n")
    reason = ephemeral_reason(machine)
    if reason is not None:
        err.write(f"Warning: this mcp-scheduler runs from {reason}, which may be cleaned at any time, and "
                  f"{who} would then find no program. Install it for good (`pipx install mcp-scheduler` or "
                  "`uv tool install mcp-scheduler`) and run this command from there.\n")


def install_client_command(request: InstallRequest, *, out: TextIO, err: TextIO) -> int:
    """`mcp-scheduler install CLIENT [--print] [--client-config FILE] [server flags...]`."""
    client = CLIENTS.get(request.target or "")
    if client is None:
        err.write(f"mcp-scheduler install: give a client: {', '.join(CLIENTS)} (got {request.target!r})\n")
        return EXIT_USAGE
    what = f"mcp-scheduler install {client.name}"
    if not _usage_checks(request, what, err):
        return EXIT_USAGE
    command = [*launch_command(request.machine), *server_flags(request.argv, request.parser, cwd=request.cwd)]
    path = Path(request.client_config).expanduser() if request.client_config else client.config_path(request.machine)
    if request.cwd and not path.is_absolute():
        path = Path(request.cwd) / path
    if request.print_only:
        out.write(dump_json(client_document(client, command)))
        err.write(f"{what} --print: the entry above goes under {client.servers_key!r} > {SERVER_NAME!r} in {path} "
                  "(nothing written).\n")
        _client_notes(client, command, request, err)
        return EXIT_OK
    folder_existed = path.parent.is_dir()
    try:
        result = merge_entry(path, client.servers_key, SERVER_NAME, client_entry(client, command))
    except InstallError as exc:
        err.write(f"{what}: {exc}\n")
        return EXIT_FAILED
    except OSError as exc:
        err.write(f"{what}: cannot write {path}: {exc}. Nothing was changed.\n")
        return EXIT_FAILED
    if not result.changed:
        err.write(f"{path} already has this {SERVER_NAME!r} entry: nothing changed.\n")
        return EXIT_OK
    if result.created:
        err.write(f"Created {path} with the {SERVER_NAME!r} server: {shlex.join(command)}\n")
        if not folder_existed and not request.client_config:
            err.write(f"Note: {path.parent} did not exist: is {client.title} installed? It reads the file once it "
                      "is.\n")
    elif result.replaced is not None:
        err.write(f"Replaced the {SERVER_NAME!r} server in {path} (it was: {_describe(result.replaced)}) with: "
                  f"{shlex.join(command)}\n")
    else:
        err.write(f"Added the {SERVER_NAME!r} server to {path}: {shlex.join(command)}\n")
    if result.backup is not None:
        err.write(f"The file as it was is in {result.backup}\n")
    err.write(f"Next: {client.restart}.\n")
    _client_notes(client, command, request, err)
    return EXIT_OK


def _describe(entry: Mapping[str, object]) -> str:
    command = entry.get("command")
    args = entry.get("args")
    words = [str(command)] + ([str(a) for a in args] if isinstance(args, list) else [])
    return shlex.join(words) if command else "an entry without a command"


def _client_notes(client: Client, command: Sequence[str], request: InstallRequest, err: TextIO) -> None:
    if client.name == "claude-code":
        err.write("Claude Code's own command does the same: claude mcp add --scope user "
                  f"{SERVER_NAME} -- {shlex.join(command)}\n")
    if client.name == "claude-desktop":
        err.write("Claude Desktop reads only local (stdio) servers from this file; a remote server is added under "
                  "Settings > Connectors, and Claude reaches it from Anthropic's cloud, not from this machine "
                  "(README, 'Claude Desktop').\n")
    if request.settings.secrets:
        names = ", ".join(request.settings.secrets)
        err.write(f"Note: the entry names the secrets ({names}) but holds no value: the server reads them from the "
                  f"environment {client.title} starts it with. Add them to the entry's \"env\" yourself, or let a "
                  f"user service run the jobs (mcp-scheduler service install --secret NAME), which keeps them in "
                  "a file only you can read.\n")
    _environment_notes(request.machine, err, client.title)


def service_command(request: InstallRequest, *, out: TextIO, err: TextIO) -> int:
    """`mcp-scheduler service install|uninstall|status [--print] [server flags...]`."""
    action = request.target
    if action not in SERVICE_ACTIONS:
        err.write(f"mcp-scheduler service: give an action: {', '.join(SERVICE_ACTIONS)} (got {action!r})\n")
        return EXIT_USAGE
    what = f"mcp-scheduler service {action}"
    if not _usage_checks(request, what, err):
        return EXIT_USAGE
    settings = request.settings
    database = settings.database or request.default_database
    flags = server_flags(request.argv, request.parser, drop=frozenset({"db"}), cwd=request.cwd)
    try:
        plan = service_plan(request.machine, database, flags, default_database=request.default_database,
                            secrets=(*settings.secrets, *filter(None, [settings.events_secret_env])),
                            close_timeout=settings.close_timeout)
    except InstallError as exc:
        err.write(f"{what}: {exc}\n")
        return EXIT_FAILED
    if action == "status":
        return service_status(plan, request.machine, out=out)
    if action == "uninstall":
        if request.print_only:
            err.write(f"{what} --print: would run {'; '.join(shlex.join(a) for a in plan.stop)} and remove "
                      f"{plan.unit_path}, {plan.marker_path}{', ' + str(plan.env_path) if plan.env_path else ''}\n")
            return EXIT_OK
        uninstall_service(plan, request.machine, err=err)
        return EXIT_OK
    if request.print_only:
        out.write(plan.unit_text)
        extra = ""
        if plan.env_path is not None:
            extra = f" and {plan.env_path} (readable by you only) with the values of {', '.join(settings.secrets)}"
        err.write(f"{what} --print: the above would be written to {plan.unit_path}{extra}, then run: "
                  f"{'; '.join(shlex.join(a) for a in plan.start)} (nothing written).\n")
        for note in plan.notes:
            err.write(f"Note: {note}.\n")
        if plan.missing_secrets:
            err.write(f"Note: {', '.join(plan.missing_secrets)} not set in this environment: the service would not "
                      "have them.\n")
        _environment_notes(request.machine, err, "the service")
        return EXIT_OK
    try:
        started = install_service(plan, request.machine, err=err)
    except InstallError as exc:
        err.write(f"{what}: {exc}\n")
        return EXIT_FAILED
    except OSError as exc:
        err.write(f"{what}: {exc}\n")
        return EXIT_FAILED
    _environment_notes(request.machine, err, "the service")
    return EXIT_OK if started else EXIT_FAILED
