"""Runs this process hands to the runner through the store (`run_requests.py`): a webhook delivery a standby
accepted, a condition that turned true as its runner lost the lease, a chained run due where the runner is not.

The request is written at once (`hand_over`) or, for a run decided as another run finishes, buffered with that run's
finished record (`buffered`: one transaction, so that no kill between two writes loses it). Once committed, a wait
withdraws it (recorded `cancelled`) unless a runner takes it within REQUEST_START_WITHIN seconds; what tells the
wait is this process's follower reading a record of the run that the runner wrote (`taken_here`, too, when this
process became the runner and takes it itself).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

from ..events import EventBus, RunEvent, SchedulerEvent
from ..history import HistoryWriter
from ..jobs import EventTrigger, Job
from ..store import SchedulerStore
from .run_requests import RunRequest

__all__ = ["REQUEST_START_WITHIN", "HandOvers"]

logger = logging.getLogger(__name__)

REQUEST_START_WITHIN = 10.0  # seconds a standby's run_now waits for the runner to start the run it asked for


class HandOvers:
    """The runs handed to the runner from this process, and the waits that withdraw those not taken in time."""

    def __init__(self, *, store: SchedulerStore, history: HistoryWriter, history_limit: int, events: EventBus) -> None:
        self._store = store
        self._history = history
        self._history_limit = history_limit
        self._handed: dict[str, asyncio.Event] = {}  # runs handed to the runner -> set once it is seen to start
        self._watching: set[asyncio.Task[None]] = set()  # their waits, withdrawing those not taken in time
        events.subscribe(self._heard)

    async def hand_over(
        self, job: Job, trigger: EventTrigger, trigger_data: dict[str, Any], *,
        note: str | None = None, run_id: str | None = None,
    ) -> str:
        """Ask the runner for the run through the store; its run id once the request is committed. The request is
        withdrawn (recorded `cancelled`) if no runner starts it within REQUEST_START_WITHIN seconds."""
        return await self._handed_over(self._asking(job, trigger, trigger_data, note, run_id), buffered=False)

    def buffered(
        self, job: Job, trigger: EventTrigger, trigger_data: dict[str, Any], *, note: str | None, run_id: str
    ) -> asyncio.Task[str]:
        """`hand_over`, its request buffered now in the history writer (called as the run that decided it finishes:
        the request is committed with that run's finished record); the task that waits for that commit."""
        asked = self._asking(job, trigger, trigger_data, note, run_id)
        self._history.record(asked.record, job_known=False)
        return asyncio.create_task(self._handed_over(asked, buffered=True),
                                   name=f"mcp-scheduler-hand-over-{job.job_id}")

    def taken_here(self, run_id: str) -> None:
        """This process, the runner now, takes a run it handed over before it took the lease: not to be withdrawn."""
        if (seen := self._handed.get(run_id)) is not None:
            seen.set()

    def closed(self) -> None:
        """The scheduler closes: the waits end; the requests stay in the store, where the runner may still take them."""
        for task in self._watching:
            task.cancel()

    def _asking(
        self, job: Job, trigger: EventTrigger, trigger_data: dict[str, Any], note: str | None, run_id: str | None
    ) -> RunRequest:
        what = {"webhook": "a webhook delivery", "condition": "a condition"}.get(trigger, "a chain")
        return RunRequest(self._store, job, history_limit=self._history_limit, run_id=run_id, trigger=trigger,
                          trigger_data={"trigger_data": trigger_data, "note": note},
                          asked_by=f"{what} in a standby (pid {os.getpid()} on {socket.gethostname()})")

    async def _handed_over(self, asked: RunRequest, *, buffered: bool) -> str:
        job, trigger = asked.record.job_id, asked.record.trigger
        seen = self._handed[asked.run_id] = asyncio.Event()
        try:
            if buffered:
                await self._history.flush()  # the batch holding the request (or a write in progress that does)
            else:
                await asked.send()
        except Exception as exc:
            self._handed.pop(asked.run_id, None)
            if not buffered:
                raise
            # Still buffered: written with the first batch the store takes, then taken by the runner.
            logger.warning("Job %s: run %s (%s) is handed to the runner once the store takes writes: %s", job,
                           asked.run_id, trigger, exc)
            return asked.run_id
        except BaseException:
            self._handed.pop(asked.run_id, None)
            raise
        watch = asyncio.create_task(asked.taken(start_within=REQUEST_START_WITHIN, seen=seen),
                                    name=f"mcp-scheduler-handed-{job}")
        self._watching.add(watch)
        watch.add_done_callback(self._watching.discard)
        watch.add_done_callback(lambda _: self._handed.pop(asked.run_id, None))
        logger.info("Job %s: run %s (%s) handed to the runner", job, asked.run_id, trigger)
        return asked.run_id

    def _heard(self, event: SchedulerEvent) -> None:
        if isinstance(event, RunEvent) and event.remote and (seen := self._handed.get(event.record.run_id)):
            seen.set()  # the runner wrote a record of a run handed to it: it took it
