"""The client configurations in examples/ and the install story: each file has the keys its client reads,
the command line they share starts the server, and `make run` installs the runtime dependencies only.

The shapes below are what each client documents (as of 2026):
- Claude Desktop, claude_desktop_config.json: `mcpServers` > name > `command`, `args`, `env`
  (modelcontextprotocol.io, "Connect to local MCP servers"); remote servers as `type: "http"`, `url`, `headers`.
- Claude Code, project `.mcp.json`: `mcpServers` > name > `type` ("stdio" | "http" | "sse"), `command`, `args`,
  `env`, or `url`, `headers` (docs.anthropic.com, Claude Code "MCP", project scope).
- VS Code, `.vscode/mcp.json`: top-level `servers` (and optional `inputs`) > name > `type: "stdio"`, `command`,
  `args`, `env`, `envFile`, or `type: "http"`, `url`, `headers` (code.visualstudio.com, "MCP servers").
- Cursor, `~/.cursor/mcp.json`: `mcpServers` > name > `command`, `args`, `env`, or `url`, `headers`
  (docs.cursor.com, "Model Context Protocol").
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

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

# Packages only the developer targets need: none may be a runtime dependency.
DEV_TOOLS = {"pytest", "pytest-asyncio", "ruff", "mypy", "hypothesis", "hatchling", "psycopg", "sqlalchemy"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is ignored by the client: fail here instead


class Stdio(_Strict):
    type: Literal["stdio"] | None = None
    command: str
    args: list[str] = []
    env: dict[str, str] = {}


class TypedStdio(Stdio):
    type: Literal["stdio"]  # Claude Code and VS Code entries name their transport


class Remote(_Strict):
    type: Literal["http", "sse"]
    url: str
    headers: dict[str, str] = {}


class ClaudeDesktop(_Strict):
    mcpServers: dict[str, Stdio | Remote]


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
    "claude_desktop_config.http.json": ClaudeDesktop,
    "clients/claude_code.mcp.json": ClaudeCode,
    "clients/vscode.mcp.json": VSCode,
    "clients/cursor.mcp.json": Cursor,
}


def servers(path: str) -> dict[str, Stdio | Remote]:
    loaded = CLIENT_FILES[path].model_validate_json((EXAMPLES / path).read_text())
    found: dict[str, Stdio | Remote] = getattr(loaded, "servers", None) or loaded.mcpServers  # type: ignore[attr-defined]
    return found


@pytest.mark.parametrize("path", list(CLIENT_FILES))
def test_each_client_file_has_only_the_keys_its_client_reads(path: str) -> None:
    found = servers(path)
    assert list(found) == ["scheduler"]


def test_vscode_keys_its_servers_under_servers_not_mcp_servers() -> None:
    with pytest.raises(ValueError, match="mcpServers"):
        VSCode.model_validate({"mcpServers": {}, "servers": {}})
    assert "servers" in json.loads((EXAMPLES / "clients" / "vscode.mcp.json").read_text())


def test_the_stdio_client_files_run_one_command_line_and_claude_mcp_add_in_the_docs_is_the_same() -> None:
    lines = set()
    for path in ("clients/claude_code.mcp.json", "clients/vscode.mcp.json", "clients/cursor.mcp.json"):
        entry = servers(path)["scheduler"]
        assert isinstance(entry, Stdio), path
        lines.add((entry.command, *entry.args))
    assert lines == {("mcp-scheduler", "--timezone", "Europe/Berlin")}
    (add,) = [line for line in (ROOT / "README.md").read_text().splitlines()
              if line.startswith("claude mcp add scheduler -- ")]
    assert tuple(shlex.split(add.split(" -- ", 1)[1])) in lines


async def test_the_command_in_the_client_files_starts_the_server_and_lists_its_tools(tmp_path: Path) -> None:
    entry = servers("clients/vscode.mcp.json")["scheduler"]
    assert isinstance(entry, Stdio)
    command = str(Path(sys.executable).with_name(entry.command))  # the venv's mcp-scheduler for the bare name
    env = {**os.environ, **entry.env, "MCP_SCHEDULER_DB": str(tmp_path / "client.sqlite")}
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
