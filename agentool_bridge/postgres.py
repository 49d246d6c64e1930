"""What every PostgreSQL client of this project shares: masking passwords, naming a server in messages,
the wording of a failed connection, and the connection options.

Imported only when a PostgreSQL URL is used (by the toolkits' PostgreSQL database and by
`mcp_scheduler.store.postgres`): psycopg is imported here, so a process on SQLite never loads it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

__all__ = [
    "ADVISORY_XACT_LOCK",
    "CONNECT_TIMEOUT",
    "KEEPALIVES",
    "SCHEMA_LOCK",
    "cannot_connect",
    "channel",
    "mask_password",
    "no_schema",
    "where",
]

CONNECT_TIMEOUT = 10  # seconds
# TCP keepalives: a connection that a router or firewall dropped silently is found out within about a
# minute (a LISTEN connection is otherwise idle forever, and would wait for notifications in vain).
KEEPALIVES: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}

# Transaction-scoped advisory locks of this project take two int4 keys: (hashtext(current_schema()), which),
# a key space apart from the one-bigint keys of the runner lease. `which` values in use:
# 0 creating tables (any store), 1 scheduler_changes, 2 scheduler_runs, 3 agentool_queue_events,
# 4 scheduler_jobs inserts under a --max-jobs limit, 5 scheduler_audit.
SCHEMA_LOCK = 0
ADVISORY_XACT_LOCK = "SELECT pg_advisory_xact_lock(hashtext(current_schema()), %s::int)"


def channel(prefix: str, schema: str) -> str:
    """The LISTEN/NOTIFY channel of `prefix` for one schema (stores in other schemas are not woken)."""
    return f"{prefix}_{hashlib.sha1(schema.encode()).hexdigest()[:16]}"  # at most 63 bytes


def mask_password(url: str) -> str:
    """`url` with any password replaced by `***` (URL or key=value connection string)."""
    masked = re.sub(r"(password=)[^&\s]*", r"\1***", url)
    parts = urlsplit(masked)
    if parts.scheme.startswith("postgres") and parts.password is not None:
        host = parts.netloc.rsplit("@", 1)[1]
        user = quote(parts.username or "", safe="")
        masked = urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    return masked


def where(url: str) -> str:
    """host:port/dbname of a connection string, for messages (never the password)."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return mask_password(url)
    host = str(info.get("host") or "localhost")
    return f"{host}:{info.get('port') or 5432}/{info.get('dbname') or info.get('user') or ''}"


def cannot_connect(url: str, exc: BaseException) -> str:
    """The message of a failed connection: where, why, and how to check the server."""
    place = where(url)
    host, _, rest = place.partition(":")
    return (
        f"Cannot connect to PostgreSQL at {place}: {str(exc).strip()}. Check that the server runs and "
        f"accepts connections (`pg_isready -h {host} -p {rest.split('/')[0]}`) and that the URL's user, "
        "password and database are right."
    )


def no_schema(url: str) -> str:
    """The message for a search_path none of whose schemas exists."""
    return (
        f"No schema of the search_path exists in {where(url)}: create it "
        "(CREATE SCHEMA name) or fix the URL's options=-csearch_path=..."
    )
