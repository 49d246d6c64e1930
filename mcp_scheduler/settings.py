"""Settings of the MCP server, built by the CLI from flags and `MCP_SCHEDULER_*` variables."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .service import ServiceConfig

__all__ = ["Settings", "default_database_path", "is_loopback", "package_version"]

Transport = Literal["stdio", "http", "sse"]


def package_version() -> str:
    """The installed version of mcp-scheduler (from the package metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mcp-scheduler")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def default_database_path() -> str:
    """`scheduler.sqlite` in the user's data directory (e.g. ~/.local/share/mcp-scheduler)."""
    from platformdirs import user_data_dir

    return str(Path(user_data_dir("mcp-scheduler", appauthor=False)) / "scheduler.sqlite")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    """Everything `build_server` and the CLI need; no other module reads the environment."""

    transport: Transport = "stdio"
    host: str = "127.0.0.1"
    port: int = 8765
    path: str = "/mcp"
    database: str | None = None
    timezone: str | None = None
    toolkits: tuple[str, ...] = ()
    auth_tokens: tuple[str, ...] = ()
    allow_unauthenticated: bool = False
    log_level: str = "INFO"
    history_limit: int = 100
    close_timeout: float = 10.0
    lease_time: float = 10.0
    discover_entry_points: bool = True
    extra_hosts: tuple[str, ...] = field(default=())

    @property
    def url(self) -> str:
        """The HTTP endpoint URL (for messages to the user)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        suffix = self.path if self.transport == "http" else "/sse"
        return f"http://{host}:{self.port}{suffix}"

    def public_url(self) -> str:
        """The server's origin (scheme, host and port)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def service_config(self) -> ServiceConfig:
        """The scheduler settings among these."""
        from .service import ServiceConfig

        return ServiceConfig(
            database=self.database,
            timezone=self.timezone,
            history_limit=self.history_limit,
            close_timeout=self.close_timeout,
            lease_time=self.lease_time,
        )
