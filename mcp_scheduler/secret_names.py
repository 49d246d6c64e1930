"""Which environment variables jobs may read as `!env:NAME`: the operator's `--secret` names, less the server's own.

The allow-list itself is `ServiceConfig.secrets` (the CLI's `--secret NAME`, `MCP_SCHEDULER_SECRET=A,B`); the
service resolves job input against `allowed_secret_names`, and the CLI's log filter hides `secret_values`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["RESERVED_SECRET_PREFIX", "allowed_secret_names", "secret_values"]

RESERVED_SECRET_PREFIX = "MCP_SCHEDULER_"
"""Variables of the server's own settings (its auth token among them): never a job's secret, even if listed."""


def allowed_secret_names(names: Iterable[str]) -> tuple[str, ...]:
    """The listed names that jobs may read as `!env:NAME`: all but the server's own settings (MCP_SCHEDULER_*),
    in order, without repeats."""
    return tuple(dict.fromkeys(name for name in names if not name.startswith(RESERVED_SECRET_PREFIX)))


def secret_values(names: Iterable[str], environ: Mapping[str, str]) -> dict[str, str]:
    """Value -> `!env:NAME` reference of every allowed name that is set (and not empty) in `environ`."""
    return {environ[name]: f"!env:{name}" for name in allowed_secret_names(names) if environ.get(name)}
