"""Every command the README shows is run here (or by make), or named below with why it cannot run here.

Commands are taken from the README's fenced `bash` blocks and from inline code that starts with a
command (`make test`, `mcp-scheduler status`, `cp examples/...`). `make` targets are dry-run
(`make -n`) and `make run`, the quick start, runs for real; `mcp-scheduler` command lines are parsed by the
real CLI, the read-only ones run against a
temporary database and `install` / `service install` with `--print` for a user of the test's own, `cp`
sources must exist, and package extras must be declared.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mcp_scheduler.cli import parse_settings
from tests._net import authorized, free_port, wait_until_listening
from tests._processes import end_runners_under

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SCRIPT = Path(sys.executable).with_name("mcp-scheduler")

# Commands that need what this machine has not (another program, a desktop, a user session manager).
NOT_HERE = {
    "npx": "a global npx (the README says it needs Node 22); `make inspect-cli` runs the pinned Inspector instead",
    "pipx": "run by tests/examples/test_package.py from this checkout (the git+ and PyPI forms need a git host or "
    "a published package)",
    "uv": "run by tests/examples/test_package.py from this checkout",
    "uvx": "run by tests/examples/test_package.py from this checkout",
    "git": "a git host (this machine reaches package registries only), and the README's OWNER placeholder",
    "claude": "the Claude Code CLI",
    "systemctl": "a systemd user session",
    "journalctl": "a systemd user session",
    "loginctl": "a systemd user session",
    "launchctl": "macOS",
    "code": "VS Code",
    "python3": "a new virtual environment installed from the package index (about 12 s); tests/examples/"
    "test_clients.py builds the wheel and checks its dependencies",
    "inspector.sh": "run by tests/e2e/test_inspector_script.py (the make inspect targets call it)",
}
COMMANDS = ("make", "mcp-scheduler", "cp", "pip", *NOT_HERE)
INLINE = re.compile(r"`((?:" + "|".join(re.escape(c) for c in COMMANDS) + r") [^`]+)`")


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block, in order."""
    blocks: list[tuple[str, str]] = []
    language: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("```"):
            if language is None:
                language, body = line[3:].strip(), []
            else:
                blocks.append((language, "\n".join(body)))
                language = None
        elif language is not None:
            body.append(line)
    return blocks


def readme_commands() -> list[str]:
    text = README.read_text()
    commands: list[str] = []
    for language, body in _fenced_blocks(text):
        if language not in ("bash", "sh", "shell", ""):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            synopsis = "[--" in line or "|" in line  # the usage line shows choices; a pipe adds another program
            known = line and line.split()[0].rsplit("/", 1)[-1] in COMMANDS
            # plain blocks (usage, examples) count only lines that start with a known command
            if line and not line.startswith("#") and not synopsis and (language or known):
                commands.append(" ".join(line.split()))
    commands += [" ".join(m.group(1).split()) for m in INLINE.finditer(text) if "[--" not in m.group(1)]
    return list(dict.fromkeys(commands))


def test_the_readme_shows_commands_and_every_one_is_known() -> None:
    commands = readme_commands()
    assert any(c.startswith("make run") for c in commands) and any(c.startswith("make test") for c in commands)
    unknown = [c for c in commands if shlex.split(c)[0].rsplit("/", 1)[-1] not in COMMANDS]
    assert not unknown, f"README commands this test does not know how to check: {unknown}"


