"""The SQLite store's tables: jobs, runs and the change feed (here), the audit log, the inbound webhooks and the
condition triggers (their modules), and the temporary table a bookkeeping batch goes through; `SQLITE_TABLES` creates
them all (each `IF NOT EXISTS`)."""

from __future__ import annotations

from .audit_table import SQLITE_AUDIT_SCHEMA
from .conditions_table import SQLITE_CONDITIONS_SCHEMA
from .hooks_table import SQLITE_HOOKS_SCHEMA

__all__ = ["SQLITE_TABLES"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scheduler_jobs (
    job_id TEXT PRIMARY KEY,
    created_seq INTEGER NOT NULL,
    definition TEXT NOT NULL,
    state TEXT NOT NULL,
    next_run_time TEXT,
    last_run_at TEXT,
    last_status TEXT
);
CREATE TABLE IF NOT EXISTS scheduler_runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL,
    writer TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS scheduler_runs_by_job ON scheduler_runs (job_id, seq);
CREATE TABLE IF NOT EXISTS scheduler_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    writer TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS scheduler_jobs_by_seq ON scheduler_jobs (created_seq);
"""

_BOOKS_TABLE = """
CREATE TEMP TABLE IF NOT EXISTS books (
    job_id TEXT PRIMARY KEY, state TEXT, next_run_time TEXT, last_run_at TEXT, last_status TEXT, progress TEXT
)
"""

SQLITE_TABLES = _SCHEMA + SQLITE_AUDIT_SCHEMA + SQLITE_HOOKS_SCHEMA + SQLITE_CONDITIONS_SCHEMA + _BOOKS_TABLE
