"""What the run path needs from the scheduler around it, as small interfaces handed to its constructors."""

from __future__ import annotations

from typing import Protocol

from ..jobs import Job

__all__ = ["EnginePort", "JobPauser"]


class EnginePort(Protocol):
    """The engine as the run path sees it (the runner's engine, or nothing on a standby: then these do nothing)."""

    def wake_if_held(self) -> None:
        """A run slot freed: hand over due jobs the engine held back for lack of room."""

    def wake(self) -> None:
        """Look at due jobs at once (the clocks jumped)."""

    def remove_job(self, job_id: str) -> None:
        """The job finished (its last run): it fires no more."""


class JobPauser(Protocol):
    """Pauses a job that failed too often in a row (in memory, in the engine and in the store)."""

    async def pause_for_failures(self, job: Job, why: str, last_error: str) -> None: ...
