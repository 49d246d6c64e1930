"""How a client or a service starts this installation: an absolute command plus the server flags.

A client or a service manager runs the command with its own PATH (Claude Code: `ENOENT` for a bare
`mcp-scheduler` that only the user's shell finds; launchd and systemd have no user PATH at all), so the
command is always absolute: the `mcp-scheduler` console script beside the interpreter when there is
one (a venv, pipx, uv tool), else that interpreter with `-m mcp_scheduler`.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from pathlib import PurePath, PurePosixPath, PureWindowsPath

from .._argparse import option_actions
from .machine import Machine

__all__ = ["INSTALL_ONLY", "ephemeral_reason", "launch_command", "server_flags"]

INSTALL_ONLY = frozenset({"print_only", "client_config", "help"})
"""Destinations of flags that concern the install or service command itself, never the server."""

# Flags whose value is a path: written absolute, since a client or a service starts in another folder.
_PATH_FLAGS = frozenset({"db", "servers", "log_dir", "token_file"})


def launch_command(machine: Machine) -> list[str]:
    """The absolute command that starts this installation (without the server's flags)."""
    python = machine.executable  # as started: a venv's python is a link out of the venv, never resolved
    script = str(_pure(machine, python).with_name("mcp-scheduler.exe" if machine.is_windows else "mcp-scheduler"))
    if os.path.isfile(script) and os.access(script, os.X_OK):
        return [script]
    return [python, "-m", "mcp_scheduler"]


def _pure(machine: Machine, path: str) -> PurePath:
    return PureWindowsPath(path) if machine.is_windows else PurePosixPath(path)


def ephemeral_reason(machine: Machine) -> str | None:
    """Why this installation may vanish (a `uvx` or `pipx run` cache), or None for one that stays."""
    parts = _pure(machine, machine.executable).parts
    for index, part in enumerate(parts):
        if re.fullmatch(r"(archive|builds|environments)-v\d+", part):
            return "uv's cache (uvx)"
        if part == ".cache" and "pipx" in parts[max(0, index - 1):index + 2]:
            return "pipx's cache (pipx run)"
    return None


def server_flags(argv: Sequence[str], parser: argparse.ArgumentParser, *, drop: frozenset[str] = frozenset(),
                 cwd: str | None = None) -> list[str]:
    """The server flags of a command line such as `install claude-code --timezone UTC --db jobs.sqlite`.

    Positional words (the command, the client, the action) and the flags in `INSTALL_ONLY` or `drop`
    (argparse destinations) are left out; abbreviations are written in full, `--flag=value` as two words,
    and relative paths (`--db`, `--servers`, `--log-dir`, `--token-file`) absolute from `cwd`.
    """
    options = option_actions(parser)
    skip = INSTALL_ONLY | drop
    flags: list[str] = []
    words = list(argv)
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            break
        if not word.startswith("-") or word == "-":
            continue  # a positional word: the command, the client or the action
        name, has_value, inline = word.partition("=")
        action = options.get(name) or _abbreviation(name, options, parser)
        if action is None:
            continue  # argparse refused unknown flags before this runs
        takes_value = action.nargs != 0
        value: str | None = None
        if takes_value:
            if has_value:
                value = inline
            elif index < len(words):
                value = words[index]
                index += 1
        if action.dest in skip or value is None and takes_value:
            continue
        flag = max(action.option_strings, key=len)
        if value is None:
            flags.append(flag)
            continue
        if action.dest in _PATH_FLAGS and "://" not in value:
            value = os.path.abspath(os.path.join(cwd or os.getcwd(), os.path.expanduser(value)))
        flags += [flag, value]
    return flags


def _abbreviation(name: str, options: dict[str, argparse.Action],
                  parser: argparse.ArgumentParser) -> argparse.Action | None:
    if not parser.allow_abbrev or not name.startswith("--"):
        return None
    found = {id(action): action for option, action in options.items() if option.startswith(name)}
    return next(iter(found.values())) if len(found) == 1 else None
