"""The flags of `mcp-scheduler`, each defined once in a set of flags that the commands using it add.

Every flag's default is its `MCP_SCHEDULER_<FLAG>` environment variable when set (flags win). Only what
parsing needs is imported here: a stdio front-end that finds the store's background runner pipes its
client to it without loading asyncio, the scheduler or the MCP SDK.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .._argparse import Commands
from ..settings import parse_allowed_host

__all__ = [
    "ENV_PREFIX",
    "FLAG_SETS",
    "FlagSet",
    "Parser",
    "add_command",
    "allowed_host",
    "db",
    "env_bool",
    "env_list",
    "env_value",
    "http",
    "log_level",
    "no_background_runner",
    "port_number",
    "positive",
    "runner_idle_exit",
    "scheduler",
    "seconds",
    "started_by",
    "timezone",
    "token_file",
]

ENV_PREFIX = "MCP_SCHEDULER_"
RUN_STATUSES = ("running", "success", "error", "timeout", "missed", "skipped", "cancelled", "interrupted")
_REQUIRED_HINTS = {"JOB_ID": "give a JOB_ID (mcp-scheduler jobs lists them)"}


def env_value(name: str, default: Any = None) -> Any:
    """`MCP_SCHEDULER_<name>`, or `default` when it is not set."""
    return os.environ.get(ENV_PREFIX + name, default)


def env_list(name: str) -> list[str]:
    """`MCP_SCHEDULER_<name>` as a list: comma- or space-separated."""
    raw = env_value(name, "")
    return [part.strip() for part in raw.replace(",", " ").split() if part.strip()]


def env_bool(name: str) -> bool:
    """`MCP_SCHEDULER_<name>` as a switch: 1, true, yes or on."""
    return str(env_value(name, "")).lower() in ("1", "true", "yes", "on")


class Parser(argparse.ArgumentParser):
    """argparse, whose message about a bad value also names the environment variable when one is set."""

    def error(self, message: str) -> NoReturn:
        found = re.match(r"argument (--[a-z][a-z-]*)", message)
        if found:
            variable = ENV_PREFIX + found.group(1)[2:].upper().replace("-", "_")
            if variable in os.environ:
                message += f" ({variable} is set)"
        missing = message.removeprefix("the following arguments are required: ")
        message = _REQUIRED_HINTS.get(missing, message)
        super().error(message)


def _checked(value: str, convert: Callable[[str], Any], accept: Callable[[Any], bool], expected: str) -> Any:
    try:
        number = convert(value)
    except ValueError:
        number = None
    if number is None or not accept(number):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}")
    return number


def positive(value: str) -> int:
    """A whole number of at least 1 (argparse type)."""
    number: int = _checked(value, int, lambda n: n >= 1, "a whole number of at least 1")
    return number


def whole(value: str) -> int:
    """A whole number of at least 0 (argparse type)."""
    number: int = _checked(value, int, lambda n: n >= 0, "a whole number of at least 0")
    return number


def seconds(value: str) -> float:
    """A number of seconds above 0 (argparse type)."""
    number: float = _checked(value, float, lambda n: n > 0, "a number of seconds above 0")
    return number


def port_number(value: str) -> int:
    number: int = _checked(value, int, lambda n: 0 <= n <= 65535, "a port number from 1 to 65535 (0: any free port)")
    return number


def _http_path(value: str) -> str:
    if not value.startswith("/") or any(c in value for c in "?# \t"):
        raise argparse.ArgumentTypeError(f"expected a URL path that starts with '/', such as /mcp, got {value!r}")
    return value


def allowed_host(value: str) -> str:
    """A `--allowed-host` value (argparse type): `HOST[:PORT]`."""
    try:
        parse_allowed_host(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


FlagSet = Callable[[argparse.ArgumentParser], None]
"""A set of flags, defined once: adds them to the parser of each command that uses them (defaults read from the
environment then)."""


def _group(parser: argparse.ArgumentParser, title: str | None) -> Any:
    """The parser's help group of that title (made on first use), or the parser itself for None."""
    if title is None:
        return parser
    for existing in parser._action_groups:
        if existing.title == title:
            return existing
    return parser.add_argument_group(title)


def db(parser: argparse.ArgumentParser) -> None:
    """--db: the store every command but `token` works on."""
    _group(parser, "store").add_argument(
        "--db", default=env_value("DB"),
        help="SQLite database file (default: scheduler.sqlite in the user data directory), or a "
        "postgresql://user@host/dbname URL")


