"""Owners and the audit trail in the core: a job records its creator; without scheduler:admin a principal sees and
changes only its own jobs (another's answers "not found"); the per-principal job cap; every change is in the audit
log, in order, with who made it."""

from __future__ import annotations

import sqlite3

import pytest

from mcp_scheduler.errors import JobExistsError, JobNotFoundError, MissingScopeError, TooManyJobsError
from mcp_scheduler.models import SchedulerInput
from mcp_scheduler.principals import ADMIN, LOCAL, READ, RUN, WRITE, Principal, acting_as
from mcp_scheduler.scheduler import SchedulerService

from ._support import Calls, request


def run_now(job_id: str) -> SchedulerInput:
    return SchedulerInput(operation="run_now", job_id=job_id)

ECHO = "scheduler:kind:echo"  # the tests' kind reaches nothing, but only logging, queue and storage_kv need no scope
ALICE = Principal("token:alice", "alice-client", frozenset({READ, WRITE, RUN, ECHO}))
BOB = Principal("token:bob", None, frozenset({READ, WRITE, RUN, ECHO}))
ROOT = Principal("token:root", None, frozenset({ADMIN}))


async def test_a_job_records_its_creator_and_local_calls_are_local(service: SchedulerService, echo: Calls) -> None:
    with acting_as(ALICE):
        await service.schedule(request("a"))
    await service.schedule(request("mine"))
    a, _ = await service.get_job("a")
    stored = {j.job_id: j.definition for j in service._table.jobs()}  # noqa: SLF001
    assert (stored["a"].owner, stored["a"].owner_client) == ("token:alice", "alice-client")
    assert (stored["mine"].owner, stored["mine"].owner_client) == ("local", None)
    assert a.job_id == "a"


async def test_principals_do_not_see_or_change_each_others_jobs(service: SchedulerService, echo: Calls) -> None:
    with acting_as(ALICE):
        await service.schedule(request("a"))
    with acting_as(BOB):
        await service.schedule(request("b"))
        jobs, total = service.list_jobs()
        assert [j.job_id for j in jobs] == ["b"] and total == 1
        assert service.status().jobs_count == 1
        for call in (lambda: service.get_job("a"), lambda: service.pause("a"), lambda: service.resume("a"),
                     lambda: service.cancel("a"), lambda: service.get_history("a"),
                     lambda: service.run_now(run_now("a"))):
            with pytest.raises(JobNotFoundError):
                await call()
        with pytest.raises(JobExistsError, match="is taken"):
            await service.schedule(request("a", if_exists="replace"))
        assert service.job_ids() == ["b"]
    with acting_as(ROOT):
        jobs, total = service.list_jobs()
        assert {j.job_id for j in jobs} == {"a", "b"} and total == 2
        await service.pause("a")
    with acting_as(ALICE):
        assert (await service.get_job("a"))[0].state == "paused"  # an admin's change of it, seen by its owner


async def test_a_job_s_kind_scope_is_needed_to_resume_it_as_to_run_it(service: SchedulerService, echo: Calls) -> None:
    with acting_as(ALICE):
        await service.schedule(request("a"))
        await service.pause("a")
    without_kind = Principal("token:alice", None, frozenset({READ, WRITE, RUN}))  # her token, lacking the kind's
    with acting_as(without_kind):
        for call in (lambda: service.resume("a"), lambda: service.run_now(run_now("a"))):
            with pytest.raises(MissingScopeError, match=f"job kind 'echo' needs the scope '{ECHO}'"):
                await call()
        await service.pause("a")  # what reaches less needs no more than write
        assert (await service.get_job("a"))[0].state == "paused"
    with acting_as(ALICE):
        assert (await service.resume("a")).state == "scheduled"


async def test_history_without_a_job_shows_only_the_principals_runs(service: SchedulerService, echo: Calls) -> None:
    with acting_as(ALICE):
        await service.schedule(request("a"))
        await service.run_now(run_now("a"))
    with acting_as(BOB):
        await service.schedule(request("b"))
        await service.run_now(run_now("b"))
        assert {r.job_id for r in await service.get_history(None)} == {"b"}
    assert {r.job_id for r in await service.get_history(None)} == {"a", "b"}


