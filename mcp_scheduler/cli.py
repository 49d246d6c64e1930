"""The `mcp-scheduler` command: serve over stdio, streamable HTTP or SSE; print jobs, history and status.

Every flag can also be set with an `MCP_SCHEDULER_<FLAG>` environment variable (flags win).
This is the only module that reads the environment.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import socket
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn

from .settings import Settings, default_database_path, default_token_path, is_loopback, parse_allowed_host

if TYPE_CHECKING:
    import asyncio
    import signal
    from collections.abc import Iterator

    from mcp.server.mcpserver import MCPServer

    from .local_addresses import LocalAddresses

# Only what `parse_settings` needs is imported here: a stdio front-end that finds the store's background runner
# pipes its client to it (frontend.py) without loading asyncio, the scheduler or the MCP SDK.

__all__ = ["check_exposure", "main", "parse_settings", "with_http_auth"]

logger = logging.getLogger("mcp_scheduler")
ENV_PREFIX = "MCP_SCHEDULER_"

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND = 0, 1, 2, 3
COMMANDS = ("serve", "jobs", "history", "status", "run", "pause", "resume", "cancel", "token", "runner", "install",
            "service")
CLIENTS = ("claude-desktop", "claude-code", "vscode", "cursor")
SERVICE_ACTIONS = ("install", "uninstall", "status")
RUNNER_ACTIONS = ("start", "stop")
JOB_COMMANDS = ("run", "pause", "resume", "cancel")
RUN_STATUSES = ("running", "success", "error", "timeout", "missed", "skipped", "cancelled", "interrupted")
EPILOG = """\
examples:
  mcp-scheduler --transport http --db jobs.sqlite      serve over streamable HTTP (clients send the bearer token)
  mcp-scheduler token                                   print that token (generated on first use, mode 0600)
  mcp-scheduler jobs --db jobs.sqlite                   the jobs, with their schedules in words
  mcp-scheduler history --since 1h --status error       every job's failed runs of the last hour
  mcp-scheduler pause nightly-report                    stop a job firing (a running server follows)
  mcp-scheduler run nightly-report                      run it now; prints its result (JSON)

exit codes:
  0  done (status: a process runs the jobs)
  1  the action failed: the run failed, the job's state refuses it, the database is missing or unreadable,
     the token file is readable by others (status: no process runs the jobs)
  2  usage error (unknown command or option, missing JOB_ID, a --since / --until that is no time,
     token with --auth-token set)
  3  no job with that JOB_ID (history: no job and no runs)
