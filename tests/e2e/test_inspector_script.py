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
