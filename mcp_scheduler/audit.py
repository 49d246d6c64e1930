"""The audit trail: who changed what, when, from which client (`AuditEntry`), and which entries a read returns
(`AuditQuery`, one SELECT on both stores).

Every change of a job or of the scheduler (create, update, pause, resume, cancel, run_now, backfill, apply,
stop_scheduler, start_scheduler, create_hook, remove_hook) has an entry (`scheduler.audit_log.AuditLog`), written in
the change's own transaction where the change is a store write (both commit or neither). An entry names
the fields the change gave, with their values as the job stores them (secrets as their `!env:NAME` references;
a long value clipped); input data is never resolved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python

from agentool_bridge.redaction import scrub

from .timestamps import Timestamp

__all__ = ["AuditEntry", "AuditOperation", "AuditQuery", "audit_fields", "audit_row", "read_audit_row"]

AuditOperation = Literal[
    "create",
    "update",
    "pause",
    "resume",
    "cancel",
    "run_now",
    "backfill",
    "apply",
    "stop_scheduler",
    "start_scheduler",
    "create_hook",
    "remove_hook",
]
VALUE_CHARS = 2000
"""Most characters of one field's value (its JSON) kept in an entry."""
_JSON = json.JSONEncoder(default=str, ensure_ascii=False)  # json.dumps with options builds an encoder per call


class AuditEntry(BaseModel):
    """One change: who (subject and client), when, what (operation, job, the fields it gave)."""

    model_config = ConfigDict(defer_build=True)  # built at the first change, not at start

    seq: int | None = Field(default=None, description="Position in the audit log (None until stored).")
    at: Timestamp = Field(description="When the change was made (its entry is committed with it).")
    subject: str = Field(description="Who: the token's subject (`local` for stdio, the CLI, the AgenTool face).")
    client: str | None = Field(default=None, description="The MCP client's name, when it gave one.")
    operation: AuditOperation = Field(description="What was done.")
    job_id: str | None = Field(default=None, description="The job changed (None for the scheduler itself).")
    fields: dict[str, Any] = Field(
        default_factory=dict,
        description="The fields the change gave, with their values as stored (secrets as `!env:NAME`; clipped).",
    )


def audit_fields(values: dict[str, Any]) -> dict[str, Any]:
    """`values` as an entry keeps them: scrubbed of the secrets revealed to the run in progress, each JSON value
    longer than VALUE_CHARS replaced by its start (a string ending with '...')."""
    plain: dict[str, Any] = scrub(to_jsonable_python(values))
    if len(_JSON.encode(plain)) <= VALUE_CHARS:  # the usual case: no value is longer than all of them together
        return plain
    kept: dict[str, Any] = {}
    for name, value in plain.items():
        text = _JSON.encode(value)
        kept[name] = value if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 3] + "..."
    return kept


def audit_row(entry: AuditEntry) -> tuple[float, str, str | None, str, str | None, str]:
    """An entry's row: (at as POSIX seconds, subject, client, operation, job_id, fields as JSON)."""
    fields = _JSON.encode(entry.fields)
    return entry.at.timestamp(), entry.subject, entry.client, entry.operation, entry.job_id, fields


def read_audit_row(row: tuple[Any, ...]) -> AuditEntry:
    """An entry from its row as `AuditQuery.statement` selects it: (seq, at, subject, client, operation, job_id,
    fields)."""
    seq, at, subject, client, operation, job_id, fields = row
    return AuditEntry(
        seq=int(seq),
        at=datetime.fromtimestamp(float(at), UTC),
        subject=subject,
        client=client,
        operation=operation,
        job_id=job_id,
        fields=json.loads(fields),
    )


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which entries a read returns, oldest first: after `after` (a seq: the cursor of the next page), of one
    `subject` (None: everyone's), one `job_id`, since a time; at most `limit`; with `newest`, the latest first."""

    after: int = 0
    subject: str | None = None
    job_id: str | None = None
    since: datetime | None = None
    limit: int = 100
    newest: bool = False

    def statement(self, mark: str) -> tuple[str, list[object]]:
        """The SELECT and its parameters; `mark` is the driver's placeholder (`?` or `%s`)."""
        where, params = [f"seq > {mark}"], list[object]([self.after])
        for column, op, value in (
            ("subject", "=", self.subject),
            ("job_id", "=", self.job_id),
            ("at", ">=", None if self.since is None else self.since.timestamp()),
        ):
            if value is not None:
                where.append(f"{column} {op} {mark}")
                params.append(value)
        return (
            "SELECT seq, at, subject, client, operation, job_id, fields FROM scheduler_audit "
            f"WHERE {' AND '.join(where)} ORDER BY seq{' DESC' if self.newest else ''} LIMIT {mark}",
            [*params, self.limit],
        )