Tables go to stdout, messages to stderr.
"""


def _env(name: str, default: Any = None) -> Any:
    return os.environ.get(ENV_PREFIX + name, default)


def _env_list(name: str) -> list[str]:
    raw = _env(name, "")
    return [part.strip() for part in raw.replace(",", " ").split() if part.strip()]


def _env_bool(name: str) -> bool:
    return str(_env(name, "")).lower() in ("1", "true", "yes", "on")


class _Parser(argparse.ArgumentParser):
    """argparse, whose message about a bad value also names the environment variable when one is set."""

    def error(self, message: str) -> NoReturn:
        found = re.match(r"argument (--[a-z][a-z-]*)", message)
        if found:
            variable = ENV_PREFIX + found.group(1)[2:].upper().replace("-", "_")
            if variable in os.environ:
                message += f" ({variable} is set)"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mcp-scheduler",
        description="A persistent job scheduler for LLM agents, served over MCP. "
        f"Every option can also be set as an environment variable {ENV_PREFIX}<OPTION> (e.g. {ENV_PREFIX}PORT).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", nargs="?", default="serve", choices=COMMANDS, metavar="COMMAND",
                        help="serve (default): run the MCP server; jobs: print the jobs table; "
                        "history [JOB_ID]: print runs, newest first (of one job, or of all jobs); "
                        "status: print which process runs the jobs and which stand by; "
                        "run JOB_ID: run a job now and print its result; pause / resume / cancel JOB_ID; "
                        "token: print the bearer token HTTP/SSE clients send (generated into --token-file on "
                        "first use); runner [start|stop]: run the jobs in this process without serving a client "
                        "(start, the default), or end the store's background runner (stop); install CLIENT: add "
                        "this server to a client's configuration (claude-desktop, claude-code, vscode, cursor); "
                        "service install|uninstall|status: a user service that runs the jobs at login. jobs, "
                        "history, status, run, pause, resume and cancel work on the database of a running server "
                        "(--db)")
    parser.add_argument("job_id", nargs="?", metavar="JOB_ID",
                        help="the job, for history, run, pause, resume, cancel; the client, for install; the action, "
                        "for runner and service")
    parser.add_argument("--transport", choices=["stdio", "http", "sse"], default=_env("TRANSPORT", "stdio"),
                        help="stdio (default, for Claude Desktop), http (streamable HTTP) or sse")
    parser.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=_env("PORT", "8765"),
                        help="port (default 8765; 0: any free port, named in the log)")
    parser.add_argument("--path", type=_http_path, default=_env("PATH", "/mcp"),
                        help="streamable HTTP path (default /mcp)")
    parser.add_argument("--db", default=_env("DB"), help="SQLite database file (default: scheduler.sqlite in the "
                        "user data directory), or a postgresql://user@host/dbname URL")
    parser.add_argument("--timezone", default=_env("TIMEZONE"),
                        help="default IANA time zone of schedules (default: the machine's)")
    parser.add_argument("--toolkit", action="append", default=None, metavar="MODULE:FACTORY",
                        help="register extra AgenTools by calling this factory (repeatable)")
    parser.add_argument("--auth-token", action="append", default=None, metavar="TOKEN",
                        help="accept this bearer token on HTTP/SSE instead of the token file's (repeatable; env: "
                        "comma-separated)")
    parser.add_argument("--allowed-host", action="append", default=None, metavar="HOST[:PORT]", type=_allowed_host,
                        help="also accept HTTP/SSE requests whose Host (and Origin) is this name, e.g. the name of a "
                        "reverse proxy or a DNS alias; without a port, any port (repeatable; env: "
                        "comma-separated). The address listened on, and 127.0.0.1, localhost and [::1] on a "
                        "loopback or wildcard address, are always accepted, and on a wildcard address (0.0.0.0, ::) "
                        "this machine's own names and addresses; others get 421 (Host) or 403 (Origin)")
    parser.add_argument("--allow-unauthenticated", action="store_true", default=_env_bool("ALLOW_UNAUTHENTICATED"),
                        help="serve HTTP/SSE without a bearer token. On loopback any local user can then run jobs "
                        "as you; beyond loopback, only behind a proxy that does the auth")
    parser.add_argument("--log-level", default=_env("LOG_LEVEL", "INFO"),
                        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], type=str.upper)
    parser.add_argument("--history-limit", type=int, default=_env("HISTORY_LIMIT", "100"),
                        help="runs kept per job (default 100)")
    parser.add_argument("--close-timeout", type=float, default=_env("CLOSE_TIMEOUT", "10"),
                        help="seconds that runs in progress get to finish when the server stops (default 10)")
    parser.add_argument("--stateless-http", action="store_true", default=_env_bool("STATELESS_HTTP"),
                        help="streamable HTTP without sessions, for replicas behind a load balancer without sticky "
                        "sessions (handshake-era clients then get no server-initiated notifications)")
    parser.add_argument("--lease-time", type=float, default=_env("LEASE_TIME", "10"),
                        help="PostgreSQL: seconds within which a standby takes over from a runner that died or "
                        "was cut off (default 10, at least 2)")
    parser.add_argument("--http-allow", action="append", default=None, metavar="PATTERN",
                        help="let http jobs and webhooks reach this private or loopback address, network or host "
                        "(10.0.0.0/8, 127.0.0.1, *.internal.example, host:port; repeatable; env: comma-separated). "
                        "Link-local and cloud metadata addresses are never reachable")
    parser.add_argument("--servers", default=_env("SERVERS"), metavar="FILE",
                        help="JSON file of MCP servers whose tools jobs may call (mcp and agent jobs), in the "
                        "mcpServers shape of Claude Desktop's configuration")
    parser.add_argument("--model", default=_env("MODEL"), metavar="MODEL",
                        help="default model of agent jobs, such as anthropic:claude-sonnet-4-5 or openai:gpt-5 "
                        "(API keys come from the environment: ANTHROPIC_API_KEY, OPENAI_API_KEY, ...)")
    parser.add_argument("--allow-shell", action="append", default=None, metavar="EXECUTABLE",
                        help="let shell jobs run this program (a name on PATH or an absolute path; repeatable; "
                        "env: comma-separated). Without it, shell jobs are refused")
    parser.add_argument("--shell-env", action="append", default=None, metavar="NAME",
                        help="let shell jobs set this environment variable, and their programs inherit it from the "
                        "server (repeatable; env: comma-separated). LANG, LC_*, TZ and a few more are always "
                        "allowed; loader, interpreter and tool-config variables (LD_*, BASH_*, PYTHON*, GIT_*, ...) "
                        "never are")
    parser.add_argument("--max-processes", type=_positive, metavar="N", default=_env("MAX_PROCESSES", "16"),
                        help="shell runs in progress at once; more wait their turn (default 16)")
    parser.add_argument("--log-dir", default=_env("LOG_DIR"), metavar="DIR",
                        help="the directory where logging jobs may write log files (and read them back); "
                        "without it they log to stderr only")
    parser.add_argument("--secret", action="append", default=None, metavar="NAME",
                        help="let jobs read this environment variable of the server as '!env:NAME' (repeatable; "
                        "env: comma-separated). Other names are refused")
    parser.add_argument("--token-file", default=_env("TOKEN_FILE"), metavar="FILE",
                        help="HTTP/SSE: the file holding the bearer token clients must send when no --auth-token "
                        "is given; generated (mode 0600) if missing, refused if others can read it (default: "
                        "'token' in the user's config directory, e.g. ~/.config/mcp-scheduler/token). "
                        "`mcp-scheduler token` prints it")
    parser.add_argument("--max-jobs", type=_positive, metavar="N", default=_env("MAX_JOBS", "10000"),
                        help="most jobs the database may hold (default 10000)")
    parser.add_argument("--min-interval", type=_seconds, metavar="SECONDS", default=_env("MIN_INTERVAL", "1"),
                        help="shortest time in seconds between two fires of a schedule (default 1)")
    parser.add_argument("--max-runs-per-job", type=_positive, metavar="N", default=_env("MAX_RUNS_PER_JOB", "10"),
                        help="runs of one job in progress at once, whatever its max_instances or overlap policy "
                        "asks (default 10)")
    parser.add_argument("--max-concurrent-runs", type=_positive, metavar="N",
                        default=_env("MAX_CONCURRENT_RUNS", "1000"),
                        help="scheduled runs in progress at once; more due fires wait their turn (default 1000)")
    parser.add_argument("--inbox-limit", type=_positive, metavar="N", default=_env("INBOX_LIMIT", "1000"),
                        help="unread inbox messages kept; further posts are refused until some are read "
                        "(default 1000)")
    parser.add_argument("--answer-bytes", type=_positive, metavar="N", default=_env("ANSWER_BYTES", "30000"),
                        help="most bytes of messages in one read_inbox or read_queue answer; the rest are counted "
                        "in not_shown and shown once those are acknowledged or taken (default 30000)")
    parser.add_argument("--content-chars", type=_positive, metavar="N", default=_env("CONTENT_CHARS", "4000"),
                        help="most characters of each piece of outside content (an http body, a program's output) "
                        "and of an error message that an answer shows; the history keeps them whole (default 4000)")
    parser.add_argument("--no-background-runner", action="store_true", default=_env_bool("NO_BACKGROUND_RUNNER"),
                        help="never start a background runner: jobs run only while a server of the store runs (for "
                        "containers and service managers)")
    parser.add_argument("--runner-idle-exit", type=_seconds, metavar="SECONDS",
                        default=_env("RUNNER_IDLE_EXIT", "600"),
                        help="a background runner exits after this long with no active job and no client "
                        "(default 600)")
    parser.add_argument("--catchup-window", metavar="DURATION", default=_env("CATCHUP_WINDOW", "1 day"),
                        help="how late a run missed while nothing ran (machine off, asleep, no server) may still "
                        "start at the next start; jobs may set their own (default '1 day')")
    parser.add_argument("--started-by", choices=["frontend", "service", "manual"], default=_env("STARTED_BY", "manual"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--print", dest="print_only", action="store_true",
                        help="install / service install: print what would be written instead of writing it")
    parser.add_argument("--client-config", metavar="FILE",
                        help="install: merge the server into this file instead of the client's user-level one "
                        "(e.g. a project's .mcp.json, .vscode/mcp.json or .cursor/mcp.json)")
    parser.add_argument("--limit", type=_positive, default=50, help="rows to print for jobs/history (default 50)")
    parser.add_argument("--state", choices=["scheduled", "paused", "completed"], help="jobs: only jobs in this state")
    parser.add_argument("--status", choices=RUN_STATUSES, help="history: only runs with this outcome")
    parser.add_argument("--since", metavar="WHEN", help="history: runs at or after WHEN, an ISO time "
                        "('2026-12-01T09:00', read in --timezone) or a duration ago ('1h', '30 minutes', '2 days')")
    parser.add_argument("--until", metavar="WHEN", help="history: runs before WHEN (same forms as --since)")
    return parser


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return number


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {value!r}")
    return number


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 1 to 65535 (0: any free port), got {value!r}")
    return number


def _http_path(value: str) -> str:
    if not value.startswith("/") or any(c in value for c in "?# \t"):
        raise argparse.ArgumentTypeError(f"expected a URL path that starts with '/', such as /mcp, got {value!r}")
    return value


def _allowed_host(value: str) -> str:
    try:
        parse_allowed_host(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def parse_settings(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, Settings]:
    """The parsed command line and the settings it gives (flags, then `MCP_SCHEDULER_*` variables)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    toolkits = tuple(args.toolkit if args.toolkit is not None else _env_list("TOOLKIT"))
    tokens = tuple(args.auth_token if args.auth_token is not None else _env_list("AUTH_TOKEN"))
    allowed_hosts = tuple(args.allowed_host if args.allowed_host is not None else _env_list("ALLOWED_HOST"))
    http_allow = tuple(args.http_allow if args.http_allow is not None else _env_list("HTTP_ALLOW"))
    shell = tuple(args.allow_shell if args.allow_shell is not None else _env_list("ALLOW_SHELL"))
    shell_env = tuple(args.shell_env if args.shell_env is not None else _env_list("SHELL_ENV"))
    secret_names = tuple(args.secret if args.secret is not None else _env_list("SECRET"))
    for value in allowed_hosts:
        try:
            _allowed_host(value)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"{ENV_PREFIX}ALLOWED_HOST: {exc}")
    settings = Settings(
        transport=args.transport,
        host=args.host,
        port=args.port,
        path=args.path,
        database=_database(args.db),
        timezone=args.timezone,
        toolkits=toolkits,
        auth_tokens=tokens,
        allowed_hosts=allowed_hosts,
        allow_unauthenticated=args.allow_unauthenticated,
        log_level=args.log_level,
        history_limit=args.history_limit,
        close_timeout=args.close_timeout,
        lease_time=args.lease_time,
        stateless_http=args.stateless_http,
        http_allow=http_allow,
        servers_file=os.path.abspath(os.path.expanduser(args.servers)) if args.servers else None,
        model=args.model or None,
        shell_executables=shell,
        shell_env=shell_env,
        shell_max_processes=args.max_processes,
        log_dir=os.path.abspath(os.path.expanduser(args.log_dir)) if args.log_dir else None,
        secrets=secret_names,
        token_file=os.path.abspath(os.path.expanduser(args.token_file)) if args.token_file else None,
        max_jobs=args.max_jobs,
        min_interval=args.min_interval,
        max_runs_per_job=args.max_runs_per_job,
        max_concurrent_runs=args.max_concurrent_runs,
        inbox_limit=args.inbox_limit,
        background_runner=not args.no_background_runner,
        runner_idle_exit=args.runner_idle_exit,
        catchup_window=args.catchup_window,
        started_by=args.started_by,
        answer_bytes=args.answer_bytes,
        content_chars=args.content_chars,
    )
    return args, settings