def timezone(parser: argparse.ArgumentParser) -> None:
    """--timezone: the zone of schedules, and of the times tables show."""
    _group(parser, "store").add_argument(
        "--timezone", default=env_value("TIMEZONE"),
        help="default IANA time zone of schedules, and of the times shown (default: the machine's)")


def log_level(parser: argparse.ArgumentParser) -> None:
    """--log-level."""
    parser.add_argument("--log-level", default=env_value("LOG_LEVEL", "INFO"), type=str.upper,
                        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                        help="what the stderr log shows (default INFO)")


def token_file(parser: argparse.ArgumentParser) -> None:
    """--token-file: where the HTTP transports' bearer token is kept (serve, token)."""
    _group(parser, "HTTP and SSE").add_argument(
        "--token-file", default=env_value("TOKEN_FILE"), metavar="FILE",
        help="the file holding the bearer token HTTP/SSE clients must send when no --auth-token is given; "
        "generated (mode 0600) if missing, refused if others can read it (default: 'token' in the user's "
        "config directory, e.g. ~/.config/mcp-scheduler/token). `mcp-scheduler token` prints it")


def runner_idle_exit(parser: argparse.ArgumentParser) -> None:
    """--runner-idle-exit: for a background runner, and for the servers that start one."""
    _group(parser, "background runner").add_argument(
        "--runner-idle-exit", type=seconds, metavar="SECONDS", default=env_value("RUNNER_IDLE_EXIT", "600"),
        help="a background runner exits after this long with no active job and no client (default 600)")


def no_background_runner(parser: argparse.ArgumentParser) -> None:
    """--no-background-runner: for a server (and the client entries that start one)."""
    _group(parser, "background runner").add_argument(
        "--no-background-runner", action="store_true", default=env_bool("NO_BACKGROUND_RUNNER"),
        help="never start a background runner: jobs run only while a server of the store runs (for containers "
        "and service managers)")


def started_by(parser: argparse.ArgumentParser) -> None:
    """--started-by (hidden): how a background runner was started."""
    parser.add_argument("--started-by", choices=["frontend", "service", "manual"],
                        default=env_value("STARTED_BY", "manual"), help=argparse.SUPPRESS)


