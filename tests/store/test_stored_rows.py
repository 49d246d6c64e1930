"""The rows the stores write, pinned: a job and a run stored by an earlier version (the literal rows below,
as the stores wrote them before their row codec was shared) read back as the same job and run, and what
the stores write now is the same text, on both backends.

A change of these literals is a change of the on-disk format: databases in use hold rows like them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from mcp_scheduler import Job, JobDefinition
from mcp_scheduler.jobs import PendingRetry
from mcp_scheduler.models import RunRecord
from mcp_scheduler.schedules import parse_schedule
from mcp_scheduler.store import Bookkeeping
from mcp_scheduler.success import SuccessCheck

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

DEFINITION = (
    '{"job_id":"daily","job_name":null,"agentool_name":"echo","input_data":{"text":"hi"},"schedule":'
    '{"schedule_type":"cron","expression":"0 9 * * *","timezone":"Europe/Berlin","description":'
    '"At 09:00 (Europe/Berlin)","cron_has_seconds":false,"cron":"0 9 * * *"},"max_instances":1,'
    '"misfire_grace_time":30,"coalesce":true,"timeout":null,"result_queue":null,"error_queue":null,"policy":'
    '{"overlap":"skip","catchup":null,"max_attempts":1,"retry_delay":30.0,"retry_multiplier":2.0,'
    '"retry_max_delay":3600.0,"retry_on":["error","timeout"],"pause_after_failures":null,'
    '"jitter":null,"max_runs":null,"start_at":null,"end_at":null,"catchup_window":null},'
    '"created_at":"2026-12-01T09:00:00+00:00","address_policy":null}'
)
PROGRESS = (
    '{"failures": 2, "runs": 5, "pause_reason": null, "retry": {"at": "2026-12-01T09:05:00+00:00", '
    '"attempt": 2, "nominal": "2026-12-01T09:00:00+00:00"}}'
)
NEXT_RUN, LAST_RUN = "2026-12-02T09:00:00+00:00", "2026-12-01T09:00:00+00:00"
RECORD = (
    '{"run_id":"r1","job_id":"daily","agentool_name":"echo","trigger":"schedule","status":"success",'
    '"scheduled_time":"2026-12-01T09:00:00+00:00","started_at":"2026-12-01T10:00:00+01:00",'
    '"finished_at":"2026-12-01T09:00:02+00:00","duration_ms":2000.0,"result":{"text":"hi"},"error":null,'
    '"note":null,"attempt":null}'
)
RUN_AT = 1796115600.0  # the run's start, as POSIX seconds (the `at` column)


def the_job() -> Job:
    """The job of the literal rows, as the scheduler holds it."""
    definition = JobDefinition(job_id="daily", agentool_name="echo", input_data={"text": "hi"}, created_at=T0,
                               schedule=parse_schedule("cron", "0 9 * * *", "Europe/Berlin"))
    return Job(definition, "scheduled", T0 + timedelta(days=1), T0, "error", failures=2, runs=5,
               retry=PendingRetry(T0 + timedelta(minutes=5), 2, T0))


def the_run() -> RunRecord:
    """The run of the literal rows (started at the same instant, written with another UTC offset)."""
    return RunRecord(run_id="r1", job_id="daily", agentool_name="echo", trigger="schedule", status="success",
                     scheduled_time=T0, started_at=T0.astimezone(timezone(timedelta(hours=1))),
                     finished_at=T0 + timedelta(seconds=2), duration_ms=2000.0, result={"text": "hi"})


def sql(database: str, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one statement (`?` placeholders) on a connection of the test's own; the rows it returns."""
    if database.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(database, autocommit=True) as pg:
            cursor = pg.execute(statement.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description is not None else []
    conn = sqlite3.connect(database)
    try:
        rows = conn.execute(statement, params).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()


def fields(job: Job) -> tuple[Any, ...]:
    return (job.definition, job.state, job.next_run_time, job.last_run_at, job.last_status, job.failures, job.runs,
            job.pause_reason, job.retry)


async def test_a_job_and_a_run_stored_by_an_earlier_version_read_back_the_same(store: Any, database: str) -> None:
    sql(database, "INSERT INTO scheduler_jobs (job_id, created_seq, definition, state, next_run_time, last_run_at, "
        "last_status, runs_from, progress) VALUES ('daily', 1, ?, 'scheduled', ?, ?, 'error', 0, ?)",
        (DEFINITION, NEXT_RUN, LAST_RUN, PROGRESS))
    sql(database, "INSERT INTO scheduler_runs (run_id, job_id, status, record, writer, at, agentool) "
        "VALUES ('r1', 'daily', 'success', ?, 'earlier', ?, 'echo')", (RECORD, RUN_AT))

    loaded = await store.load_job("daily")
    assert loaded is not None and fields(loaded) == fields(the_job())
    assert [fields(j) for page in [p async for p in store.load_jobs()] for j in page] == [fields(the_job())]
    assert await store.history("daily") == [the_run()]
    assert await store.history(None, since=T0, agentool_name="echo") == [the_run()]
    assert (await store.runs_since(0))[1] == [the_run()]


async def test_the_stores_write_a_job_and_a_run_as_the_same_rows_as_before(store: Any, database: str) -> None:
    job = the_job()
    fresh = Job(job.definition, job.state, job.next_run_time)
    await store.insert_jobs([fresh])
    await store.write_batch([the_run()], [Bookkeeping.of(job)], 100)

    [row] = sql(database, "SELECT definition, state, next_run_time, last_run_at, last_status, progress "
                "FROM scheduler_jobs")
    [run] = sql(database, "SELECT run_id, job_id, status, record, at, agentool FROM scheduler_runs")
    if database.startswith("postgresql://"):  # timestamptz: compared as instants
        times: tuple[Any, ...] = (datetime.fromisoformat(NEXT_RUN), datetime.fromisoformat(LAST_RUN))
    else:
        times = (NEXT_RUN, LAST_RUN)
    assert row == (DEFINITION, "scheduled", *times, "error", PROGRESS)
    assert run == ("r1", "daily", "success", RECORD, RUN_AT, "echo")


async def test_a_job_with_success_checks_round_trips_and_a_job_without_keeps_its_row(
    store: Any, database: str
) -> None:
    checks = {"status": [200, 204], "json": {"path": "$.data.ok", "equals": True}, "not_contains": "error"}
    definition = the_job().definition.model_copy(update={"success": SuccessCheck.model_validate(checks)})
    await store.insert_jobs([Job(definition, "scheduled", T0)])

    loaded = await store.load_job("daily")
    [(text,)] = sql(database, "SELECT definition FROM scheduler_jobs")

    assert loaded is not None and loaded.definition == definition
    assert json.loads(text)["success"] == checks
    assert the_job().definition.model_dump_json() == DEFINITION  # no "success" key when there is none