def _database(db: str | None) -> str:
    if not db:
        return default_database_path()
    if db.startswith(("postgresql://", "postgres://")):
        return db
    return os.path.abspath(os.path.expanduser(db))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `mcp-scheduler` console script."""
    args, settings = parse_settings(argv)
    frontend = None
    if args.command == "serve" and settings.background_runner and settings.database:
        from .frontend import Frontend, pipe

        frontend = Frontend(settings, os.environ)
        if settings.transport == "stdio":
            found = frontend.connect()
            if found is not None:  # the store's runner serves this client: nothing else to load
                connection, runner = found
                frontend.say(f"Serving through the background runner of {settings.database} (pid {runner.pid}, "
                             f"log {runner.log_file})")
                return pipe(connection, runner)
    import asyncio
    import sqlite3

    level = settings.log_level
    if args.command not in ("serve", "runner") and level == "INFO":
        level = "WARNING"  # a terminal command's output is its table or result, not the scheduler's life cycle
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # APScheduler's INFO lines ('Added job "dispatch" to job store "default"') name its internals,
        # not the user's jobs, and cost a write per schedule, cancel and one-time fire; httpx2 writes one
        # line per request of a job, with its whole URL.
        for name in ("apscheduler", "httpx2", "httpcore2"):
            logging.getLogger(name).setLevel(logging.WARNING)
    _filter_log(settings)
    from agentool_bridge.errors import AgenToolError

    from .errors import SchedulerError

    if args.command in ("jobs", "status", "token") and args.job_id:
        sys.stderr.write(f"mcp-scheduler {args.command}: takes no JOB_ID (got {args.job_id!r})\n")
        return EXIT_USAGE
    if args.command in JOB_COMMANDS and not args.job_id:
        sys.stderr.write(f"mcp-scheduler {args.command}: give a JOB_ID (mcp-scheduler jobs lists them)\n")
        return EXIT_USAGE
    if args.command in ("install", "service"):
        return _install(args, settings, sys.argv[1:] if argv is None else argv)
    if args.command == "runner":
        return _runner(args.job_id, settings)
    if args.command != "serve":
        return _command(args, settings)
    try:
        check_exposure(settings)
        if frontend is not None:
            if settings.transport != "stdio":
                frontend.ensure_runner()  # jobs outlive this server; it serves as a standby
            for note in frontend.notes:
                logger.info("%s", note)
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 0
    except (SchedulerError, AgenToolError, ValueError, OSError, sqlite3.Error) as exc:
        sys.stderr.write(f"mcp-scheduler: {_one_line(exc, settings)}\n")
        return 1
    return 0


def _one_line(exc: BaseException, settings: Settings) -> str:
    """The message of an error a start or a command ends with, with what to do when the error does not say."""
    import sqlite3

    from agentool_bridge.errors import ToolkitLoadError

    from .setup_checks import describe_database_error

    if isinstance(exc, sqlite3.Error):
        return describe_database_error(settings.database, exc)
    if isinstance(exc, ToolkitLoadError) and isinstance(exc.__cause__, ImportError):
        return (f"{exc} (--toolkit MODULE:FACTORY: the module must be importable by {sys.executable}; install it "
                "into that environment, or set PYTHONPATH)")
    return " ".join(str(exc).split()) or type(exc).__name__


def _runner(action: str | None, settings: Settings) -> int:
    """`mcp-scheduler runner [start|stop]`."""
    if action not in (None, *RUNNER_ACTIONS):
        sys.stderr.write(f"mcp-scheduler runner: unknown action {action!r}: start (the default) or stop\n")
        return EXIT_USAGE
    if action == "stop":
        from .runner import stop_runner

        return stop_runner(settings)
    from .runner import run_runner

    return run_runner(settings, os.environ)


def _filter_log(settings: Settings) -> None:
    """Keep the values of the allowed secrets, and the query strings of libraries' URLs, out of stderr."""
    from .log_filter import SecretLogFilter
    from .secret_names import secret_values

    log_filter = SecretLogFilter(secret_values(settings.secrets, os.environ))
    for handler in logging.getLogger().handlers:
        handler.addFilter(log_filter)