@pytest.mark.parametrize("command", [c for c in readme_commands() if c.startswith("make ")])
def test_make_targets_in_the_readme_exist(command: str) -> None:
    args = shlex.split(command)[1:]
    targets = [a for a in args if "=" not in a and not a.startswith("-") and a != "..."]
    done = subprocess.run(["make", "-n", *targets], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{command}: {done.stderr}"


async def _tools_and_status(url: str, token: str) -> tuple[set[str], dict[str, Any]]:
    async with Client(authorized(url, token)) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        status = (await client.call_tool("scheduler_status", {})).structured_content or {}
    return tools, status


def test_make_run_serves_the_quick_start_and_leaves_the_jobs_to_a_background_runner(tmp_path: Path) -> None:
    """The quick start verbatim: `make run` serves streamable HTTP on 127.0.0.1 (here on a free port, through
    MCP_SCHEDULER_PORT) with the database in the user data directory, clients send the token that
    `mcp-scheduler token` prints, and after Ctrl-C the store's background runner is left to `runner stop`."""
    port = free_port()
    unset = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES", "MCP_SCHEDULER_NO_BACKGROUND_RUNNER")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env |= {"MCP_SCHEDULER_PORT": str(port), "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_STATE_HOME": str(tmp_path / "state")}
    log = tmp_path / "make-run.log"
    with log.open("wb") as sink:
        make = subprocess.Popen(["make", "run"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_listening(make, port, within=120, log=str(log))
        token = subprocess.run([str(SCRIPT), "token"], env=env, capture_output=True, text=True, check=True,
                               timeout=60).stdout.strip()
        tools, status = asyncio.run(_tools_and_status(f"http://127.0.0.1:{port}/mcp", token))
        assert {"schedule_job", "read_inbox"} <= tools
        database = tmp_path / "data" / "mcp-scheduler" / "scheduler.sqlite"
        assert status["database"] == str(database) and status["role"] == "standby"  # the runner fires the jobs
        os.killpg(make.pid, signal.SIGINT)  # Ctrl-C in the terminal
        assert make.wait(timeout=60) in (0, 2, -signal.SIGINT), log.read_text()[-2000:]
        stopped = subprocess.run([str(SCRIPT), "runner", "stop"], env=env, capture_output=True, text=True,
                                 timeout=60)
        assert stopped.returncode == 0, stopped.stderr
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(timeout=30)
        end_runners_under(env.get("XDG_RUNTIME_DIR", "/nonexistent"), databases=tmp_path)


def _scheduler_args(command: str) -> list[str]:
    words = shlex.split(command.replace('"$TOKEN"', "token"))
    assert words[0].endswith("mcp-scheduler"), command
    return words[1:]


@pytest.mark.parametrize("command", [c for c in readme_commands() if shlex.split(c)[0].endswith("mcp-scheduler")])
def test_mcp_scheduler_command_lines_in_the_readme_parse_and_read_only_ones_run(command: str, tmp_path: Path) -> None:
    args = _scheduler_args(command)
    if args == ["--help"]:
        done = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "usage: mcp-scheduler" in done.stdout
        return
    _, settings = parse_settings(args)  # argparse exits (SystemExit) on a flag that does not exist
    if args and args[0] in ("jobs", "history", "status"):
        database = ["--db", str(tmp_path / "s.sqlite")] if "--db" not in args else []
        done = subprocess.run([str(SCRIPT), *args, *database], capture_output=True, text=True, timeout=60)
        assert done.returncode in (0, 1), f"{command}: {done.returncode} {done.stderr}"  # status: 1 = no runner
        assert "Traceback" not in done.stderr
    elif args and (args[0] == "install" or args[:2] == ["service", "install"]):
        args = ["claude-code" if word == "CLIENT" else word for word in args]  # the README's placeholder
        home = tmp_path / "home"  # never the user's own files
        env = {"HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "config"), "PATH": "/usr/bin:/bin",
               "XDG_DATA_HOME": str(tmp_path / "data")}
        done = subprocess.run([str(SCRIPT), *args, "--print"], capture_output=True, text=True, timeout=60, env=env)
        assert done.returncode == 0, f"{command}: {done.stderr}"
        assert done.stdout.strip() and "Traceback" not in done.stderr
        assert not home.exists() or not any(home.iterdir()), f"{command} --print wrote a file"
    elif args and args[0] == "token":
        token_file = tmp_path / "config" / "token"  # never the user's own
        done = subprocess.run([str(SCRIPT), *args, "--token-file", str(token_file)], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, f"{command}: {done.stderr}"
        assert done.stdout == token_file.read_text()  # the token alone, as `$(mcp-scheduler token)` wants it
    else:
        assert settings.transport in ("stdio", "http", "sse")


def test_files_the_readme_copies_exist() -> None:
    for command in [c for c in readme_commands() if c.startswith("cp ")]:
        source = shlex.split(command)[1]
        assert (ROOT / source).is_file(), command


@pytest.mark.parametrize("command", [c for c in readme_commands() if c.startswith("pip ")])
def test_packages_the_readme_installs_are_declared(command: str) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for word in shlex.split(command)[2:]:
        if word.startswith("-"):
            continue
        name, _, extras = word.partition("[")
        assert name in (".", project["name"]), command
        for extra in filter(None, extras.rstrip("]").split(",")):
            assert extra in project["optional-dependencies"], f"{command}: no extra {extra!r}"
