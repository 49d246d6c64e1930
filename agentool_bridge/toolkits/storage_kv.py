"""The `storage_kv` AgenTool: a key-value store of JSON values with optional expiry.

Values live in SQLite (a file when a database path is given, otherwise a private in-memory
database) or in PostgreSQL when the database is a `postgresql://` URL; table `agentool_kv`,
other tables are never touched. A key
whose time to live has passed is treated as absent everywhere and deleted when next seen.
It is also what `!ref:storage_kv:<key>` references resolve against (see the injector).

Keys belong to principals as queue names do (`namespaces.py`): inside a scheduled run the AgenTool uses the run's
namespace (`RunInfo.namespace`, its job's owner's), so that `report` is stored as `~token:alice/report` and `keys`
lists that namespace's keys alone, under the names its owner gave. Without a namespace (the operator's and admins'
runs, and calls outside a run) keys are the shared ones, as stored before keys had owners, and every key is listed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, JsonValue, field_validator, model_validator

from ..context import current_run
from ..injector import get_injector
from ..models import BaseOperationInput, RoutingConfig
from ..redaction import scrub, scrub_text
from ..registry import AgenTool, AgenToolRegistry
from ._common import Name, ToolkitOutput, check_json, check_name, isoformat, require_fields
from ._db import open_database
from .errors import KeyNotFoundError
from .namespaces import stored_name, used_name

__all__ = ["AGENTOOL_NAME", "KeyNotFoundError", "KVStore", "StorageKVInput", "create_storage_kv_agent"]

AGENTOOL_NAME = "storage_kv"
_TABLE = "agentool_kv"

_REQUIRED: dict[str, tuple[str, ...]] = {
    "get": ("key",),
    "set": ("key", "value"),
    "delete": ("key",),
    "exists": ("key",),
}


class StorageKVInput(BaseOperationInput):
    """A key-value store of JSON values: get, set (with an optional time to live), delete, exists, keys."""

    operation: Literal["get", "set", "delete", "exists", "keys"] = Field(
        description="The key-value operation to perform."
    )
    key: Name | None = Field(
        default=None,
        description="The key (1-200 characters, no control characters). Required by get, set, delete, exists.",
    )
    value: JsonValue = Field(default=None, description="set: the value to store, any JSON value except null.")
    ttl: float | None = Field(
        default=None, gt=0, description="set: seconds until the key expires; null keeps it until deleted."
    )
    pattern: Name = Field(
        default="*",
        description="keys: a glob pattern matched case-sensitively against whole keys ('*', '?', '[abc]').",
    )

    @field_validator("value")
    @classmethod
    def check_value(cls, value: JsonValue) -> JsonValue:
        """Values are stored as strict JSON."""
        return check_json("value", value)

    @model_validator(mode="after")
    def check_required(self) -> StorageKVInput:
        """Each operation names the fields it needs."""
        require_fields(self, _REQUIRED)
        return self


def _key(key: str | None) -> str:
    """A key as the store keeps it: inside a run, a revealed secret in it becomes its reference."""
    assert key is not None  # required by every operation that names a key
    return scrub_text(key)


def _namespace() -> str | None:
    """The namespace of the keys of the run in progress (None: the shared keys)."""
    run = current_run()
    return None if run is None else run.namespace


class KVStore:
    """JSON values by key in one database. Thread-safe; used by the `storage_kv` AgenTool.

    `database`: a SQLite file, a `postgresql://` URL (the table goes in the first schema of its
    search_path), or None for a private in-memory SQLite database. Keys are checked as names
    (`InvalidNameError`: non-blank, at most 200 characters, no control characters such as NUL).

    `clock` returns the current POSIX time; tests pass a fake one to expire keys without sleeping.

    Each operation takes `namespace` (`namespaces.py`): the key given is the one its principal knows, kept within
    that namespace; None (the default) for the shared keys, where every stored key is addressed as it is.
    """

    def __init__(
        self, database: str | os.PathLike[str] | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = open_database(database, name=AGENTOOL_NAME, tables=[
            f"""CREATE TABLE IF NOT EXISTS {_TABLE} (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL,
                expires_at {{float}},
                updated_at {{float}} NOT NULL
            )"""
        ])
        self._lock = threading.Lock()
        self._clock = clock

    @property
    def location(self) -> str:
        """Where the values are: a SQLite file, `:memory:`, or a PostgreSQL URL (password masked)."""
        return self._db.location

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def _live_row(self, key: str, now: float) -> tuple[str, float | None] | None:
        """In a transaction: the (value, expires_at) of a key, deleting it instead if it has expired."""
        check_name("key", key)
        row = self._db.execute(
            f"SELECT value, expires_at FROM {_TABLE} WHERE key = ?{self._db.for_update}", (key,)
        ).fetchone()
        if row is not None and row[1] is not None and row[1] <= now:
            self._db.execute(f"DELETE FROM {_TABLE} WHERE key = ?", (key,))
            return None
        return None if row is None else (row[0], row[1])

    def get(self, key: str, *, namespace: str | None = None) -> ToolkitOutput:
        """The value of a key; raises `KeyNotFoundError` if it is missing or expired."""
        stored = stored_name(namespace, key, field="key")
        with self._lock, self._db.transaction():
            row = self._live_row(stored, self._clock())
        if row is None:
            raise KeyNotFoundError(key)
        expires_at = None if row[1] is None else isoformat(row[1])
        return ToolkitOutput(
            operation="get",
            message=f"Read key {key!r}.",
            data={"key": key, "value": json.loads(row[0]), "expires_at": expires_at},
        )

    def set(self, key: str, value: Any, ttl: float | None, *, namespace: str | None = None) -> ToolkitOutput:
        """Store a value under a key, replacing any previous value and expiry. Inside a run, the secrets revealed
        to it are stored as their `!env:NAME` reference, never their value."""
        stored = stored_name(namespace, key, field="key")
        payload = json.dumps(scrub(value), ensure_ascii=False, allow_nan=False)
        now = self._clock()
        expires_at = None if ttl is None else now + ttl
        with self._lock, self._db.transaction():
            created = self._live_row(stored, now) is None
            self._db.execute(
                f"INSERT INTO {_TABLE} (key, value, expires_at, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, "
                "updated_at = excluded.updated_at",
                (stored, payload, expires_at, now),
            )
        when = "" if expires_at is None else f", expiring in {ttl:g} s"
        return ToolkitOutput(
            operation="set",
            message=f"{'Created' if created else 'Updated'} key {key!r}{when}.",
            data={"key": key, "expires_at": None if expires_at is None else isoformat(expires_at), "created": created},
        )

    def delete(self, key: str, *, namespace: str | None = None) -> ToolkitOutput:
        """Delete a key. Deleting a missing key is not an error: `deleted` is then false."""
        stored = stored_name(namespace, key, field="key")
        with self._lock, self._db.transaction():
            deleted = self._live_row(stored, self._clock()) is not None
            self._db.execute(f"DELETE FROM {_TABLE} WHERE key = ?", (stored,))
        return ToolkitOutput(
            operation="delete",
            message=f"Deleted key {key!r}." if deleted else f"Key {key!r} did not exist.",
            data={"key": key, "deleted": deleted},
        )

    def exists(self, key: str, *, namespace: str | None = None) -> ToolkitOutput:
        """Whether a key holds an unexpired value."""
        stored = stored_name(namespace, key, field="key")
        with self._lock, self._db.transaction():
            found = self._live_row(stored, self._clock()) is not None
        return ToolkitOutput(
            operation="exists",
            message=f"Key {key!r} {'exists' if found else 'does not exist'}.",
            data={"key": key, "exists": found},
        )

    def agentool(self) -> AgenTool:
        """The `storage_kv` AgenTool over this store (not registered; closing it closes the store)."""
        routing = RoutingConfig(
            operation_map={
                "get": ("get_value", lambda m: {"key": _key(m.key)}),
                "set": ("set_value", lambda m: {"key": _key(m.key), "value": m.value, "ttl": m.ttl}),
                "delete": ("delete_key", lambda m: {"key": _key(m.key)}),
                "exists": ("key_exists", lambda m: {"key": _key(m.key)}),
                "keys": ("list_keys", lambda m: {"pattern": scrub_text(m.pattern)}),
            }
        )

        def get_value(key: str) -> ToolkitOutput:
            return self.get(key, namespace=_namespace())

        def set_value(key: str, value: Any, ttl: float | None) -> ToolkitOutput:
            return self.set(key, value, ttl, namespace=_namespace())

        def delete_key(key: str) -> ToolkitOutput:
            return self.delete(key, namespace=_namespace())

        def key_exists(key: str) -> ToolkitOutput:
            return self.exists(key, namespace=_namespace())

        def list_keys(pattern: str) -> ToolkitOutput:
            return self.keys(pattern, namespace=_namespace())

        return AgenTool(
            name=AGENTOOL_NAME,
            input_schema=StorageKVInput,
            routing_config=routing,
            tools=(get_value, set_value, delete_key, key_exists, list_keys),
            output_type=ToolkitOutput,
            tags=("builtin", "storage"),
            examples=(
                {"operation": "set", "key": "report:last_run", "value": {"ok": True}, "ttl": 3600},
                {"operation": "get", "key": "report:last_run"},
                {"operation": "keys", "pattern": "report:*"},
            ),
            on_close=self.close,
            backend=self,
        )

    def keys(self, pattern: str, *, namespace: str | None = None) -> ToolkitOutput:
        """The unexpired keys matching a glob pattern, sorted; within a namespace its keys alone, by the names its
        principal gave them."""
        with self._lock, self._db.transaction():
            self._db.execute(f"DELETE FROM {_TABLE} WHERE expires_at IS NOT NULL AND expires_at <= ?", (self._clock(),))
            if namespace is None:
                rows = self._db.execute(f"SELECT key FROM {_TABLE}").fetchall()
            else:
                rows = self._db.execute(f"SELECT key FROM {_TABLE} WHERE substr(key, 1, ?) = ?",
                                        (len(namespace), namespace)).fetchall()
        names = [name for (key,) in rows if (name := used_name(namespace, key)) is not None]
        names.sort()  # by code point, as Python compares: the same order on every database
        matched = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
        return ToolkitOutput(
            operation="keys",
            message=f"{len(matched)} keys match {pattern!r}.",
            data={"pattern": pattern, "keys": matched, "count": len(matched)},
        )


def create_storage_kv_agent(
    database: str | os.PathLike[str] | None = None,
    *,
    clock: Callable[[], float] = time.time,
    registry: AgenToolRegistry | None = None,
) -> AgenTool:
    """Register (or replace) the `storage_kv` AgenTool, stored in `database` (a SQLite file, a PostgreSQL URL)
    or in memory.

    It goes into `registry` (default: the active injector's); replacing it closes the previous store.
    """
    target = registry if registry is not None else get_injector().registry
    return target.register(KVStore(database, clock=clock).agentool())