def _command(args: argparse.Namespace, settings: Settings) -> int:
    """Run one of the terminal commands (all but serve); messages to stderr, the exit code returned."""
    import asyncio
    import sqlite3

    from agentool_bridge.errors import AgenToolError

    from .errors import JobNotFoundError, SchedulerError
    from .schedules import local_timezone_name, parse_moment

    if args.command == "token":
        return _print_token(settings)
    database = settings.database or ""
    for flag, value in (("--since", args.since), ("--until", args.until)):
        if value is not None:
            try:
                parse_moment(value, flag, settings.timezone or local_timezone_name())
            except ValueError as exc:
                sys.stderr.write(f"mcp-scheduler {args.command}: {exc}\n")
                return EXIT_USAGE
    try:
        if args.command == "status":
            from .status import print_status

            return print_status(database)
        if args.command == "jobs":
            from .tables import print_jobs

            return asyncio.run(print_jobs(database, limit=args.limit, state=args.state, timezone=settings.timezone))
        if args.command == "history":
            from .tables import print_history

            return asyncio.run(print_history(
                database, args.job_id, limit=args.limit, status=args.status, since=args.since, until=args.until,
                timezone=settings.timezone,
            ))
        from .commands import act

        return asyncio.run(act(settings, args.command, args.job_id))
    except KeyboardInterrupt:
        return EXIT_FAILED
    except JobNotFoundError as exc:
        sys.stderr.write(f"mcp-scheduler {args.command}: no job {exc.job_id!r} in {database} "
                         "(mcp-scheduler jobs lists the jobs)\n")
        return EXIT_NOT_FOUND
    except (SchedulerError, AgenToolError, ValueError, OSError, sqlite3.Error) as exc:
        sys.stderr.write(f"mcp-scheduler {args.command}: {_one_line(exc, settings)}\n")
        return EXIT_FAILED
    except Exception as exc:  # a driver's error (psycopg: the server is unreachable), told in one line
        sys.stderr.write(f"mcp-scheduler {args.command}: {type(exc).__name__}: {exc}\n")
        return EXIT_FAILED


