"""Durations and times beyond the scheduler's bounds are errors in the arguments on both faces, never internal
errors: the MCP tools answer them as tool errors naming the argument and the limit, and the `scheduler`
AgenTool raises `InvalidArgumentError` (each case here was an OverflowError answered as an internal error)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from mcp_scheduler import SchedulerRuntime, create_scheduler_agent
from mcp_scheduler.errors import InvalidArgumentError
from mcp_scheduler.server import build_server
from mcp_scheduler.settings import Settings
from tests.server.conftest import LOG_INPUT, error_text, hosted


def job(**fields: Any) -> dict[str, Any]:
    return {"schedule_type": "interval", "schedule": "1 hour", "agentool_name": "logging", "input_data": LOG_INPUT,
            "job_id": "bounded", **fields}


# (tool, operation of the AgenTool, arguments, words of the message)
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("schedule_job", "schedule", job(schedule="9999999 weeks"), "longer than 100 years"),
    ("schedule_job", "schedule", job(schedule="every 99999999 days"), "longer than 100 years"),
    ("schedule_job", "schedule", job(schedule="2999999 days"), "longer than 100 years"),
    ("schedule_job", "schedule", job(policy={"start_at": "9999-12-31T23:59:59"}), "policy.start_at"),
    ("schedule_job", "schedule", job(schedule_type="cron", schedule="0 0 31 12 *",
                                     policy={"start_at": "9999-12-31T00:00:00"}), "years 1970 to 9000"),
    ("schedule_job", "schedule", job(policy={"catchup_window": "PT9999999999999999H"}), "policy.catchup_window"),
    ("preview_schedule", "preview", {"schedule_type": "interval", "schedule": "2999999 days", "count": 50},
     "longer than 100 years"),
    ("preview_schedule", "preview", {"schedule_type": "interval", "schedule": "1 hour",
                                     "policy": {"start_at": "9999-12-31T23:00:00"}}, "years 1970 to 9000"),
    ("preview_schedule", "preview", {"schedule_type": "cron", "schedule": "0 0 * * *",
                                     "policy": {"start_at": "9999-12-31T23:00:00-14:00"}}, "years 1970 to 9000"),
    ("get_history", "get_history", {"since": "9999999 weeks"}, "since '9999999 weeks' is longer than 100 years"),
    ("get_history", "get_history", {"until": "0001-01-01T00:00:00+14:00"}, "until '0001-01-01T00:00:00+14:00'"),
    ("backfill_job", "backfill", {"job_id": "existing", "since": "0001-01-01T00:00:00+14:00"}, "years 1970 to 9000"),
    ("backfill_job", "backfill", {"job_id": "existing", "since": "9999999 weeks"}, "longer than 100 years"),
]


@dataclass
class Faces:
    client: Client
    runtime: SchedulerRuntime

    async def job_ids(self) -> list[str]:
        return sorted(self.runtime.service.job_ids())


@pytest.fixture
async def faces(tmp_path: Path) -> AsyncIterator[Faces]:
    """One runtime, reached through an in-memory MCP client and through its `scheduler` AgenTool."""
    settings = Settings(database=str(tmp_path / "s.db"), timezone="UTC", discover_entry_points=False)
    runtime = SchedulerRuntime(settings.service_config(), toolkit_config=settings.toolkit_config())
    try:
        async with hosted(Client(build_server(runtime, settings))) as client:
            create_scheduler_agent(runtime=runtime)
            created = await client.call_tool("schedule_job", job(job_id="existing"))
            assert not created.is_error
            yield Faces(client, runtime)
    finally:
        await runtime.close()


@pytest.mark.parametrize(("tool", "operation", "arguments", "words"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
async def test_a_duration_or_time_beyond_the_bounds_is_an_argument_error_on_both_faces(
    faces: Faces, tool: str, operation: str, arguments: dict[str, Any], words: str
) -> None:
    before = await faces.job_ids()

    message = error_text(await faces.client.call_tool(tool, arguments))
    with pytest.raises(InvalidArgumentError) as raised:
        await faces.runtime.injector.run("scheduler", {"operation": operation, **arguments})

    assert "Internal error" not in message and words in message, message
    assert words in str(raised.value)
    assert await faces.job_ids() == before
