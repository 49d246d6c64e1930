"""The MCP clients `mcp-scheduler install` knows: where each keeps its servers and the keys it reads.

What each client reads, from its own documentation (checked 2026-12):
- Claude Desktop: `claude_desktop_config.json`, `mcpServers` > name > `command`, `args`, `env` only
  (modelcontextprotocol.io, "Connect to local MCP servers"). Remote servers are not read from this file:
  "add them via Settings > Connectors. Claude Desktop will not connect to remote servers that are configured
  directly via claude_desktop_config.json" (support.anthropic.com, article 11503834).
- Claude Code: `claude mcp add --scope user` writes the top-level `mcpServers` of `~/.claude.json` (a
  maintainer's answer in anthropics/claude-code#4193; `$CLAUDE_CONFIG_DIR/.claude.json` when that is set,
  anthropics/claude-code#48448); a project's `.mcp.json` has the same shape. Entries: `type: "stdio"`,
  `command`, `args`, `env`.
- VS Code: the user profile's `mcp.json` ("MCP: Open User Configuration") or a workspace's
  `.vscode/mcp.json`: top-level `servers` (not `mcpServers`) > name > `type` (required, "stdio"),
  `command`, `args`, `env` (code.visualstudio.com, "MCP configuration reference").
- Cursor: `~/.cursor/mcp.json` for every project, `.cursor/mcp.json` in a project: `mcpServers` > name >
  `command`, `args`, `env` (cursor.com/docs/mcp).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .machine import Machine

__all__ = ["CLIENTS", "SERVER_NAME", "Client", "client_document", "client_entry"]

SERVER_NAME = "scheduler"
"""The name the server is registered under in every client."""


@dataclass(frozen=True)
class Client:
    """One MCP client: its configuration file on each platform and the shape of a stdio entry there."""

    name: str
    title: str
    servers_key: str
    """The top-level key that holds the servers (`mcpServers`, or `servers` for VS Code)."""
    typed: bool
    """Whether a stdio entry names its transport (`"type": "stdio"`)."""
    _path: Callable[[Machine], Path]
    restart: str
    """What the user does for the client to read the change."""

    def config_path(self, machine: Machine) -> Path:
        """The user-level configuration file of this client on `machine`."""
        return self._path(machine)


def _claude_desktop(machine: Machine) -> Path:
    if machine.is_macos:
        return machine.home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    if machine.is_windows:
        return machine.app_data() / "Claude" / "claude_desktop_config.json"
    return machine.config_home() / "Claude" / "claude_desktop_config.json"


def _claude_code(machine: Machine) -> Path:
    folder = machine.environ.get("CLAUDE_CONFIG_DIR", "")
    return (Path(folder).expanduser() if folder else machine.home) / ".claude.json"


def _vscode(machine: Machine) -> Path:
    if machine.is_macos:
        return machine.home / "Library" / "Application Support" / "Code" / "User" / "mcp.json"
    if machine.is_windows:
        return machine.app_data() / "Code" / "User" / "mcp.json"
    return machine.config_home() / "Code" / "User" / "mcp.json"


def _cursor(machine: Machine) -> Path:
    return machine.home / ".cursor" / "mcp.json"


CLIENTS: Mapping[str, Client] = {
    client.name: client
    for client in (
        Client("claude-desktop", "Claude Desktop", "mcpServers", False, _claude_desktop,
               "quit Claude Desktop completely and open it again"),
        Client("claude-code", "Claude Code", "mcpServers", True, _claude_code,
               "start a new Claude Code session (`claude mcp list` shows the server)"),
        Client("vscode", "VS Code", "servers", True, _vscode,
               "VS Code picks the change up; start the server from the MCP view or the file's code lens"),
        Client("cursor", "Cursor", "mcpServers", False, _cursor,
               "restart Cursor, or turn the server on under Settings > MCP"),
    )
}
"""The clients by the name `mcp-scheduler install` takes."""


def client_entry(client: Client, command: Sequence[str], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The stdio entry that starts `command` (absolute program first, then its arguments) in `client`."""
    entry: dict[str, Any] = {"type": "stdio"} if client.typed else {}
    entry["command"] = command[0]
    entry["args"] = list(command[1:])
    if env:
        entry["env"] = dict(env)
    return entry


def client_document(client: Client, command: Sequence[str], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A whole configuration file holding only this server: what `--print` shows and the examples hold."""
    return {client.servers_key: {SERVER_NAME: client_entry(client, command, env)}}
