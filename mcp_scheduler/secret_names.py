"""Which environment variables jobs may read as `!env:NAME`: the operator's `--secret` names, less the server's own.

The allow-list itself is `ServiceConfig.secrets` (the CLI's `--secret NAME`, `MCP_SCHEDULER_SECRET=A,B`); the
service resolves job input against `allowed_secret_names`, and the CLI's log filter hides `secret_values`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

__all__ = ["RESERVED_SECRET_PREFIX", "allowed_secret_names", "secret_values", "warn_about_secrets"]

logger = logging.getLogger(__name__)

RESERVED_SECRET_PREFIX = "MCP_SCHEDULER_"
"""Variables of the server's own settings (its auth token among them): never a job's secret, even if listed."""


def allowed_secret_names(names: Iterable[str]) -> tuple[str, ...]:
    """The listed names that jobs may read as `!env:NAME`: all but the server's own settings (MCP_SCHEDULER_*),
    in order, without repeats."""
    return tuple(dict.fromkeys(name for name in names if not name.startswith(RESERVED_SECRET_PREFIX)))


def secret_values(names: Iterable[str], environ: Mapping[str, str]) -> dict[str, str]:
    """Value -> `!env:NAME` reference of every allowed name that is set (and not empty) in `environ`."""
    return {environ[name]: f"!env:{name}" for name in allowed_secret_names(names) if environ.get(name)}


def warn_about_secrets(names: Iterable[str], environ: Mapping[str, str]) -> None:
    """Tell the operator (in the log) about `--secret` names that cannot work as they expect: the server's own
    settings, variables not set in `environ`, and values short enough to be replaced wherever they appear."""
    from agentool_bridge.secrets import SHORT_SECRET_LENGTH  # here: the CLI's log filter imports this module light

    for name in dict.fromkeys(names):
        if name.startswith(RESERVED_SECRET_PREFIX):
            logger.warning("--secret %s is ignored: jobs never read the server's own settings (%s*)", name,
                           RESERVED_SECRET_PREFIX)
        elif name not in environ:
            logger.warning("--secret %s: the variable is not set in the server's environment; jobs that use "
                           "'!env:%s' will fail until it is", name, name)
        elif len(environ[name]) < SHORT_SECRET_LENGTH:
            logger.warning("--secret %s: its value is shorter than %d characters; it will be replaced by "
                           "'!env:%s' wherever it appears in results, errors, stored values and logs", name,
                           SHORT_SECRET_LENGTH, name)
