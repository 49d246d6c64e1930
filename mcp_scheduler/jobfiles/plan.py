"""What applying a jobs file would do to a store: the jobs to create, update (with the fields that change), adopt
(the same fields, not yet managed by this file), leave unchanged, and, with prune, cancel."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import JobsFileError
from ..jobs import Job
from .entries import Entry, spec_of

__all__ = ["Change", "Plan", "plan_changes"]

Action = Literal["create", "update", "adopt", "unchanged", "prune"]


@dataclass(frozen=True)
class Change:
    """One job's part of a plan: its action, and for an update the fields that change (name: (now, then))."""

    action: Action
    job_id: str
    entry: Entry | None = None
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def describe(self) -> str:
        """The change in one line (an update: each field with its old and new value)."""
        if self.action == "update":
            shown = "; ".join(f"{name}: {_show(old)} -> {_show(new)}" for name, (old, new) in self.fields.items())
            return f"update     {self.job_id}  ({shown})"
        words = {"create": "create", "adopt": "adopt", "unchanged": "unchanged", "prune": "prune"}[self.action]
        note = {"adopt": "  (same fields; from now on managed by this file)", "prune": "  (no longer in the file)"}
        return f"{words:<10} {self.job_id}{note.get(self.action, '')}"


def _show(value: Any) -> str:
    import json

    text = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return text if len(text) <= 80 else text[:79] + "…"


@dataclass(frozen=True)
class Plan:
    """The changes in file order, then the prunes."""

    identity: str
    changes: list[Change]

    def count(self, action: Action) -> int:
        return sum(1 for change in self.changes if change.action == action)

    @property
    def changes_anything(self) -> bool:
        return any(change.action != "unchanged" for change in self.changes)

    def summary(self) -> str:
        """`2 to create, 1 to update, ...` (the actions that occur)."""
        parts = [f"{self.count(a)} {a}" for a in ("create", "update", "adopt", "unchanged", "prune") if self.count(a)]
        return ", ".join(parts) or "no jobs"


def plan_changes(identity: str, entries: Iterable[Entry], stored: dict[str, Job], *, prune: bool) -> Plan:
    """What applying the entries of the file known as `identity` does to the `stored` jobs (by job_id).

    `JobsFileError` when an entry names a job that another jobs file manages: a file never takes another's jobs."""
    changes: list[Change] = []
    named: set[str] = set()
    for entry in entries:
        named.add(entry.job_id)
        job = stored.get(entry.job_id)
        if job is None:
            changes.append(Change("create", entry.job_id, entry))
            continue
        owner = job.definition.managed_by
        if owner is not None and owner != identity:
            raise JobsFileError(
                f"job {entry.index} ({entry.job_id!r}) is managed by another jobs file, {owner!r}: remove it from that "
                "file and apply it with --prune first, or give this entry another job_id."
            )
        now = spec_of(job.definition)
        differ = {name: (now[name], value) for name, value in entry.spec.items() if now[name] != value}
        if differ:
            changes.append(Change("update", entry.job_id, entry, differ))
        else:
            changes.append(Change("unchanged" if owner == identity else "adopt", entry.job_id, entry))
    if prune:
        changes += [Change("prune", job_id) for job_id, job in stored.items()
                    if job.definition.managed_by == identity and job_id not in named]
    return Plan(identity, changes)
