"""The `mcp-scheduler` command line: one subcommand per command, and the settings it gives.

Without a command, `mcp-scheduler [flags]` serves (what every client configuration runs); a command may
also follow flags (`mcp-scheduler --db jobs.sqlite jobs`), as before subcommands. Settings come from the
command's flags, then `MCP_SCHEDULER_*` variables, then the defaults; a setting the command has no flag for
still takes its variable (an `MCP_SCHEDULER_AUTH_TOKEN` that `token` refuses, ...).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import import_module

from .._argparse import CommandListFormatter, option_actions, subcommands
from ..settings import Settings, default_database_path
from .options import ENV_PREFIX, FLAG_SETS, Parser, allowed_host, env_list, env_value

__all__ = ["build_parser", "command_parser", "parse_settings"]

DEFAULT_COMMAND = "serve"
EPILOG = """\
Without a COMMAND, mcp-scheduler serves (mcp-scheduler serve --help shows its flags).
`mcp-scheduler COMMAND --help` shows a command's flags.

examples:
  mcp-scheduler --transport http --db jobs.sqlite      serve over streamable HTTP (clients send the bearer token)
  mcp-scheduler token                                   print that token (generated on first use, mode 0600)
  mcp-scheduler jobs --db jobs.sqlite                   the jobs, with their schedules in words
  mcp-scheduler history --since 1h --status error       every job's failed runs of the last hour
  mcp-scheduler pause nightly-report                    stop a job firing (a running server follows)
  mcp-scheduler run nightly-report                      run it now; prints its result (JSON)
  mcp-scheduler apply jobs.toml --dry-run               what applying a jobs file would change
  mcp-scheduler runs show 3f2a9c1b                      a run's whole result, error and timings
  mcp-scheduler dashboard                               the dashboard in your browser (jobs, runs, failures)

exit codes:
  0  done (status: a process runs the jobs)
  1  the action failed: the run failed, the job's state refuses it, the database is missing or unreadable,
     the token file is readable by others (status: no process runs the jobs)
  2  usage error (unknown command or option, missing JOB_ID, a --since / --until that is no time,
     token with MCP_SCHEDULER_AUTH_TOKEN set)
  3  no job with that JOB_ID (history: no job and no runs)
Tables go to stdout, messages to stderr.
"""


MODULES = {
    "serve": ("serve",),
    "dashboard": ("dashboard",),
    "jobs": ("jobs", "history", "audit", "hook", "run", "pause", "resume", "cancel"),
    "status": ("status",),
    "token": ("token",),
    "runner": ("runner",),
    "install": ("install", "service"),
    "files": ("apply", "export"),
    "runs": ("runs", "logs"),
}
"""The modules of this package that add commands, and the commands each adds, in the order --help lists them."""
COMMANDS = frozenset(name for names in MODULES.values() for name in names)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line: the commands, each with its own flags (defaults read from the environment now).

    `only`: the parser of that command's module alone (a server starts sooner without the other parsers).
    """
    parser = Parser(
        prog="mcp-scheduler",
        description="A persistent job scheduler for LLM agents, served over MCP. Every flag can also be set as an "
        f"environment variable {ENV_PREFIX}<FLAG> (e.g. {ENV_PREFIX}PORT); flags win.",
        epilog=EPILOG,
        formatter_class=CommandListFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", parser_class=Parser,
                                     help=f"one of these ({DEFAULT_COMMAND} when none is given)")
    for module, names in MODULES.items():
        if only is None or only in names:  # a module is imported only when its commands are needed
            import_module(f"{__package__}.{module}").add_commands(commands)
    return parser


