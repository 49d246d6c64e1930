"""When the store or the lease cannot be reached: loops back off with jitter and log quietly, and a run whose
start cannot be committed does not start (it is recorded once the store takes writes again)."""

from __future__ import annotations

import logging
import os
import random
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from mcp_scheduler import DiskFullError, JobExecutionError, SchedulerInput, SchedulerService
from mcp_scheduler.backoff import Backoff
from mcp_scheduler.lease import FileLease
from mcp_scheduler.runs import START_NOT_WRITTEN
from mcp_scheduler.store import sqlite_disk
from tests._disk import fill, small_disk
from tests._net import CuttableProxy, eventually
from tests.scheduler._support import Calls, VirtualClock, request

WITHIN = 20.0
NOT_WRITTEN = START_NOT_WRITTEN.split(" ({error})")[0]  # "the store could not be written when the run was to start"


def _lines(caplog: pytest.LogCaptureFixture, what: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(what)]


def test_backoff_doubles_with_jitter_up_to_its_cap_and_logs_one_traceback_then_a_line_per_30_s(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock()
    log = logging.getLogger("tests.backoff")
    backoff = Backoff("Reading the store", log, clock, base=0.05, cap=5.0, rng=random.Random(7))
    assert backoff.delay() == 0.05

    delays = []
    with caplog.at_level(logging.WARNING, logger="tests.backoff"):
        for _ in range(40):  # about 3 minutes of failures, in virtual time
            delays.append(backoff.failed(OSError("database is down")))
            clock.advance(delays[-1])
        backoff.succeeded()

    for number, delay in enumerate(delays, start=1):
        ceiling = min(5.0, 0.05 * 2**number)
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays[-10:])) == 10  # jittered: processes failing together do not retry in step
    first, *later = _lines(caplog, "Reading the store")
    assert first.exc_info is not None and "failed" in first.getMessage()
    quiet = [r for r in later if "still fails" in r.getMessage()]
    assert all(r.exc_info is None for r in later)
    assert 3 <= len(quiet) <= 1 + sum(delays) / 30  # one short line per 30 s at most
    assert all(re.search(r" still fails after \d+ (s|min) \(", r.getMessage()) for r in quiet)  # for how long
    assert later[-1].getMessage() == "Reading the store works again after 2 min (40 failure(s) in a row)"
    assert backoff.failures == 0 and backoff.delay() == 0.05 and backoff.failing_since is None


