"""mcp-scheduler: a persistent job scheduler for LLM agents, as an MCP server and an AgenTool.

Every job runs an AgenTool through the injector of `agentool_bridge`. `SchedulerRuntime` owns
one scheduler and everything it needs; the MCP server, the CLI and the AgenTool face take one.

The names below are loaded on first use: `import mcp_scheduler` alone costs nothing, so that the
`mcp-scheduler` command can pipe a chat client to a running scheduler without loading one itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .agentool import close_scheduler_agent, create_scheduler_agent, get_scheduler_service
    from .errors import (
        DiskFullError,
        InvalidArgumentError,
        InvalidJobInputError,
        InvalidScheduleError,
        InvalidTimezoneError,
        JobExecutionError,
        JobExistsError,
        JobNotFoundError,
        LeaseHeldError,
        OutOfBoundsError,
        SchedulerError,
        SchedulerStateError,
        TokenFileError,
    )
    from .events import EventBus, JobEvent, QueueEvent, RunEvent, SchedulerEvent
    from .jobs import Job, JobDefinition
    from .models import (
        JobInfo,
        RunRecord,
        SchedulePreview,
        SchedulerInput,
        SchedulerOutput,
        SchedulerStatus,
    )
    from .runtime import SchedulerRuntime
    from .scheduler import SchedulerService, ServiceConfig

_WHERE = {
    "close_scheduler_agent": "agentool",
    "create_scheduler_agent": "agentool",
    "get_scheduler_service": "agentool",
    "DiskFullError": "errors",
    "InvalidArgumentError": "errors",
    "InvalidJobInputError": "errors",
    "InvalidScheduleError": "errors",
    "InvalidTimezoneError": "errors",
    "JobExecutionError": "errors",
    "JobExistsError": "errors",
    "JobNotFoundError": "errors",
    "LeaseHeldError": "errors",
    "OutOfBoundsError": "errors",
    "SchedulerError": "errors",
    "SchedulerStateError": "errors",
    "TokenFileError": "errors",
    "EventBus": "events",
    "JobEvent": "events",
    "QueueEvent": "events",
    "RunEvent": "events",
    "SchedulerEvent": "events",
    "Job": "jobs",
    "JobDefinition": "jobs",
    "JobInfo": "models",
    "RunRecord": "models",
    "SchedulePreview": "models",
    "SchedulerInput": "models",
    "SchedulerOutput": "models",
    "SchedulerStatus": "models",
    "SchedulerRuntime": "runtime",
    "SchedulerService": "scheduler",
    "ServiceConfig": "scheduler",
}

__all__ = [
    "EventBus",
    "DiskFullError",
    "InvalidArgumentError",
    "InvalidJobInputError",
    "InvalidScheduleError",
    "InvalidTimezoneError",
    "JobEvent",
    "JobExecutionError",
    "JobExistsError",
    "Job",
    "JobDefinition",
    "JobInfo",
    "JobNotFoundError",
    "LeaseHeldError",
    "OutOfBoundsError",
    "QueueEvent",
    "RunEvent",
    "RunRecord",
    "SchedulePreview",
    "SchedulerError",
    "SchedulerEvent",
    "SchedulerInput",
    "SchedulerOutput",
    "SchedulerRuntime",
    "SchedulerService",
    "SchedulerStateError",
    "SchedulerStatus",
    "ServiceConfig",
    "TokenFileError",
    "close_scheduler_agent",
    "create_scheduler_agent",
    "get_scheduler_service",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