def _install(args: argparse.Namespace, settings: Settings, argv: Sequence[str]) -> int:
    """`install CLIENT` and `service install|uninstall|status`, with this machine as the environment describes it."""
    from .install import InstallRequest, Machine, install_client_command, service_command

    request = InstallRequest(
        target=args.job_id, settings=settings, argv=list(argv), parser=build_parser(),
        machine=Machine.current(os.environ), default_database=default_database_path(),
        print_only=args.print_only, client_config=args.client_config, cwd=os.getcwd(),
    )
    run = install_client_command if args.command == "install" else service_command
    return run(request, out=sys.stdout, err=sys.stderr)


def _print_token(settings: Settings) -> int:
    """`mcp-scheduler token`: the token file's token on stdout (the file is generated if missing)."""
    from .token_file import load_token

    if settings.auth_tokens:
        sys.stderr.write(
            f"mcp-scheduler token: --auth-token (or {ENV_PREFIX}AUTH_TOKEN) is set: a server started with it "
            "accepts those tokens, not the token file's. Send one of those, or unset it to use the token file.\n"
        )
        return EXIT_USAGE
    try:
        token = load_token(settings.token_file or default_token_path())
    except OSError as exc:
        sys.stderr.write(f"mcp-scheduler token: {exc}\n")
        return EXIT_FAILED
    if token.created:
        sys.stderr.write(f"mcp-scheduler token: generated a new token in {token.path} (readable by you only)\n")
    sys.stdout.write(token.value + "\n")
    return EXIT_OK