def scheduler(parser: argparse.ArgumentParser) -> None:
    """The operator's settings of a scheduler: what jobs may do, limits, closing (serve, runner, the job actions,
    and install / service, which pass them on)."""
    jobs = _group(parser, "what jobs may do")
    jobs.add_argument("--toolkit", action="append", default=None, metavar="MODULE:FACTORY",
                      help="register extra job kinds (AgenTools) by calling this factory (repeatable)")
    jobs.add_argument("--http-allow", action="append", default=None, metavar="PATTERN",
                      help="let http jobs and webhooks reach this private or loopback address, network or host "
                      "(10.0.0.0/8, 127.0.0.1, *.internal.example, host:port; repeatable; env: comma-separated). "
                      "Link-local and cloud metadata addresses are never reachable")
    jobs.add_argument("--servers", default=env_value("SERVERS"), metavar="FILE",
                      help="JSON file of MCP servers whose tools jobs may call (mcp and agent jobs), in the "
                      "mcpServers shape of Claude Desktop's configuration")
    jobs.add_argument("--model", default=env_value("MODEL"), metavar="MODEL",
                      help="default model of agent jobs, such as anthropic:claude-sonnet-4-5 or openai:gpt-5 "
                      "(API keys come from the environment: ANTHROPIC_API_KEY, OPENAI_API_KEY, ...)")
    jobs.add_argument("--allow-shell", action="append", default=None, metavar="EXECUTABLE",
                      help="let shell jobs run this program (a name on PATH or an absolute path; repeatable; "
                      "env: comma-separated). Without it, shell jobs are refused")
    jobs.add_argument("--shell-env", action="append", default=None, metavar="NAME",
                      help="let shell jobs set this environment variable, and their programs inherit it from the "
                      "server (repeatable; env: comma-separated). LANG, LC_*, TZ and a few more are always "
                      "allowed; loader, interpreter and tool-config variables (LD_*, BASH_*, PYTHON*, GIT_*, ...) "
                      "never are")
    jobs.add_argument("--max-processes", type=positive, metavar="N", default=env_value("MAX_PROCESSES", "16"),
                      help="shell runs in progress at once; more wait their turn (default 16)")
    jobs.add_argument("--log-dir", default=env_value("LOG_DIR"), metavar="DIR",
                      help="the directory where logging jobs may write log files (and read them back); "
                      "without it they log to stderr only")
    jobs.add_argument("--secret", action="append", default=None, metavar="NAME",
                      help="let jobs read this environment variable of the server as '!env:NAME' (repeatable; "
                      "env: comma-separated). Other names are refused")
    events = _group(parser, "run events")
    events.add_argument("--events-url", action="append", default=None, metavar="URL",
                        help="POST run events (run.completed, run.failed, job.paused) to this URL, signed in the "
                        "Standard Webhooks format (repeatable; env: comma-separated); the address policy of http "
                        "jobs applies (--http-allow)")
    events.add_argument("--events-secret-env", default=env_value("EVENTS_SECRET_ENV"), metavar="NAME",
                        help="the environment variable holding the 'whsec_...' secret that signs run events "
                        "(required with --events-url)")
    limits = _group(parser, "limits")
    limits.add_argument("--history-limit", type=int, metavar="N", default=env_value("HISTORY_LIMIT", "100"),
                        help="runs kept per job (default 100)")
    limits.add_argument("--close-timeout", type=float, metavar="SECONDS", default=env_value("CLOSE_TIMEOUT", "10"),
                        help="seconds that runs in progress get to finish when the scheduler stops (default 10)")
    limits.add_argument("--lease-time", type=float, metavar="SECONDS", default=env_value("LEASE_TIME", "10"),
                        help="PostgreSQL: seconds within which a standby takes over from a runner that died or "
                        "was cut off (default 10, at least 2)")
    limits.add_argument("--max-jobs", type=positive, metavar="N", default=env_value("MAX_JOBS", "10000"),
                        help="most jobs the database may hold (default 10000)")
    limits.add_argument("--max-jobs-per-principal", type=positive, metavar="N",
                        default=env_value("MAX_JOBS_PER_PRINCIPAL", "1000"),
                        help="most jobs one token's principal without scheduler:admin may hold (default 1000)")
    limits.add_argument("--min-interval", type=seconds, metavar="SECONDS", default=env_value("MIN_INTERVAL", "1"),
                        help="shortest time in seconds between two fires of a schedule (default 1)")
    limits.add_argument("--max-runs-per-job", type=positive, metavar="N", default=env_value("MAX_RUNS_PER_JOB", "10"),
                        help="runs of one job in progress at once, whatever its max_instances or overlap policy "
                        "asks (default 10)")
    limits.add_argument("--max-concurrent-runs", type=positive, metavar="N",
                        default=env_value("MAX_CONCURRENT_RUNS", "1000"),
                        help="scheduled runs in progress at once; more due fires wait their turn (default 1000)")
    limits.add_argument("--inbox-limit", type=positive, metavar="N", default=env_value("INBOX_LIMIT", "1000"),
                        help="unread inbox messages kept; further posts are refused until some are read "
                        "(default 1000)")
    limits.add_argument("--answer-bytes", type=positive, metavar="N", default=env_value("ANSWER_BYTES", "30000"),
                        help="most bytes of messages in one read_inbox or read_queue answer; the rest are counted "
                        "in not_shown and shown once those are acknowledged or taken (default 30000)")
    limits.add_argument("--content-chars", type=positive, metavar="N", default=env_value("CONTENT_CHARS", "4000"),
                        help="most characters of each piece of outside content (an http body, a program's output) "
                        "and of an error message that an answer shows; the history keeps them whole (default 4000)")
    limits.add_argument("--catchup-window", metavar="DURATION", default=env_value("CATCHUP_WINDOW", "1 day"),
                        help="how late a run missed while nothing ran (machine off, asleep, no server) may still "
                        "start at the next start; jobs may set their own (default '1 day')")
    limits.add_argument("--protect-managed-jobs", action="store_true", default=env_bool("PROTECT_MANAGED_JOBS"),
                        help="refuse to update, pause, resume or cancel a job that a jobs file manages (mcp-scheduler "
                        "apply) by any other means than applying that file; without it, such a change is made and its "
                        "answer warns")
    limits.add_argument("--no-confirm", action="store_true", default=env_bool("NO_CONFIRM"),
                        help="ask nobody: cancel_job, stop_scheduler, a job that runs a program and an update_job "
                        "that widens what a job reaches are done without the user's confirmation (for unattended "
                        "use; by default the client asks the user, or the model passes confirm: true)")


