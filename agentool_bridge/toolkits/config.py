"""What the job-kind toolkits (`http`, `mcp`, `agent`, `shell`, `notify`) may do: one frozen value, given by the host.

The scheduler's CLI builds it from flags (`--http-allow`, `--servers`, `--model`, `--allow-shell`);
a Python program builds it itself. Toolkits never read flags or the environment for these settings.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AddressRules", "ToolkitConfig"]


@dataclass(frozen=True, slots=True)
class AddressRules:
    """The settings an address policy is built from, as a job stores the policy it was accepted under.

    `exposed`: the accepting server listened beyond loopback, so private and loopback addresses are
    refused unless an `http_allow` pattern matches. `http_allow`: that server's `--http-allow`
    patterns. Link-local and cloud metadata addresses are refused whatever these say. A run obeys
    both its runner's policy and the one its job stores: an address is reachable only if both allow it.
    """

    exposed: bool = False
    http_allow: tuple[str, ...] = ()

    def strictest(self, other: AddressRules) -> AddressRules:
        """Rules that allow no address that either of `self` and `other` refuses.

        Exact unless both are exposed with different patterns: then only the patterns both list are
        kept, which may refuse an address both would allow (never the reverse).
        """
        if not other.exposed:
            return self if self.exposed else AddressRules()
        if not self.exposed:
            return other
        return AddressRules(True, tuple(p for p in self.http_allow if p in other.http_allow))


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

    @property
    def address_rules(self) -> AddressRules:
        """The settings of the address policy of `http` and webhooks (what a job accepted here stores)."""
        return AddressRules(self.exposed, self.http_allow)
