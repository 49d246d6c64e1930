"""The toolkits package: registering the built-ins, its exports and the shared helpers."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import agentool_bridge.toolkits as toolkits
from agentool_bridge import AgenToolError, AgenToolInjector, AgenToolRegistry
from agentool_bridge.toolkits import (
    InvalidNameError,
    check_name,
    create_logging_agent,
    create_queue_agent,
    create_shell_agent,
    create_storage_kv_agent,
    register_builtin_toolkits,
)
from agentool_bridge.toolkits._common import open_sqlite, transaction


def test_registering_the_builtins_does_not_import_pydantic_ai(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from agentool_bridge.toolkits import register_builtin_toolkits
        names = register_builtin_toolkits({str(tmp_path / "x.db")!r})
        assert names == ["queue", "logging", "storage_kv"], names
        assert "pydantic_ai" not in sys.modules, "pydantic_ai was imported"
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_the_toolkit_factories_register_into_the_registry_given_even_an_empty_one(
    injector: AgenToolInjector, tmp_path: Path
) -> None:
    for make in (
        lambda own: register_builtin_toolkits(tmp_path / "a.db", registry=own),
        lambda own: create_queue_agent(tmp_path / "q.db", registry=own),
        lambda own: create_storage_kv_agent(tmp_path / "kv.db", registry=own),
        lambda own: create_logging_agent(registry=own),
        lambda own: create_shell_agent(registry=own),
    ):
        own = AgenToolRegistry()  # empty, so falsy: `registry or default` would have skipped it
        make(own)
        assert own.names(), make
        own.clear()
    assert injector.registry.names() == []


def test_register_builtin_toolkits_registers_three_agentools(injector: AgenToolInjector, tmp_path: Path) -> None:
    names = register_builtin_toolkits(tmp_path / "scheduler.db")
    assert names == ["queue", "logging", "storage_kv"]
    assert injector.registry.names() == ["logging", "queue", "storage_kv"]
    for entry in injector.registry.catalog():
        json.dumps(entry)  # the catalog an LLM reads is plain JSON
        assert entry["description"] and entry["examples"]
        properties = entry["input_schema"]["properties"]
        assert all(spec.get("description") for spec in properties.values()), entry["name"]


async def test_register_builtin_toolkits_again_replaces_them(injector: AgenToolInjector, tmp_path: Path) -> None:
    register_builtin_toolkits(tmp_path / "one.db")
    first = injector.get("queue")
    await injector.run("storage_kv", {"operation": "set", "key": "k", "value": 1})
    register_builtin_toolkits(tmp_path / "two.db")
    assert injector.get("queue") is not first
    assert (await injector.run("storage_kv", {"operation": "exists", "key": "k"})).data["exists"] is False


def test_curated_exports() -> None:
    for name in [
        "create_queue_agent",
        "create_logging_agent",
        "create_storage_kv_agent",
        "register_builtin_toolkits",
        "ToolkitOutput",
        "QueueMessageEvent",
        "QueueStore",
        "KeyNotFoundError",
        "MAX_NAME_LENGTH",
    ]:
        assert name in toolkits.__all__ and hasattr(toolkits, name)
    assert toolkits.MAX_NAME_LENGTH == 200
    assert issubclass(toolkits.KeyNotFoundError, LookupError)
    assert issubclass(toolkits.MessageNotFoundError, LookupError)


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (toolkits.InvalidNameError, ValueError),
        (toolkits.KeyNotFoundError, LookupError),
        (toolkits.MessageNotFoundError, LookupError),
        (toolkits.QueueClosedError, RuntimeError),
        (toolkits.LogFileNotConfiguredError, RuntimeError),
    ],
)
def test_toolkit_errors_join_the_agentool_error_tree(error: type[Exception], builtin: type[Exception]) -> None:
    assert issubclass(error, toolkits.ToolkitError)
    assert issubclass(error, AgenToolError)
    assert issubclass(error, builtin)


def test_check_name() -> None:
    assert check_name("queue_name", "ok") == "ok"
    assert check_name("queue_name", "é" * 200) == "é" * 200
    for bad in ["", " ", "x" * 201, "a\x00b", "a\x7fb"]:
        with pytest.raises(InvalidNameError, match="queue_name"):
            check_name("queue_name", bad)
    assert issubclass(InvalidNameError, ValueError)


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    conn = open_sqlite(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        conn.execute("CREATE TABLE t (x INTEGER)")
        with pytest.raises(RuntimeError), transaction(conn):
            conn.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("half-way")
        with transaction(conn):
            conn.execute("INSERT INTO t VALUES (2)")
    finally:
        conn.close()
    check = sqlite3.connect(db)
    try:
        assert check.execute("SELECT x FROM t").fetchall() == [(2,)]
    finally:
        check.close()
