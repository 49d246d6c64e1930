"""The scheduler: the service facade (`SchedulerService`, `ServiceConfig`), its commands, queries, extra runs
and replication of the store, and the job table that owns the jobs in memory."""

from .config import ServiceConfig
from .service import SchedulerService
from .table import JobTable

__all__ = ["JobTable", "SchedulerService", "ServiceConfig"]
