"""argparse's private parts that the command line reads, in one place.

argparse has no public way to list a parser's commands or the actions behind its option strings: the CLI reads
`ArgumentParser._actions` and `argparse._SubParsersAction` (stable since Python 3.2 and typed in typeshed). If a
Python release changes them, this module is the one to fix; tests/server/test_subcommands.py and the install
tests go through both.
"""

from __future__ import annotations

import argparse
from typing import Any, TypeAlias

__all__ = ["CommandListFormatter", "Commands", "option_actions", "subcommands"]

Commands: TypeAlias = "argparse._SubParsersAction[Any]"
"""What `add_subparsers()` returns: each command module adds its commands to it."""


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parsers of `parser`'s commands, by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise LookupError("the parser has no commands")


def option_actions(*parsers: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The action behind each option string (`--db`, `-h`, ...) of these parsers (for reading a command line
    before parsing it)."""
    return {option: action for parser in parsers for action in parser._actions for option in action.option_strings}


class CommandListFormatter(argparse.RawDescriptionHelpFormatter):
    """The top help with each command and its summary on one line, however long the command's name: argparse
    measures command names without the indent they are listed with, so a name longer than the `COMMAND` metavar
    would push its summary to the next line."""

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if isinstance(action, argparse._SubParsersAction) and action.help is not argparse.SUPPRESS:
            longest = max((len(name) for name in action.choices), default=0)
            self._action_max_length = max(self._action_max_length, longest + self._current_indent + 2)
