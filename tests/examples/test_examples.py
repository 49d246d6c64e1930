"""Every example in examples/ runs here, so that none can rot."""

from __future__ import annotations

import argparse
import configparser
import importlib.util
import json
import os
import plistlib
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from agentool_bridge.secrets import env_names
from agentool_bridge.toolkits.servers import load_servers
from mcp_scheduler.cli import ENV_PREFIX, check_exposure, parse_settings
from mcp_scheduler.settings import Settings, default_database_path
from tests._net import free_port, stop, wait_until_listening

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOKEN_PLACEHOLDER = "<what `mcp-scheduler token` prints>"


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """A server as `make run` starts it (its token file in a folder of the test's own), and its token."""
    port = free_port()
    log = tmp_path / "server.log"
    token_file = str(tmp_path / "config" / "token")
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mcp_scheduler", "--transport", "http", "--port", str(port),
             "--db", str(tmp_path / "http.sqlite"), "--token-file", token_file],
            stdout=subprocess.DEVNULL, stderr=sink,
        )
    try:
        wait_until_listening(proc, port, log=str(log))
        token = subprocess.run([sys.executable, "-m", "mcp_scheduler", "token", "--token-file", token_file],
                               capture_output=True, text=True, check=True, timeout=60).stdout.strip()
        yield port, token
    finally:
        stop(proc)


async def test_claude_desktop_stdio_config_starts_a_server_with_its_args(tmp_path: Path) -> None:
    config = json.loads((EXAMPLES / "claude_desktop_config.json").read_text())["mcpServers"]["scheduler"]
    assert config["command"].endswith("/.venv/bin/mcp-scheduler")
    command = str(Path(sys.executable).with_name("mcp-scheduler"))
    env = {**os.environ, **config["env"], "MCP_SCHEDULER_DB": str(tmp_path / "desktop.sqlite")}
    async with Client(StdioServerParameters(command=command, args=config["args"], env=env)) as client:
        status = await client.call_tool("scheduler_status", {})
    assert status.structured_content["timezone"] == config["args"][config["args"].index("--timezone") + 1]
    assert (tmp_path / "desktop.sqlite").exists()


async def test_claude_desktop_http_config_connects_with_its_bearer_token(http_server: tuple[int, str]) -> None:
    port, token = http_server
    config = json.loads((EXAMPLES / "claude_desktop_config.http.json").read_text())["mcpServers"]["scheduler"]
    url = config["url"].replace("8765", str(port))
    assert config["headers"] == {"Authorization": f"Bearer {TOKEN_PLACEHOLDER}"}
    headers = {"Authorization": config["headers"]["Authorization"].replace(TOKEN_PLACEHOLDER, token)}
    async with httpx2.AsyncClient(headers=headers) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            tools = await client.list_tools()
    assert "schedule_job" in {t.name for t in tools.tools}
    async with httpx2.AsyncClient() as http:
        response = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401


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


def serve_args(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[argparse.Namespace, Settings]:
    """What the CLI's own parser makes of a service's command line (it exits on one it rejects)."""
    assert Path(argv[0]).name == "mcp-scheduler", argv
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):  # the service runs without the variables of this test's shell
            monkeypatch.delenv(name)
    return parse_settings(argv[1:])


def check_background_runner(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    args, settings = serve_args(argv, monkeypatch)
    assert args.command == "serve" and settings.transport == "http"
    assert settings.host == "127.0.0.1" and settings.database == default_database_path()
    check_exposure(settings)  # loopback: no --auth-token needed ...
    assert settings.token_file is None and not settings.allow_unauthenticated  # ... clients send the token file's


def test_servers_file_example_declares_a_stdio_and_an_http_server_with_a_secret_header() -> None:
    servers = load_servers(EXAMPLES / "servers.json")

    assert servers.get("files").transport == "stdio"
    assert servers.get("files").command == "npx"
    assert servers.get("search").transport == "http"
    assert env_names(dict(servers.get("search").headers)) == ["SEARCH_MCP_AUTHORIZATION"]


def test_systemd_user_unit_runs_a_command_line_the_cli_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read_string((EXAMPLES / "mcp-scheduler.service").read_text())
    assert unit.sections() == ["Unit", "Service", "Install"]
    assert unit["Service"]["Restart"] == "on-failure"
    assert unit["Install"]["WantedBy"] == "default.target"  # what `systemctl --user enable` hooks it to
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv[0].startswith(("/", "%h/"))  # systemd wants an absolute path
    check_background_runner(argv, monkeypatch)


def test_launchd_agent_runs_a_command_line_the_cli_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    path = EXAMPLES / "com.mcp-scheduler.plist"
    with path.open("rb") as source:
        agent = plistlib.load(source)
    assert agent["Label"] == path.stem  # launchctl finds it by the file name
    assert agent["RunAtLoad"] is True and agent["KeepAlive"] is True
    assert agent["StandardErrorPath"].startswith("/")  # the server logs to stderr
    assert agent["Umask"] == 0o077  # the log (where a token generated by the service would be told) is the user's only
    argv = agent["ProgramArguments"]
    assert argv[0].startswith("/")  # launchd expands no ~ and has no PATH to search
    check_background_runner(argv, monkeypatch)


def test_cli_parser_rejects_a_command_line_it_does_not_know(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit):  # so the two tests above would see a service's bad command line
        serve_args(["/usr/bin/mcp-scheduler", "serve", "--transport", "tcp"], monkeypatch)


def test_readme_installs_the_service_examples_by_their_names() -> None:
    readme = (ROOT / "README.md").read_text()
    for command in ("mcp-scheduler token", "cp examples/mcp-scheduler.service ~/.config/systemd/user/",
                    "systemctl --user enable --now mcp-scheduler",
                    "cp examples/com.mcp-scheduler.plist ~/Library/LaunchAgents/",
                    "launchctl load ~/Library/LaunchAgents/com.mcp-scheduler.plist",
                    "mcp-scheduler status"):
        assert command in readme, command
    assert (EXAMPLES / "mcp-scheduler.service").exists() and (EXAMPLES / "com.mcp-scheduler.plist").exists()
