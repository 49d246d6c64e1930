"""mcp-scheduler: a persistent job scheduler for LLM agents, as an MCP server and an AgenTool.

Every job runs an AgenTool through the injector of `agentool_bridge`. `SchedulerRuntime` owns
one scheduler and everything it needs; the MCP server, the CLI and the AgenTool face take one.
"""

from .agentool import close_scheduler_agent, create_scheduler_agent, get_scheduler_service
from .errors import (
    InvalidJobInputError,
    InvalidScheduleError,
    InvalidTimezoneError,
    JobExecutionError,
    JobExistsError,
    JobNotFoundError,
    LeaseHeldError,
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
from .service import SchedulerService, ServiceConfig

__all__ = [
    "EventBus",
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
