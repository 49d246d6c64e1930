"""Stores of jobs and run history: the `SchedulerStore` interface, its SQLite implementation, and the store
a database string names (`store_for`; `read_store` opens an existing one).

`PostgresStore` (mcp_scheduler.store.postgres) is reached lazily, as `mcp_scheduler.store.PostgresStore`
or by importing its module: psycopg is loaded only when it is used, never on the SQLite path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .backend import read_store, require_database, store_for
from .base import Bookkeeping, FencedStore, SchedulerStore
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .postgres import PostgresStore as PostgresStore

__all__ = ["Bookkeeping", "FencedStore", "SQLiteStore", "SchedulerStore", "read_store", "require_database", "store_for"]


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        from .postgres import PostgresStore as PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
