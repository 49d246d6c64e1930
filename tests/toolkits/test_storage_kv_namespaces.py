"""`storage_kv` keys per principal: inside a run the AgenTool keeps its keys in the run's namespace (its job's
owner's), lists that namespace's keys alone under the names their owner gave, and cannot reach another's; without
a namespace (admins, the operator, calls outside a run) the keys are the shared ones, as before (SQLite and
PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest

from agentool_bridge import AgenToolInjector
from agentool_bridge.context import RunInfo, running
from agentool_bridge.errors import RefResolutionError
from agentool_bridge.toolkits import MAX_NAME_LENGTH, InvalidNameError, KeyNotFoundError, create_storage_kv_agent
from agentool_bridge.toolkits.namespaces import namespace_for

ALICE, BOB = namespace_for("token:alice"), namespace_for("token:bob")


def _run(namespace: str | None) -> RunInfo:
    return RunInfo("job", "run-1", "schedule", namespace=namespace)


async def kv(injector: AgenToolInjector, operation: str, **fields: Any) -> dict[str, Any]:
    output = await injector.run("storage_kv", {"operation": operation, **fields})
    assert output.data is not None
    data: dict[str, Any] = output.data
    return data


async def test_a_run_reads_and_writes_its_owner_s_keys_and_never_another_s(
    injector: AgenToolInjector, database: str
) -> None:
    store = create_storage_kv_agent(database).backend
    store.set("token", "shared secret of the operator", None)
    with running(_run(BOB)):
        await kv(injector, "set", key="token", value="bob's")
    with running(_run(ALICE)):
        assert (await kv(injector, "exists", key="token"))["exists"] is False  # neither bob's nor the shared one
        with pytest.raises(KeyNotFoundError):
            await kv(injector, "get", key="token")
        said = await kv(injector, "set", key="token", value="alice's")
        assert said == {"key": "token", "expires_at": None, "created": True}
        assert (await kv(injector, "get", key="token"))["value"] == "alice's"
        listed = await kv(injector, "keys")
        with pytest.raises(InvalidNameError, match="another principal's keys"):
            await kv(injector, "get", key="~token:bob/token")
        assert (await kv(injector, "delete", key="token"))["deleted"] is True
        assert (await kv(injector, "delete", key="token"))["deleted"] is False
    assert listed["keys"] == ["token"] and listed["count"] == 1
    assert store.get("~token:bob/token").data == {"key": "~token:bob/token", "value": "bob's", "expires_at": None}
    assert store.get("token").data is not None and store.get("token").data["value"] == "shared secret of the operator"
    assert store.exists("~token:alice/token").data == {"key": "~token:alice/token", "exists": False}


async def test_without_a_namespace_the_keys_are_shared_and_every_stored_key_is_listed(
    injector: AgenToolInjector, database: str
) -> None:
    create_storage_kv_agent(database)
    await kv(injector, "set", key="report:last", value=1)  # outside a run: the shared keys, as before
    with running(_run(ALICE)):
        await kv(injector, "set", key="report:mine", value=2)
    with running(_run(None)):  # an admin's or the operator's job
        assert (await kv(injector, "get", key="report:last"))["value"] == 1
        everything = await kv(injector, "keys")
        assert (await kv(injector, "get", key="~token:alice/report:mine"))["value"] == 2  # addressed as stored
    assert everything["keys"] == ["report:last", "~token:alice/report:mine"]
    with running(_run(ALICE)):
        assert (await kv(injector, "keys", pattern="report:*"))["keys"] == ["report:mine"]


async def test_a_reference_in_a_run_resolves_against_its_owner_s_keys(
    injector: AgenToolInjector, database: str
) -> None:
    store = create_storage_kv_agent(database).backend
    store.set("api_token", "the operator's", None)
    store.set("api_token", "alice's", None, namespace=ALICE)
    with running(_run(ALICE)):
        assert await injector.resolve_refs({"t": "!ref:storage_kv:api_token"}) == {"t": "alice's"}
    with running(_run(BOB)), pytest.raises(RefResolutionError, match="not found"):
        await injector.resolve_refs("!ref:storage_kv:api_token")
    assert await injector.resolve_refs("!ref:storage_kv:api_token") == "the operator's"


def test_a_key_too_long_for_its_namespace_is_refused_naming_the_limit(
    injector: AgenToolInjector, database: str
) -> None:
    store = create_storage_kv_agent(database).backend
    most = MAX_NAME_LENGTH - len(ALICE)
    store.set("k" * most, 1, None, namespace=ALICE)
    assert store.keys("*", namespace=ALICE).data == {"pattern": "*", "keys": ["k" * most], "count": 1}
    with pytest.raises(InvalidNameError, match=f"key must be at most {most} characters for this principal"):
        store.set("k" * (most + 1), 1, None, namespace=ALICE)