def check_exposure(settings: Settings) -> None:
    """Refuse to listen beyond loopback without a token the operator chose, unless explicitly allowed."""
    if settings.transport == "stdio" or is_loopback(settings.host):
        return
    if not settings.auth_tokens and not settings.token_file and not settings.allow_unauthenticated:
        raise ValueError(
            f"Refusing to listen on {settings.host} without authentication: pass --auth-token TOKEN "
            f"(or {ENV_PREFIX}AUTH_TOKEN) or --token-file FILE, or --allow-unauthenticated if a proxy in front "
            "does the auth."
        )


def with_http_auth(settings: Settings) -> Settings:
    """`settings` with the bearer tokens HTTP and SSE clients must send: `--auth-token`'s, else the token file's.

    The token file (`--token-file`, default `default_token_path()`) is read, or generated and its token told
    once on stderr; the returned settings name it in `token_file` (None when `--auth-token` gives the tokens).
    stdio and `--allow-unauthenticated` take no token. Raises `ValueError` where `check_exposure` refuses,
    `TokenFileError` for a token file that others can read or that is not the user's.
    """
    check_exposure(settings)
    if settings.transport == "stdio":
        return settings
    if settings.auth_tokens:
        return replace(settings, token_file=None)
    if settings.allow_unauthenticated:
        return replace(settings, token_file=None)
    from .token_file import load_token

    token = load_token(settings.token_file or default_token_path())
    authenticated = replace(settings, auth_tokens=(token.value,), token_file=token.path)
    if token.created:
        command = _token_command(authenticated)
        sys.stderr.write(
            f"mcp-scheduler: generated the bearer token that HTTP clients must send, saved in {token.path} "
            f"(readable by you only):\n\n    {token.value}\n\n"
            f"Clients send it as the header 'Authorization: Bearer <token>'; `{command}` prints it again, e.g.\n"
            f"    {_claude_add(authenticated)}\n"
            "The server prints it this once; later starts only name the file.\n"
        )
        sys.stderr.flush()
    return authenticated


