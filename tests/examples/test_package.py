"""Ready to publish: the wheel serves stdio from an empty environment, the README's pipx and uv lines work, and
server.json is what the MCP Registry takes.

The install test needs the package index (PyPI): it is skipped, saying so, only when the index cannot be
reached. It builds the wheel once, installs it into an empty virtual environment, runs the README's
`pipx install .`, `uv tool install .` and `uvx --from . ...` lines from this checkout, and asks each resulting
`mcp-scheduler` for `tools/list` over stdio with a bare PATH.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import tomllib
import urllib.request
from pathlib import Path

import anyio
import jsonschema
import pytest
from mcp import Client, StdioServerParameters

from .test_readme_commands import readme_commands

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).with_name("data") / "mcp-registry-server.schema.json"
SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
BARE_PATH = "/usr/bin:/bin"
INDEX = "https://pypi.org/simple/"
INSTALL_TIMEOUT = 600


def test_server_json_passes_the_registry_schema_and_agrees_with_pyproject_and_the_readme() -> None:
    server = json.loads((ROOT / "server.json").read_text())
    schema = json.loads(SCHEMA.read_text())
    assert server["$schema"] == SCHEMA_URL == schema["$id"]
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(server)]
    assert not errors, errors

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (package,) = server["packages"]
    assert package["registryType"] == "pypi" and package["transport"] == {"type": "stdio"}
    assert package["identifier"] == project["name"]
    assert server["version"] == package["version"] == project["version"]
    names = re.findall(r"mcp-name: (\S+)", (ROOT / "README.md").read_text())
    assert names == [server["name"]]  # the Registry finds this line in the PyPI description (the README)
    assert server["name"] == f"io.github.OWNER/{project['name']}"  # OWNER: a placeholder until published


@pytest.mark.parametrize("bad", [{"name": "mcp-scheduler"}, {"version": "^0.1.0"}, {"description": "x" * 101},
                                 {"packages": [{"registryType": "pypi", "identifier": "mcp-scheduler"}]}])
def test_the_schema_refuses_what_the_registry_refuses(bad: dict[str, object]) -> None:
    server = {**json.loads((ROOT / "server.json").read_text()), **bad}
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    assert list(validator.iter_errors(server))


def _index_reachable() -> str | None:
    try:
        with urllib.request.urlopen(INDEX + "pip/", timeout=20) as answer:
            return None if answer.status == 200 else f"{INDEX} answered {answer.status}"
    except OSError as exc:
        return f"the package index {INDEX} is unreachable here ({exc})"


async def _run(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
               says: str = "") -> str:
    """Run `argv` to completion; its stdout. It must succeed, and say `says` on stderr when given."""
    with anyio.fail_after(INSTALL_TIMEOUT):
        done = await anyio.run_process(argv, check=False, env=env, cwd=cwd)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, f"{shlex.join(argv)}: {done.returncode}\n{out[-2000:]}{err[-3000:]}"
    assert says in err, f"{shlex.join(argv)}: no {says!r} in\n{err[-3000:]}"
    return out


async def _lists_tools(command: Path, home: Path) -> None:
    env = {"PATH": BARE_PATH, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_DATA_HOME": str(home / "data"), "XDG_STATE_HOME": str(home / "state"),
           "MCP_SCHEDULER_NO_BACKGROUND_RUNNER": "1"}
    async with Client(StdioServerParameters(command=str(command), args=["--timezone", "UTC"], env=env)) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        (page,) = (await client.read_resource("ui://mcp-scheduler/dashboard")).contents
    assert {"schedule_job", "list_jobs", "read_inbox", "show_schedule"} <= tools, command
    assert getattr(page, "text", "").startswith("<!doctype html>"), command  # the dashboard's page is package data


def _readme_line(prefix: str) -> list[str]:
    (line,) = [c for c in readme_commands() if c.startswith(prefix)]
    return shlex.split(line)


async def _the_wheel_into_an_empty_venv(tmp_path: Path, python: str, home: Path) -> None:
    # The wheel, built from the repository, into an empty venv; its dependencies come from the index.
    await _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                str(tmp_path / "dist"), str(ROOT)])
    (wheel,) = (tmp_path / "dist").glob("mcp_scheduler-*.whl")
    empty = tmp_path / "empty"
    await _run([python, "-m", "venv", str(empty)])
    assert "mcp" not in (await _run([str(empty / "bin" / "python"), "-m", "pip", "list", "--format=freeze"])).lower()
    await _run([str(empty / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)])
    await _lists_tools(empty / "bin" / "mcp-scheduler", home)


async def _the_readme_s_pipx_and_uv_lines(tmp_path: Path, python: str, home: Path) -> None:
    # pipx and uv themselves come from the index, into a venv of their own; they install into tmp_path only.
    tools = tmp_path / "tools"
    await _run([python, "-m", "venv", str(tools)])
    await _run([str(tools / "bin" / "python"), "-m", "pip", "install", "--quiet", "pipx", "uv"])
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PIPX_", "UV_", "MCP_SCHEDULER_"))},
           "PATH": f"{tools / 'bin'}:{os.environ.get('PATH', BARE_PATH)}", "HOME": str(home),
           "PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "pipx-bin"),
           "PIPX_MAN_DIR": str(tmp_path / "pipx-man"), "UV_TOOL_DIR": str(tmp_path / "uv-tools"),
           "UV_TOOL_BIN_DIR": str(tmp_path / "uv-bin"), "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
           "UV_PYTHON": python, "UV_NO_CONFIG": "1"}

    await _run(_readme_line("pipx install ."), env=env, cwd=ROOT)
    await _lists_tools(tmp_path / "pipx-bin" / "mcp-scheduler", home)
    printed = await _run([str(tmp_path / "pipx-bin" / "mcp-scheduler"), "install", "cursor", "--print"], env=env)
    entry = json.loads(printed)
    command = Path(entry["mcpServers"]["scheduler"]["command"])  # the pipx venv's own, not the link on PATH
    assert command.is_relative_to(tmp_path / "pipx" / "venvs" / "mcp-scheduler"), command
    await _lists_tools(command, home)

    assert "usage: mcp-scheduler" in (await _run(_readme_line("uvx --from . mcp-scheduler"), env=env, cwd=ROOT))
    # warned that the command it would write may vanish with uv's cache
    await _run(["uvx", "--from", ".", "mcp-scheduler", "install", "cursor", "--print"], env=env, cwd=ROOT,
               says="runs from uv's cache (uvx)")
    # After `uv tool install`, uvx would run the installed tool instead: it comes after the uvx lines.
    await _run(_readme_line("uv tool install ."), env=env, cwd=ROOT)
    await _lists_tools(tmp_path / "uv-bin" / "mcp-scheduler", home)


async def test_the_wheel_and_the_readme_s_pipx_and_uv_lines_serve_stdio_from_empty_environments(
    tmp_path: Path,
) -> None:
    unreachable = _index_reachable()
    if unreachable:
        pytest.skip(unreachable)
    python = getattr(sys, "_base_executable", sys.executable)  # the interpreter, not this test venv's
    home = tmp_path / "home"
    home.mkdir()

    # The two halves share nothing but the index: they run side by side (about 30 s one after the other).
    async with anyio.create_task_group() as both:
        both.start_soon(_the_wheel_into_an_empty_venv, tmp_path, python, home)
        both.start_soon(_the_readme_s_pipx_and_uv_lines, tmp_path, python, home)

    left = await _run(["git", "status", "--porcelain", "--ignored", "--", "build", "dist"], cwd=ROOT)
    assert not left.strip(), f"the installs left build files in the checkout: {left}"
