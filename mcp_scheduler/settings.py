"""Settings of the MCP server, built by the CLI from flags and `MCP_SCHEDULER_*` variables."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping

    from agentool_bridge.toolkits.config import ToolkitConfig

    from .outbound_events import OutboundEventsConfig
    from .scheduler import ServiceConfig

__all__ = [
    "AllowedHost",
    "Settings",
    "default_database_path",
    "default_token_path",
    "is_loopback",
    "package_version",
    "parse_allowed_host",
]

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
    from .user_dirs import user_dir

    return str(user_dir("data") / "scheduler.sqlite")


def default_token_path() -> str:
    """`token` in the user's config directory (e.g. ~/.config/mcp-scheduler): the HTTP transports' bearer token."""
    from platformdirs import user_config_dir

    return str(Path(user_config_dir("mcp-scheduler", appauthor=False)) / "token")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class AllowedHost:
    """A `Host` value to accept: a name or address (IPv6 in brackets), with a port or any port (None)."""

    host: str
    port: int | None = None

    def host_patterns(self) -> list[str]:
        """The `Host` header values this allows, in the SDK's pattern form (`name:*` = any port)."""
        if self.port is not None:
            return [f"{self.host}:{self.port}"]
        return [self.host, f"{self.host}:*"]

    def origin_patterns(self) -> list[str]:
        """The `Origin` header values this allows (a page served from this host, http or https)."""
        return [f"{scheme}://{pattern}" for scheme in ("http", "https") for pattern in self.host_patterns()]


