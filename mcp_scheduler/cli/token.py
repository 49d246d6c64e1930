"""`mcp-scheduler token`: print the bearer token HTTP and SSE clients send (generated into the token file once)."""

from __future__ import annotations

import argparse
import sys

from .._argparse import Commands
from ..settings import Settings, default_token_path
from . import options
from .console import EXIT_FAILED, EXIT_OK, EXIT_USAGE, configure_logging
from .options import ENV_PREFIX, add_command

__all__ = ["add_commands", "print_token"]


def add_commands(commands: Commands) -> None:
    """`token`: the token file is its only flag."""
    add_command(
        commands, "token", print_token,
        summary="print the bearer token HTTP/SSE clients send (generated into --token-file on first use)",
        description="Print the bearer token that clients of an HTTP or SSE server send, from the token file "
        "(generated, mode 0600, if missing).",
        flags=(options.token_file,),
    )


def print_token(args: argparse.Namespace, settings: Settings) -> int:
    """The token file's token on stdout (the file is generated if missing)."""
    from .token_file import load_token

    configure_logging(settings, quiet=True)
    if settings.auth_tokens:
        sys.stderr.write(
            f"mcp-scheduler token: {ENV_PREFIX}AUTH_TOKEN is set: a server started with it accepts those tokens, "
            "not the token file's. Send one of those, or unset it to use the token file.\n"
        )
        return EXIT_USAGE
    try:
        token = load_token(settings.token_file or default_token_path())
    except OSError as exc:
        sys.stderr.write(f"mcp-scheduler token: {exc}\n")
        return EXIT_FAILED
    if token.created:
        sys.stderr.write(f"mcp-scheduler token: generated a new token in {token.path} (readable by you only)\n")
    sys.stdout.write(token.value + "\n")
    return EXIT_OK
