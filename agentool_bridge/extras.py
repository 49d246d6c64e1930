"""Optional parts of the installation (the package's extras) and the line that installs a missing one.

A PostgreSQL URL needs psycopg, which only the `postgres` extra installs. `require_extra(POSTGRES)`
is called where a PostgreSQL database is first opened, before any module that imports psycopg: a
missing or broken psycopg then raises `MissingExtraError`, whose message is one line naming the
command to run, instead of an `ImportError` from deep inside the store.
"""

from __future__ import annotations

import importlib
import shlex
import sys
from dataclasses import dataclass

from .errors import MissingExtraError

__all__ = ["DISTRIBUTION", "METRICS", "OAUTH", "POSTGRES", "Extra", "install_hint", "require_extra"]

DISTRIBUTION = "mcp-scheduler"
"""The distribution that ships agentool_bridge, and whose extras these are."""


@dataclass(frozen=True)
class Extra:
    """One extra of the distribution: what it adds, the modules it brings and its requirement."""

    name: str
    """The extra's name, as in `pip install 'mcp-scheduler[<name>]'`."""
    what: str
    """What it adds, for messages ("PostgreSQL support")."""
    modules: tuple[str, ...]
    """The modules that must import for it to work."""
    requirement: str
    """The requirement the extra declares (for `pipx inject`), as in pyproject.toml."""


POSTGRES = Extra("postgres", "PostgreSQL support", ("psycopg",), "psycopg[binary]>=3.2")
METRICS = Extra("metrics", "Prometheus metrics (--metrics, --metrics-port)", ("prometheus_client",),
                "prometheus-client>=0.20")
OAUTH = Extra("oauth", "OAuth access tokens (--oauth-issuer)", ("jwt", "cryptography"), "pyjwt[crypto]>=2.10")


def install_hint(extra: Extra) -> str:
    """The commands that add `extra` to the running environment: its own pip first, then pipx and uvx."""
    spec = shlex.quote(f"{DISTRIBUTION}[{extra.name}]")
    python = shlex.quote(sys.executable or "python")
    return (
        f"{python} -m pip install {spec} "
        f"(pipx: pipx inject {DISTRIBUTION} {shlex.quote(extra.requirement)}; "
        f"uvx: uvx --from {spec} {DISTRIBUTION} ...)"
    )


def require_extra(extra: Extra) -> None:
    """Import the modules of `extra`; raise `MissingExtraError` naming the install command if one fails."""
    for module in extra.modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            missing = isinstance(exc, ModuleNotFoundError) and exc.name == module
            if missing:
                state = "is not installed in this environment"
            else:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                state = f"cannot be loaded in this environment ({module}: {reason[:300]})"
            raise MissingExtraError(f"{extra.what} {state}: {install_hint(extra)}", extra=extra.name) from exc