async def test_a_standby_backs_off_while_the_lease_file_is_out_of_reach_and_takes_over_once_it_is_back(
    make_service: Any, db_path: str, echo: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    runner: SchedulerService = await make_service()
    standby: SchedulerService = await make_service()
    assert runner.is_runner and not standby.is_runner
    lock = FileLease(db_path).path
    held = lock.with_suffix(".held")
    os.rename(lock, held)  # the runner keeps its lock (its open file); a standby's open() of the path now fails
    lock.mkdir()
    backoff = standby._replication.lease_backoff
    with caplog.at_level(logging.WARNING, logger="mcp_scheduler"):
        await eventually(lambda: backoff.failures >= 3, within=WITHIN, what="three failed attempts at the lease")
        tracebacks = [r for r in _lines(caplog, "Keeping or taking the runner lease") if r.exc_info]
        assert len(tracebacks) == 1  # every 0.5 s before: a traceback each time
        assert isinstance(tracebacks[0].exc_info[1], IsADirectoryError)  # type: ignore[index]

        lock.rmdir()
        os.rename(held, lock)
        await runner.close()
        await eventually(lambda: standby.is_runner, within=WITHIN, what="the standby taking over")
    assert backoff.failures == 0
    await standby.schedule(request("after", "once", "now"))
    await eventually(lambda: len(echo.inputs) == 1, within=WITHIN, what="the new runner running a job")


async def test_following_a_store_that_fails_backs_off_and_goes_on_once_it_is_back(
    make_service: Any, echo: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    runner: SchedulerService = await make_service()
    standby: SchedulerService = await make_service()
    backoff = standby._replication.backoff
    assert (standby.status().runner or "").startswith("pid ")
    with caplog.at_level(logging.WARNING, logger="mcp_scheduler"):
        before = datetime.now(UTC).replace(microsecond=0)
        await standby._store.close()  # every read of the follower fails until it is opened again
        await eventually(lambda: backoff.failures >= 4, within=WITHIN, what="four failed reads of the store")
        assert backoff.delay() > 0.2  # no longer every 50 ms
        tracebacks = [r for r in _lines(caplog, "Following the store") if r.exc_info]
        assert len(tracebacks) == 1
        status = standby.status()
        assert status.role == "standby" and status.runner is not None
        assert status.runner.startswith("no runner: the store is unreachable since ")
        since = datetime.fromisoformat(status.runner.split(" since ")[1].split(" ")[0])
        assert before <= since <= datetime.now(UTC)
        await standby._store.open()
        await eventually(lambda: backoff.failures == 0, within=WITHIN, what="the follower reading the store again")
    back = _lines(caplog, "Following the store works again after ")
    assert len(back) == 1 and "failure(s) in a row" in back[0].getMessage()
    assert (standby.status().runner or "").startswith("pid ")  # the runner it names again
    await runner.schedule(request("seen"))
    await eventually(lambda: "seen" in standby.job_ids(), within=WITHIN, what="the standby hearing of the new job")


async def test_a_run_whose_start_cannot_be_committed_does_not_start_and_is_recorded_once_the_store_is_back(
    make_service: Any, db_path: str, echo: Calls, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each commit that finds the file locked waits out SQLite's busy timeout first (5 s; four of them here).
    monkeypatch.setattr(sqlite_disk, "BUSY_TIMEOUT_MS", 250)
    service: SchedulerService = await make_service()
    await service.schedule(request("hourly"))
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another connection holds the write lock: commits fail (busy)
        with caplog.at_level(logging.WARNING, logger="mcp_scheduler"):
            await service._runs.admission.on_due("hourly", [datetime.now(UTC)])
            with pytest.raises(JobExecutionError, match=NOT_WRITTEN):
                await service.run_now(SchedulerInput(operation="run_now", job_id="hourly"))
        assert echo.inputs == []  # neither run called the AgenTool
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    # The first fire that could not start is logged at once; the next ones go into one line a minute, not one each.
    logged = [r.getMessage() for r in caplog.records if NOT_WRITTEN in r.getMessage()]
    assert len(logged) == 1 and logged[0].startswith("Job hourly: a fire was skipped: ")

    history = await service.get_history("hourly")
    assert [(r.trigger, r.status) for r in history] == [("run_now", "skipped"), ("schedule", "skipped")]
    assert all(r.note and r.note.startswith(NOT_WRITTEN) and "locked" in r.note for r in history)
    assert all(r.started_at is None for r in history)
    [job], _ = service.list_jobs()
    assert job.last_status == "skipped"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs (requested before the runtimes, so that it is unmounted after they close)."""
    with small_disk(tmp_path / "disk", "3m") as folder:
        yield folder


async def test_on_a_full_disk_no_run_starts_requests_say_so_reads_answer_and_the_records_follow_once_there_is_room(
    disk: Path, make_service: Any, echo: Calls
) -> None:
    database = str(disk / "s.db")
    service: SchedulerService = await make_service(database=database)
    await service.schedule(request("hourly"))
    await service.run_now(SchedulerInput(operation="run_now", job_id="hourly"))
    assert len(echo.inputs) == 1
    filler = fill(disk)

    await service._runs.admission.on_due("hourly", [datetime.now(UTC)])
    with pytest.raises(JobExecutionError, match=f"{NOT_WRITTEN} \\(DiskFullError: The database's disk is full: "):
        await service.run_now(SchedulerInput(operation="run_now", job_id="hourly"))
    with pytest.raises(DiskFullError, match=f"^The database's disk is full: {database} could not be written"):
        await service.schedule(request("another"))
    assert len(echo.inputs) == 1  # neither the fire nor run_now called the AgenTool
    # Reads do not wait for the records that cannot be written: they answer with what is stored.
    assert [r.status for r in await service.get_history("hourly")] == ["success"]
    info, recent = await service.get_job("hourly")
    assert info.job_id == "hourly" and len(recent) == 1

    filler.unlink()  # nothing else is recorded: the history writer tries again by itself
    await eventually(lambda: service._history._runs == {}, within=WITHIN, what="the records written")
    history = await service.get_history("hourly")
    assert [(r.trigger, r.status) for r in history] == [("run_now", "skipped"), ("schedule", "skipped"),
                                                        ("run_now", "success")]
    assert all("disk is full" in (r.note or "") for r in history[:2])
    await service.schedule(request("another"))  # the same service, no restart
    await service.run_now(SchedulerInput(operation="run_now", job_id="another"))
    assert len(echo.inputs) == 2


async def test_a_postgresql_outage_logs_each_change_once_and_the_status_says_the_store_is_unreachable(
    postgres_url: str, make_service: Any, echo: Calls, caplog: pytest.LogCaptureFixture
) -> None:
    address = urlsplit(postgres_url)
    with CuttableProxy(address.hostname or "127.0.0.1", address.port or 5432) as proxy:
        url = address._replace(netloc=f"{address.username}@127.0.0.1:{proxy.port}").geturl()
        runner: SchedulerService = await make_service(database=url)
        standby: SchedulerService = await make_service(database=url)
        assert runner.is_runner and not standby.is_runner
        await runner.schedule(request("ticking", "interval", "1 second"))  # the runner has history to write
        backoffs = [s._replication.backoff for s in (runner, standby)]
        with caplog.at_level(logging.INFO, logger="mcp_scheduler"):
            proxy.cut()  # the server is gone for both processes
            await eventually(lambda: all(b.failures >= 5 for b in backoffs), within=WITHIN,
                             what="five failed reads of the store by each process")
            outage = [r for r in caplog.records if r.name.startswith("mcp_scheduler")]
            status = standby.status()
            proxy.mend()
            await eventually(lambda: all(b.failures == 0 for b in backoffs), within=WITHIN,
                             what="both processes reading the store again")
            await eventually(lambda: runner.is_runner or standby.is_runner, within=WITHIN, what="a runner again")
        lines = [r.getMessage() for r in caplog.records if r.name.startswith("mcp_scheduler")]
        await runner.close()  # while the proxy still leads to the server
        await standby.close()

    assert status.role == "standby" and (status.runner or "").startswith("no runner: the store is unreachable since")
    # Before: about 17 lines a second per process, each with a traceback; now one per change of state and loop.
    # One traceback per failing loop: each process's follower and lease, the runner's history writer and its
    # consumer of queue triggers (which settles the claims a last runner left when it becomes the runner).
    assert len([r for r in outage if r.exc_info]) <= 6, [r.getMessage() for r in outage]
    assert len(outage) <= 15, [r.getMessage() for r in outage]
    assert sum("Following the store works again after" in line for line in lines) == 2, lines
    assert sum("Writing run history failed" in line for line in lines) <= 1, lines  # one traceback, then quiet
