"""`make inspect-cli` (scripts/inspector.sh): the pinned Inspector on the project's Node 22, by default against a
fresh stdio server on a temporary database that is gone afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._net import free_port, stop, wait_until_listening

from .test_inspector import EXPECTED_TOOLS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "inspector.sh"

pytestmark = pytest.mark.node


@pytest.fixture(scope="module")
def node_tools() -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is not on PATH: the MCP Inspector is installed with npm by scripts/node-tools.sh")
    proc = subprocess.run([str(ROOT / "scripts" / "node-tools.sh")], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]


def test_inspect_cli_lists_the_tools_of_a_fresh_stdio_server_and_removes_its_database(
    node_tools: None, tmp_path: Path
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "HOME": str(tmp_path), "TMPDIR": str(scratch), "MCP_SCHEDULER_PYTHON": sys.executable}
    proc = subprocess.run([str(SCRIPT), "--cli", "--method", "tools/list"], cwd=tmp_path, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-4000:]
    tools = {tool["name"] for tool in json.loads(proc.stdout)["result"]["tools"]}
    assert EXPECTED_TOOLS <= tools
    assert list(scratch.iterdir()) == []  # the temporary database went with the server


def test_inspect_cli_without_a_venv_says_how_to_make_one(node_tools: None, tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "MCP_SCHEDULER_PYTHON": str(tmp_path / "no-python")}
    proc = subprocess.run([str(SCRIPT), "--cli", "--method", "tools/list"], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=90)
    assert proc.returncode == 1
    assert "make run" in proc.stderr and not proc.stdout


def test_inspect_cli_sends_the_token_of_mcp_scheduler_token_to_an_http_target(
    node_tools: None, tmp_path: Path
) -> None:
    port = free_port()
    config_home = tmp_path / "config"  # the server's default token file, and `mcp-scheduler token`'s, are in here
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(config_home),
           "MCP_SCHEDULER_PYTHON": sys.executable}
    log = tmp_path / "server.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "mcp_scheduler", "--transport", "http", "--port", str(port),
             "--db", str(tmp_path / "s.sqlite")], env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink)
    try:
        wait_until_listening(server, port, log=str(log))
        url = f"http://127.0.0.1:{port}/mcp"
        proc = subprocess.run([str(SCRIPT), "--cli", "--method", "tools/list", "--", url], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90)
        refused = subprocess.run([str(SCRIPT), "--cli", "--method", "tools/list", "--header",
                                  "Authorization: Bearer wrong", "--", url], env=env, stdin=subprocess.DEVNULL,
                                 capture_output=True, text=True, timeout=90)
    finally:
        stop(server)

    assert proc.returncode == 0, proc.stderr[-4000:]
    assert EXPECTED_TOOLS <= {tool["name"] for tool in json.loads(proc.stdout)["result"]["tools"]}
    token = (config_home / "mcp-scheduler" / "token").read_text().strip()
    assert token not in proc.stdout + proc.stderr
    assert refused.returncode == 3, refused.stderr[-4000:]  # a --header of one's own is sent as it is
