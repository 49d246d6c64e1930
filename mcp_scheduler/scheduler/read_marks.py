"""When this process last read the store, by the store's read mark (`SchedulerStore.read_mark`): a read through
the store (the feeds before a list, a job's row before get_job) is skipped while the mark has not moved since, that
is while no other connection has committed to the store."""

from __future__ import annotations

__all__ = ["ReadMarks"]


class ReadMarks:
    """The marks of the last complete read of the feeds and of the job rows read through at one mark."""

    def __init__(self) -> None:
        self._feeds: int | None = None
        self._rows: tuple[int | None, set[str]] = (None, set())

    def feeds_current(self, mark: int | None) -> bool:
        """True if the feeds were read to their end at `mark` (None, no mark: never)."""
        return mark is not None and mark == self._feeds

    def feeds_read(self, mark: int | None) -> None:
        """The feeds were read to their end after `mark` was taken (None: they were not, or no mark)."""
        self._feeds = mark

    def row_current(self, mark: int | None, job_id: str) -> bool:
        """True if the job's row was read (and applied) after `mark` was taken."""
        return mark is not None and mark == self._rows[0] and job_id in self._rows[1]

    def row_read(self, mark: int | None, job_id: str) -> None:
        """The job's row was read (and applied) after `mark` was taken."""
        if mark is None:
            return
        if mark != self._rows[0]:
            self._rows = (mark, set())
        self._rows[1].add(job_id)
