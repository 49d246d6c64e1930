"""The user's confirmation before what cannot be undone or reaches the host, asked by elicitation in both protocol
eras (a mid-call request on handshake-era connections, InputRequiredResult on 2026-07-28 ones), `confirm: true` from
clients that cannot ask, and `--no-confirm`."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.types import ElicitRequestParams, ElicitResult

from mcp_scheduler.cli.parser import parse_settings
from mcp_scheduler.runner_info import settings_fingerprint
from mcp_scheduler.server import SchedulerServer
from mcp_scheduler.server.confirmation import reach
from tests.server.conftest import ServerFactory, error_text, hourly, structured

pytestmark = pytest.mark.filterwarnings("ignore::mcp.MCPDeprecationWarning")

ECHO = shutil.which("echo") or "/bin/echo"
SHELL_JOB = {
    "schedule_type": "interval",
    "schedule": "1 hour",
    "agentool_name": "shell",
    "input_data": {"operation": "run", "argv": [ECHO, "hi"]},
    "job_id": "sh",
}


class User:
    """The person behind an elicitation-capable client: answers each question with `action` and keeps what it read."""

    def __init__(self, action: str = "accept", content: dict[str, Any] | None = None) -> None:
        self.action = action
        self.content = {"confirm": True} if content is None else content
        self.asked: list[str] = []

    async def __call__(self, context: Any, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append(params.message)
        return ElicitResult(action=self.action, content=self.content if self.action == "accept" else None)


@pytest.fixture
def confirming(make_server: ServerFactory, db_file: str) -> SchedulerServer:
    """A server as started by default: it asks."""
    return make_server(db_file, confirm=True, shell_executables=(ECHO,))


async def job_ids(client: Client) -> set[str]:
    return {job["job_id"] for job in structured(await client.call_tool("list_jobs", {}))["jobs"]}


async def test_a_client_that_cannot_ask_is_told_to_pass_confirm_true_and_nothing_is_done_until_it_does(
    confirming: SchedulerServer, mode: str
) -> None:
    async with Client(confirming, mode=mode) as c:
        structured(await c.call_tool("schedule_job", hourly("j")))

        refused = error_text(await c.call_tool("cancel_job", {"job_id": "j"}))
        assert "j" in await job_ids(c)
        assert "confirm: true" in refused and "Ask the user" in refused and "Cancel job 'j'" in refused

        assert structured(await c.call_tool("cancel_job", {"job_id": "j", "confirm": True}))["state"] == "cancelled"
        assert "j" not in await job_ids(c)


@pytest.mark.parametrize(("action", "done"), [("accept", True), ("decline", False), ("cancel", False)])
async def test_cancel_job_is_done_only_when_the_user_accepts(
    confirming: SchedulerServer, mode: str, action: str, done: bool
) -> None:
    user = User(action)
    async with Client(confirming, mode=mode, elicitation_callback=user) as c:
        structured(await c.call_tool("schedule_job", hourly("j")))

        result = await c.call_tool("cancel_job", {"job_id": "j", "confirm": True})  # asked all the same

        assert len(user.asked) == 1 and "Cancel job 'j'" in user.asked[0] and "cannot be undone" in user.asked[0]
        assert ("j" not in await job_ids(c)) is done
        if not done:
            assert "Not done" in error_text(result) and "Nothing changed" in error_text(result)


async def test_an_accepted_form_that_says_no_is_a_no(confirming: SchedulerServer, mode: str) -> None:
    async with Client(confirming, mode=mode, elicitation_callback=User("accept", {"confirm": False})) as c:
        structured(await c.call_tool("schedule_job", hourly("j")))

        assert "declined" in error_text(await c.call_tool("cancel_job", {"job_id": "j"}))
        assert "j" in await job_ids(c)


async def test_stop_scheduler_asks(confirming: SchedulerServer, mode: str) -> None:
    user = User("decline")
    async with Client(confirming, mode=mode, elicitation_callback=user) as c:
        error_text(await c.call_tool("stop_scheduler", {}))
        assert structured(await c.call_tool("scheduler_status", {}))["running"] is True

        user.action = "accept"
        assert structured(await c.call_tool("stop_scheduler", {}))["running"] is False
        assert len(user.asked) == 2 and "Stop the scheduler" in user.asked[0]
        structured(await c.call_tool("start_scheduler", {}))


async def test_a_job_that_runs_a_program_is_scheduled_only_with_the_users_word(
    confirming: SchedulerServer, mode: str
) -> None:
    user = User("decline")
    async with Client(confirming, mode=mode, elicitation_callback=user) as c:
        structured(await c.call_tool("schedule_job", hourly("log")))  # nothing to confirm: not asked
        assert user.asked == []

        error_text(await c.call_tool("schedule_job", SHELL_JOB))
        assert "sh" not in await job_ids(c)
        assert ECHO in user.asked[0] and "program" in user.asked[0]

        user.action = "accept"
        structured(await c.call_tool("schedule_job", SHELL_JOB))
        assert "sh" in await job_ids(c)

        user.action = "decline"
        structured(await c.call_tool("update_job", {"job_id": "sh", "job_name": "renamed"}))  # runs the same
        changed = {**SHELL_JOB["input_data"], "argv": [ECHO, "other"]}
        error_text(await c.call_tool("update_job", {"job_id": "sh", "input_data": changed}))
        assert structured(await c.call_tool("get_job", {"job_id": "sh"}))["job"]["input_data"]["argv"] == [ECHO, "hi"]
        assert len(user.asked) == 3 and "other" in user.asked[-1]


async def test_an_update_that_widens_what_a_job_reaches_asks(confirming: SchedulerServer, mode: str) -> None:
    user = User("decline")
    fetch = {
        "schedule_type": "interval",
        "schedule": "1 hour",
        "agentool_name": "http",
        "job_id": "web",
        "input_data": {"operation": "request", "url": "https://example.org/a"},
    }
    async with Client(confirming, mode=mode, elicitation_callback=user) as c:
        structured(await c.call_tool("schedule_job", fetch))
        same_host = {"operation": "request", "url": "https://example.org/b"}
        structured(await c.call_tool("update_job", {"job_id": "web", "input_data": same_host}))
        assert user.asked == []

        other_host = {"operation": "request", "url": "https://example.com/"}
        error_text(await c.call_tool("update_job", {"job_id": "web", "input_data": other_host}))

        assert "host example.com" in user.asked[0]
        got = structured(await c.call_tool("get_job", {"job_id": "web"}))["job"]
        assert got["input_data"]["url"] == "https://example.org/b"


async def test_no_confirm_asks_nothing(make_server: ServerFactory, db_file: str, mode: str) -> None:
    user = User("decline")
    server = make_server(db_file, confirm=False)
    async with Client(server, mode=mode, elicitation_callback=user) as c:
        structured(await c.call_tool("schedule_job", hourly("j")))
        assert structured(await c.call_tool("cancel_job", {"job_id": "j"}))["state"] == "cancelled"
    assert user.asked == []


def test_reach_names_programs_hosts_secrets_variables_and_servers() -> None:
    shell = reach("shell", {"argv": ["/bin/tool", "https://h.example/x"], "env": {"LANG": "C"}, "stdin": "!env:TOKEN"})
    assert shell == {"program /bin/tool", "host h.example", "variable LANG", "secret TOKEN"}
    assert reach("agent", {"servers": ["a"], "prompt": "p"}) == {"MCP server a"}
    assert reach("mcp", {"server": "b"}) == {"MCP server b"}


def test_the_flag_and_its_variable_turn_confirmations_off_and_count_in_the_fingerprint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MCP_SCHEDULER_NO_CONFIRM", raising=False)
    _, default = parse_settings(["serve"])
    _, flagged = parse_settings(["serve", "--no-confirm"])
    monkeypatch.setenv("MCP_SCHEDULER_NO_CONFIRM", "1")
    _, from_env = parse_settings(["serve"])

    assert (default.confirm, flagged.confirm, from_env.confirm) == (True, False, False)
    # A front-end that asks never pipes its clients to a runner that does not.
    assert settings_fingerprint(default, {}) != settings_fingerprint(flagged, {})


async def test_a_real_server_asks_by_default(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        env={"MCP_SCHEDULER_NO_CONFIRM": ""},  # not the session's
        args=["-m", "mcp_scheduler", "--db", str(tmp_path / "s.db"), "--timezone", "UTC"],
    )
    async with Client(params) as c:
        structured(await c.call_tool("schedule_job", hourly("j")))
        assert "confirm: true" in error_text(await c.call_tool("cancel_job", {"job_id": "j"}))
        assert "j" in await job_ids(c)
