"""End to end through the official MCP Inspector CLI (node-tools/, pinned 2.12.0), over stdio and streamable HTTP.

Every call is one Inspector process: over stdio it also spawns a fresh server on the same SQLite file (the
calls never overlap, so each process takes the runner lease in turn); over HTTP it talks to one server started
for the module with its token file, the header carrying what `mcp-scheduler token` prints. Outputs are read
with `--format json`: the result on stdout, an error envelope `{"error": {"code", "message"}}` on stderr. Exit
codes: 0 ok, 1 JSON-RPC error, 3 auth_required, 5 tool_is_error (result still on stdout).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests._net import free_port, stop, wait_until_listening

ROOT = Path(__file__).resolve().parents[2]
INSPECTOR_PACKAGE = ROOT / "node-tools" / "node_modules" / "@modelcontextprotocol" / "inspector"
MAX_POLLS = 50

pytestmark = pytest.mark.node

EXPECTED_TOOLS = {
    "schedule_job", "cancel_job", "pause_job", "resume_job", "run_now", "list_jobs", "get_job", "get_history",
    "scheduler_status", "start_scheduler", "stop_scheduler", "preview_schedule", "list_agentools", "read_queue",
    "update_job",
    "read_inbox",
    "backfill_job",
    "get_run",
    "show_schedule",
}


# ---------------------------------------------------------------------- the Inspector


@dataclass
class Outcome:
    """One Inspector run."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def report(self) -> str:
        return f"$ {' '.join(self.argv)}\nexit {self.returncode}\nstdout: {self.stdout[-4000:]}\nstderr: " \
            f"{self.stderr[-4000:]}"

    @property
    def result(self) -> dict[str, Any]:
        assert self.stdout.strip(), f"no result on stdout\n{self.report()}"
        return json.loads(self.stdout)["result"]

    @property
    def error(self) -> dict[str, Any]:
        """The `{"code", "message"}` envelope on stderr (the stdio server's own log lines come before it)."""
        for line in reversed(self.stderr.splitlines()):
            if line.startswith('{"error"'):
                return json.loads(line)["error"]
        raise AssertionError(f"no error envelope on stderr\n{self.report()}")

    def ok(self) -> Outcome:
        assert self.returncode == 0, self.report()
        return self


