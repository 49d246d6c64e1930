"""The `mcp-scheduler` command: serve MCP (the default), print jobs, history and status, act on jobs, run the
background runner, print the token, set up clients and a user service.

Each command has its own flags (`mcp-scheduler COMMAND --help`); every flag can also be set with an
`MCP_SCHEDULER_<FLAG>` environment variable (flags win). This package is the only code that reads the
environment. Importing it loads only what parsing needs: a stdio front-end that pipes its client to the store's
background runner loads nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

from .access import check_exposure, with_http_auth
from .parser import build_parser, parse_settings

__all__ = ["build_parser", "check_exposure", "main", "parse_settings", "with_http_auth"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mcp-scheduler` console script: the command's exit code."""
    args, settings = parse_settings(argv)
    code: int = args.handler(args, settings)
    return code
