"""Registering, listing and running plain AgenTools must not import pydantic-ai."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from typing import Literal

    import agentool_bridge as ab

    report = {"after_import": "pydantic_ai" in sys.modules}

    class PingInput(ab.BaseOperationInput):
        \"\"\"Answers pings.\"\"\"
        operation: Literal["ping"]
        times: int = 1

    def ping(times: int) -> dict:
        return {"pong": times}

    ab.register_agentool(
        "ping", PingInput, ab.RoutingConfig(operation_map={"ping": ("ping", lambda m: {"times": m.times})}), [ping]
    )
    report["after_register"] = "pydantic_ai" in sys.modules
    report["catalog"] = [entry["name"] for entry in ab.get_injector().registry.catalog()]
    report["after_catalog"] = "pydantic_ai" in sys.modules
    report["output"] = asyncio.run(ab.get_injector().run("ping", {"operation": "ping", "times": 2}))
    report["after_run"] = "pydantic_ai" in sys.modules

    agent = ab.get_injector().registry.get("ping").agent
    report["after_agent"] = "pydantic_ai" in sys.modules
    report["agent_type"] = type(agent).__module__ + "." + type(agent).__name__
    print(json.dumps(report))
    """
)


def test_plain_agentools_never_import_pydantic_ai_until_the_agent_is_requested() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {
        "after_import": False,
        "after_register": False,
        "catalog": ["ping"],
        "after_catalog": False,
        "output": {"pong": 2},
        "after_run": False,
        "after_agent": True,
        "agent_type": report["agent_type"],
    }
    assert report["agent_type"].startswith("pydantic_ai.") and report["agent_type"].endswith(".Agent")
