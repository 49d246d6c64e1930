"""Through MCP: a change whose audit entry cannot be written (a real trigger refuses every entry) is answered as an
error that says so and what to do, not as an internal error, with the database's words in the server's log alone;
the change is not made, and the audit log lists only the changes that were. On SQLite and on PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from mcp import Client

from tests._audit import BACKENDS, audit_refused, database_of
from tests.server.conftest import ServerFactory, error_text, hosted, hourly, resource_json, structured


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_of(request, tmp_path)


async def test_a_change_whose_audit_entry_fails_is_answered_as_an_error_and_not_made(
    make_server: ServerFactory, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with hosted(Client(make_server(database))) as client:
        structured(await client.call_tool("schedule_job", hourly("kept")))
        with audit_refused(database):
            for tool, args in (("schedule_job", hourly("new")), ("pause_job", {"job_id": "kept"}),
                               ("cancel_job", {"job_id": "kept", "confirm": True})):
                with caplog.at_level(logging.ERROR, logger="mcp_scheduler.store"):
                    said = error_text(await client.call_tool(tool, args))
                assert "its audit entry could not be written" in said and "nothing was changed" in said, said
                assert "scheduler_audit" in said and "server's log" in said, said  # what the operator checks
                assert "Internal error" not in said and "audit refused" not in said, said  # no database internals
                logged = [r.getMessage() for r in caplog.records if r.name == "mcp_scheduler.store.audit_table"]
                assert logged and "audit refused" in logged[-1], logged  # the database's words: in the log
                caplog.clear()
        listed = structured(await client.call_tool("list_jobs", {}))
        assert [(j["job_id"], j["state"]) for j in listed["jobs"]] == [("kept", "scheduled")]
        assert "new" in error_text(await client.call_tool("get_job", {"job_id": "new"}))
        entries = resource_json(await client.read_resource("scheduler://audit"))
        assert [(e["operation"], e["job_id"]) for e in entries["entries"]] == [("create", "kept")]