@dataclass
class Inspector:
    """`node <mcp-inspector bin> --cli --format json ...` with an isolated HOME."""

    node: str
    entry: str
    env: dict[str, str]

    def run(self, target: list[str], *options: str) -> Outcome:
        argv = [self.node, self.entry, "--cli", "--format", "json", *options, "--", *target]
        proc = subprocess.run(argv, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=90)
        return Outcome(argv, proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def inspector(tmp_path_factory: pytest.TempPathFactory) -> Inspector:
    if shutil.which("npm") is None:
        pytest.skip("npm is not on PATH: the MCP Inspector is installed with npm by scripts/node-tools.sh")
    proc = subprocess.run([str(ROOT / "scripts" / "node-tools.sh"), "--print-node"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(f"scripts/node-tools.sh failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    node = proc.stdout.strip().splitlines()[-1]
    package = json.loads((INSPECTOR_PACKAGE / "package.json").read_text())
    entry = INSPECTOR_PACKAGE / package["bin"]["mcp-inspector"]
    assert package["version"] == "2.12.0", package["version"]
    assert entry.is_file(), entry
    home = tmp_path_factory.mktemp("inspector-home")  # its ~/.mcp-inspector goes here, not in the real HOME
    env = {k: v for k, v in os.environ.items() if k not in ("MCP_AUTO_OPEN_ENABLED", "MCP_DEBUG", "DEBUG")}
    env["HOME"] = str(home)
    return Inspector(node, str(entry), env)


# ---------------------------------------------------------------------- the servers


@dataclass
class Server:
    """How the Inspector reaches one scheduler: a stdio command line or an HTTP URL plus headers."""

    name: str
    target: list[str]
    options: list[str] = field(default_factory=list)

    def call(self, inspector: Inspector, *options: str) -> Outcome:
        return inspector.run(self.target, *self.options, *options)

    def tool(self, inspector: Inspector, name: str, **args: Any) -> Outcome:
        return self.call(inspector, "--method", "tools/call", "--tool-name", name, "--tool-args-json", json.dumps(args))

    def read(self, inspector: Inspector, uri: str) -> Outcome:
        return self.call(inspector, "--method", "resources/read", "--uri", uri)


@pytest.fixture(scope="module")
def http_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The URL of a server on its own token file, and the header that `mcp-scheduler token` gives."""
    tmp = tmp_path_factory.mktemp("http-server")
    port = free_port()
    log = tmp / "server.log"
    token_file = str(tmp / "token")
    argv = [sys.executable, "-m", "mcp_scheduler", "--transport", "http", "--port", str(port),
            "--db", str(tmp / "scheduler.sqlite"), "--timezone", "UTC", "--token-file", token_file]
    with log.open("wb") as sink:
        proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_until_listening(proc, port, log=str(log))
        token = subprocess.run([sys.executable, "-m", "mcp_scheduler", "token", "--token-file", token_file],
                               capture_output=True, text=True, check=True, timeout=60).stdout.strip()
        yield f"http://127.0.0.1:{port}/mcp", f"Authorization: Bearer {token}"
    finally:
        stop(proc, within=15)


@pytest.fixture(params=["stdio", "http"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Server:
    if request.param == "stdio":
        db = tmp_path / "scheduler.sqlite"
        # The Inspector passes its child only a few variables (not MCP_SCHEDULER_NO_BACKGROUND_RUNNER): say it here.
        return Server("stdio", [sys.executable, "-m", "mcp_scheduler", "--db", str(db), "--timezone", "UTC",
                                "--no-background-runner"])
    url, header = request.getfixturevalue("http_url")
    return Server("http", [url], ["--header", header])


def _text(outcome: Outcome) -> str:
    """The text of a tool result or a resource."""
    result = outcome.result
    items = result.get("content") or result.get("contents") or []
    return "\n".join(item.get("text", "") for item in items)


def _resource_json(outcome: Outcome) -> dict[str, Any]:
    (content,) = outcome.ok().result["contents"]
    assert content["mimeType"] == "application/json"
    return json.loads(content["text"])


# ---------------------------------------------------------------------- tests


def test_tools_list_has_every_tool_with_its_input_schema(inspector: Inspector, server: Server) -> None:
    tools = server.call(inspector, "--method", "tools/list").ok().result["tools"]
    by_name = {t["name"]: t for t in tools}
    assert set(by_name) == EXPECTED_TOOLS
    for name, tool in by_name.items():
        schema = tool["inputSchema"]
        assert schema["type"] == "object", name
        assert tool.get("description"), name
    schedule = by_name["schedule_job"]["inputSchema"]
    assert set(schedule["required"]) == {"schedule_type", "schedule", "agentool_name", "input_data"}
    assert schedule["properties"]["schedule_type"]["enum"] == ["cron", "interval", "once"]
    assert by_name["update_job"]["inputSchema"]["required"] == ["job_id"]
    assert "required" not in by_name["get_history"]["inputSchema"]  # every job's runs without a job_id
    assert by_name["show_schedule"]["_meta"] == {"ui": {"resourceUri": "ui://mcp-scheduler/dashboard"}}
    (page,) = server.read(inspector, "ui://mcp-scheduler/dashboard").ok().result["contents"]
    assert page["mimeType"] == "text/html;profile=mcp-app" and page["text"].startswith("<!doctype html>")


def test_the_inspector_finds_no_schema_portability_problem(inspector: Inspector, server: Server) -> None:
    outcome = server.call(inspector, "--method", "tools/list", "--strict")

    assert outcome.returncode == 0, outcome.report()  # 6 would be schema_unportable
    assert "Schema portability" not in outcome.stderr and "Warning: tool" not in outcome.stderr, outcome.report()


def test_once_job_runs_and_run_now_returns_its_result(inspector: Inspector, server: Server) -> None:
    job = server.tool(
        inspector, "schedule_job", schedule_type="once", schedule="now", agentool_name="storage_kv",
        input_data={"operation": "set", "key": "k", "value": 42}, job_id="e2e-once",
    ).ok().result
    assert job["isError"] is False
    assert job["structuredContent"]["job_id"] == "e2e-once"
    assert job["structuredContent"]["description"]  # the schedule in words (get_job has the rest)

    # Over stdio the job fires in the process that scheduled it, or at start-up of a later one (catch-up);
    # over HTTP in the running server. Either way, poll its history through the Inspector, bounded.
    history: dict[str, Any] = {}
    for _ in range(MAX_POLLS):
        history = _resource_json(server.read(inspector, "scheduler://jobs/e2e-once/history"))
        if history["runs"] and history["runs"][0]["status"] != "running":
            break
    else:
        pytest.fail(f"e2e-once never ran: {history}")
    assert history["job_id"] == "e2e-once"
    assert history["count"] == 1
    (run,) = history["runs"]
    assert run["status"] == "success", run
    assert run["trigger"] in ("schedule", "catch_up"), run
    assert run["result"]["data"]["key"] == "k"
    assert run["error"] is None

    detail = _resource_json(server.read(inspector, "scheduler://jobs/e2e-once"))
    assert detail["job"]["job_id"] == "e2e-once"
    assert detail["job"]["state"] == "completed"
    assert detail["job"]["last_status"] == "success"
    assert [r["run_id"] for r in detail["recent_history"]] == [run["run_id"]]

    # A second job reads the key back: the AgenTool's storage is the same database, whichever process wrote it.
    server.tool(
        inspector, "schedule_job", schedule_type="interval", schedule="1 hour", agentool_name="storage_kv",
        input_data={"operation": "get", "key": "k"}, job_id="e2e-get",
    ).ok()
    record = server.tool(inspector, "run_now", job_id="e2e-get").ok().result
    assert record["isError"] is False
    now = record["structuredContent"]
    assert (now["job_id"], now["trigger"], now["status"]) == ("e2e-get", "run_now", "success")
    assert now["result"]["data"] == {"key": "k", "value": 42, "expires_at": None}

    runs = server.tool(inspector, "get_history", job_id="e2e-get").ok().result["structuredContent"]["runs"]
    assert [r["run_id"] for r in runs] == [now["run_id"]]


def test_cancelled_job_leaves_list_jobs(inspector: Inspector, server: Server) -> None:
    job_id = f"e2e-cancel-{server.name}"
    server.tool(
        inspector, "schedule_job", schedule_type="interval", schedule="30 minutes", agentool_name="storage_kv",
        input_data={"operation": "get", "key": "k"}, job_id=job_id,
    ).ok()
    listed = server.tool(inspector, "list_jobs", limit=100).ok().result["structuredContent"]
    assert job_id in [j["job_id"] for j in listed["jobs"]]

    # The Inspector's CLI cannot ask its user (no elicitation): it confirms as the error tells a model to (the stdio
    # server it starts asks; tests/server/test_confirmation.py checks the refusal without confirm).
    cancelled = server.tool(inspector, "cancel_job", job_id=job_id, confirm=True).ok().result["structuredContent"]
    assert cancelled["job_id"] == job_id

    listed = server.tool(inspector, "list_jobs", limit=100).ok().result["structuredContent"]
    assert job_id not in [j["job_id"] for j in listed["jobs"]]
    gone = server.read(inspector, f"scheduler://jobs/{job_id}")
    assert gone.returncode == 1, gone.report()
    assert "not found" in gone.error["message"]


def test_bad_cron_is_a_tool_error_naming_the_accepted_forms(inspector: Inspector, server: Server) -> None:
    outcome = server.tool(
        inspector, "schedule_job", schedule_type="cron", schedule="not a cron", agentool_name="storage_kv",
        input_data={"operation": "get", "key": "k"},
    )
    assert outcome.returncode == 5, outcome.report()
    assert outcome.error["code"] == "tool_is_error"
    assert outcome.result["isError"] is True
    message = _text(outcome)
    assert "Invalid cron expression 'not a cron'" in message
    for form in ("5 fields", "0 9 * * 1-5", "6 fields with seconds first", "@hourly"):
        assert form in message, message


def test_unknown_job_resource_is_not_found(inspector: Inspector, server: Server) -> None:
    outcome = server.read(inspector, "scheduler://jobs/nope")
    assert outcome.returncode == 1, outcome.report()
    assert not outcome.stdout.strip(), outcome.report()
    message = outcome.error["message"]
    assert "not found" in message
    assert "'nope'" in message


@pytest.mark.parametrize("header", [None, "Authorization: Bearer wrong"], ids=["no-token", "wrong-token"])
@pytest.mark.parametrize("stored_auth_only", [False, True], ids=["default", "stored-auth-only"])
def test_http_without_the_token_is_auth_required(
    inspector: Inspector, http_url: tuple[str, str], header: str | None, stored_auth_only: bool
) -> None:
    """Non-interactively (no TTY) the Inspector does not start an OAuth flow: it exits 3 with auth_required."""
    options = ["--method", "tools/list"]
    if header:
        options += ["--header", header]
    if stored_auth_only:
        options.append("--stored-auth-only")
    outcome = inspector.run([http_url[0]], *options)
    assert outcome.returncode == 3, outcome.report()
    assert outcome.error["code"] == "auth_required"
    assert not outcome.stdout.strip(), outcome.report()
