"""What the job-kind toolkits (`http`, `mcp`, `agent`, `shell`, `notify`) may do: one frozen value, given by the host.

The scheduler's CLI builds it from flags (`--http-allow`, `--servers`, `--model`, `--allow-shell`);
a Python program builds it itself. Toolkits never read flags or the environment for these settings.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ToolkitConfig"]


@dataclass(frozen=True)
class ToolkitConfig:
    """Settings of the toolkits that reach outside the process.

    `http_allow`: address patterns (`10.0.0.0/8`, `127.0.0.1`, `*.internal.example`, `host:port`) that
    `http` and webhooks may reach although private or loopback. `exposed`: the server listens beyond
    loopback; private and loopback addresses are then refused unless allowed (link-local and cloud
    metadata addresses are always refused). `servers_file`: a JSON file of MCP servers in Claude
    Desktop's `mcpServers` shape, for the `mcp` and `agent` toolkits. `model`: the default model of the
    `agent` toolkit (`anthropic:claude-sonnet-4-5`, `openai:gpt-5`, ...). `shell_executables`: the
    programs `shell` may run (names on PATH or absolute paths); empty means `shell` is off.
    `shell_env`: environment variable names, beyond a small safe set, that `shell` jobs may set and that
    their programs inherit from the server; loader, interpreter and tool-config variables are refused
    whatever this says. `shell_max_processes`: shell runs in progress at once (more wait their turn).
    `log_dir`: the only directory the `logging` toolkit may write log files to and read them from;
    None means it logs to stderr only.
    """

    http_allow: tuple[str, ...] = ()
    exposed: bool = False
    servers_file: str | None = None
    model: str | None = None
    shell_executables: tuple[str, ...] = ()
    shell_env: tuple[str, ...] = ()
    shell_max_processes: int = 16
    log_dir: str | None = None
