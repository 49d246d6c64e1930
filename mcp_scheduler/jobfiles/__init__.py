"""Jobs as files: `mcp-scheduler apply FILE` creates, updates and (with --prune) removes the jobs a TOML, YAML or
JSON file names, through the scheduler's own commands; `mcp-scheduler export` writes the stored jobs in the same
format. Jobs from a file are marked as managed by it (`JobDefinition.managed_by`)."""

from __future__ import annotations

from .apply import JobsFile, apply_plan, read_jobs_file
from .entries import ENTRY_FIELDS, Entry, entry_of, read_entries, spec_of
from .export import export_document, stored_jobs
from .formats import dump_document, file_format, load_document
from .plan import Change, Plan, plan_changes

__all__ = [
    "ENTRY_FIELDS",
    "Change",
    "Entry",
    "JobsFile",
    "Plan",
    "apply_plan",
    "dump_document",
    "entry_of",
    "export_document",
    "file_format",
    "load_document",
    "plan_changes",
    "read_entries",
    "read_jobs_file",
    "spec_of",
    "stored_jobs",
]
