"""Built-in AgenTools: `queue` (durable FIFO queues), `logging` and `storage_kv` (key-value store).

They are also small, complete examples of how to write an AgenTool: an input model derived
from `BaseOperationInput`, a `RoutingConfig` mapping each operation to a plain tool function,
and `register_agentool`. Nothing here imports pydantic-ai.
"""

from __future__ import annotations

import os

from ._common import MAX_NAME_LENGTH, InvalidNameError, ToolkitOutput, check_name
from .logs import LogFileNotConfiguredError, create_logging_agent
from .queue import MessageNotFoundError, QueueMessageEvent, add_enqueue_hook, create_queue_agent
from .storage_kv import KeyNotFoundError, create_storage_kv_agent

__all__ = [
    "MAX_NAME_LENGTH",
    "InvalidNameError",
    "KeyNotFoundError",
    "LogFileNotConfiguredError",
    "MessageNotFoundError",
    "QueueMessageEvent",
    "ToolkitOutput",
    "add_enqueue_hook",
    "check_name",
    "create_logging_agent",
    "create_queue_agent",
    "create_storage_kv_agent",
    "register_builtin_toolkits",
]


def register_builtin_toolkits(database: str | os.PathLike[str] | None = None) -> list[str]:
    """Register `queue`, `logging` and `storage_kv`; return their names.

    `queue` and `storage_kv` keep their data in the SQLite file `database` (in memory if None).
    Calling this again replaces the three AgenTools and closes the previous databases.
    """
    agentools = [create_queue_agent(database), create_logging_agent(), create_storage_kv_agent(database)]
    return [agentool.name for agentool in agentools]
