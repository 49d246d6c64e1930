"""The rows of scheduler_jobs and scheduler_runs, written and read alike by both stores.

A definition is stored as its JSON text (pydantic's `model_dump_json`, read back through the schedule's
loader), a run as its record's JSON text, a job's progress as `Job.progress_json()`; a run row also holds
its time (`at`, POSIX seconds) and AgenTool name, so that history can be filtered without reading the
record. Only times differ between the backends: SQLite keeps ISO 8601 text (`TextTimes`), PostgreSQL a
timestamptz (`RowCodec`, which hands datetimes over as they are).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, get_args

from ..jobs import EventTrigger, Job, JobDefinition
from ..models import RunRecord
from ..schedules import load_schedule
from .base import Bookkeeping

__all__ = [
    "JOB_COLUMNS", "RowCodec", "TextTimes", "interrupted", "read_run", "run_row", "run_text", "run_time", "unfinished",
]

JOB_COLUMNS = "job_id, definition, state, next_run_time, last_run_at, last_status, created_seq, progress"
"""The columns of a job row, in the order `RowCodec.jobs` reads them."""


def run_time(record: RunRecord) -> float | None:
    """When a run happened, as a POSIX timestamp: its start, else when it was due, else when it ended.

    Stored beside each record, so that history can be filtered by time across jobs.
    """
    moment = record.started_at or record.scheduled_time or record.finished_at
    return None if moment is None else moment.timestamp()


def run_row(record: RunRecord) -> tuple[str, str, str, str, float | None, str]:
    """A run's row: (run_id, job_id, status, record, at, agentool)."""
    return record.run_id, record.job_id, record.status, run_text(record), run_time(record), record.agentool_name


def run_text(record: RunRecord) -> str:
    """A run record as stored: its JSON."""
    return record.model_dump_json()


def read_run(text: str) -> RunRecord:
    """A run record from its stored JSON."""
    return RunRecord.model_validate_json(text)


_EVENT_TRIGGERS = frozenset(get_args(EventTrigger))


def interrupted(record: RunRecord, note: str) -> RunRecord:
    """A stored `running` record, marked `interrupted` with `note` (its scheduler stopped without finishing it); a
    run an event started keeps what its note said of that event first (the queue message, the run it followed). A
    request that never started loses the trigger data it carried (scheduler/run_requests.py)."""
    if record.trigger in _EVENT_TRIGGERS and record.note:
        note = f"{record.note}; {note}"
    return record.model_copy(update={"status": "interrupted", "note": note,
                                     **({"result": None} if record.started_at is None else {})})


def unfinished(
    rows: Sequence[tuple[int, str]], note: str, keep_unstarted: Collection[str]
) -> tuple[list[tuple[int, RunRecord]], list[RunRecord]]:
    """`interrupt_unfinished` on the rows (seq, record) of the `running` runs: the rows to mark `interrupted` (seq,
    record as marked), and every record as it is then, in the rows' order. A run of a trigger in `keep_unstarted`
    that never started stays as it is (still `running`)."""
    changed: list[tuple[int, RunRecord]] = []
    records: list[RunRecord] = []
    for seq, text in rows:
        record = read_run(text)
        if record.started_at is None and record.trigger in keep_unstarted:
            records.append(record)
            continue
        record = interrupted(record, note)
        changed.append((seq, record))
        records.append(record)
    return changed, records


class RowCodec:
    """Jobs and bookkeeping to and from their rows, with times as the database driver takes them (datetimes)."""

    def time(self, value: datetime | None) -> Any:
        """A time as a time column is given it."""
        return value

    def moment(self, value: Any) -> datetime | None:
        """A time column's value as a datetime."""
        return value

    def new_job(self, job: Job) -> tuple[str, str, str, Any]:
        """The row of a job being inserted: (job_id, definition, state, next_run_time)."""
        return job.job_id, job.definition.model_dump_json(), job.state, self.time(job.next_run_time)

    def changed_job(self, job: Job) -> tuple[str, str, Any, str]:
        """What `update_job` sets: (definition, state, next_run_time), then the job_id it is set on."""
        return job.definition.model_dump_json(), job.state, self.time(job.next_run_time), job.job_id

    def books(self, books: Bookkeeping) -> tuple[str, str, Any, Any, str | None, str | None]:
        """A bookkeeping row: (job_id, state, next_run_time, last_run_at, last_status, progress)."""
        return (books.job_id, books.state, self.time(books.next_run_time), self.time(books.last_run_at),
                books.last_status, books.progress)

    def jobs(self, rows: Sequence[Sequence[Any]], source: str) -> list[Job]:
        """The jobs of rows of JOB_COLUMNS; an error names the job and `source` (where the rows were read)."""
        jobs = []
        for row, data in zip(rows, self._definitions(rows, source), strict=True):
            try:
                # The schedule first: its loader names what is wrong with a stored schedule.
                definition = JobDefinition.model_validate({**data, "schedule": load_schedule(data["schedule"])})
            except Exception as exc:
                exc.add_note(f"while loading job {row[0]!r} from {source}")
                raise
            job = Job(definition, row[2], self.moment(row[3]), self.moment(row[4]), row[5])
            if row[7] is not None:
                job.load_progress(row[7])
            jobs.append(job)
        return jobs

    @staticmethod
    def _definitions(rows: Sequence[Sequence[Any]], source: str) -> list[Any]:
        # One decode call for the whole page lets the decoder share equal keys between rows: loading
        # 100,000 jobs is about twice as fast, and each key is kept once instead of once per job.
        texts = [r[1] for r in rows]
        try:
            decoded: list[Any] = json.loads("[" + ",".join(texts) + "]")
            if len(decoded) == len(texts):
                return decoded
        except json.JSONDecodeError:
            pass
        definitions = []
        for job_id, text, *_ in rows:
            try:
                definitions.append(json.loads(text))
            except json.JSONDecodeError as exc:
                exc.add_note(f"while loading job {job_id!r} from {source}")
                raise
        return definitions


class TextTimes(RowCodec):
    """The codec of a database without a time type (SQLite): times as ISO 8601 text, with their UTC offset."""

    def time(self, value: datetime | None) -> str | None:
        return None if value is None else value.isoformat()

    def moment(self, value: Any) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)
