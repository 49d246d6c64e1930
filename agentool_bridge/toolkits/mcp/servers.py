"""The servers file: other MCP servers that jobs may use, in the `mcpServers` shape of Claude Desktop.

```json
{"mcpServers": {
  "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
  "search": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "!env:SEARCH_AUTH"}}
}}
```

A server is either a command to start (`command`, `args`, `env`, `cwd`: spoken to over stdio) or a
URL (`url`, `headers`: streamable HTTP, or SSE with `"type": "sse"`). Values of `env` and `headers`
may be `!env:NAME`, read from the scheduler's environment when the server is started or called.
Claude Code's and Cursor's `type` key (`stdio`, `http`, `streamable-http`, `sse`) is accepted too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ...errors import clip, describe_errors
from ..errors import ToolkitError

if TYPE_CHECKING:
    from mcp.types import CallToolResult, Tool

__all__ = ["MCPConnections", "MCPServerSpec", "ServersFile", "ServersFileError", "UnknownServerError", "load_servers"]


class ServersFileError(ToolkitError, ValueError):
    """The servers file cannot be read or does not have the `mcpServers` shape."""


class UnknownServerError(ToolkitError, LookupError):
    """A job names an MCP server that the servers file does not declare."""


class MCPServerSpec(BaseModel):
    """One MCP server of the servers file: a command to start, or a URL to call."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)  # built when a servers file is read

    type: Literal["stdio", "http", "streamable-http", "streamableHttp", "sse"] | None = Field(
        default=None, description="How to reach it; inferred from command or url when omitted."
    )
    command: str | None = Field(default=None, min_length=1, description="Program to start (stdio).")
    args: tuple[str, ...] = Field(default=(), description="Its arguments.")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment; values may be !env:NAME.")
    cwd: str | None = Field(default=None, description="Working directory of the program.")
    url: str | None = Field(default=None, min_length=1, description="Endpoint (streamable HTTP or SSE).")
    headers: dict[str, str] = Field(default_factory=dict, description="HTTP headers; values may be !env:NAME.")

    @model_validator(mode="after")
    def _one_way_in(self) -> MCPServerSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either 'command' (a program to start) or 'url' (an MCP endpoint), not both")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https:// (got {clip(self.url)})")
        if self.command is not None and self.type not in (None, "stdio"):
            raise ValueError(f"type {self.type!r} needs a url, not a command")
        if self.url is not None and self.type == "stdio":
            raise ValueError("type 'stdio' needs a command, not a url")
        return self

    @property
    def transport(self) -> Literal["stdio", "http", "sse"]:
        """stdio for a command; sse if the type says so; otherwise streamable HTTP."""
        if self.command is not None:
            return "stdio"
        return "sse" if self.type == "sse" else "http"


class ServersFile(BaseModel):
    """The parsed servers file: server name -> how to reach it."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

    servers: dict[str, MCPServerSpec] = Field(default_factory=dict, alias="mcpServers")
    path: str | None = Field(default=None, exclude=True, description="Where it was read from.")

    def get(self, name: str) -> MCPServerSpec:
        """The server called `name`; `UnknownServerError` listing the declared ones otherwise."""
        spec = self.servers.get(name)
        if spec is None:
            declared = ", ".join(sorted(self.servers)) or "none"
            where = f" in {self.path}" if self.path else ""
            raise UnknownServerError(
                f"MCP server {clip(name)} is not declared{where}. Declared servers: {declared}. Add it to the "
                "servers file given with --servers (the mcpServers shape of Claude Desktop) and restart."
            )
        return spec


class MCPConnections(Protocol):
    """Open connections to the servers of a servers file, shared by the `mcp` and `agent` toolkits.

    A connection is opened on first use, reused by later calls and closed when idle or by `aclose`.
    """

    servers: ServersFile

    async def list_tools(self, server: str) -> list[Tool]:
        """The tools of `server` (`UnknownServerError` if it is not declared)."""
        ...

    async def call_tool(self, server: str, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        """Call `tool` of `server` with `arguments`; the result as the server sent it (is_error included)."""
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...


def load_servers(path: str | Path | None) -> ServersFile:
    """Read a servers file; None gives an empty one. Raises `ServersFileError` saying what is wrong."""
    if path is None:
        return ServersFile.model_construct()  # nothing to validate: the model is built when a file is read
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ServersFileError(f"Cannot read the servers file {where}: {exc.strerror or exc}") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ServersFileError(f"The servers file {where} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("mcpServers"), dict):
        raise ServersFileError(
            f"The servers file {where} needs an object with an 'mcpServers' object, as in Claude Desktop's "
            'configuration: {"mcpServers": {"name": {"command": "...", "args": [...]}}}'
        )
    try:
        parsed = ServersFile.model_validate({"mcpServers": raw["mcpServers"]})
    except ValidationError as exc:
        raise ServersFileError(f"The servers file {where} is invalid: {describe_errors(exc.errors())}") from exc
    return parsed.model_copy(update={"path": where})
