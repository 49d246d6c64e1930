"""Built-in AgenTools: `queue` (durable FIFO queues), `logging`, `storage_kv` (key-value store) and `mcp`
(tools of other MCP servers, through an `MCPConnectionPool`).

They are also small, complete examples of how to write an AgenTool: an input model derived
from `BaseOperationInput`, a `RoutingConfig` mapping each operation to a plain tool function,
and a store object that owns its database and builds its AgenTool (`QueueStore.agentool()`).
Nothing here imports pydantic-ai.
"""

from __future__ import annotations

import os

from ..injector import get_injector
from ..registry import AgenToolRegistry
from ._common import MAX_NAME_LENGTH, Name, ToolkitOutput, check_name, check_text, is_postgres_url
from ._db import Database, open_database
from .agent import AgentInput, AgentModelError, AgentRunError, AgentToolkit
from .config import AddressRules, ToolkitConfig
from .errors import (
    DatabaseUnavailableError,
    InvalidNameError,
    InvalidTextError,
    KeyNotFoundError,
    LogFileNotAllowedError,
    LogFileNotConfiguredError,
    MessageNotFoundError,
    QueueClosedError,
    QueueFullError,
    ToolkitError,
)
from .logs import LogSink, create_logging_agent
from .mcp import (
    MCPArgumentsError,
    MCPConnectionPool,
    MCPInput,
    MCPServerConfigError,
    MCPServerUnavailableError,
    MCPToolCallError,
    MCPToolkit,
    MCPToolNotFoundError,
    MCPToolTimeoutError,
)
from .queue import QueueCounts, QueueLevel, QueueMessage, QueueMessageEvent, QueueStore, create_queue_agent
from .shell import (
    EnvironmentNotAllowedError,
    ExecutableNotAllowedError,
    ShellCommandError,
    ShellDisabledError,
    ShellRunner,
    ShellTimeoutError,
    WorkingDirectoryError,
    create_shell_agent,
)
from .storage_kv import KVStore, create_storage_kv_agent

__all__ = [
    "Database",
    "open_database",
    "MAX_NAME_LENGTH",
    "AddressRules",
    "AgentInput",
    "AgentModelError",
    "AgentRunError",
    "AgentToolkit",
    "DatabaseUnavailableError",
    "EnvironmentNotAllowedError",
    "ExecutableNotAllowedError",
    "InvalidNameError",
    "InvalidTextError",
    "KVStore",
    "KeyNotFoundError",
    "LogFileNotAllowedError",
    "LogFileNotConfiguredError",
    "LogSink",
    "MCPArgumentsError",
    "MCPConnectionPool",
    "MCPInput",
    "MCPServerConfigError",
    "MCPServerUnavailableError",
    "MCPToolCallError",
    "MCPToolNotFoundError",
    "MCPToolTimeoutError",
    "MCPToolkit",
    "MessageNotFoundError",
    "Name",
    "QueueClosedError",
    "QueueFullError",
    "QueueCounts",
    "QueueLevel",
    "QueueMessage",
    "QueueMessageEvent",
    "QueueStore",
    "ShellCommandError",
    "ShellDisabledError",
    "ShellRunner",
    "ShellTimeoutError",
    "ToolkitConfig",
    "ToolkitError",
    "ToolkitOutput",
    "WorkingDirectoryError",
    "check_name",
    "check_text",
    "create_logging_agent",
    "create_queue_agent",
    "create_shell_agent",
    "create_storage_kv_agent",
    "is_postgres_url",
    "register_builtin_toolkits",
]


def register_builtin_toolkits(
    database: str | os.PathLike[str] | None = None, *, registry: AgenToolRegistry | None = None
) -> list[str]:
    """Register `queue`, `logging` and `storage_kv` into `registry` (default: the active injector's).

    `queue` and `storage_kv` keep their data in `database`: a SQLite file, a `postgresql://` URL, or
    memory if None.
    Calling this again replaces the three AgenTools and closes the previous databases.
    """
    target = registry if registry is not None else get_injector().registry
    agentools = [QueueStore(database).agentool(), LogSink().agentool(), KVStore(database).agentool()]
    return [target.register(agentool).name for agentool in agentools]
