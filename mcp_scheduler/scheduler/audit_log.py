"""AuditLog: the entries of the changes of jobs and of the scheduler, built as the acting principal makes them and
written with the change (the store's write takes the entry, in the change's transaction) or alone, and read back as
the acting principal may (admins every entry, others their own)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from ..audit import AuditEntry, AuditOperation, AuditQuery, audit_fields
from ..clocks import Clock
from ..principals import acting
from ..store import SchedulerStore

__all__ = ["AuditLog"]

logger = logging.getLogger(__name__)


class AuditLog:
    """Builds an entry per change as the acting principal (`principals.acting()`), which the change's store write
    inserts in its transaction (`entry`), or appends one alone for a change without a store write (`record`); reads
    them back."""

    def __init__(self, store: SchedulerStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def entry(self, operation: AuditOperation, job_id: str | None = None, **fields: Any) -> AuditEntry:
        """The entry of what the acting principal does now: `operation` of `job_id` with the `fields` it gave (None
        values left out), for the store write that makes the change (`audit=`)."""
        principal = acting()
        return AuditEntry(
            at=self._clock.now(),
            subject=principal.subject,
            client=principal.client,
            operation=operation,
            job_id=job_id,
            fields=audit_fields({k: v for k, v in fields.items() if v is not None}),
        )

    async def record(self, operation: AuditOperation, job_id: str | None = None, **fields: Any) -> None:
        """Append the entry of a change that has no store write of its own (run_now, backfill, apply, start and
        stop), in a transaction of its own (see `entry`). A store that fails now is logged, not raised: the change
        is under way."""
        entry = self.entry(operation, job_id, **fields)
        principal = acting()
        try:
            await self._store.append_audit([entry])
        except Exception:
            logger.exception(
                "The audit entry of %s %s by %s could not be written", operation, job_id or "", principal.subject
            )

    async def read(
        self,
        *,
        after: int = 0,
        job_id: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        newest: bool = False,
    ) -> list[AuditEntry]:
        """Entries after `after` (a seq), oldest first (`newest`: the latest first), at most `limit`: every
        principal's for an admin, else the acting principal's own."""
        principal = acting()
        subject = None if principal.admin else principal.subject
        return await self._store.read_audit(AuditQuery(after, subject, job_id, since, limit, newest))
