"""Secrets in AgenTool input: `!env:NAME` strings, resolved from the environment only when a tool runs.

A job's `input_data` may hold `"!env:API_TOKEN"` wherever a string goes (a header, a URL, an argument).
The scheduler stores and shows the reference; the value is read from the server's environment just
before the AgenTool runs and exists only in that run's memory. Which names a job may read is the
operator's choice (`allowed`: the scheduler's `--secret NAME`); any other name is refused with the same
message whether or not the variable exists. `redact` replaces resolved values in what a run returns
(its result, its error) by their reference again, before anything is written; see `redaction` for the
forms a value is found in.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from .errors import AgenToolError, clip
from .redaction import Redactor

__all__ = [
    "ENV_PREFIX",
    "SHORT_SECRET_LENGTH",
    "SecretNotAllowedError",
    "SecretNotSetError",
    "Secrets",
    "check_env",
    "env_names",
    "redact",
    "resolve_env",
]

ENV_PREFIX = "!env:"
SHORT_SECRET_LENGTH = 8
"""Values shorter than this are still redacted, everywhere they appear: the operator is warned about them."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Secrets = dict[str, str]
"""Resolved value -> its `!env:NAME` reference, for `redact`."""


class SecretNotSetError(AgenToolError, LookupError):
    """An `!env:NAME` reference names an environment variable that is not set (or is malformed)."""


class SecretNotAllowedError(AgenToolError, PermissionError):
    """An `!env:NAME` reference names a variable that the operator did not allow jobs to read.

    The message is the same whether or not the variable is set: it tells nothing about the environment.
    """

    def __init__(self, names: Collection[str], allowed: Collection[str]) -> None:
        refs = ", ".join(clip(ENV_PREFIX + name, 100) for name in names)
        one = len(names) == 1
        listing = ", ".join(sorted(allowed)) if allowed else "none"
        super().__init__(
            f"{refs} {'is not a secret' if one else 'are not secrets'} this server allows: the operator allows one "
            f"with --secret NAME (or MCP_SCHEDULER_SECRET). Secrets this server allows: {listing}."
        )
        self.names = list(names)


def _walk(value: Any, found: list[str]) -> None:
    if isinstance(value, str):
        if value.startswith(ENV_PREFIX):
            found.append(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            _walk(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _walk(item, found)


def env_names(value: Any) -> list[str]:
    """The variable names that `!env:NAME` strings anywhere in `value` refer to, in order, without repeats.

    Raises `SecretNotSetError` for a malformed reference (`!env:` followed by anything but a variable
    name: letters, digits and `_`, not starting with a digit).
    """
    refs: list[str] = []
    _walk(value, refs)
    names: list[str] = []
    for ref in refs:
        name = ref[len(ENV_PREFIX) :]
        if not _NAME.fullmatch(name):
            raise SecretNotSetError(
                f"Malformed secret reference {clip(ref)}: write '!env:NAME' with NAME an environment variable "
                "(letters, digits and _), such as '!env:API_TOKEN'; the whole string is replaced by its value."
            )
        if name not in names:
            names.append(name)
    return names


def check_env(value: Any, environ: Mapping[str, str], allowed: Collection[str] | None = None) -> list[str]:
    """The names `value` refers to; raise `SecretNotAllowedError` naming every one that `allowed` lacks (None:
    any name may be read, for the operator's own files), then `SecretNotSetError` naming every one that
    `environ` lacks."""
    names = env_names(value)
    if allowed is not None and (refused := [name for name in names if name not in allowed]):
        raise SecretNotAllowedError(refused, allowed)
    missing = [name for name in names if name not in environ]
    if missing:
        listed = ", ".join(missing)
        raise SecretNotSetError(
            f"Environment variable{'s' if len(missing) > 1 else ''} {listed} "
            f"{'are' if len(missing) > 1 else 'is'} not set in the scheduler server's environment, so "
            f"'!env:{missing[0]}' cannot be resolved: set it where the server is started (the 'env' of its "
            "entry in the MCP client's configuration, or the shell or service that starts it), then restart "
            "the server."
        )
    return names


def resolve_env(
    value: Any, environ: Mapping[str, str], allowed: Collection[str] | None = None
) -> tuple[Any, Secrets]:
    """A copy of `value` with every `!env:NAME` string replaced by the variable's value, and what was resolved.

    Raises `SecretNotAllowedError` for a name outside `allowed` (None: any name), `SecretNotSetError` if a
    variable is not set. `value` itself is left as it is.
    """
    if not env_names(value):
        return value, {}
    check_env(value, environ, allowed)
    secrets: Secrets = {}

    def swap(item: Any) -> Any:
        if isinstance(item, str):
            if item.startswith(ENV_PREFIX):
                resolved = environ[item[len(ENV_PREFIX) :]]
                secrets[resolved] = item
                return resolved
            return item
        if isinstance(item, Mapping):
            return {key: swap(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [swap(inner) for inner in item]
        return item

    return swap(value), secrets


def redact(value: Any, secrets: Secrets) -> Any:
    """A copy of `value` in which every resolved secret inside a string (dict keys too), in any of the forms
    `redaction.forms` lists (raw, URL-encoded, JSON- and repr-escaped) and of any length, is replaced by
    its `!env:NAME` reference."""
    return Redactor(secrets).value(value)
