"""The client configurations in examples/ and the install story: each file is what `mcp-scheduler install
CLIENT --print` makes, has only the keys its client reads, and its command serves with a bare PATH once the
placeholder folder is the checkout (as the README tells); `make run` installs the runtime dependencies only.

The shapes below are what each client documents (as of 2026-12; sources in mcp_scheduler/install/clients.py):
- Claude Desktop, claude_desktop_config.json: `mcpServers` > name > `command`, `args`, `env` only; remote
  servers are added under Settings > Connectors, never in this file.
- Claude Code, `~/.claude.json` (user scope) or a project's `.mcp.json`: `mcpServers` > name > `type`
  ("stdio" | "http" | "sse"), `command`, `args`, `env`, or `url`, `headers`.
- VS Code, the user profile's `mcp.json` or `.vscode/mcp.json`: top-level `servers` (and optional `inputs`) >
  name > `type: "stdio"`, `command`, `args`, `env`, `envFile`, or `type: "http"`, `url`, `headers`.
- Cursor, `~/.cursor/mcp.json`: `mcpServers` > name > `command`, `args`, `env`, or `url`, `headers`.
"""

from __future__ import annotations

import email
import json
import os
import shlex
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Literal

import pytest
from mcp import Client, StdioServerParameters
from pydantic import BaseModel, ConfigDict

from mcp_scheduler.install.examples import CHECKOUT_PLACEHOLDER, EXAMPLE_ARGS, REGENERATE, example_files

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BARE_PATH = "/usr/bin:/bin"

# Packages only the developer targets need: none may be a runtime dependency.
DEV_TOOLS = {"pytest", "pytest-asyncio", "ruff", "mypy", "hypothesis", "hatchling", "psycopg", "sqlalchemy"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is ignored by the client: fail here instead


class DesktopStdio(_Strict):
    command: str  # Claude Desktop reads command, args and env, nothing else
    args: list[str] = []
    env: dict[str, str] = {}


class Stdio(DesktopStdio):
    type: Literal["stdio"] | None = None


class TypedStdio(Stdio):
    type: Literal["stdio"]  # Claude Code and VS Code entries name their transport


class Remote(_Strict):
    type: Literal["http", "sse"]
    url: str
    headers: dict[str, str] = {}


class ClaudeDesktop(_Strict):
    mcpServers: dict[str, DesktopStdio]


class ClaudeCode(_Strict):
    mcpServers: dict[str, TypedStdio | Remote]


class VSCodeStdio(TypedStdio):
    envFile: str | None = None


class VSCode(_Strict):
    servers: dict[str, VSCodeStdio | Remote]
    inputs: list[dict[str, str | bool]] = []


class Cursor(_Strict):
    mcpServers: dict[str, Stdio | Remote]


CLIENT_FILES: dict[str, type[_Strict]] = {
    "claude_desktop_config.json": ClaudeDesktop,
    "clients/claude_code.mcp.json": ClaudeCode,
    "clients/vscode.mcp.json": VSCode,
    "clients/cursor.mcp.json": Cursor,
}


def servers(path: str) -> dict[str, DesktopStdio | Remote]:
    loaded = CLIENT_FILES[path].model_validate_json((EXAMPLES / path).read_text())
    found: dict[str, DesktopStdio | Remote] = getattr(loaded, "servers", None) or loaded.mcpServers  # type: ignore[attr-defined]
    return found


def test_the_example_files_are_what_the_install_code_makes() -> None:
    expected = example_files()
    assert set(expected) == set(CLIENT_FILES)
    stale = [path for path, text in expected.items()
             if not (EXAMPLES / path).exists() or (EXAMPLES / path).read_text() != text]
    assert not stale, f"examples/{stale} differ from what the code makes: run `{REGENERATE}`"


def test_no_client_example_is_left_that_the_code_does_not_make() -> None:
    configs = {str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.json") if p.name != "servers.json"}
    assert configs == set(CLIENT_FILES)  # claude_desktop_config.http.json used keys Claude Desktop never reads


@pytest.mark.parametrize("path", list(CLIENT_FILES))
def test_each_client_file_has_only_the_keys_its_client_reads(path: str) -> None:
    found = servers(path)
    assert list(found) == ["scheduler"]


def test_claude_desktop_reads_no_remote_server_from_its_file() -> None:
    with pytest.raises(ValueError, match="url"):
        ClaudeDesktop.model_validate({"mcpServers": {"s": {"type": "http", "url": "http://127.0.0.1:8765/mcp"}}})


def test_vscode_keys_its_servers_under_servers_not_mcp_servers() -> None:
    with pytest.raises(ValueError, match="mcpServers"):
        VSCode.model_validate({"mcpServers": {}, "servers": {}})
    assert "servers" in json.loads((EXAMPLES / "clients" / "vscode.mcp.json").read_text())


def test_the_client_files_run_one_command_line_and_claude_mcp_add_in_the_readme_is_the_same() -> None:
    lines = set()
    for path in CLIENT_FILES:
        entry = servers(path)["scheduler"]
        assert isinstance(entry, DesktopStdio), path
        lines.add((entry.command, *entry.args))
    command = f"{CHECKOUT_PLACEHOLDER}/.venv/bin/mcp-scheduler"
    assert lines == {(command, *EXAMPLE_ARGS)}
    adds = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("claude mcp add ")]
    stdio = [shlex.split(line.split(" -- ", 1)[1]) for line in adds if " -- " in line]
    assert stdio, "the README shows no `claude mcp add ... -- COMMAND` line"
    for words in stdio:  # never a bare `mcp-scheduler`, which a client's PATH lacks (issue 19)
        absolute = words[0].endswith("/.venv/bin/mcp-scheduler") or words[0] == "$(command -v mcp-scheduler)"
        assert absolute and tuple(words[1:]) == EXAMPLE_ARGS, words


@pytest.mark.parametrize("path", list(CLIENT_FILES))
async def test_each_example_s_command_serves_with_a_bare_path_from_this_checkout(path: str, tmp_path: Path) -> None:
    """The README: put the checkout's folder in place of /path/to/mcp-scheduler (after `make run` made .venv)."""
    if Path(sys.prefix) != ROOT / ".venv":
        pytest.skip(f"the tests run from {sys.prefix}, not this checkout's .venv (which the examples start)")
    entry = servers(path)["scheduler"]
    assert isinstance(entry, DesktopStdio)
    command = entry.command.replace(CHECKOUT_PLACEHOLDER, str(ROOT), 1)
    env = {"PATH": BARE_PATH, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_STATE_HOME": str(tmp_path / "state"), "MCP_SCHEDULER_DB": str(tmp_path / "client.sqlite"),
           "MCP_SCHEDULER_NO_BACKGROUND_RUNNER": "1", **entry.env}
    async with Client(StdioServerParameters(command=command, args=entry.args, env=env)) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        status = await client.call_tool("scheduler_status", {})
    assert {"schedule_job", "list_jobs", "run_now"} <= tools
    assert status.structured_content is not None
    assert status.structured_content["timezone"] == "Europe/Berlin"


def test_the_runtime_dependencies_have_no_developer_tools() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(requirement) for requirement in project["dependencies"]}
    assert not names & DEV_TOOLS, names & DEV_TOOLS
    assert DEV_TOOLS - {"sqlalchemy"} <= {_name(r) for r in project["optional-dependencies"]["dev"]}


