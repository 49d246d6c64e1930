"""A job that a jobs file manages, changed by a model through a real MCP client: the answer warns, or with
--protect-managed-jobs the change is refused; the file's own apply and jobs of no file are not warned."""

from __future__ import annotations

import io
from pathlib import Path

from mcp import Client

from mcp_scheduler.cli.files import apply_file
from mcp_scheduler.jobfiles import stored_jobs
from mcp_scheduler.settings import Settings

from .conftest import ServerFactory, error_text, hourly, structured

FILE = """name = "ops"

[[jobs]]
job_id = "nightly"
schedule_type = "cron"
schedule = "0 3 * * *"
agentool_name = "logging"
input_data = { operation = "log", message = "nightly" }
"""


async def managed_store(tmp_path: Path) -> tuple[str, Path]:
    database, path = str(tmp_path / "s.db"), tmp_path / "jobs.toml"
    path.write_text(FILE)
    settings = Settings(database=database, timezone="UTC", discover_entry_points=False)
    assert await apply_file(settings, path, out=io.StringIO(), err=io.StringIO()) == 0
    return database, path


async def test_a_model_changing_a_managed_job_is_warned_and_a_job_of_no_file_is_not(
    make_server: ServerFactory, tmp_path: Path,
) -> None:
    database, _ = await managed_store(tmp_path)
    async with Client(make_server(database)) as client:
        updated = structured(await client.call_tool("update_job", {"job_id": "nightly", "schedule_type": "cron",
                                                                   "schedule": "0 4 * * *"}))
        paused = structured(await client.call_tool("pause_job", {"job_id": "nightly"}))
        resumed = structured(await client.call_tool("resume_job", {"job_id": "nightly"}))
        structured(await client.call_tool("schedule_job", hourly("free")))
        free = structured(await client.call_tool("pause_job", {"job_id": "free"}))
        cancelled = structured(await client.call_tool("cancel_job", {"job_id": "nightly"}))

    for answer, action in ((updated, "updated"), (paused, "paused"), (resumed, "resumed"), (cancelled, "cancelled")):
        (warning,) = answer["warnings"]
        assert f"Job 'nightly' is managed by the jobs file 'ops' (mcp-scheduler apply) and was {action}" in warning
    assert "next apply of the file puts back" in updated["warnings"][0]
    assert "schedules it again" in cancelled["warnings"][0]
    assert cancelled["state"] == "cancelled" and paused["state"] == "paused"
    assert "warnings" not in free


async def test_with_protect_managed_jobs_a_model_cannot_change_a_managed_job_and_the_file_still_can(
    make_server: ServerFactory, tmp_path: Path,
) -> None:
    database, path = await managed_store(tmp_path)
    async with Client(make_server(database, protect_managed_jobs=True)) as client:
        for tool, arguments in (("update_job", {"job_id": "nightly", "timeout": 5}),
                                ("pause_job", {"job_id": "nightly"}), ("cancel_job", {"job_id": "nightly"}),
                                ("schedule_job", {**hourly("nightly"), "if_exists": "replace"})):
            said = error_text(await client.call_tool(tool, arguments))
            assert "managed by the jobs file 'ops'" in said and "--protect-managed-jobs" in said, (tool, said)
        structured(await client.call_tool("schedule_job", hourly("free")))
        structured(await client.call_tool("pause_job", {"job_id": "free"}))
    stored = await stored_jobs(database)
    assert stored["nightly"].state == "scheduled" and stored["nightly"].definition.timeout is None

    path.write_text(FILE.replace("0 3 * * *", "0 5 * * *"))
    settings = Settings(database=database, timezone="UTC", discover_entry_points=False, protect_managed_jobs=True)
    err = io.StringIO()
    assert await apply_file(settings, path, out=io.StringIO(), err=err) == 0
    assert "warning" not in err.getvalue()
    assert (await stored_jobs(database))["nightly"].definition.schedule.expression == "0 5 * * *"
