"""AuditLog: the changes of jobs and of the scheduler appended to the store's audit log, and read back as the acting
principal may (admins every entry, others their own)."""

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
    """Appends an entry per change, right after the change committed (the store's next transaction), as the
    acting principal (`principals.acting()`), and reads them back."""

    def __init__(self, store: SchedulerStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def record(self, operation: AuditOperation, job_id: str | None = None, **fields: Any) -> None:
        """Append what the acting principal did: `operation` of `job_id` with the `fields` it gave (None values
        left out). The change has committed: a store that fails now is logged, not raised."""
        principal = acting()
        entry = AuditEntry(
            at=self._clock.now(),
            subject=principal.subject,
            client=principal.client,
            operation=operation,
            job_id=job_id,
            fields=audit_fields({k: v for k, v in fields.items() if v is not None}),
        )
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