def test_the_wheel_requires_no_developer_tool_and_carries_the_license(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path),
         str(ROOT)], check=True, capture_output=True, timeout=120,
    )
    (wheel,) = tmp_path.glob("mcp_scheduler-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (metadata_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(metadata_name))
        license_text = archive.read(metadata_name.replace("METADATA", "licenses/LICENSE")).decode()
    runtime = {_name(r) for r in metadata.get_all("Requires-Dist", []) if "extra ==" not in r}
    assert "mcp" in runtime and not runtime & DEV_TOOLS, runtime
    assert metadata["License-Expression"] == "MIT"
    assert metadata["License-File"] == "LICENSE"
    assert license_text == (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License\n\nCopyright (c) 2026 mcp-scheduler contributors\n")


def _name(requirement: str) -> str:
    for stop in "[<>=!~;( ":
        requirement = requirement.split(stop, 1)[0]
    return requirement.strip().lower()


def make_dry_run(*targets: str, **variables: str) -> list[str]:
    """The shell lines `make` would run for `targets` on a machine without .venv (-B: nothing is up to date)."""
    argv = ["make", "-n", "-B", "--no-print-directory", f"VENV={ROOT / 'nowhere' / '.venv'}", *targets,
            *(f"{k}={v}" for k, v in variables.items())]
    # Run as a top-level make: under `make test` the inherited MAKEFLAGS/MAKELEVEL would add its own lines.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")}
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True, timeout=30, env=env)
    return done.stdout.splitlines()


def _installs(lines: list[str]) -> list[str]:
    return [line for line in lines if " -m pip install " in line]


def test_make_run_bootstraps_the_venv_and_installs_the_package_without_extras() -> None:
    lines = make_dry_run("run")
    assert any(line.startswith("python3 -m venv ") for line in lines), lines
    installs = _installs(lines)
    assert [shlex.split(line)[-2:] for line in installs if "--upgrade pip" not in line] == [["-e", "."]], installs
    assert "[" not in " ".join(installs)
    assert lines[-1].endswith("/bin/mcp-scheduler --transport http")


@pytest.mark.parametrize("target", ["test", "lint", "typecheck", "soak", "bench", "conformance"])
def test_the_developer_targets_install_the_dev_extra(target: str) -> None:
    lines = make_dry_run(target)
    assert any(line.startswith("python3 -m venv ") for line in lines), lines
    assert any(shlex.split(line)[-2:] == ["-e", ".[dev]"] for line in _installs(lines)), lines


def test_make_inspect_cli_lists_the_tools_by_default_and_passes_a_target_url() -> None:
    assert make_dry_run("inspect-cli")[-1].split() == ["scripts/inspector.sh", "--cli", "--method", "tools/list"]
    line = make_dry_run("inspect-cli", ARGS="--method resources/list", TARGET="http://127.0.0.1:8765/mcp")[-1]
    assert line.split() == ["scripts/inspector.sh", "--cli", "--method", "resources/list", "--",
                            "http://127.0.0.1:8765/mcp"]
    assert make_dry_run("inspect")[-1].split() == ["scripts/inspector.sh", "--web"]