def parse_allowed_host(value: str) -> AllowedHost:
    """`HOST[:PORT]` as given to `--allowed-host` (`example.com`, `10.0.0.5:8765`, `[fe80::1]:80`, `::1`).

    Raises `ValueError` saying what form is expected.
    """
    text = value.strip()
    usage = (
        f"Invalid --allowed-host {value[:100]!r}: give HOST or HOST:PORT, such as example.com, "
        "10.0.0.5:8765 or [fe80::1]:8765 (no scheme, no path)."
    )
    if not text or any(c in text for c in "/@?#*,\\ \t") or not text.isascii() or not text.isprintable():
        raise ValueError(usage)
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(usage)
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and (not rest.startswith(":") or rest == ":"):
            raise ValueError(usage)
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(usage) from None
    elif text.count(":") > 1:  # a bare IPv6 address: no port
        try:
            host = f"[{ipaddress.IPv6Address(text)}]"
        except ValueError:
            raise ValueError(usage) from None
    elif ":" in text:
        host, port_text = text.split(":")
        if not port_text:
            raise ValueError(usage)
    port: int | None = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(usage)
        port = int(port_text)
    if not host:
        raise ValueError(usage)
    return AllowedHost(host.lower(), port)


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
    stateless_http: bool = False
    discover_entry_points: bool = True
    allowed_hosts: tuple[str, ...] = field(default=())
    """Extra `Host` values (`HOST[:PORT]`) the HTTP transports accept, beyond the address listened on."""
    http_allow: tuple[str, ...] = ()
    servers_file: str | None = None
    model: str | None = None
    shell_executables: tuple[str, ...] = ()
    shell_env: tuple[str, ...] = ()
    shell_max_processes: int = 16
    log_dir: str | None = None
    secrets: tuple[str, ...] = ()
    """Environment variable names that jobs' `!env:NAME` references may read (the operator's allow-list)."""
    events_urls: tuple[str, ...] = ()
    """Where run events (run.completed, run.failed, job.paused) are POSTed, signed (`--events-url`)."""
    events_secret_env: str | None = None
    """The environment variable holding the `whsec_...` secret that signs them (`--events-secret-env`)."""
    token_file: str | None = None
    """Where the HTTP transports keep their generated bearer token (None: `default_token_path()`).

    Used when no `auth_tokens` are given: the file is read, or created with a new token (mode 0600)."""
    max_jobs: int = 10_000
    max_jobs_per_principal: int = 1000
    """Jobs one principal without scheduler:admin may hold (a token's subject; admins have max_jobs only)."""
    min_interval: float = 1.0
    max_runs_per_job: int = 10
    max_concurrent_runs: int = 1000
    inbox_limit: int = 1000
    background_runner: bool = True
    """Start a detached runner when a server opens a store that no process runs (off: --no-background-runner)."""
    runner_idle_exit: float = 600.0
    """Seconds a background runner stays with no active job and no client before it exits."""
    catchup_window: str = "1 day"
    """The server's catch-up window (a duration): how late a fire due while nothing ran (no server, the machine off
    or asleep) may still start; jobs may set their own (policy.catchup_window)."""
    started_by: str = "manual"
    """How this process was started: frontend (a server started it as the background runner), service, manual."""
    answer_bytes: int = 30_000
    """Most bytes of messages in one read_inbox / read_queue answer (or inbox or queue resource)."""
    content_chars: int = 4000
    """Most characters of each labelled outside content, and of a run's error message, in an answer."""
    metrics: bool = False
    """Serve Prometheus metrics at /metrics on the HTTP transports (the `metrics` extra)."""
    metrics_port: int | None = None
    """Also serve them on 127.0.0.1 at this port (any transport, the background runner; 0: any free port)."""
    metrics_max_jobs: int = 500
    """The most jobs that get per-job series; the others are counted as dropped."""

    @property
    def metrics_on(self) -> bool:
        """True when this process serves metrics (/metrics on HTTP or SSE, or a metrics port)."""
        return self.metrics_port is not None or (self.metrics and self.transport != "stdio")
    protect_managed_jobs: bool = False
    confirm: bool = True
    """Ask the user (by elicitation, else `confirm: true`) before cancel_job, stop_scheduler, a job that runs a
    program and an update_job that widens what a job reaches; off (--no-confirm) for unattended use."""
    """Refuse, instead of only warn about, changes to jobs that a jobs file manages made by other means than
    `mcp-scheduler apply` of that file."""
    open_dashboard: Literal["no", "print", "browser"] = "no"
    """`mcp-scheduler dashboard`: once listening, print the dashboard's URL with the token (and open a browser)."""

    oauth_issuer: str | None = None
    """The OAuth 2.1 authorization server whose access tokens the HTTP transports accept (beside static tokens)."""
    oauth_audience: str | None = None
    """The resource URL its tokens must be issued for (`aud`, RFC 8707); default: `url`."""
    oauth_jwks_url: str | None = None
    """Where the issuer's signing keys are (default: the `jwks_uri` of its metadata)."""
    oauth_introspection_url: str | None = None
    """Check tokens by introspection (RFC 7662) at this URL instead of as JWTs, as client `oauth_client_id`."""
    oauth_client_id: str | None = None
    oauth_client_secret: str | None = field(default=None, repr=False)

    @property
    def oauth_on(self) -> bool:
        """True when this process accepts the access tokens of an OAuth authorization server (HTTP and SSE)."""
        return self.oauth_issuer is not None and self.transport != "stdio"

    @property
    def resource_url(self) -> str:
        """The URL that names this server as an OAuth resource (the audience of its tokens)."""
        return self.oauth_audience or self.url

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

    def toolkit_config(self) -> ToolkitConfig:
        """What the job-kind toolkits (http, mcp, agent, shell, notify) may do."""
        from agentool_bridge.toolkits.config import ToolkitConfig

        return ToolkitConfig(
            http_allow=self.http_allow,
            exposed=self.transport != "stdio" and not is_loopback(self.host),
            servers_file=self.servers_file,
            model=self.model,
            shell_executables=self.shell_executables,
            shell_env=self.shell_env,
            shell_max_processes=self.shell_max_processes,
            log_dir=self.log_dir,
        )

    def outbound_events(self, environ: Mapping[str, str]) -> OutboundEventsConfig | None:
        """Where run events go and the secret that signs them (None without --events-url); `SetupError` naming
        the flag when the secret is missing or malformed."""
        from .outbound_events import OutboundEventsConfig

        return OutboundEventsConfig.from_settings(self.events_urls, self.events_secret_env, environ)

    def service_config(self) -> ServiceConfig:
        """The scheduler settings among these; `ValueError` naming the flag if the catch-up window is not a duration."""
        from .downtime import parse_catchup_window
        from .scheduler import ServiceConfig

        return ServiceConfig(
            database=self.database,
            timezone=self.timezone,
            history_limit=self.history_limit,
            close_timeout=self.close_timeout,
            lease_time=self.lease_time,
            secrets=self.secrets,
            max_jobs=self.max_jobs,
            max_jobs_per_principal=self.max_jobs_per_principal,
            min_interval=self.min_interval,
            max_runs_per_job=self.max_runs_per_job,
            max_concurrent_runs=self.max_concurrent_runs,
            inbox_limit=self.inbox_limit,
            catchup_window=parse_catchup_window(self.catchup_window),
            protect_managed_jobs=self.protect_managed_jobs,
        )
