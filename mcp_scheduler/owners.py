"""Owners: who a job belongs to, the one check of who may see and change it, and who its runs act as.

A job records the subject and client of the principal that created it (`acting()` when it is scheduled). Without
`scheduler:admin`, a principal sees and changes only the jobs it created: every other job is "not found" to it, so
that nothing tells it the job exists. Jobs stored before jobs kept an owner belong to admins only.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Any

from .errors import TooManyJobsError
from .jobs import Job, JobDefinition
from .principals import LOCAL, Principal, acting

__all__ = ["may_see", "owner_fields", "principal_quota", "run_principal", "sees_owners", "visible"]


def owner_fields() -> dict[str, Any]:
    """The owner of a job the acting principal creates now: its subject, its client's name, and whether it is an
    admin (a token's: `local` is the operator either way)."""
    principal = acting()
    admin = {"owner_admin": True} if principal.admin and principal.subject != LOCAL.subject else {}
    return {"owner": principal.subject, "owner_client": principal.client, **admin}


def run_principal(target: Any) -> Principal:
    """Who a run acts as (what the `scheduler` AgenTool lets it see and change): a job's owner, without admin, unless
    the operator (`local`) made it or it has no owner; a run of no job (run_now of a job kind) acts as its caller."""
    if not isinstance(target, JobDefinition):
        return acting()
    if target.owner is None or target.owner == LOCAL.subject:
        return LOCAL
    return Principal(target.owner, target.owner_client)


def sees_owners(principal: Principal, owners: Collection[str | None]) -> bool:
    """True if `principal` may see a job that one of `owners` created: an admin always, another principal when it is
    one of them (None, the owner of a job stored without one, is nobody's: such jobs are the admins')."""
    return principal.admin or principal.subject in owners


def may_see(job: Job, principal: Principal | None = None) -> bool:
    """True if `principal` (default: the acting one) may see and change `job`: an admin, or the job's creator."""
    return sees_owners(principal or acting(), (job.definition.owner,))


def visible(jobs: Iterable[Job]) -> Iterator[Job]:
    """The jobs the acting principal may see (all of them for an admin, without a test per job)."""
    principal = acting()
    if principal.admin:
        return iter(jobs)
    subject = principal.subject
    return (job for job in jobs if job.definition.owner == subject)


def principal_quota(jobs: Iterable[Job], limit: int | None, adding: int = 1) -> None:
    """Raise `TooManyJobsError` if the acting principal (not an admin: admins have the store's `max_jobs`) would
    hold more than `limit` jobs after adding `adding` (counted among the jobs this process knows of)."""
    principal = acting()
    if limit is None or principal.admin:
        return
    held = sum(1 for _ in visible(jobs))
    if held + adding > limit:
        raise TooManyJobsError(held, limit, adding, per_principal=principal.subject)
