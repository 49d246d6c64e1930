"""The run path, put together: admission -> one run -> history and delivery -> the job table -> the engine."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from agentool_bridge import AgenToolInjector
from agentool_bridge.toolkits import QueueStore

from ..clocks import Clock, ClockWatch
from ..events import EventBus
from ..history import HistoryWriter
from ..jobs import RunTrigger
from .admission import Admission
from .catchup import CatchUp
from .delivery import Delivery
from .flights import Flights
from .gaps import Gaps
from .lanes import JobLanes
from .not_run import NotRunRecords
from .ports import EnginePort, JobPauser
from .retries import Retries
from .retry_policy import RetryPolicy
from .run import Execution
from .slots import RunSlots

if TYPE_CHECKING:
    from ..scheduler.table import JobTable

__all__ = ["RunLimits", "RunPath"]


@dataclass(frozen=True, slots=True)
class RunLimits:
    """The operator's limits of the run path: runs at a time (--max-concurrent-runs), runs of one job in flight
    (--max-runs-per-job) and the catch-up window of fires due while nothing ran (seconds)."""

    max_concurrent_runs: int
    max_runs_per_job: int
    catchup_window: float


class RunPath:
    """Every collaborator of the run path, each given what it needs here, once.

    The engine calls `admission.on_due`, `admission.on_skipped` and `slots.room`; the scheduler reads
    `execution.running`, stops runs (`flights.stop`) and arms retries (`retries`). `claim` claims a fire through
    the lease (PostgreSQL); None where holding the lease is the claim: a fire then goes on while `lease_held()`.
    """

    def __init__(
        self,
        *,
        table: JobTable,
        history: HistoryWriter,
        events: EventBus,
        engine: EnginePort,
        pauser: JobPauser,
        injector: AgenToolInjector,
        queues: Callable[[], QueueStore] | None,
        environ: Mapping[str, str],
        secret_names: Collection[str],
        limits: RunLimits,
        claim: Callable[[str, datetime], Awaitable[bool]] | None,
        lease_held: Callable[[], bool] | None,
        watch: ClockWatch,
        clock: Clock,
    ) -> None:
        self.gaps = Gaps(watch, engine, clock)
        self.slots = RunSlots(limits.max_concurrent_runs, engine, clock)
        self.lanes = JobLanes(table, limits.max_runs_per_job)
        self.flights = Flights()
        self.not_run = NotRunRecords(table, history, events, self.gaps, clock)
        delivery = Delivery(queues, clock)
        self.policy = RetryPolicy(table, clock)
        self.execution = Execution(
            injector=injector, environ=environ, secret_names=secret_names, table=table, history=history,
            events=events, delivery=delivery, flights=self.flights, policy=self.policy, engine=engine,
            lease_held=lease_held, clock=clock,
        )
        self.retries = Retries(
            table=table, execution=self.execution, slots=self.slots, lanes=self.lanes, not_run=self.not_run,
            history=history, pauser=pauser, claim=claim, clock=clock,
        )
        catch_up = CatchUp(gaps=self.gaps, not_run=self.not_run, delivery=delivery, slots=self.slots,
                           window=limits.catchup_window, clock=clock)
        self.admission = Admission(
            table=table, gaps=self.gaps, catch_up=catch_up, lanes=self.lanes, slots=self.slots, flights=self.flights,
            not_run=self.not_run, execution=self.execution, retries=self.retries, history=history, claim=claim,
            clock=clock,
        )

    @property
    def running(self) -> Counter[str]:
        """Runs in progress per job."""
        return self.execution.running

    def forget(self, job_id: str) -> None:
        """A job is gone: drop its not-run windows and its retry timer, wake its runs waiting for room."""
        self.retries.disarm(job_id)
        self.lanes.wake(job_id)
        self.not_run.forget(job_id)

    def stop_runs(
        self, job_id: str | None, reason: str, triggers: Collection[RunTrigger] | None = None
    ) -> list[asyncio.Future[None]]:
        """See `Flights.stop`."""
        return self.flights.stop(job_id, reason, triggers)