def _token_command(settings: Settings) -> str:
    """The command that prints the token of `settings.token_file`."""
    import shlex

    path = settings.token_file
    if path is None or path == default_token_path():
        return "mcp-scheduler token"
    return f"mcp-scheduler token --token-file {shlex.quote(path)}"


def _claude_add(settings: Settings) -> str:
    """The Claude Code command line that adds this server (with its token header when it needs one)."""
    line = f"claude mcp add --transport {settings.transport} scheduler {_local_url(settings)}"
    if settings.token_file is not None:
        return f'{line} --header "Authorization: Bearer $({_token_command(settings)})"'
    if settings.auth_tokens:
        return f'{line} --header "Authorization: Bearer TOKEN"'
    return line


def _log_access(settings: Settings) -> None:
    """How clients get in, at start: the token's file and the command that prints it, never the token."""
    if not settings.auth_tokens:
        if is_loopback(settings.host):
            logger.warning(
                "No authentication (--allow-unauthenticated): any local user can run jobs as this user (with its "
                "files, programs and secrets) through %s. Drop the flag to require the token of the token file.",
                settings.url,
            )
        else:
            logger.warning(
                "No authentication (--allow-unauthenticated): whoever reaches port %s of %s can run jobs as this "
                "user, unless a proxy in front does the auth.", settings.port, settings.host,
            )
    elif settings.token_file is not None:
        logger.info(
            "Clients must send 'Authorization: Bearer <token>': the token is in %s (readable by you only); "
            "`%s` prints it", settings.token_file, _token_command(settings),
        )
    else:
        logger.info("Clients must send 'Authorization: Bearer <token>' with a token given by --auth-token")
    others = "that URL and header" if settings.auth_tokens else "that URL"
    logger.info("Connect: %s (other clients: %s; README, 'Connect a client')", _claude_add(settings), others)


async def serve(settings: Settings) -> None:
    """Run the server on the configured transport until stdin closes (stdio) or SIGTERM / SIGINT arrives.

    On a signal the scheduler closes cleanly: runs in progress get `close_timeout` to finish and are
    recorded either way. A second signal exits at once (runs still in progress are found
    `interrupted` at the next start).
    """
    import asyncio
    import gc
    import signal

    from .runtime import SchedulerRuntime
    from .server import build_server

    settings, listeners = _listen(settings)  # a port in use ends the start here, before the scheduler opens
    try:
        settings = with_http_auth(settings)
        runtime = SchedulerRuntime(
            settings.service_config(), toolkits=settings.toolkits,
            discover_entry_points=settings.discover_entry_points, transport=settings.transport,
            toolkit_config=settings.toolkit_config(), address=_address(listeners),
        )
    except BaseException:
        _close(listeners)
        raise
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        if stopping.is_set():
            logger.warning("Received %s again: exiting without waiting for the runs in progress", sig.name)
            _exit_now(1)
        logger.info("Received %s: closing the scheduler (runs in progress get up to %s s)", sig.name,
                    runtime.config.close_timeout)
        stopping.set()

    handled = [sig for sig in (signal.SIGTERM, signal.SIGINT) if _add_signal_handler(loop, sig, on_signal)]
    abandoned = False
    try:
        mcp = build_server(runtime, settings)
        async with mcp.use():  # the scheduler lives for the whole process, whatever the transport
            # The jobs are loaded: from here on, full garbage collections need not rescan them (with many jobs
            # those scans would delay fires; 1,000 runs due at once finish about a quarter sooner).
            gc.freeze()
            abandoned = await _serve_transport(mcp, settings, stopping, listeners)
    finally:
        _close(listeners)
        # Closing the toolkits' databases lets SQLite checkpoint its write-ahead log and remove the -wal and
        # -shm files instead of leaving them for the next start.
        await runtime.close()
        for sig in handled:
            loop.remove_signal_handler(sig)
    if abandoned:
        # The stdio transport still waits in a thread for a line on stdin, which no cancellation can
        # interrupt; everything else is closed and written.
        logger.info("Scheduler closed; exiting")
        _exit_now(0)


