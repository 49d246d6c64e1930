"""Which scheduled run an AgenTool is executing in, for tools that report back (such as `notify`).

A scheduler sets it around each run (`with running(RunInfo(...))`); `current_run()` returns it inside
the AgenTool, or None when the AgenTool was called some other way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .toolkits.config import AddressRules

__all__ = ["RunInfo", "current_run", "running"]


@dataclass(frozen=True)
class RunInfo:
    """The run in progress: its job, its run id, what started it and when it was due.

    `address_policy`: the address policy the job was accepted under (stored with it); `http` and
    webhooks obey it on top of their own process's. None: the process's own policy alone (a run of
    an AgenTool that is no stored job, or a job stored before jobs kept their policy).

    `namespace`: the namespace of the queues and `storage_kv` keys the run uses (`toolkits/namespaces.py`): its
    job's owner's; None: the shared names (the operator's and admins' jobs).
    """

    job_id: str
    run_id: str
    trigger: str
    scheduled_time: datetime | None = None
    job_name: str | None = None
    address_policy: AddressRules | None = None
    namespace: str | None = None


_CURRENT: ContextVar[RunInfo | None] = ContextVar("agentool_bridge_current_run", default=None)


def current_run() -> RunInfo | None:
    """The run this code executes in, or None outside a scheduled run."""
    return _CURRENT.get()


@contextmanager
def running(info: RunInfo) -> Iterator[RunInfo]:
    """Mark the code in this block (and tasks it starts) as executing `info`."""
    token = _CURRENT.set(info)
    try:
        yield info
    finally:
        _CURRENT.reset(token)
