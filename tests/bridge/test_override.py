"""`injector.override(...)` temporarily replaces AgenTools by name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentool_bridge import (
    AgenTool,
    AgenToolInjector,
    AgenToolNotFoundError,
    RoutingConfig,
    UnknownOperationError,
)
from tests.bridge._support import CalcInput, CalcOutput, make_calc

ADD = {"operation": "add", "a": 2, "b": 3}
REAL = CalcOutput(operation="add", result=5)


async def test_a_callable_override_replaces_the_agentool_and_is_restored_after_the_block(
    injector: AgenToolInjector, calc: str
) -> None:
    seen: list[Any] = []

    def fake(data: dict[str, Any]) -> str:
        seen.append(data)
        return "faked"

    with injector.override(calc=fake):
        assert await injector.run(calc, ADD) == "faked"

    assert seen == [ADD]
    assert await injector.run(calc, ADD) == REAL


async def test_an_async_callable_override_is_awaited(injector: AgenToolInjector, calc: str) -> None:
    async def fake(data: dict[str, Any]) -> dict[str, Any]:
        return {"async": True, "a": data["a"]}

    with injector.override(calc=fake):
        assert await injector.run(calc, ADD) == {"async": True, "a": 2}

    assert await injector.run(calc, ADD) == REAL


@pytest.mark.parametrize(
    "input_data",
    [ADD, json.dumps(ADD), CalcInput(operation="add", a=2, b=3)],
    ids=["dict", "json-string", "model"],
)
async def test_a_callable_override_receives_the_input_as_a_dict(injector: AgenToolInjector, input_data: Any) -> None:
    make_calc("direct")
    received: list[Any] = []

    with injector.override(calc=received.append):
        await injector.run("calc", input_data)

    assert len(received) == 1
    assert type(received[0]) is dict
    assert received[0]["operation"] == "add"
    assert (received[0]["a"], received[0]["b"]) == (2, 3)


async def test_nested_overrides_of_the_same_name_restore_in_order(injector: AgenToolInjector, calc: str) -> None:
    with injector.override(calc=lambda data: "outer"):
        assert await injector.run(calc, ADD) == "outer"
        with injector.override({"calc": lambda data: "inner"}):
            assert await injector.run(calc, ADD) == "inner"
        assert await injector.run(calc, ADD) == "outer"

    assert await injector.run(calc, ADD) == REAL


async def test_overrides_are_restored_when_the_block_raises(injector: AgenToolInjector, calc: str) -> None:
    with pytest.raises(RuntimeError, match="boom"), injector.override(calc=lambda data: "fake"):
        raise RuntimeError("boom")

    assert await injector.run(calc, ADD) == REAL


async def test_an_unregistered_name_can_be_overridden_for_the_block_only(injector: AgenToolInjector) -> None:
    with injector.override(ghost=lambda data: {"seen": data["operation"]}):
        assert await injector.run("ghost", {"operation": "get"}) == {"seen": "get"}

    with pytest.raises(AgenToolNotFoundError):
        await injector.run("ghost", {"operation": "get"})


async def test_an_agentool_override_validates_and_routes_like_the_original(injector: AgenToolInjector) -> None:
    make_calc("direct")
    routing = RoutingConfig(operation_map={"add": ("add_twice", lambda m: {"a": m.a, "b": m.b})})
    stand_in = AgenTool(name="calc_stand_in", input_schema=CalcInput, routing_config=routing, tools=[add_twice])

    with injector.override(calc=stand_in):
        assert await injector.run("calc", ADD) == {"success": True, "operation": "add", "result": 10}
        with pytest.raises(UnknownOperationError, match="Valid operations: add\\."):
            await injector.run("calc", {"operation": "echo"})

    assert await injector.run("calc", ADD) == REAL


def add_twice(a: int, b: int) -> CalcOutput:
    return CalcOutput(operation="add", result=2 * (a + b))
