"""What other processes follow, read and pruned alike by both stores.

Two feeds, read by `seq`: scheduler_changes (the jobs a writer inserted, changed or deleted) and
scheduler_runs (the run records, which are also the history). A process skips its own rows (each row
names its writer). The change feed keeps its last CHANGES_KEPT rows; each job keeps its newest
`history_limit` runs, give or take a tenth (`HistoryPruning`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from ..models import RunRecord
from .base import FeedRead
from .codec import read_run

__all__ = ["CHANGES_KEPT", "HistoryPruning", "changes_after", "changes_pruned_to", "feed_read", "runs_after"]

CHANGES_KEPT = 10_000  # job changes kept for processes that follow them; one further behind reloads every job


def changes_after(rows: Sequence[tuple[int, str, str]], seq: int, writer: str) -> tuple[int, set[str] | None]:
    """`changes_since`'s answer from the change rows (seq, job_id, writer) after `seq`, in order, as `writer`
    sees them: the new position and the jobs others changed, or None when rows it had not read are gone."""
    if not rows:
        return seq, set()
    if rows[0][0] > seq + 1:
        # Changes the follower had not read were pruned (or, on PostgreSQL, a transaction that took a number
        # rolled back: rare, and reloading every job is then merely slower): it reloads every job.
        return rows[-1][0], None
    return rows[-1][0], {job_id for _, job_id, row_writer in rows if row_writer != writer}


def runs_after(rows: Sequence[tuple[int, str, str]], seq: int, writer: str) -> tuple[int, list[RunRecord]]:
    """`runs_since`'s answer from the run rows (seq, record, writer) after `seq`, in order: the new position
    and the records that others wrote."""
    if not rows:
        return seq, []
    return rows[-1][0], [read_run(text) for _, text, row_writer in rows if row_writer != writer]


def feed_read(
    changes: Sequence[tuple[int, str, str]],
    runs: Sequence[tuple[int, str, str]],
    positions: tuple[int, int],
    limit: int,
    writer: str,
) -> FeedRead:
    """`feeds_since`'s answer from the change rows and run rows after `positions` (change seq, run seq)."""
    change_seq, changed = changes_after(changes, positions[0], writer)
    run_seq, records = runs_after(runs, positions[1], writer)
    return FeedRead(change_seq, changed, run_seq, records, more_runs=len(runs) >= limit)


def changes_pruned_to(seq: int, added: int) -> int | None:
    """Once `added` changes ending at `seq` are appended: the seq up to which the change feed is pruned now
    (each time it passes a thousand), else None."""
    return seq - CHANGES_KEPT if seq // 1000 != (seq - added) // 1000 else None


class HistoryPruning:
    """Which jobs' history to prune after a batch of runs: a job is pruned once it has gained a tenth of its
    limit since it was last pruned. Up to 10% more runs stay until then, and a batch of many jobs does not
    cost one DELETE per job."""

    def __init__(self) -> None:
        self._unpruned: Counter[str] = Counter()  # runs written per job since it was last pruned

    def due(self, job_ids: Iterable[str], history_limit: int) -> list[str]:
        """The jobs to prune now, given the job of each run just written (one id per run)."""
        slack = max(1, history_limit // 10)
        due = []
        for job_id, added in Counter(job_ids).items():
            self._unpruned[job_id] += added
            if self._unpruned[job_id] >= slack:
                del self._unpruned[job_id]
                due.append(job_id)
        return due
