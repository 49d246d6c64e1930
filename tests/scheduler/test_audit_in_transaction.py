"""A change and its audit entry commit together: with the audit log refusing every entry (a real trigger on the
database), no change of a job or of a hook is stored, the job in memory and in the engine stays as it was, and the
log holds only the entries of the changes that were made; the refusal is an `AuditWriteError` that says so, with
the database's own words in the log alone. On SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from mcp_scheduler.errors import AuditWriteError, JobNotFoundError
from mcp_scheduler.models import SchedulerInput
from mcp_scheduler.scheduler import SchedulerService
from mcp_scheduler.store import store_for
from tests._audit import BACKENDS, audit_refused, database_of
from tests.scheduler._support import Calls, request

from .conftest import ServiceFactory

REFUSED = "its audit entry could not be written"
DATABASE_SAID = "audit refused"  # the trigger's words: in the log, never in the error


def refusal() -> pytest.RaisesExc[AuditWriteError]:
    return pytest.raises(AuditWriteError, match=REFUSED)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_of(request, tmp_path)


async def stored(database: str, job_id: str) -> tuple[str, str] | None:
    """The job as a store opened afresh reads it: (state, schedule), or None."""
    store = store_for(database)
    await store.open()
    try:
        job = await store.load_job(job_id)
        hooks = await store.hooks_of(job_id)
    finally:
        await store.close()
    assert hooks == []
    return None if job is None else (job.state, job.definition.schedule.expression)


async def shown(service: SchedulerService, job_id: str) -> tuple[str, str, datetime | None]:
    """The job as this service holds it in memory (list_jobs reads no store, unlike get_job, which would repair
    it from the store): (state, schedule, its next run as the engine has it)."""
    [info] = [job for job in service.list_jobs()[0] if job.job_id == job_id]
    return info.state, info.schedule, info.next_run


async def test_no_change_is_stored_or_kept_when_its_audit_entry_cannot_be_written(
    make_service: ServiceFactory, database: str, echo: Calls
) -> None:
    service = await make_service(database=database)
    await service.schedule(request("kept"))
    before = await shown(service, "kept")
    assert before[0] == "scheduled" and before[2] is not None

    with audit_refused(database):
        for change in (
            lambda: service.schedule(request("new")),
            lambda: service.update(SchedulerInput(operation="update", job_id="kept", schedule="2 hours")),
            lambda: service.pause("kept"),
            lambda: service.cancel("kept"),
            lambda: service.hooks.create("kept", "kept-hook"),
        ):
            with refusal() as refused:
                await change()
            assert DATABASE_SAID not in str(refused.value)
            assert await shown(service, "kept") == before  # in memory and in the engine: as before the change
        assert service.job_ids() == ["kept"]
        assert await stored(database, "kept") == ("scheduled", "1 hour")
        assert await stored(database, "new") is None
        with pytest.raises(JobNotFoundError):
            await service.get_job("new")

    await service.pause("kept")  # the log takes entries again
    with audit_refused(database), refusal():
        await service.resume("kept")
    assert (await shown(service, "kept"))[::2] == ("paused", None)
    assert await stored(database, "kept") == ("paused", "1 hour")

    assert [(e.operation, e.job_id) for e in await service.audit.read()] == [("create", "kept"), ("pause", "kept")]
    await service.resume("kept")
    assert (await shown(service, "kept"))[:2] == ("scheduled", "1 hour")


async def test_a_hook_removed_without_its_entry_stays(make_service: ServiceFactory, database: str, echo: Calls) -> None:
    service = await make_service(database=database)
    await service.schedule(request("hooked"))
    await service.hooks.create("hooked", "the-hook")
    with audit_refused(database), refusal():
        await service.hooks.remove("the-hook")
    assert await service.hooks.of_job("hooked") == ["the-hook"]
    await service.hooks.remove("the-hook")
    assert [e.operation for e in await service.audit.read()] == ["create", "create_hook", "remove_hook"]
