"""Every example in examples/ runs here, so that none can rot (the client configurations: test_clients.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from agentool_bridge.secrets import env_names
from agentool_bridge.toolkits.mcp import load_servers

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_pydantic_ai_agent_example_schedules_inspects_and_cancels(tmp_path: Path) -> None:
    example = load_example("pydantic_ai_agent")
    db = tmp_path / "agent.sqlite"
    output = json.loads(await example.main(["--db", str(db)]))
    assert output["job_id"] == "standup-reminder"
    assert output["schedule"].startswith("At 09:00, Monday through Friday")
    assert output["runs"] == ["success"]
    jobs = await anyio.run_process([sys.executable, "-m", "mcp_scheduler", "jobs", "--db", str(db)])
    assert "standup-reminder" not in jobs.stdout.decode()  # cancelled at the end
    history = await anyio.run_process(
        [sys.executable, "-m", "mcp_scheduler", "history", "standup-reminder", "--db", str(db)]
    )
    assert "run_now" in history.stdout.decode() and "success" in history.stdout.decode()


# the handshake era is what the legacy flag asks for; the SDK warns that it is deprecated
@pytest.mark.filterwarnings("ignore:resources/subscribe is removed")
@pytest.mark.parametrize("era", [[], ["--legacy"]], ids=["listen-2026-07-28", "subscribe-handshake"])
async def test_reactive_example_takes_each_result_after_its_notification(tmp_path: Path, era: list[str]) -> None:
    example = load_example("reactive_queue")
    received = await example.main(["--db", str(tmp_path / "reactive.sqlite"), "--messages", "2", *era])
    assert len(received) >= 2
    assert {m["job_id"] for m in received} == {"heartbeat"}
    assert all(m["status"] == "success" and m["result"]["data"]["key"] == "heartbeat" for m in received)
    assert len({m["run_id"] for m in received}) == len(received)


async def test_custom_toolkit_package_is_found_through_its_entry_point_and_scheduled(tmp_path: Path) -> None:
    site = tmp_path / "site"
    await anyio.run_process(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target",
         str(site), str(EXAMPLES / "custom_toolkit")],
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    args = ["-m", "mcp_scheduler", "--db", str(tmp_path / "plugin.sqlite"), "--timezone", "UTC"]
    async with Client(StdioServerParameters(command=sys.executable, args=args, env=env)) as client:
        catalog = await client.call_tool("list_agentools", {})
        names = {a["name"] for a in catalog.structured_content["agentools"]}
        assert "weather" in names
        bad = await client.call_tool(
            "schedule_job",
            {"schedule_type": "interval", "schedule": "1h", "agentool_name": "weather",
             "input_data": {"operation": "forecast", "city": ""}},
        )
        assert bad.is_error and "city" in bad.content[0].text
        forecast = {"operation": "forecast", "city": "Berlin", "days": 2}
        run = await client.call_tool("run_now", {"agentool_name": "weather", "input_data": forecast})
    assert run.structured_content["status"] == "success"
    assert [d["day"] for d in run.structured_content["result"]["forecast"]] == [1, 2]


def test_servers_file_example_declares_a_stdio_and_an_http_server_with_a_secret_header() -> None:
    servers = load_servers(EXAMPLES / "servers.json")

    assert servers.get("files").transport == "stdio"
    assert servers.get("files").command == "npx"
    assert servers.get("search").transport == "http"
    assert env_names(dict(servers.get("search").headers)) == ["SEARCH_MCP_AUTHORIZATION"]
