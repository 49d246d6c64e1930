"""Every tool on a full disk (the database on a 3 MB tmpfs; skipped where one cannot be mounted): the tools that
write answer "the database's disk is full" with the file and its free space, the tools that read answer, none
answers an internal error; once there is room the same server writes again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from mcp import Client

from tests._disk import fill, small_disk
from tests.server.conftest import ServerFactory, error_text, hosted, hourly, structured


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """Requested before the server, so that it is unmounted after the server's runtime closes."""
    with small_disk(tmp_path / "disk", "3m") as folder:
        yield folder


@pytest.fixture
async def client(disk: Path, make_server: ServerFactory) -> AsyncIterator[Client]:
    async with hosted(Client(make_server(str(disk / "s.db")))) as c:
        yield c


async def test_on_a_full_disk_writing_tools_say_so_reading_tools_answer_and_writes_resume_once_there_is_room(
    client: Client, disk: Path
) -> None:
    structured(await client.call_tool("schedule_job", hourly("logged", result_queue="results")))
    structured(await client.call_tool("run_now", {"job_id": "logged"}))
    filler = fill(disk)

    told = "The database's disk is full: " + str(disk / "s.db") + " could not be written ("
    for tool, args in (("schedule_job", hourly("another")), ("pause_job", {"job_id": "logged"}),
                       ("run_now", {"job_id": "logged"}), ("read_queue", {"queue_name": "results", "mode": "take"})):
        said = error_text(await client.call_tool(tool, args))
        assert told in said and " free on its file system)" in said, (tool, said)
        assert "Internal error" not in said
    assert structured(await client.call_tool("get_history", {"job_id": "logged"}))["runs"][0]["status"] == "success"
    assert structured(await client.call_tool("get_job", {"job_id": "logged"}))["job"]["job_id"] == "logged"
    peeked = structured(await client.call_tool("read_queue", {"queue_name": "results"}))
    assert len(peeked["messages"]) == 1
    structured(await client.call_tool("scheduler_status", {}))

    filler.unlink()
    structured(await client.call_tool("schedule_job", hourly("another")))
    taken = structured(await client.call_tool("read_queue", {"queue_name": "results", "mode": "take"}))
    assert len(taken["messages"]) == 1
    statuses = [r["status"] for r in structured(await client.call_tool("get_history", {"job_id": "logged"}))["runs"]]
    assert statuses == ["skipped", "success"]
