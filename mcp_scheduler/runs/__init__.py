"""The run path: admission (lanes, overlap policies, run slots, catch-up), one run, retries, records of fires
that did not run, and delivery of outcomes to queues and the inbox. `RunPath` puts them together."""

from .admission import BUFFERED_LOST, CANCELLED_BY_NEXT, REPLACED_BY_NEXT
from .path import RunLimits, RunPath
from .ports import EnginePort, JobPauser
from .run import START_NOT_WRITTEN, Taken
from .targets import AdHocRun, RunTarget, concurrency_limit, engine_instances

__all__ = [
    "BUFFERED_LOST",
    "CANCELLED_BY_NEXT",
    "REPLACED_BY_NEXT",
    "START_NOT_WRITTEN",
    "AdHocRun",
    "EnginePort",
    "JobPauser",
    "RunLimits",
    "RunPath",
    "RunTarget",
    "Taken",
    "concurrency_limit",
    "engine_instances",
]
