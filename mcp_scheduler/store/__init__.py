"""Stores of jobs and run history: the `SchedulerStore` interface and its SQLite implementation."""

from .base import Bookkeeping, SchedulerStore
from .sqlite import SQLiteStore

__all__ = ["Bookkeeping", "SQLiteStore", "SchedulerStore"]
