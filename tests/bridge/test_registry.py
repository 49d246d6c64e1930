"""`AgenToolRegistry`: registering, looking up, removing, the catalog and listeners."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agentool_bridge import (
    AgenTool,
    AgenToolInjector,
    AgenToolNotFoundError,
    RoutingConfig,
    register_agentool,
)
from agentool_bridge.models import BaseOperationInput
from tests.bridge._support import CalcInput, add, make_calc

Event = tuple[str, AgenTool | None]


@pytest.fixture
def events(injector: AgenToolInjector) -> Iterator[list[Event]]:
    seen: list[Event] = []

    def listener(name: str, agentool: AgenTool | None) -> None:
        seen.append((name, agentool))

    injector.registry.add_listener(listener)
    yield seen
    injector.registry.remove_listener(listener)


def test_list_exists_and_get_see_registered_agentools_sorted_by_name(injector: AgenToolInjector) -> None:
    make_calc("direct", "zeta")
    make_calc("direct", "alpha")

    assert injector.registry.names() == ["alpha", "zeta"]
    assert injector.registry.exists("alpha") and not injector.registry.exists("beta")
    assert injector.registry.get("zeta").name == "zeta"
    assert injector.get("alpha") is injector.registry.get("alpha")


def test_registering_the_same_name_again_replaces_the_agentool(injector: AgenToolInjector) -> None:
    first = make_calc("direct", "calc")
    second = make_calc("agent", "calc")

    assert injector.registry.names() == ["calc"]
    assert injector.registry.get("calc").agent is second is not first


def test_unregister_removes_one_agentool_and_rejects_unknown_names(injector: AgenToolInjector) -> None:
    make_calc("direct", "a")
    make_calc("direct", "b")

    injector.registry.unregister("a")

    assert injector.registry.names() == ["b"]
    with pytest.raises(AgenToolNotFoundError, match="AgenTool 'a' is not registered. Registered AgenTools: b."):
        injector.registry.unregister("a")
    with pytest.raises(AgenToolNotFoundError, match="AgenTool 'a' is not registered"):
        injector.registry.get("a")


def test_clear_removes_every_agentool_and_injector_clear_also_drops_overrides(injector: AgenToolInjector) -> None:
    make_calc("direct", "a")
    make_calc("direct", "b")
    injector.registry.clear()
    assert injector.registry.names() == []

    make_calc("direct", "a")
    with injector.override(a=lambda data: "fake"):
        injector.clear()
        assert injector.registry.names() == []
        with pytest.raises(AgenToolNotFoundError):
            injector.get("a")
        assert injector._overrides == {}


def test_catalog_entry_describes_name_operations_schemas_and_metadata(injector: AgenToolInjector) -> None:
    make_calc(
        "direct",
        "calc",
        version="2.1.0",
        dependencies=["storage_kv"],
        tags=["math", "demo"],
        examples=[{"input": {"operation": "add", "a": 1, "b": 2}, "output": {"result": 3}}],
    )

    [entry] = injector.registry.catalog()

    assert set(entry) == {
        "name", "description", "version", "operations", "input_schema", "output_schema",
        "dependencies", "tags", "examples",
    }  # fmt: skip
    assert entry["name"] == "calc"
    assert entry["description"] == "Adds two numbers, echoes text or fails on purpose."
    assert entry["version"] == "2.1.0"
    assert entry["operations"] == ["add", "echo", "fail"]
    assert entry["dependencies"] == ["storage_kv"]
    assert entry["tags"] == ["math", "demo"]
    assert entry["examples"] == [{"input": {"operation": "add", "a": 1, "b": 2}, "output": {"result": 3}}]


def test_catalog_input_schema_is_the_json_schema_with_fields_and_descriptions(injector: AgenToolInjector) -> None:
    make_calc("direct")

    schema = injector.registry.catalog()[0]["input_schema"]

    assert schema["type"] == "object"
    assert schema["required"] == ["operation"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert set(props) == {"operation", "a", "b", "text"}
    assert props["operation"]["enum"] == ["add", "echo", "fail"]
    assert props["operation"]["description"] == "The operation to perform."
    assert props["a"] == {"default": 0, "description": "The first addend.", "title": "A", "type": "integer"}
    assert props["b"]["description"] == "The second addend."
    assert props["text"]["description"] == "The text to echo."


def test_catalog_output_schema_is_the_output_model_schema_or_none(injector: AgenToolInjector) -> None:
    make_calc("direct", "typed")
    make_calc("direct", "untyped", typed=False)

    by_name = {entry["name"]: entry for entry in injector.registry.catalog()}

    output_schema = by_name["typed"]["output_schema"]
    assert output_schema["title"] == "CalcOutput"
    assert set(output_schema["properties"]) == {"success", "operation", "result"}
    assert output_schema["required"] == ["operation"]
    assert by_name["untyped"]["output_schema"] is None


def test_catalog_lists_every_agentool_sorted_by_name(injector: AgenToolInjector) -> None:
    for name in ["c", "a", "b"]:
        make_calc("direct", name)

    assert [entry["name"] for entry in injector.registry.catalog()] == ["a", "b", "c"]


class Undocumented(BaseOperationInput):
    pass


def test_description_is_explicit_or_the_schema_docstring_never_an_inherited_one(injector: AgenToolInjector) -> None:
    routing = RoutingConfig(operation_map={"add": ("add", None)})
    register_agentool("explicit", CalcInput, routing, [add], description="Adds things.")
    register_agentool("undocumented", Undocumented, routing, [add])

    by_name = {entry["name"]: entry for entry in injector.registry.catalog()}

    assert by_name["explicit"]["description"] == "Adds things."
    assert by_name["undocumented"]["description"] == ""


def test_listeners_hear_register_replace_unregister_and_clear(injector: AgenToolInjector, events: list[Event]) -> None:
    make_calc("direct", "a")
    first = injector.registry.get("a")
    make_calc("direct", "a")
    second = injector.registry.get("a")
    make_calc("direct", "b")
    b = injector.registry.get("b")
    injector.registry.unregister("a")
    injector.registry.clear()

    assert events == [("a", first), ("a", second), ("b", b), ("a", None), ("b", None)]


def test_a_removed_listener_hears_nothing(injector: AgenToolInjector, events: list[Event]) -> None:
    heard: list[Any] = []

    def listener(name: str, agentool: AgenTool | None) -> None:
        heard.append(name)

    injector.registry.add_listener(listener)
    injector.registry.remove_listener(listener)
    injector.registry.remove_listener(listener)  # removing twice is harmless

    make_calc("direct", "a")

    assert heard == []
    assert [name for name, _ in events] == ["a"]