def http(parser: argparse.ArgumentParser) -> None:
    """The HTTP and SSE transports (serve only)."""
    http = _group(parser, "HTTP and SSE")
    http.add_argument("--transport", choices=["stdio", "http", "sse"], default=env_value("TRANSPORT", "stdio"),
                      help="stdio (default, for Claude Desktop), http (streamable HTTP) or sse")
    http.add_argument("--host", default=env_value("HOST", "127.0.0.1"), help="address to listen on (default 127.0.0.1)")
    http.add_argument("--port", type=port_number, default=env_value("PORT", "8765"),
                      help="port (default 8765; 0: any free port, named in the log)")
    http.add_argument("--path", type=_http_path, default=env_value("PATH", "/mcp"),
                      help="streamable HTTP path (default /mcp)")
    http.add_argument("--auth-token", action="append", default=None, metavar="TOKEN",
                      help="accept this bearer token instead of the token file's (repeatable; env: comma-separated); "
                      "NAME:SCOPES:TOKEN names its principal and limits it to SCOPES (read, write, run, admin "
                      "joined by +): without admin it sees and changes only its own jobs")
    http.add_argument("--allowed-host", action="append", default=None, metavar="HOST[:PORT]", type=allowed_host,
                      help="also accept requests whose Host (and Origin) is this name, e.g. the name of a reverse "
                      "proxy or a DNS alias; without a port, any port (repeatable; env: comma-separated). The "
                      "address listened on, and 127.0.0.1, localhost and [::1] on a loopback or wildcard address, are "
                      "always accepted, and on a wildcard address (0.0.0.0, ::) this machine's own names and "
                      "addresses; others get 421 (Host) or 403 (Origin)")
    http.add_argument("--allow-unauthenticated", action="store_true", default=env_bool("ALLOW_UNAUTHENTICATED"),
                      help="serve without a bearer token. On loopback any local user can then run jobs as you; "
                      "beyond loopback, only behind a proxy that does the auth")
    http.add_argument("--oauth-issuer", default=env_value("OAUTH_ISSUER"), metavar="URL",
                      help="also accept the access tokens of this OAuth 2.1 authorization server (JWTs checked "
                      "against its JWKS; scopes scheduler:read|write|run|admin and scheduler:kind:NAME); "
                      "docs/security.md")
    http.add_argument("--oauth-audience", default=env_value("OAUTH_AUDIENCE"), metavar="URL",
                      help="the resource URL its tokens must be issued for (aud; default: this server's URL, such "
                      "as http://127.0.0.1:8765/mcp); give the public URL behind a proxy")
    http.add_argument("--oauth-jwks-url", default=env_value("OAUTH_JWKS_URL"), metavar="URL",
                      help="the issuer's signing keys (default: the jwks_uri of its metadata)")
    http.add_argument("--oauth-introspection-url", default=env_value("OAUTH_INTROSPECTION_URL"), metavar="URL",
                      help="check tokens by introspection (RFC 7662) here instead, as the client "
                      f"{ENV_PREFIX}OAUTH_CLIENT_ID with secret {ENV_PREFIX}OAUTH_CLIENT_SECRET")
    http.add_argument("--stateless-http", action="store_true", default=env_bool("STATELESS_HTTP"),
                      help="streamable HTTP without sessions, for replicas behind a load balancer without sticky "
                      "sessions (handshake-era clients then get no server-initiated notifications)")


def metrics(parser: argparse.ArgumentParser) -> None:
    """Prometheus metrics (serve, runner); docs/observability.md."""
    group = _group(parser, "metrics")
    group.add_argument("--metrics", action="store_true", default=env_bool("METRICS"),
                       help="serve Prometheus metrics at /metrics beside the HTTP/SSE endpoint, for a token of the "
                       "endpoint with scheduler:admin (scheduler:read with --metrics-max-jobs 0; needs the 'metrics' "
                       "extra)")
    group.add_argument("--metrics-port", type=port_number, metavar="PORT", default=env_value("METRICS_PORT"),
                       help="serve them on 127.0.0.1:PORT too, without a token (any transport, and the background "
                       "runner; 0: any free port, named in the log)")
    group.add_argument("--metrics-max-jobs", type=whole, metavar="N", default=env_value("METRICS_MAX_JOBS", "500"),
                       help="the most jobs with series of their own; the others are counted as dropped (default 500; "
                       "0: none)")


FLAG_SETS: tuple[FlagSet, ...] = (db, timezone, log_level, scheduler, http, token_file, runner_idle_exit,
                                  no_background_runner, started_by, metrics)
"""Every set of flags (a setting comes from its command's flag, else from its variable, else its default)."""


def add_command(commands: Commands, name: str, handler: Callable[..., int], *, summary: str,
                description: str, flags: Sequence[FlagSet]) -> argparse.ArgumentParser:
    """Add command `name` with these sets of flags, run by `handler(args, settings)`; `summary` is its line in
    `mcp-scheduler --help`."""
    parser: argparse.ArgumentParser = commands.add_parser(name, help=summary, description=description)
    for add in flags:
        add(parser)
    parser.set_defaults(handler=handler, flag_sets=tuple(flags))
    return parser



