"""Tools of other MCP servers: the servers file, the connections to its servers, and the `mcp` AgenTool.

Modules: `servers` (the servers file, Claude Desktop's `mcpServers` shape, and the `MCPConnections` protocol),
`transports` (a server's resolved env and headers, its stderr tail, the watched read stream), `connection`
(one connection, owned by a background task), `pool` (`MCPConnectionPool`: connections shared and reused, a
broken request retried), `errors` (the errors and the words of failures), `tools` (the `mcp` AgenTool).

The MCP SDK (`mcp.client`, `httpx2`) is imported only when a first connection opens, jsonschema only when
arguments are checked.
"""

from __future__ import annotations

from .errors import (
    MCPArgumentsError,
    MCPServerConfigError,
    MCPServerUnavailableError,
    MCPToolCallError,
    MCPToolNotFoundError,
    MCPToolTimeoutError,
)
from .pool import DEFAULT_CALL_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT, MCPConnectionPool
from .servers import MCPConnections, MCPServerSpec, ServersFile, ServersFileError, UnknownServerError, load_servers
from .tools import AGENTOOL_NAME, CHECK_TIMEOUT, MCPInput, MCPToolkit

__all__ = [
    "AGENTOOL_NAME",
    "CHECK_TIMEOUT",
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "MCPArgumentsError",
    "MCPConnectionPool",
    "MCPConnections",
    "MCPInput",
    "MCPServerConfigError",
    "MCPServerSpec",
    "MCPServerUnavailableError",
    "MCPToolCallError",
    "MCPToolNotFoundError",
    "MCPToolTimeoutError",
    "MCPToolkit",
    "ServersFile",
    "ServersFileError",
    "UnknownServerError",
    "load_servers",
]
