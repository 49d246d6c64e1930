"""The official MCP conformance suite against our streamable HTTP endpoint (scripts/run-conformance.sh).

0.1.16 (`--suite all`) and 0.2.0-alpha.12 (2026-07-28 and 2025-11-25), each with a baseline that
lists only the scenarios bound to the reference server's fixtures. Every generic scenario must pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.node


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed: the conformance suite is an npm package")
def test_every_generic_conformance_scenario_passes_in_both_protocol_eras() -> None:
    result = subprocess.run(
        [str(ROOT / "scripts" / "run-conformance.sh")],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-8000:]
    assert "all three runs passed" in report
    for generic in ("server-initialize", "server-session-lifecycle", "resources-subscribe", "completion-complete",
                    "dns-rebinding-protection", "logging-set-level"):
        assert f"✓ {generic}" in report, f"{generic} did not pass:\n{report[-8000:]}"