def _listen(settings: Settings) -> tuple[Settings, list[socket.socket]]:
    """The HTTP/SSE listening sockets (none for stdio), and the settings with the port they got (for --port 0).

    Raises `SetupError` (`PortInUseError`) in one line naming --host or --port.
    """
    if settings.transport == "stdio":
        return settings, []
    from .listen import bind_listeners

    listeners = bind_listeners(settings.host, settings.port, database=settings.database)
    return replace(settings, port=int(listeners[0].getsockname()[1])), listeners


def _address(listeners: Sequence[socket.socket]) -> str | None:
    """`host:port` of the first listening socket ([v6]:port), for the presence file; None for stdio."""
    if not listeners:
        return None
    host, port = listeners[0].getsockname()[:2]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _close(listeners: Sequence[socket.socket]) -> None:
    for sock in listeners:
        sock.close()


def _add_signal_handler(loop: asyncio.AbstractEventLoop, sig: signal.Signals, handler: Any) -> bool:
    try:
        loop.add_signal_handler(sig, handler, sig)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
        return False
    return True


def _exit_now(code: int) -> None:
    logging.shutdown()
    sys.stderr.flush()
    os._exit(code)


async def _serve_transport(
    mcp: MCPServer, settings: Settings, stopping: asyncio.Event, listeners: Sequence[socket.socket] = ()
) -> bool:
    """Serve until the transport ends or `stopping` is set; True if the transport was left running.

    HTTP and SSE serve on `listeners` (bound by `_listen`), or bind `settings.host:port` themselves.
    """
    import asyncio
    import contextlib

    if settings.transport == "stdio":
        from .server import _sdk

        transport = asyncio.ensure_future(_sdk.run_stdio(mcp))
        stop = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({transport, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if transport.done():
            transport.result()  # stdin closed, or the transport failed
            return False
        return True
    import uvicorn

    from .local_addresses import local_addresses
    from .server.hosts import is_wildcard, transport_security

    local = local_addresses() if is_wildcard(settings.host) else None
    security = transport_security(settings, local)
    if settings.transport == "http":
        asgi = mcp.streamable_http_app(
            streamable_http_path=settings.path, transport_security=security, host=settings.host,
            stateless_http=settings.stateless_http,
        )
    else:
        asgi = mcp.sse_app(transport_security=security, host=settings.host)
    auth = "bearer token required" if settings.auth_tokens else "no auth"
    _log_listening(settings, auth, local)
    _log_access(settings)
    logger.info("Accepted Host headers: %s (add more with --allowed-host)", ", ".join(security.allowed_hosts))
    config = uvicorn.Config(
        asgi, host=settings.host, port=settings.port, log_config=None, log_level=settings.log_level.lower()
    )

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # serve() handles the signals (uvicorn's own handlers would re-raise them when it stops,
            # killing the process before the scheduler is closed)
            yield

    server = Server(config)

    async def stop_when_asked() -> None:
        await stopping.wait()
        server.should_exit = True

    watcher = asyncio.ensure_future(stop_when_asked())
    try:
        await _serve_on(server, settings, listeners)
    finally:
        watcher.cancel()
    return False


def _log_listening(settings: Settings, auth: str, local: LocalAddresses | None) -> None:
    """The "listening" line: the URL, or on a wildcard address the URLs of this machine that reach the server."""
    from .listen import reachable_urls

    if local is None:
        logger.info("mcp-scheduler listening on %s (%s); database %s", settings.url, auth, settings.database)
        return
    urls = reachable_urls(settings.host, settings.port, _url_path(settings), local)
    every = "every IPv6 address" if ":" in settings.host else "every IPv4 address"
    logger.info("mcp-scheduler listening on %s port %s, %s of this machine (%s): %s; database %s",
                settings.host, settings.port, every, auth, ", ".join(urls), settings.database)


def _url_path(settings: Settings) -> str:
    return settings.path if settings.transport == "http" else "/sse"


def _local_url(settings: Settings) -> str:
    """The URL a client on this machine uses (the loopback one for a wildcard address)."""
    from .listen import reachable_urls

    return reachable_urls(settings.host, settings.port, _url_path(settings))[0]


async def _serve_on(server: Any, settings: Settings, listeners: Sequence[socket.socket]) -> None:
    """uvicorn's `serve` on the bound sockets; a server of the same port that started at the same moment and
    listened first is told as a port in use (`PortInUseError`)."""
    import errno

    try:
        await server.serve(sockets=list(listeners) or None)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or not listeners:
            raise
        from .listen import port_in_use

        raise port_in_use(settings.host, settings.port, settings.database) from None
