"""Who acts: the principal of a call (a token's subject and the client's name) and the scopes it holds.

The MCP face sets the acting principal around each tool call (`acting_as`); the scheduler reads it (`acting`)
where a change is recorded or an owner matters. Calls that come from no token (stdio, the CLI, the AgenTool face,
HTTP without auth) act as `LOCAL`, which holds every scope: the operator of the machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = [
    "ADMIN",
    "IN_PROCESS_KINDS",
    "KIND_SCOPE_PREFIX",
    "LOCAL",
    "READ",
    "RUN",
    "SCOPES",
    "WRITE",
    "Principal",
    "acting",
    "acting_as",
    "kind_scope",
    "require",
    "require_kind",
]

READ = "scheduler:read"
"""List and read jobs, runs, the inbox and the status."""
WRITE = "scheduler:write"
"""Create, change, pause, resume and cancel jobs."""
RUN = "scheduler:run"
"""Run jobs now and backfill them."""
ADMIN = "scheduler:admin"
"""Everything, every principal's jobs, and the scheduler itself (stop and start it)."""
SCOPES = (READ, WRITE, RUN, ADMIN)
KIND_SCOPE_PREFIX = "scheduler:kind:"
"""`scheduler:kind:<name>`: also needed to create, change or run a job of a kind that reaches beyond the process."""
IN_PROCESS_KINDS = frozenset({"logging", "queue", "storage_kv"})
"""The job kinds that stay within the scheduler's process and stores (and --log-dir): every other kind, extra
toolkits' included, reaches the host, the network or other programs, and needs its kind scope."""


def kind_scope(kind: str) -> str | None:
    """The scope a job of `kind` needs beyond write or run (None for the kinds that stay in the process)."""
    return None if kind in IN_PROCESS_KINDS else KIND_SCOPE_PREFIX + kind


@dataclass(frozen=True, slots=True)
class Principal:
    """Who acts: `subject` (a token's `sub`, `token:<hash>` for a static token, `local` without one), `client`
    (the name the MCP client gave, if any) and the scopes granted."""

    subject: str
    client: str | None = None
    scopes: frozenset[str] = frozenset()

    @property
    def admin(self) -> bool:
        """True when the principal may see and change every principal's jobs."""
        return ADMIN in self.scopes

    def has(self, scope: str) -> bool:
        """True when `scope` is granted (`scheduler:admin` grants every scope)."""
        return self.admin or scope in self.scopes


LOCAL = Principal("local", None, frozenset({ADMIN}))
"""The operator: stdio, the CLI, the AgenTool face, HTTP without auth."""

_acting: ContextVar[Principal] = ContextVar("mcp_scheduler_acting", default=LOCAL)


def acting() -> Principal:
    """The principal of the call in progress (`LOCAL` outside any call)."""
    return _acting.get()


@contextlib.contextmanager
def acting_as(principal: Principal) -> Iterator[Principal]:
    """Run the block as `principal` (restored after, also across tasks started inside, as contextvars are)."""
    token = _acting.set(principal)
    try:
        yield principal
    finally:
        _acting.reset(token)


def require(scope: str, what: str) -> None:
    """Raise `MissingScopeError` unless the acting principal holds `scope` (`what`: what asks for it, in words)."""
    if not acting().has(scope):
        from .errors import MissingScopeError

        raise MissingScopeError(scope, what)


def require_kind(kind: str, what: str) -> None:
    """Raise `MissingScopeError` unless the acting principal may create, change or run jobs of `kind`."""
    scope = kind_scope(kind)
    if scope is not None:
        require(scope, f"{what} of job kind {kind!r}")