async def test_jobs_stored_without_an_owner_are_the_admins_only(service: SchedulerService, echo: Calls,
                                                                db_path: str) -> None:
    await service.schedule(request("old"))
    await service.close()
    with sqlite3.connect(db_path) as conn:  # as an earlier version stored it: no owner in the definition
        conn.execute("UPDATE scheduler_jobs SET definition = json_remove(definition, '$.owner')")
    conn.close()
    await service.open()
    with acting_as(ALICE), pytest.raises(JobNotFoundError):
        await service.get_job("old")
    assert (await service.get_job("old"))[0].job_id == "old"


async def test_the_per_principal_cap_counts_each_principals_jobs(make_service, echo: Calls) -> None:  # type: ignore[no-untyped-def]
    service = await make_service(max_jobs_per_principal=2)
    with acting_as(ALICE):
        await service.schedule(request("a1"))
        await service.schedule(request("a2"))
        with pytest.raises(TooManyJobsError, match="token:alice holds 2 jobs.*--max-jobs-per-principal"):
            await service.schedule(request("a3"))
    with acting_as(BOB):
        await service.schedule(request("b1"))
    for n in range(3):  # the operator has the store's --max-jobs only
        await service.schedule(request(f"local{n}"))


async def test_the_audit_log_lists_every_change_in_order_with_who_made_it(service: SchedulerService,
                                                                           echo: Calls) -> None:
    with acting_as(ALICE):
        await service.schedule(request("a", input_data={"operation": "echo", "text": "hi"}))
        await service.update(SchedulerInput(operation="update", job_id="a", schedule="2 hours"), previews=0)
        await service.pause("a")
        await service.pause("a")  # no change: no entry
        await service.resume("a")
        await service.run_now(run_now("a"))
    with acting_as(BOB):
        await service.schedule(request("b"))
        await service.cancel("b")
    await service.stop()
    await service.start()
    with acting_as(ROOT):
        entries = await service.audit.read()
    assert [(e.subject, e.operation, e.job_id) for e in entries] == [
        ("token:alice", "create", "a"), ("token:alice", "update", "a"), ("token:alice", "pause", "a"),
        ("token:alice", "resume", "a"), ("token:alice", "run_now", "a"), ("token:bob", "create", "b"),
        ("token:bob", "cancel", "b"), ("local", "stop_scheduler", None), ("local", "start_scheduler", None),
    ]
    assert entries[0].client == "alice-client" and entries[0].fields["input_data"] == {"operation": "echo",
                                                                                         "text": "hi"}
    assert set(entries[1].fields) >= {"schedule"} and entries[1].fields["schedule"] == "2 hours"
    assert [e.seq for e in entries] == sorted(e.seq for e in entries if e.seq is not None)
    with acting_as(BOB):
        assert [e.operation for e in await service.audit.read()] == ["create", "cancel"]
    page = await service.audit.read(after=entries[3].seq or 0, limit=2)
    assert [e.operation for e in page] == ["run_now", "create"]
    assert LOCAL.admin


def test_run_principal_is_the_owner_without_admin() -> None:
    from datetime import UTC, datetime

    from mcp_scheduler.jobs import JobDefinition
    from mcp_scheduler.owners import run_principal
    from mcp_scheduler.schedules import parse_schedule

    definition = JobDefinition(job_id="a", agentool_name="echo", schedule=parse_schedule("interval", "1h"),
                               created_at=datetime.now(UTC), owner="token:alice", owner_client="c")
    assert run_principal(definition) == Principal("token:alice", "c")
    assert not run_principal(definition).admin
    assert run_principal(definition.model_copy(update={"owner": "local"})) is LOCAL
    assert run_principal(definition.model_copy(update={"owner": None})) is LOCAL