def command_parser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of one command of `build_parser()` (`install`'s knows the flags it passes on)."""
    return subcommands(parser)[command]


def command_first(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """`argv` with its command first: `serve` added when there is none, one that follows flags moved to the front."""
    words = list(argv)
    commands = subcommands(parser)
    if not words or words[0] in ("-h", "--help"):
        return words or [DEFAULT_COMMAND]
    if not words[0].startswith("-"):
        return words  # a command, or a word argparse refuses as one
    options = option_actions(*commands.values())
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--" or not word.startswith("-") or word == "-":
            if word in commands:
                return [word, *words[:index], *words[index + 1:]]
            break
        index += 1
        name, has_value, _ = word.partition("=")
        action = options.get(name) or _abbreviated(name, options)
        if action is not None and action.nargs != 0 and not has_value:
            index += 1  # the flag's value, whatever it looks like
    return [DEFAULT_COMMAND, *words]


def _abbreviated(name: str, options: dict[str, argparse.Action]) -> argparse.Action | None:
    found = {id(action): action for option, action in options.items() if option.startswith(name)}
    return next(iter(found.values())) if name.startswith("--") and len(found) == 1 else None


def _owners(words: Sequence[str], commands: dict[str, argparse.ArgumentParser]) -> str:
    """Which commands take the first of these unknown flags, as a hint: ` (--port is a flag of: serve)`."""
    flag = next((word.partition("=")[0] for word in words if word.startswith("--")), None)
    if flag is None:
        return ""
    options = {name: option_actions(command) for name, command in commands.items()}
    owners = [name for name, own in options.items() if flag in own]
    owners = owners or [name for name, own in options.items() if _abbreviated(flag, own) is not None]
    return f" ({flag} is a flag of: {', '.join(owners)})" if owners else ""


def parse_settings(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, Settings]:
    """The parsed command line (`args.command` always set) and the settings it gives."""
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or words[0].startswith("-") and words[0] not in ("-h", "--help") and COMMANDS.isdisjoint(words):
        words.insert(0, DEFAULT_COMMAND)  # no word can be a command: serve (what every client entry runs)
    if words[0] in COMMANDS:
        parser = build_parser(only=words[0])
    else:
        parser = build_parser()
        words = command_first(words, parser)
    args, unknown = parser.parse_known_args(words)
    if unknown:
        commands = subcommands(build_parser())
        commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}{_owners(unknown, commands)}")
    args.argv = words
    others = Parser(prog=parser.prog, usage=argparse.SUPPRESS, add_help=False)
    for add in FLAG_SETS:
        if add not in args.flag_sets:
            add(others)
    values = {**vars(others.parse_args([])), **vars(args)}  # the command's flags; the others' variables or defaults
    return args, _settings(values, parser)


def _settings(values: dict[str, object], parser: argparse.ArgumentParser) -> Settings:
    def listed(dest: str, variable: str) -> tuple[str, ...]:
        given = values[dest]
        return tuple(given if isinstance(given, list) else env_list(variable))

    allowed_hosts = listed("allowed_host", "ALLOWED_HOST")
    for value in allowed_hosts:
        try:
            allowed_host(value)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"{ENV_PREFIX}ALLOWED_HOST: {exc}")
    v = argparse.Namespace(**values)
    return Settings(
        transport=v.transport,
        host=v.host,
        port=v.port,
        path=v.path,
        database=_database(v.db),
        timezone=v.timezone,
        toolkits=listed("toolkit", "TOOLKIT"),
        auth_tokens=listed("auth_token", "AUTH_TOKEN"),
        allowed_hosts=allowed_hosts,
        allow_unauthenticated=v.allow_unauthenticated,
        log_level=v.log_level,
        history_limit=v.history_limit,
        close_timeout=v.close_timeout,
        lease_time=v.lease_time,
        stateless_http=v.stateless_http,
        http_allow=listed("http_allow", "HTTP_ALLOW"),
        servers_file=_path(v.servers),
        model=v.model or None,
        shell_executables=listed("allow_shell", "ALLOW_SHELL"),
        shell_env=listed("shell_env", "SHELL_ENV"),
        shell_max_processes=v.max_processes,
        log_dir=_path(v.log_dir),
        secrets=listed("secret", "SECRET"),
        events_urls=listed("events_url", "EVENTS_URL"),
        events_secret_env=v.events_secret_env or None,
        token_file=_path(v.token_file),
        max_jobs=v.max_jobs,
        max_jobs_per_principal=v.max_jobs_per_principal,
        min_interval=v.min_interval,
        max_runs_per_job=v.max_runs_per_job,
        max_concurrent_runs=v.max_concurrent_runs,
        inbox_limit=v.inbox_limit,
        background_runner=not v.no_background_runner,
        runner_idle_exit=v.runner_idle_exit,
        catchup_window=v.catchup_window,
        started_by=v.started_by,
        answer_bytes=v.answer_bytes,
        content_chars=v.content_chars,
        metrics=v.metrics,
        metrics_port=None if v.metrics_port in (None, "") else int(v.metrics_port),
        metrics_max_jobs=int(v.metrics_max_jobs),
        protect_managed_jobs=v.protect_managed_jobs,
        confirm=not v.no_confirm,
        oauth_issuer=v.oauth_issuer or None,
        oauth_audience=v.oauth_audience or None,
        oauth_jwks_url=v.oauth_jwks_url or None,
        oauth_introspection_url=v.oauth_introspection_url or None,
        oauth_client_id=env_value("OAUTH_CLIENT_ID") or None,
        oauth_client_secret=env_value("OAUTH_CLIENT_SECRET") or None,
    )


def _path(value: str | None) -> str | None:
    return os.path.abspath(os.path.expanduser(value)) if value else None


def _database(db: str | None) -> str:
    if not db:
        return default_database_path()
    if db.startswith(("postgresql://", "postgres://")):
        return db
    return os.path.abspath(os.path.expanduser(db))
