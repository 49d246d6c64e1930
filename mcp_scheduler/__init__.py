"""mcp-scheduler: a persistent job scheduler for LLM agents, as an MCP server and an AgenTool.

Every job runs an AgenTool through the injector of `agentool_bridge`.
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
)
from .events import EventBus, JobEvent, QueueEvent, RunEvent, SchedulerEvent
from .models import (
    JobInfo,
    RunRecord,
    SchedulePreview,
    SchedulerInput,
    SchedulerOutput,
    SchedulerStatus,
)
from .service import SchedulerService, ServiceConfig

__all__ = [
    "EventBus",
    "InvalidJobInputError",
    "InvalidScheduleError",
    "InvalidTimezoneError",
    "JobEvent",
    "JobExecutionError",
    "JobExistsError",
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
    "SchedulerService",
    "SchedulerStateError",
    "SchedulerStatus",
    "ServiceConfig",
    "close_scheduler_agent",
    "create_scheduler_agent",
    "get_scheduler_service",
]
