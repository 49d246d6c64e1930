"""`mcp-scheduler audit`: the audit log of a store (who changed what, when, from which client), read directly
(`store.read_store`: no scheduler starts), oldest first; a table, or with --json the entries as JSON. The CLI is the
machine's operator: it reads every principal's entries."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from ..audit import AuditEntry, AuditQuery
from ..schedules import local_timezone_name, parse_moment
from ..store import read_store
from .tables import format_table, terminal_width, when, write_json

__all__ = ["AUDIT_HEADERS", "print_audit"]

AUDIT_HEADERS = ("SEQ", "WHEN", "WHO", "CLIENT", "OPERATION", "JOB", "FIELDS")


def _row(entry: AuditEntry, zone: str) -> list[str]:
    fields = json.dumps(entry.fields, ensure_ascii=False, separators=(",", ":"), default=str) if entry.fields else "-"
    return [str(entry.seq), when(entry.at, zone), entry.subject, entry.client or "-", entry.operation,
            entry.job_id or "-", fields]


async def print_audit(
    database: str, *, job_id: str | None = None, since: str | None = None, limit: int = 50,
    timezone: str | None = None, as_json: bool = False, out: TextIO | None = None,
) -> int:
    """Print the audit log's entries, oldest first: of one job (`job_id`), since a time (an ISO time read in
    `timezone`, or a duration ago such as '1h'); the newest `limit` of them."""
    out = out or sys.stdout
    zone = timezone or local_timezone_name()
    start = parse_moment(since, "--since", zone) if since else None
    entries: list[AuditEntry] = []
    async with read_store(database) as store:
        after = 0
        while page := await store.read_audit(AuditQuery(after, None, job_id, start, 1000)):
            entries = (entries + page)[-limit:]
            after = page[-1].seq or after
            if len(page) < 1000:
                break
    if as_json:
        write_json([entry.model_dump(mode="json") for entry in entries], out)
        return 0
    out.write(format_table(AUDIT_HEADERS, [_row(e, zone) for e in entries], width=terminal_width(out), flex=(6, 5)))
    whose = f" of job {job_id}" if job_id else ""
    more = f" (the newest {limit}; --limit N for more)" if len(entries) == limit else ""
    out.write(f"{len(entries)} change(s){whose}{more}, oldest first; times in {zone}\n")
    return 0
