"""Runs in flight (between the commit of their start and their record) and why a run's task was cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ..jobs import RunTrigger

__all__ = ["Flight", "Flights"]


@dataclass(slots=True, eq=False)
class Flight:
    """A run between the commit of its start and its record: what `stop_runs` cancels (cancel_job, update_job,
    stop_scheduler), with the note its record gets; `recorded` is resolved once the record is handed over."""

    job_id: str
    task: asyncio.Task[Any]
    trigger: RunTrigger | None = None
    recorded: asyncio.Future[None] | None = None
    why: str | None = None  # set when stopped
    uncancelled: bool = False
    run_id: str | None = None


class Flights:
    """The runs in flight by job, and the notes of tasks cancelled on purpose (stop_runs, cancel_other, a stop)."""

    def __init__(self) -> None:
        self._flights: dict[str, set[Flight]] = {}
        self.cancel_notes: dict[asyncio.Task[Any], str] = {}  # why cancel_other (or a stop) cancelled a task
        self.stopped: dict[asyncio.Task[Any], str] = {}  # fires' tasks whose run stop_runs stopped

    def cancel(self, task: asyncio.Task[Any], note: str | None) -> None:
        """Cancel a fire's task, with the note its record gets (None: the default of where it is)."""
        if note is not None:
            self.cancel_notes[task] = note
        task.cancel()

    def take_off(self, job_id: str, trigger: RunTrigger | None = None, run_id: str | None = None) -> Flight | None:
        """Note the current task's run of `job_id` as in flight (until `land`)."""
        task = asyncio.current_task()
        if task is None:
            return None
        flight = Flight(job_id, task, trigger, run_id=run_id)
        flights = self._flights.get(job_id)
        if flights is None:
            self._flights[job_id] = {flight}
        else:
            flights.add(flight)
        return flight

    def land(self, flight: Flight | None) -> None:
        """The run is recorded (or on its way out by an exception): it is no longer in flight."""
        if flight is None:
            return
        flights = self._flights.get(flight.job_id)
        if flights is not None:
            flights.discard(flight)
            if not flights:
                del self._flights[flight.job_id]
        if flight.why is not None:
            if not flight.uncancelled:  # the AgenTool swallowed the cancellation and finished
                flight.uncancelled = True
                flight.task.uncancel()
            if flight.recorded is not None and not flight.recorded.done():
                flight.recorded.set_result(None)

    def absorbed(self, flight: Flight | None, trigger: RunTrigger) -> bool:
        """After a cancellation of a run and its record: True if `stop_runs` asked for it alone (the caller then
        goes on with the record: a run_now answers with it, a fire's task ends); False to propagate it."""
        if flight is None or flight.why is None:
            return False
        flight.uncancelled = True
        if flight.task.uncancel() > 0:
            return False  # cancelled for another reason too (the scheduler closing): that one goes on
        if trigger in ("schedule", "catch_up"):
            self.stopped[flight.task] = flight.why
        return True

    def note(self, default: str, flight: Flight | None = None) -> str:
        """Why the current task was cancelled: `stop_runs`'s note, cancel_other's, else `default` (the scheduler
        shut down)."""
        if flight is not None and flight.why is not None:
            return flight.why
        task = asyncio.current_task()
        return (self.cancel_notes.get(task) if task is not None else None) or default

    def stop(
        self, job_id: str | None, reason: str, triggers: Collection[RunTrigger] | None = None
    ) -> list[asyncio.Future[None]]:
        """Cancel the runs in flight of `job_id` (None: of every job; `triggers`: only those runs); each is
        recorded `cancelled` with the note "<reason> while this run was in progress". Returns futures resolved as
        each is recorded (to wait for before the record is committed). The current task's own run, if any, is
        left alone."""
        if job_id is None:
            flights = [f for group in self._flights.values() for f in group]
        else:
            flights = list(self._flights.get(job_id, ()))
        if triggers is not None:
            flights = [f for f in flights if f.trigger in triggers]
        return self._cancel(flights, reason)

    def run_ids(self) -> set[str]:
        """The run ids of the runs in flight."""
        return {f.run_id for group in self._flights.values() for f in group if f.run_id is not None}

    def stop_run(self, run_id: str, reason: str) -> list[asyncio.Future[None]]:
        """Cancel the run `run_id` if it is in flight, as `stop` does (an empty list if it is not)."""
        return self._cancel([f for group in self._flights.values() for f in group if f.run_id == run_id], reason)

    def _cancel(self, flights: list[Flight], reason: str) -> list[asyncio.Future[None]]:
        current = asyncio.current_task()
        waits: list[asyncio.Future[None]] = []
        for flight in flights:
            if flight.task is current:
                continue
            if flight.recorded is None:
                flight.recorded = asyncio.get_running_loop().create_future()
            if flight.why is None:
                flight.why = f"{reason} while this run was in progress"
                flight.task.cancel()
            waits.append(flight.recorded)
        return waits
