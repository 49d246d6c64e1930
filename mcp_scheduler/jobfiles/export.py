"""`mcp-scheduler export`: stored jobs as a jobs file that `apply` takes back without a change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import JobNotFoundError
from ..jobs import Job
from ..store import read_store
from .entries import entry_of

__all__ = ["export_document", "stored_jobs"]


async def stored_jobs(database: str) -> dict[str, Job]:
    """Every job of the store, by job_id, in creation order (read without a scheduler)."""
    jobs: dict[str, Job] = {}
    async with read_store(database) as store:
        async for page in store.load_jobs():
            jobs.update((job.job_id, job) for job in page)
    return jobs


async def export_document(database: str, job_ids: Sequence[str] = ()) -> dict[str, Any]:
    """The jobs file of the store's jobs (those of `job_ids` only, in that order, when given; `JobNotFoundError`
    for one that does not exist). Completed one-time jobs are left out unless named. When every job exported is
    managed by one file that has a `name`, the document carries that name, so that applying it changes nothing."""
    jobs = await stored_jobs(database)
    if job_ids:
        missing = [job_id for job_id in job_ids if job_id not in jobs]
        if missing:
            raise JobNotFoundError(missing[0])
        chosen = [jobs[job_id] for job_id in dict.fromkeys(job_ids)]
    else:
        chosen = [job for job in jobs.values() if job.state != "completed"]
    document: dict[str, Any] = {}
    owners = {job.definition.managed_by for job in chosen}
    if len(owners) == 1 and (owner := owners.pop()) is not None and not owner.startswith("/"):
        document["name"] = owner
    document["jobs"] = [entry_of(job.definition) for job in chosen]
    return document
