"""The MCP SDK adapter's compatibility check, and how tools answer errors that are not the caller's fault."""

from __future__ import annotations

import logging
import sqlite3

import pytest
from mcp import Client

from agentool_bridge import versions
from mcp_scheduler.server import _sdk

from .conftest import ServerFactory, error_text, hourly, structured


def test_the_installed_mcp_sdk_is_one_the_adapter_knows() -> None:
    _sdk.check_mcp_sdk()


def test_an_sdk_outside_the_supported_range_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(versions, "version", lambda name: "3.1.0")
    with pytest.raises(RuntimeError, match=r"mcp 3\.1\.0 is installed.*>=2\.3,<3\.0"):
        _sdk.check_mcp_sdk()


async def test_an_unexpected_failure_is_an_internal_error_with_its_traceback_in_the_log(
    make_server: ServerFactory, db_file: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with Client(make_server(db_file)) as client:
        structured(await client.call_tool("schedule_job", hourly("first")))
        with sqlite3.connect(db_file) as conn:  # the database loses a table under the running server
            conn.execute("DROP TABLE scheduler_jobs")
        conn.close()
        with caplog.at_level(logging.ERROR, logger="mcp_scheduler.server.tooling"):
            text = error_text(await client.call_tool("schedule_job", hourly("second")))

    assert "Internal error in schedule_job (OperationalError)" in text
    assert "not a problem with the arguments" in text
    [record] = [r for r in caplog.records if r.name == "mcp_scheduler.server.tooling"]
    assert record.exc_info is not None and "no such table" in str(record.exc_info[1])


async def test_a_mistake_of_the_caller_keeps_its_own_message(make_server: ServerFactory, db_file: str) -> None:
    async with Client(make_server(db_file)) as client:
        text = error_text(await client.call_tool("pause_job", {"job_id": "ghost"}))
    assert "Job 'ghost' not found" in text
    assert "Internal error" not in text
