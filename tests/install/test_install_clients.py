"""`mcp-scheduler install CLIENT`: the entry each client reads, merged with a backup, idempotent, started bare.

Issue 19, fact 3: every shipped configuration said `"command": "mcp-scheduler"`, which a client's PATH lacks
(Claude Code: `ENOENT: Executable not found in $PATH`). `install` writes the absolute path of the running
installation instead, and the commands it writes start with a bare PATH.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from mcp_scheduler.cli import build_parser
from mcp_scheduler.cli.parser import command_parser
from mcp_scheduler.install import CLIENTS, Machine, launch_command, server_flags

from ._support import BARE_PATH, User, make_user, tool_names


@pytest.fixture
def user(tmp_path: Path) -> User:
    return make_user(tmp_path)


def installed(path: Path, key: str = "mcpServers") -> dict[str, object]:
    entry = json.loads(path.read_text())[key]["scheduler"]
    assert isinstance(entry, dict)
    return entry


async def test_install_writes_an_absolute_command_that_serves_with_a_bare_path(user: User) -> None:
    done = user.cli("install", "claude-code", "--timezone", "Europe/Berlin")
    assert done.returncode == 0, done.stderr
    entry = installed(user.home / ".claude.json")
    assert entry["type"] == "stdio"
    command, args = entry["command"], entry["args"]
    assert isinstance(command, str) and isinstance(args, list)
    assert os.path.isabs(command) and os.access(command, os.X_OK)
    assert args == ["--timezone", "Europe/Berlin"]
    assert {"schedule_job", "list_jobs", "run_now"} <= await tool_names(command, args, user.bare_env())
    assert f"Created {user.home / '.claude.json'}" in done.stderr
    assert f"claude mcp add --scope user scheduler -- {command} --timezone Europe/Berlin" in done.stderr


async def test_install_print_writes_nothing_and_every_client_s_command_serves_with_a_bare_path(user: User) -> None:
    printed = {}
    for client in CLIENTS.values():
        done = user.cli("install", client.name, "--print", "--timezone", "UTC")
        assert done.returncode == 0, done.stderr
        document = json.loads(done.stdout)
        assert list(document) == [client.servers_key]
        printed[client.name] = document[client.servers_key]["scheduler"]
        assert str(client.config_path(Machine("linux", user.home, {"XDG_CONFIG_HOME": str(user.config)}))) \
            in done.stderr
    assert not [p for p in user.root.rglob("*") if p.is_file()], "--print wrote a file"
    commands = {(e["command"], *e["args"]) for e in printed.values()}
    assert len(commands) == 1  # one command line, whatever the client
    ((command, *args),) = commands
    assert {"schedule_job", "scheduler_status"} <= await tool_names(command, args, user.bare_env())


def test_each_client_s_entry_has_exactly_the_keys_it_reads(user: User) -> None:
    shapes = {}
    for name in CLIENTS:
        done = user.cli("install", name, "--print")
        shapes[name] = json.loads(done.stdout)
    assert set(shapes["claude-desktop"]["mcpServers"]["scheduler"]) == {"command", "args"}  # command/args/env only
    assert set(shapes["cursor"]["mcpServers"]["scheduler"]) == {"command", "args"}
    assert shapes["claude-code"]["mcpServers"]["scheduler"]["type"] == "stdio"
    assert "mcpServers" not in shapes["vscode"] and shapes["vscode"]["servers"]["scheduler"]["type"] == "stdio"


def test_install_keeps_every_other_key_and_server_and_backs_the_file_up(user: User) -> None:
    path = user.home / ".cursor" / "mcp.json"
    path.parent.mkdir(parents=True)
    original = {
        "theme": "dark",
        "mcpServers": {"files": {"command": "npx", "args": ["-y", "server-filesystem", "/tmp"],
                                 "env": {"TOKEN": "ünïcode"}}},
        "numbers": [1, 2.5, None, True],
    }
    text = json.dumps(original, indent=4)
    path.write_text(text)
    path.chmod(0o640)

    done = user.cli("install", "cursor", "--timezone", "UTC")

    assert done.returncode == 0, done.stderr
    merged = json.loads(path.read_text())
    assert list(merged) == ["theme", "mcpServers", "numbers"]
    assert merged["theme"] == "dark" and merged["numbers"] == [1, 2.5, None, True]
    assert list(merged["mcpServers"]) == ["files", "scheduler"]
    assert merged["mcpServers"]["files"] == original["mcpServers"]["files"]
    assert path.stat().st_mode & 0o777 == 0o640
    (backup,) = path.parent.glob("mcp.json.bak-*")
    assert backup.read_text() == text
    assert f"The file as it was is in {backup}" in done.stderr


def test_a_second_install_changes_nothing_and_says_so(user: User) -> None:
    assert user.cli("install", "vscode", "--timezone", "UTC").returncode == 0
    path = user.config / "Code" / "User" / "mcp.json"
    before = (path.read_bytes(), path.stat().st_mtime_ns)

    again = user.cli("install", "vscode", "--timezone", "UTC")

    assert again.returncode == 0
    assert "nothing changed" in again.stderr
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert not list(path.parent.glob("*.bak-*"))


def test_install_replaces_an_older_scheduler_entry_and_says_what_it_was(user: User) -> None:
    path = user.home / ".claude.json"
    path.write_text(json.dumps({"mcpServers": {"scheduler": {"type": "stdio", "command": "mcp-scheduler",
                                                             "args": []}}}))
    done = user.cli("install", "claude-code")
    assert done.returncode == 0, done.stderr
    assert "it was: mcp-scheduler" in done.stderr
    assert os.path.isabs(str(installed(path)["command"]))


@pytest.mark.parametrize("text", [
    '{\n  // VS Code allows comments\n  "servers": {}\n}\n',
    '{"servers": {},}',
    "[1, 2]",
    '{"servers": ["not", "an", "object"]}',
])
def test_install_refuses_a_file_it_cannot_merge_and_writes_nothing(user: User, text: str) -> None:
    path = user.config / "Code" / "User" / "mcp.json"
    path.parent.mkdir(parents=True)
    path.write_text(text)

    done = user.cli("install", "vscode")

    assert done.returncode == 1
    assert "nothing was written" in done.stderr.lower()
    assert str(path) in done.stderr
    assert "Traceback" not in done.stderr
    assert path.read_text() == text
    assert sorted(p.name for p in path.parent.iterdir()) == ["mcp.json"]


def test_install_tells_a_file_with_comments_apart(user: User) -> None:
    path = user.config / "Code" / "User" / "mcp.json"
    path.parent.mkdir(parents=True)
    path.write_text('{\n  // mine\n  "servers": {}\n}\n')
    assert "comments" in user.cli("install", "vscode").stderr


def test_install_into_a_project_file_and_through_a_dotfile_link(user: User) -> None:
    project = user.root / "project"
    project.mkdir()
    done = user.cli("install", "claude-code", "--client-config", ".mcp.json", "--db", "jobs.sqlite", cwd=project)
    assert done.returncode == 0, done.stderr
    entry = installed(project / ".mcp.json")
    assert entry["args"] == ["--db", str(project / "jobs.sqlite")]  # absolute: clients start in another folder
    assert not (user.home / ".claude.json").exists()

    real = user.root / "dotfiles" / "claude.json"
    real.parent.mkdir()
    real.write_text("{}")
    (user.home / ".claude.json").symlink_to(real)
    assert user.cli("install", "claude-code").returncode == 0
    assert (user.home / ".claude.json").is_symlink()
    assert "scheduler" in json.loads(real.read_text())["mcpServers"]


@pytest.mark.parametrize("flags", [["--transport", "http"], ["--auth-token", "s3cret"]])
def test_install_refuses_flags_that_have_no_place_in_a_stdio_entry(user: User, flags: list[str]) -> None:
    done = user.cli("install", "claude-code", *flags)
    assert done.returncode == 2, done.stderr
    assert flags[0] in done.stderr
    assert not (user.home / ".claude.json").exists()


def test_install_without_a_known_client_is_a_usage_error(user: User) -> None:
    for args in (["install"], ["install", "emacs"]):
        done = user.cli(*args)
        assert done.returncode == 2
        assert "claude-desktop, claude-code, vscode, cursor" in done.stderr


def test_install_names_secrets_without_writing_their_values(user: User) -> None:
    done = user.cli("install", "cursor", "--secret", "GITHUB_TOKEN", GITHUB_TOKEN="ghp_value_never_written")
    assert done.returncode == 0, done.stderr
    text = (user.home / ".cursor" / "mcp.json").read_text()
    assert "GITHUB_TOKEN" in text and "ghp_value_never_written" not in text
    assert "holds no value" in done.stderr


@pytest.mark.parametrize(("platform", "client", "expected"), [
    ("darwin", "claude-desktop", "home/Library/Application Support/Claude/claude_desktop_config.json"),
    ("win32", "claude-desktop", "roaming/Claude/claude_desktop_config.json"),
    ("linux", "claude-desktop", "config/Claude/claude_desktop_config.json"),
    ("linux", "claude-code", "home/.claude.json"),
    ("darwin", "vscode", "home/Library/Application Support/Code/User/mcp.json"),
    ("win32", "vscode", "roaming/Code/User/mcp.json"),
    ("linux", "vscode", "config/Code/User/mcp.json"),
    ("win32", "cursor", "home/.cursor/mcp.json"),
])
def test_each_client_s_file_is_where_the_client_reads_it(tmp_path: Path, platform: str, client: str,
                                                         expected: str) -> None:
    machine = Machine(platform, tmp_path / "home",
                      {"XDG_CONFIG_HOME": str(tmp_path / "config"), "APPDATA": str(tmp_path / "roaming")})
    assert CLIENTS[client].config_path(machine) == tmp_path / expected


def test_claude_code_s_file_follows_claude_config_dir(tmp_path: Path) -> None:
    machine = Machine("linux", tmp_path, {"CLAUDE_CONFIG_DIR": str(tmp_path / "alt")})
    assert CLIENTS["claude-code"].config_path(machine) == tmp_path / "alt" / ".claude.json"


def test_the_command_is_the_console_script_beside_the_interpreter_or_python_m(tmp_path: Path) -> None:
    machine = Machine("linux", tmp_path, executable=sys.executable)
    assert launch_command(machine) == [str(Path(sys.executable).with_name("mcp-scheduler"))]
    lone = tmp_path / "bin" / "python3"
    lone.parent.mkdir()
    lone.symlink_to(sys.executable)  # a venv's python: a link that must not be resolved out of the venv
    assert launch_command(Machine("linux", tmp_path, executable=str(lone))) == [str(lone), "-m", "mcp_scheduler"]


def test_server_flags_keep_the_server_s_flags_in_full_and_absolute(tmp_path: Path) -> None:
    argv = ["--time", "UTC", "install", "claude-code", "--print", "--db=rel.sqlite", "--allow-shell", "cp",
            "--client-config", "x.json", "--no-background", "--servers", "~/s.json", "--db", "postgresql://u@h/d"]
    flags = server_flags(argv, command_parser(build_parser(), "install"), cwd=str(tmp_path))
    assert flags == ["--timezone", "UTC", "--db", str(tmp_path / "rel.sqlite"), "--allow-shell", "cp",
                     "--no-background-runner", "--servers", os.path.expanduser("~/s.json"),
                     "--db", "postgresql://u@h/d"]


def test_the_bare_path_of_these_tests_finds_no_mcp_scheduler() -> None:
    """So a bare `mcp-scheduler` fails under it as in a client (what the old examples did): the tests above can fail."""
    import shutil

    assert shutil.which("mcp-scheduler", path=BARE_PATH) is None
