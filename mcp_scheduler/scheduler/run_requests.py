"""Runs asked of the runner through the store: `mcp-scheduler run JOB` writes a request, the runner runs it.

A request is a run record of the job (trigger `run_now`, status `running`, never started) written by a process
that does not run the jobs. The runner's follower reads it with the other processes' records
(`Replication`), takes it (`ExtraRuns.take_request`) and runs it as a run_now under the request's run id, with the
runner's own toolkit flags and environment; its start and finished records replace the request, which is what
the asking process waits for (`RunRequest.wait`). A request nobody takes in time is withdrawn (recorded
`cancelled`). Taking and withdrawing are both a compare-and-swap of the request's stored record
(`SchedulerStore.replace_run`): whichever commits first settles it, and the other changes nothing, so a request is
never both withdrawn and run.

A webhook delivery received by a standby, a condition that turned true in a runner that lost its lease meanwhile,
and a chained run due in a process that is not the runner, are handed over the same way (trigger `webhook`,
`condition` or `chain`): the request's `result` holds the run's trigger data (what its `!trigger:` references read)
until the runner's start record replaces it, and the process that wrote it does not wait for the run, only
withdraws it if no runner takes it in time (`RunRequest.taken`). Those requests outlive the runner: one still
waiting when a new runner takes the lease (taken by the last runner or not) is started by the new runner, once
(`KEPT_UNSTARTED`); a run_now request is recorded `interrupted` then, and its asker told.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Literal

from .._waits import wait_set
from ..jobs import ASKED, EventTrigger, Job, RunTrigger
from ..models import RunRecord
from ..store import SchedulerStore

__all__ = ["KEPT_UNSTARTED", "NOT_TAKEN", "RUNNER_GONE", "RunRequest", "is_run_request", "taken_by"]

POLL = 0.05  # seconds between reads of the store while waiting (the runner's follower polls as often)
RUNNER_CHECK = 1.0  # seconds between checks, while the run goes on, that the runner still runs
NOT_TAKEN = "not taken: no runner started the run within {within:g} s (one that is stopped, paused or hung takes none)"
RUNNER_GONE = "the runner stopped during the run; the next runner records it as interrupted"
KEPT_UNSTARTED: tuple[RunTrigger, ...] = ("chain", "webhook", "condition")
"""The triggers of the runs that a runner taking over starts if they never started (`interrupt_unfinished` keeps
them): chained runs the last runner decided, and runs handed over (an accepted delivery: its sender got 202)."""


def is_run_request(record: RunRecord) -> bool:
    """True for a run another process asked the runner for and that has not started yet.

    Buffered fires are never-started `running` records too, but of the schedule's triggers; a run_now, webhook
    or chained run of the runner itself commits its start before its first record.
    """
    return record.trigger in ASKED and record.status == "running" and record.started_at is None


def taken_by(request: RunRecord, taker: str) -> RunRecord:
    """The record of `request` once the runner `taker` took it: still never started (a runner taking over starts it
    if this one stops first), its note saying who took it."""
    return request.model_copy(update={"note": "; ".join(filter(None, (request.note, f"taken by {taker}")))})


class RunRequest:
    """One request for a run of `job`, written to `store` by a process that is not the runner, and its outcome."""

    def __init__(
        self, store: SchedulerStore, job: Job, *, history_limit: int, asked_by: str, run_id: str | None = None,
        trigger: Literal["run_now"] | EventTrigger = "run_now", trigger_data: dict[str, Any] | None = None,
    ) -> None:
        self._store = store
        self._history_limit = history_limit
        self.record = RunRecord(
            run_id=run_id or secrets.token_hex(16), job_id=job.job_id, agentool_name=job.definition.agentool_name,
            trigger=trigger, status="running", note=f"asked for by {asked_by}; waiting for the runner",
            result=trigger_data,
        )
        self._position = 0

    @property
    def run_id(self) -> str:
        return self.record.run_id

    async def send(self) -> None:
        """Write the request (committed when this returns); the runner's follower finds it within a moment."""
        self._position = (await self._store.positions())[1]
        await self._store.write_batch([self.record], [], self._history_limit)

    async def wait(
        self, *, start_within: float, runner_alive: Callable[[], Awaitable[bool]],
        started: Callable[[RunRecord], None] | None = None,
    ) -> RunRecord:
        """The run's finished record, once the runner wrote it.

        If no runner took the request within `start_within` seconds, it is withdrawn and its record (status
        `cancelled`, NOT_TAKEN) returned; if `runner_alive()` turns false while the run goes on (or while it waits
        to start, taken, beyond `start_within`), the last record seen is returned with RUNNER_GONE as its note
        (still `running`). `started(record)` is called once the runner has started it. Cancelled (Ctrl-C) before
        a runner took it, the request is withdrawn.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + start_within
        next_check = loop.time() + RUNNER_CHECK
        current: RunRecord | None = None  # the runner's latest record of the run (taken, started, finished)
        try:
            while True:
                current = await self._read() or current
                if current is not None and current.status != "running":
                    return current
                if current is not None and current.started_at is not None and started is not None:
                    started(current)
                    started = None
                overdue = loop.time() >= deadline
                if current is not None and (current.started_at is not None or overdue):
                    if loop.time() >= next_check:
                        next_check = loop.time() + RUNNER_CHECK
                        if not await runner_alive():
                            return current.model_copy(update={"note": RUNNER_GONE})
                elif overdue and (withdrawn := await self._withdraw(NOT_TAKEN.format(within=start_within))):
                    return withdrawn
                await asyncio.sleep(POLL)
        except asyncio.CancelledError:
            if current is None:
                await asyncio.shield(self._withdraw("withdrawn: the command asking for it was interrupted"))
            raise

    async def taken(self, *, start_within: float, seen: asyncio.Event) -> None:
        """Withdraw the request unless a runner took it within `start_within` seconds. `seen` is set by the caller
        once this process's follower read a record of the run (the runner's start), so that nothing is read here
        meanwhile; cancelled (this process closing), the request is left to the runner."""
        if not await wait_set(seen, start_within):
            await self._withdraw(NOT_TAKEN.format(within=start_within))

    async def _read(self) -> RunRecord | None:
        """The newest record of this run that another process (the runner) wrote since the last read."""
        found: RunRecord | None = None
        while True:
            position, records = await self._store.runs_since(self._position)
            if position == self._position:
                return found
            self._position = position
            found = next((r for r in reversed(records) if r.run_id == self.run_id), found)

    async def _withdraw(self, note: str) -> RunRecord | None:
        """Record the request as not run (its record, returned) unless a runner took it first (None): the swap
        from the request as written fails once the runner's take (or start) replaced it."""
        withdrawn = self.record.model_copy(update={"status": "cancelled", "finished_at": datetime.now(UTC),
                                                   "note": note, "result": None})
        return withdrawn if await self._store.replace_run(self.record, withdrawn) else None
