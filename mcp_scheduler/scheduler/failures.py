"""Pausing a job that failed `policy.pause_after_failures` times in a row (the run path's `JobPauser`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from agentool_bridge.errors import clip_text
from agentool_bridge.toolkits import QueueStore
from agentool_bridge.toolkits.inbox import post_to_inbox
from agentool_bridge.untrusted import clip_content, untrusted

from ..events import EventBus, JobEvent
from ..jobs import Job
from ..store import SchedulerStore
from .engine import EngineHandle
from .local_writes import LocalWrites
from .table import JobTable

__all__ = ["FailurePause"]

logger = logging.getLogger(__name__)


class FailurePause:
    """Pauses a failing job in memory, in the engine and in the store, and says so in the inbox."""

    def __init__(
        self,
        *,
        table: JobTable,
        engine: EngineHandle,
        store: SchedulerStore,
        writes: LocalWrites,
        events: EventBus,
        queues: Callable[[], QueueStore] | None,
    ) -> None:
        self._table = table
        self._engine = engine
        self._store = store
        self._writes = writes
        self._events = events
        self._queues = queues

    async def pause_for_failures(self, job: Job, why: str, last_error: str) -> None:
        """Pause a job that failed `policy.pause_after_failures` times in a row (`why` says so), and say so in
        the inbox: the server's words, with the last error (which may quote outside text) labelled untrusted."""
        if job.state != "scheduled":
            return
        reason = f"{why}; last error: {clip_text(last_error, 500)}"
        job_id = job.job_id
        if self._engine.engine is not None:
            self._engine.engine.pause_job(job_id)
        self._table.paused(job, reason)
        async with self._writes.write(job_id):
            await self._store.set_state(job_id, "paused", None, job.progress_json())
        logger.warning("Job %s: %s", job_id, reason)
        self._events.publish(JobEvent("paused", job_id, job.definition.owner, reason=reason))
        if self._queues is not None:
            name = job.definition.job_name or job_id
            try:
                post_to_inbox(self._queues(), f"Job {name!r} was {why}. Resume it with resume_job once the cause is "
                              "fixed; its last error is in `untrusted`.",
                              title=f"{name} paused", level="warning", source="scheduler", job_id=job_id,
                              job_name=job.definition.job_name,
                              untrusted=clip_content(untrusted(last_error, f"the last run of job {name!r}"), 1000))
            except Exception as exc:
                logger.warning("Job %s: could not post to the inbox: %s", job_id, exc)
