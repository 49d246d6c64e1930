"""The `storage_kv` AgenTool, driven through the injector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentool_bridge import AgenToolInjector, AgenToolInputError
from agentool_bridge.toolkits import (
    InvalidNameError,
    KeyNotFoundError,
    KVStore,
    ToolkitOutput,
    create_queue_agent,
    create_storage_kv_agent,
)
from agentool_bridge.toolkits.storage_kv import StorageKVInput

from ._db import query


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def kv(injector: AgenToolInjector, operation: str, **fields: Any) -> ToolkitOutput:
    return await injector.run("storage_kv", {"operation": operation, **fields})


async def test_set_get_roundtrip(injector: AgenToolInjector, database: str, capsys: Any) -> None:
    create_storage_kv_agent(database)
    out = await kv(injector, "set", key="config", value={"retries": 3, "tags": ["a"]})
    assert out.data == {"key": "config", "expires_at": None, "created": True}
    got = await kv(injector, "get", key="config")
    assert got.data == {"key": "config", "value": {"retries": 3, "tags": ["a"]}, "expires_at": None}
    again = await kv(injector, "set", key="config", value=0)
    assert again.data["created"] is False
    assert (await kv(injector, "get", key="config")).data["value"] == 0
    assert capsys.readouterr().out == ""


async def test_json_string_and_model_inputs(injector: AgenToolInjector, database: str) -> None:
    create_storage_kv_agent(database)
    await injector.run("storage_kv", json.dumps({"operation": "set", "key": "k", "value": "v"}))
    got = await injector.run("storage_kv", StorageKVInput(operation="get", key="k"))
    assert got.data["value"] == "v"


async def test_missing_key_raises_key_not_found(injector: AgenToolInjector, database: str) -> None:
    create_storage_kv_agent(database)
    with pytest.raises(KeyNotFoundError, match="'ghost'") as info:
        await kv(injector, "get", key="ghost")
    assert isinstance(info.value, LookupError)
    assert info.value.key == "ghost"


async def test_ttl_expiry_with_an_injected_clock(injector: AgenToolInjector, database: str) -> None:
    clock = FakeClock()
    create_storage_kv_agent(database, clock=clock)
    out = await kv(injector, "set", key="session", value="abc", ttl=10)
    assert out.data["expires_at"] == "2023-11-14T22:13:30.000+00:00"
    await kv(injector, "set", key="forever", value=1)

    clock.now += 9.5
    assert (await kv(injector, "get", key="session")).data["value"] == "abc"
    assert (await kv(injector, "exists", key="session")).data["exists"] is True

    clock.now += 0.5  # exactly at expiry: gone
    assert (await kv(injector, "exists", key="session")).data["exists"] is False
    with pytest.raises(KeyNotFoundError, match="expired"):
        await kv(injector, "get", key="session")
    assert (await kv(injector, "keys")).data["keys"] == ["forever"]
    assert (await kv(injector, "delete", key="session")).data["deleted"] is False

    assert query(database, "SELECT key FROM agentool_kv") == [("forever",)]  # purged, not only hidden


async def test_setting_an_expired_key_creates_it_again(injector: AgenToolInjector, database: str) -> None:
    clock = FakeClock()
    create_storage_kv_agent(database, clock=clock)
    await kv(injector, "set", key="k", value=1, ttl=1)
    clock.now += 5
    out = await kv(injector, "set", key="k", value=2)
    assert out.data["created"] is True and out.data["expires_at"] is None
    clock.now += 1_000_000
    assert (await kv(injector, "get", key="k")).data["value"] == 2


async def test_keys_glob_patterns(injector: AgenToolInjector, database: str) -> None:
    create_storage_kv_agent(database)
    for key in ["user:1", "user:2", "user:10", "admin:1", "User:3"]:
        await kv(injector, "set", key=key, value=key)
    everything = (await kv(injector, "keys")).data
    assert everything["count"] == 5
    assert everything["keys"] == ["User:3", "admin:1", "user:1", "user:10", "user:2"]  # by code point, everywhere
    assert (await kv(injector, "keys", pattern="user:?")).data["keys"] == ["user:1", "user:2"]
    assert (await kv(injector, "keys", pattern="user:*")).data["keys"] == ["user:1", "user:10", "user:2"]
    assert (await kv(injector, "keys", pattern="[au]*:1")).data["keys"] == ["admin:1", "user:1"]
    out = await kv(injector, "keys", pattern="nothing*")
    assert out.data == {"pattern": "nothing*", "keys": [], "count": 0}


async def test_delete_is_idempotent(injector: AgenToolInjector, database: str) -> None:
    create_storage_kv_agent(database)
    await kv(injector, "set", key="k", value=True)
    assert (await kv(injector, "delete", key="k")).data == {"key": "k", "deleted": True}
    assert (await kv(injector, "delete", key="k")).data == {"key": "k", "deleted": False}
    assert (await kv(injector, "exists", key="k")).data == {"key": "k", "exists": False}


async def test_values_and_messages_survive_recreating_the_agentools(injector: AgenToolInjector, database: str) -> None:
    db = database  # one database shared by the queue and the key-value store
    create_queue_agent(db)
    create_storage_kv_agent(db)
    await injector.run("queue", {"operation": "enqueue", "queue_name": "q", "message": {"n": 1}})
    await kv(injector, "set", key="k", value=[1, 2, 3])

    injector.clear()  # closes both databases
    create_queue_agent(db)
    create_storage_kv_agent(db)
    assert (await kv(injector, "get", key="k")).data["value"] == [1, 2, 3]
    got = await injector.run("queue", {"operation": "dequeue", "queue_name": "q"})
    assert got.data["message"] == {"n": 1}


async def test_recreating_the_factory_switches_database(injector: AgenToolInjector, tmp_path: Path) -> None:
    create_storage_kv_agent(tmp_path / "one.db")
    await kv(injector, "set", key="k", value="one")
    create_storage_kv_agent(tmp_path / "two.db")
    assert (await kv(injector, "exists", key="k")).data["exists"] is False
    create_storage_kv_agent(tmp_path / "one.db")
    assert (await kv(injector, "get", key="k")).data["value"] == "one"


async def test_references_resolve_against_storage_kv(injector: AgenToolInjector, database: str) -> None:
    create_storage_kv_agent(database)
    await kv(injector, "set", key="api_url", value="https://example.com")
    resolved = await injector.resolve_refs({"url": "!ref:storage_kv:api_url", "n": 1})
    assert resolved == {"url": "https://example.com", "n": 1}


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"operation": "get", "key": ""}, "key", "must not be empty"),
        ({"operation": "get", "key": "k" * 201}, "key", "at most 200 characters"),
        ({"operation": "set", "key": "tab\there", "value": 1}, "key", "control characters"),
        ({"operation": "set", "key": "k"}, "value", "value is required for operation 'set'"),
        ({"operation": "get"}, "key", "key is required for operation 'get'"),
        ({"operation": "delete"}, "key", "key is required for operation 'delete'"),
        ({"operation": "set", "key": "k", "value": 1, "ttl": 0}, "ttl", "greater than 0"),
        ({"operation": "set", "key": "k", "value": 1, "expire": 5}, "expire", "Extra inputs"),
        ({"operation": "keys", "pattern": ""}, "pattern", "must not be empty"),
    ],
)
async def test_invalid_inputs_name_the_field(
    injector: AgenToolInjector, fields: dict[str, Any], field: str, fragment: str
) -> None:
    create_storage_kv_agent()
    with pytest.raises(AgenToolInputError, match=fragment) as info:
        await injector.run("storage_kv", fields)
    assert info.value.fields == [field]


async def test_nul_and_lone_surrogates_give_the_same_errors_on_every_database(
    injector: AgenToolInjector, database: str
) -> None:
    store = KVStore(database)
    try:
        store.set("k", "a\x00b", None)  # inside a JSON value NUL is escaped: stored and read back
        assert store.get("k").data["value"] == "a\x00b"
        with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
            store.set("k", "lone \ud800", None)
        with pytest.raises(InvalidNameError, match="control characters"):
            store.set("k\x00", 1, None)
        with pytest.raises(InvalidNameError, match="control characters"):
            store.get("k\x00")
        with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
            store.exists("k\ud800")
        assert store.get("k").data["value"] == "a\x00b"  # the failed writes changed nothing
    finally:
        store.close()
