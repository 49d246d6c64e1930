"""`mcp-scheduler COMMAND`: each command with its own flags and help; no command still serves."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mcp_scheduler.cli import build_parser, parse_settings
from mcp_scheduler.cli.parser import command_parser

from .conftest import run_cli

COMMANDS = ("serve", "dashboard", "jobs", "history", "audit", "run", "pause", "resume", "cancel", "status", "token",
            "runner", "install", "service", "apply", "export", "runs", "logs", "hook")

# Flags each command must show in its help, and flags of other commands it must not.
OWN_AND_FOREIGN = {
    "serve": ({"--transport", "--port", "--allow-shell", "--token-file", "--no-background-runner"},
              {"--limit", "--state", "--since", "--print", "--client-config"}),
    "dashboard": ({"--db", "--port", "--no-browser", "--token-file", "--allow-shell", "--no-background-runner"},
                  {"--transport", "--host", "--auth-token", "--limit", "--print"}),
    "jobs": ({"--db", "--limit", "--state", "--json"},
             {"--transport", "--allow-shell", "--status", "--since", "--token-file", "--print", "--timezone"}),
    "history": ({"--db", "--limit", "--status", "--since", "--until", "--json"},
                {"--state", "--transport", "--allow-shell", "--runner-idle-exit"}),
    # run: the runner runs the job with its own flags, so run has none of the toolkits' flags
    "run": ({"--db", "--json", "--start-within"},
            {"--allow-shell", "--servers", "--toolkit", "--transport", "--limit", "--since", "--print"}),
    "pause": ({"--db", "--json"}, {"--transport", "--limit", "--since", "--print", "--start-within"}),
    "status": ({"--db"}, {"--timezone", "--limit", "--transport", "--allow-shell", "--token-file"}),
    "token": ({"--token-file"}, {"--db", "--transport", "--auth-token", "--limit"}),
    "runner": ({"--db", "--allow-shell", "--runner-idle-exit"},
               {"--transport", "--port", "--no-background-runner", "--limit", "--print"}),
    "install": ({"--print", "--client-config", "--db", "--allow-shell", "--no-background-runner"},
                {"--transport", "--auth-token", "--port", "--limit", "--state"}),
    "service": ({"--print", "--db", "--secret", "--runner-idle-exit"},
                {"--client-config", "--transport", "--no-background-runner", "--limit"}),
}


def _flags(text: str) -> set[str]:
    """The flags a help text offers (its option lines, not the flags its explanations name)."""
    return set(re.findall(r"^ {2}(?:-\w, )?(--[a-z][a-z-]*)", text, flags=re.MULTILINE))


@pytest.mark.parametrize("command", sorted(OWN_AND_FOREIGN))
def test_each_command_s_help_shows_its_own_flags_and_no_other_command_s(command: str) -> None:
    own, foreign = OWN_AND_FOREIGN[command]
    shown = _flags(command_parser(build_parser(), command).format_help())

    assert own <= shown
    assert not shown & foreign


def test_a_command_s_help_is_printed_by_the_real_program_with_only_its_flags() -> None:
    done = run_cli("jobs", "--help")

    assert done.returncode == 0 and done.stdout.startswith("usage: mcp-scheduler jobs")
    assert "--state" in done.stdout and "--transport" not in done.stdout and "--allow-shell" not in done.stdout


def test_the_top_help_lists_every_command_on_a_line_of_its_own() -> None:
    text = build_parser().format_help()
    listed = {line.split()[0] for line in text.splitlines() if re.match(r"^ {4}[a-z]+ {2,}\S", line)}

    assert listed == set(COMMANDS)
    assert _flags(text) == {"--help"}  # the server's flags are serve's


@pytest.mark.parametrize(("args", "flag", "owner"), [
    (["jobs", "--transport", "http"], "--transport", "serve"),
    (["status", "--limit", "5"], "--limit", "jobs, history"),
    (["history", "--state", "paused"], "--state", "jobs"),
    (["token", "--db", "x.db"], "--db", "serve"),
    (["install", "claude-code", "--port", "9000"], "--port", "serve"),
    (["runner", "--no-background-runner"], "--no-background-runner", "serve, dashboard, install"),
    (["--limit", "5"], "--limit", "jobs, history"),  # no command: serve's flags
])
def test_a_flag_of_another_command_is_a_usage_error(args: list[str], flag: str, owner: str, tmp_path: Path) -> None:
    done = run_cli(*args, env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")})

    assert done.returncode == 2 and done.stdout == ""
    assert f"unrecognized arguments: {flag}" in done.stderr
    assert f"({flag} is a flag of: {owner}" in done.stderr
    assert not (tmp_path / "config").exists()  # refused before anything ran


def test_an_unknown_command_is_a_usage_error() -> None:
    done = run_cli("frobnicate")

    assert done.returncode == 2 and "invalid choice: 'frobnicate'" in done.stderr


def test_without_a_command_the_flags_are_the_server_s() -> None:
    args, settings = parse_settings(["--db", "jobs", "--transport", "http", "--port", "0"])

    assert args.command == "serve"
    assert settings.database == os.path.abspath("jobs") and settings.transport == "http" and settings.port == 0


def test_a_command_may_follow_flags_as_before_subcommands(tmp_path: Path) -> None:
    database = str(tmp_path / "s.db")
    args, settings = parse_settings(["--db", database, "--time", "UTC", "history", "nightly", "--limit", "3"])

    assert args.command == "history" and args.job_id == "nightly" and args.limit == 3
    assert settings.database == database and settings.timezone == "UTC"


def test_a_setting_without_a_flag_in_the_command_still_takes_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MCP_SCHEDULER_TRANSPORT", "sse")
    monkeypatch.setenv("MCP_SCHEDULER_SECRET", "API_KEY")

    _, settings = parse_settings(["jobs"])

    assert settings.transport == "sse" and settings.secrets == ("API_KEY",)


def test_every_command_is_a_subcommand_with_a_handler_also_when_only_its_own_parser_is_built() -> None:
    parser = build_parser()
    for command in COMMANDS:
        alone = command_parser(build_parser(only=command), command)
        assert callable(command_parser(parser, command).get_default("handler")), command
        assert alone.format_help() == command_parser(parser, command).format_help()


@pytest.mark.parametrize(("setter", "started"), [("install", "serve"), ("service", "runner")])
def test_every_flag_a_set_up_command_writes_down_is_one_the_started_command_takes(setter: str, started: str) -> None:
    """install writes its server flags into a client's entry (a server starts), service into a unit (a runner)."""
    from mcp_scheduler.install.launcher import INSTALL_ONLY

    parser = build_parser()
    written = {option for action in command_parser(parser, setter)._actions if action.dest not in INSTALL_ONLY
               for option in action.option_strings}
    taken = {option for action in command_parser(parser, started)._actions for option in action.option_strings}

    assert written and written <= taken
