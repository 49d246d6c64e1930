"""`SchedulerServer.shut_down` with a call in flight, over a real in-memory MCP client in both protocol eras: the
call is answered (cancelled once the close timeout runs out, in words), and new work is refused as such."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mcp import Client

from mcp_scheduler import SchedulerRuntime
from mcp_scheduler.server import build_server
from mcp_scheduler.settings import Settings
from tests._net import eventually
from tests.reliability._support import marks, runs

from .conftest import WAIT, error_text, hourly


async def test_a_run_now_in_flight_when_the_server_shuts_down_is_answered_cancelled_and_new_work_is_refused(
    tmp_path: Path, mode: str
) -> None:
    settings = Settings(database=str(tmp_path / "s.db"), timezone="UTC", close_timeout=0.2,
                        discover_entry_points=False)
    runtime = SchedulerRuntime(settings.service_config(), toolkits=["tests.reliability._support:create_sleeper"],
                               toolkit_config=settings.toolkit_config())
    mcp = build_server(runtime, settings)
    mark_file = tmp_path / "marks"
    try:
        async with Client(mcp, mode=mode) as client:  # type: ignore[arg-type]
            call = asyncio.ensure_future(client.call_tool("run_now", {"agentool_name": "sleeper", "input_data": {
                "operation": "sleep", "seconds": 30, "token": "slow", "path": str(mark_file)}}))
            await eventually(lambda: ("slow", "start") in marks(mark_file), within=WAIT, what="the run's start")
            await mcp.shut_down()
            answer = await asyncio.wait_for(call, WAIT)
            refused = await client.call_tool("schedule_job", hourly("too-late"))
    finally:
        await runtime.close()

    text = error_text(answer)
    assert "cancelled: the server shut down and its close timeout (0.2 s) ran out while this run was in" in text
    assert "recorded 'cancelled'" in text and "check what it did before running it again" in text
    assert "the server is shutting down" in error_text(refused)
    [record] = runs(tmp_path / "s.db")
    assert record["status"] == "cancelled" and "close timeout" in record["note"]
    assert marks(mark_file) == [("slow", "start")]
