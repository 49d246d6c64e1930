"""`injector.resolve_refs` replaces `!ref:<kind>:<key>` strings with values from other AgenTools."""

from __future__ import annotations

import copy
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from agentool_bridge import (
    REF_PREFIX,
    AgenToolInjector,
    AgenToolNotFoundError,
    BaseOperationInput,
    RefResolutionError,
    RoutingConfig,
    register_agentool,
)

STORE: dict[str, Any] = {}
CONFIG = {"region": "eu-west-1", "retries": 3, "limits": {"jobs": 10}}


class KVInput(BaseOperationInput):
    """A dict-backed key/value store."""

    operation: Literal["get", "set"]
    key: str
    value: Any = None


class KVOutput(BaseModel):
    success: bool = True
    message: str = ""
    data: dict[str, Any] | None = None


def kv_get(key: str) -> KVOutput:
    return KVOutput(data={"key": key, "value": STORE[key]})  # a missing key raises KeyError


def kv_set(key: str, value: Any) -> KVOutput:
    STORE[key] = value
    return KVOutput(data={"key": key, "value": value})


class ConfigInput(BaseOperationInput):
    operation: Literal["get"]
    key: str


def config_get(key: str) -> KVOutput:
    if key not in CONFIG:
        return KVOutput(success=False, message=f"no config key {key}")
    return KVOutput(data={"key": key, "value": CONFIG[key]})


def config_get_untyped(key: str) -> dict[str, Any]:
    return config_get(key).model_dump()


@pytest.fixture
async def injector(injector: AgenToolInjector) -> AgenToolInjector:
    """The test's injector (tests/bridge/conftest.py) with the stand-in `storage_kv` and `config` registered
    and two values stored."""
    STORE.clear()
    register_agentool(
        "storage_kv",
        KVInput,
        RoutingConfig(
            operation_map={
                "get": ("kv_get", lambda m: {"key": m.key}),
                "set": ("kv_set", lambda m: {"key": m.key, "value": m.value}),
            }
        ),
        [kv_get, kv_set],
        output_type=KVOutput,
    )
    register_agentool(
        "config",
        ConfigInput,
        RoutingConfig(operation_map={"get": ("config_get", lambda m: {"key": m.key})}),
        [config_get],
        output_type=KVOutput,
    )
    await injector.run("storage_kv", {"operation": "set", "key": "token", "value": "s3cret"})
    await injector.run("storage_kv", {"operation": "set", "key": "a:b", "value": {"nested": [1, 2]}})
    return injector


async def test_a_ref_string_resolves_to_the_value_stored_under_its_key(injector: AgenToolInjector) -> None:
    assert REF_PREFIX == "!ref:"
    assert await injector.resolve_refs("!ref:storage_kv:token") == "s3cret"
    assert await injector.resolve_refs("!ref:config:retries") == 3


async def test_refs_inside_nested_dicts_and_lists_are_resolved_without_mutating_the_input(
    injector: AgenToolInjector
) -> None:
    value = {
        "auth": "!ref:storage_kv:token",
        "targets": ["plain", "!ref:config:region", {"limits": "!ref:config:limits"}],
        "count": 5,
        "deep": {"deeper": [["!ref:storage_kv:token"]]},
    }
    before = copy.deepcopy(value)

    resolved = await injector.resolve_refs(value)

    assert resolved == {
        "auth": "s3cret",
        "targets": ["plain", "eu-west-1", {"limits": {"jobs": 10}}],
        "count": 5,
        "deep": {"deeper": [["s3cret"]]},
    }
    assert value == before


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "ref:storage_kv:token",
        " !ref:storage_kv:token",
        "see !ref:storage_kv:token",
        "!REF:storage_kv:token",
        7,
        None,
        1.5,
        True,
    ],
)
async def test_values_that_are_not_refs_are_returned_unchanged(injector: AgenToolInjector, value: Any) -> None:
    assert await injector.resolve_refs(value) == value
    assert await injector.resolve_refs({"k": [value]}) == {"k": [value]}


async def test_everything_after_the_kind_is_the_key_even_with_colons(injector: AgenToolInjector) -> None:
    assert await injector.resolve_refs("!ref:storage_kv:a:b") == {"nested": [1, 2]}


@pytest.mark.parametrize("ref", ["!ref:", "!ref:storage_kv", "!ref::token", "!ref:storage_kv:"])
async def test_a_malformed_ref_raises_with_the_expected_shape(injector: AgenToolInjector, ref: str) -> None:
    with pytest.raises(RefResolutionError) as info:
        await injector.resolve_refs({"x": ref})

    assert str(info.value) == f"Malformed reference {ref!r}: expected '!ref:<kind>:<key>'."
    assert isinstance(info.value, LookupError)


async def test_an_unknown_kind_raises_and_lists_the_registered_agentools(injector: AgenToolInjector) -> None:
    with pytest.raises(RefResolutionError) as info:
        await injector.resolve_refs(["!ref:vault:token"])

    assert str(info.value) == (
        "Cannot resolve '!ref:vault:token': no AgenTool 'vault' is registered (registered: config, storage_kv)."
    )


async def test_a_missing_key_whose_tool_raises_names_the_ref_and_chains_the_cause(injector: AgenToolInjector) -> None:
    with pytest.raises(RefResolutionError, match=r"Cannot resolve '!ref:storage_kv:nope': 'nope'") as info:
        await injector.resolve_refs("!ref:storage_kv:nope")

    assert isinstance(info.value.__cause__, KeyError)


async def test_a_missing_key_reported_as_unsuccessful_names_the_kind_and_key(injector: AgenToolInjector) -> None:
    with pytest.raises(RefResolutionError) as info:
        await injector.resolve_refs("!ref:config:nope")

    assert str(info.value) == "Cannot resolve '!ref:config:nope': 'config' has no value for key 'nope'."


async def test_an_agentool_without_output_type_resolves_through_data_value(injector: AgenToolInjector) -> None:
    register_agentool(
        "config",
        ConfigInput,
        RoutingConfig(operation_map={"get": ("config_get_untyped", lambda m: {"key": m.key})}),
        [config_get_untyped],
    )

    assert await injector.resolve_refs("!ref:config:region") == "eu-west-1"
    with pytest.raises(RefResolutionError, match="'config' has no value for key 'nope'"):
        await injector.resolve_refs("!ref:config:nope")


async def test_refs_resolve_through_an_overridden_kind_even_when_it_is_not_registered(
    injector: AgenToolInjector
) -> None:
    injector.clear()

    def fake_vault(data: dict[str, Any]) -> dict[str, Any]:
        return {"success": True, "data": {"value": f"fake-{data['key']}"}}

    with injector.override(vault=fake_vault):
        assert await injector.resolve_refs({"pw": "!ref:vault:db"}) == {"pw": "fake-db"}

    with pytest.raises(RefResolutionError, match="no AgenTool 'vault' is registered"):
        await injector.resolve_refs("!ref:vault:db")


async def test_an_output_without_a_value_is_not_resolvable(injector: AgenToolInjector) -> None:
    with injector.override(config=lambda data: {"success": True, "data": {"other": 1}}):
        with pytest.raises(RefResolutionError, match="'config' has no value for key 'region'"):
            await injector.resolve_refs("!ref:config:region")


async def test_resolution_errors_are_not_agentool_not_found_errors(injector: AgenToolInjector) -> None:
    with pytest.raises(RefResolutionError) as info:
        await injector.resolve_refs("!ref:vault:x")

    assert not isinstance(info.value, AgenToolNotFoundError)
