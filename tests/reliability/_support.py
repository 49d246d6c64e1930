"""Helpers of the fault tests: a `sleeper` toolkit for server subprocesses, and reading their databases.

`--toolkit tests.reliability._support:create_sleeper` (from the repository root) gives a server the
`sleeper` AgenTool: it appends `<token> start` to a file, sleeps, then appends `<token> end` (with `mark_cut`,
`<token> cut` when the run is cancelled while it sleeps). The file tells how many times each run really happened,
whatever the server's own records say.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import anyio
from pydantic import Field

from agentool_bridge import BaseOperationInput, RoutingConfig, register_agentool


class SleeperInput(BaseOperationInput):
    """Sleeps for a while and writes down each start and end in a file."""

    operation: Literal["sleep"] = Field(description="Sleep.")
    seconds: float = Field(default=0.0, ge=0, le=60, description="How long.")
    token: str = Field(description="Written to the file at start and end.")
    path: str = Field(description="The file to append to.")
    mark_cut: bool = Field(default=False, description="Also write down a run cancelled while it sleeps.")


def _mark(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as marks:
        marks.write(line + "\n")


async def sleep(seconds: float, token: str, path: str, mark_cut: bool = False) -> dict[str, Any]:
    _mark(path, f"{token} start")
    try:
        await anyio.sleep(seconds)
    except BaseException:
        if mark_cut:
            _mark(path, f"{token} cut")
        raise
    _mark(path, f"{token} end")
    return {"token": token, "slept": seconds}


def create_sleeper() -> None:
    """The toolkit factory (`module:factory` for `--toolkit`)."""
    register_agentool(
        "sleeper",
        SleeperInput,
        RoutingConfig(operation_map={"sleep": ("sleep", lambda m: {"seconds": m.seconds, "token": m.token,
                                                                  "path": m.path, "mark_cut": m.mark_cut})}),
        [sleep],
    )


def marks(path: Path) -> list[tuple[str, str]]:
    """The (token, 'start' | 'end' | 'cut') lines the sleeper wrote, in order."""
    if not path.exists():
        return []
    return [tuple(line.rsplit(" ", 1)) for line in path.read_text(encoding="utf-8").splitlines() if line]  # type: ignore[misc]


def runs(database: Path | str) -> list[dict[str, Any]]:
    """Every stored run record, oldest first (read with a connection of its own; SQLite or PostgreSQL)."""
    if str(database).startswith("postgresql://"):
        import psycopg

        with psycopg.connect(str(database)) as pg:
            return [json.loads(text) for (text,) in pg.execute("SELECT record FROM scheduler_runs ORDER BY seq")]
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT record FROM scheduler_runs ORDER BY seq").fetchall()
    conn.close()
    return [json.loads(text) for (text,) in rows]


def jobs(database: Path) -> dict[str, dict[str, Any]]:
    """Every stored job by id: its state columns and definition."""
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "SELECT job_id, state, next_run_time, last_status, definition FROM scheduler_jobs"
        ).fetchall()
    conn.close()
    return {
        job_id: {"state": state, "next_run_time": next_run, "last_status": last, "definition": json.loads(text)}
        for job_id, state, next_run, last, text in rows
    }


NOT_RUN_RANGE = re.compile(r"^(\d+) fires (?:missed|skipped) from (\S+) to (\S+) \(one record for all")
"""The note of a record shared by several fires of one job that did not run (runs/not_run.py)."""


@dataclass(frozen=True)
class FireAccount:
    """A job's fires on its grid (every `period` from its first recorded fire to its last) against its records."""

    due: int  # grid points from the first recorded fire to the last
    accounted: int  # fires the records stand for: one per record, N for a record shared by N fires
    lost: list[str]  # grid points no record covers (a shared record covers its whole range)


def account_fires(records: list[dict[str, Any]], job_id: str, period_s: float) -> FireAccount:
    """Every due fire of an interval job must have run or be recorded missed, skipped or interrupted, once."""
    step = timedelta(seconds=period_s)
    covered: set[datetime] = set()
    accounted = 0
    for r in records:
        if r["job_id"] != job_id or not r["scheduled_time"]:
            continue
        first = datetime.fromisoformat(r["scheduled_time"])
        match = NOT_RUN_RANGE.match(r.get("note") or "")
        if match is None:
            covered.add(first)
            accounted += 1
            continue
        accounted += int(match.group(1))
        last = datetime.fromisoformat(match.group(3))
        while first <= last:
            covered.add(first)
            first += step
    if not covered:
        return FireAccount(0, 0, [])
    lost, when, due = [], min(covered), 0
    while when <= max(covered):
        due += 1
        if when not in covered:
            lost.append(when.isoformat())
        when += step
    return FireAccount(due, accounted, lost)


Status = Literal["running", "success", "error", "timeout", "missed", "skipped", "cancelled", "interrupted"]
