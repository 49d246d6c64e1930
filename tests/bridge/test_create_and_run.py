"""Creating AgenTools and running them through the injector and through their pydantic-ai Agent."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

import pydantic_ai
import pytest
from pydantic import BaseModel
from pydantic_ai import RunContext

from agentool_bridge import (
    AgenTool,
    AgenToolError,
    AgenToolInjector,
    AgenToolRegistry,
    BaseOperationInput,
    RoutingConfig,
    create_agentool,
    register_agentool,
)
from tests.bridge._support import SEEN_CONTEXTS, CalcInput, CalcOutput, add, echo, make_calc

ADD = {"operation": "add", "a": 2, "b": 3}


@pytest.mark.parametrize(
    "input_data",
    [
        pytest.param(ADD, id="dict"),
        pytest.param(CalcInput(operation="add", a=2, b=3), id="model"),
        pytest.param(json.dumps(ADD), id="json-string"),
        pytest.param(json.dumps(ADD).encode(), id="json-bytes"),
    ],
)
async def test_injector_runs_an_agentool_from_dict_model_or_json_input(
    injector: AgenToolInjector, calc: str, input_data: Any
) -> None:
    output = await injector.run(calc, input_data)

    assert type(output) is CalcOutput
    assert output == CalcOutput(operation="add", result=5)


async def test_agentool_without_output_type_returns_parsed_json_even_for_a_model_result(
    injector: AgenToolInjector
) -> None:
    make_calc("direct", typed=False)

    output = await injector.run("calc", ADD)

    assert type(output) is dict
    assert output == {"success": True, "operation": "add", "result": 5}


async def test_agentool_without_output_type_on_agent_path_returns_the_same_dict(injector: AgenToolInjector) -> None:
    make_calc("agent", typed=False)

    output = await injector.run("calc", ADD)

    assert type(output) is dict
    assert output == {"success": True, "operation": "add", "result": 5}


async def test_sync_and_async_plain_tools_both_run_on_the_direct_path(injector: AgenToolInjector) -> None:
    make_calc("direct")

    added = await injector.run("calc", ADD)
    echoed = await injector.run("calc", {"operation": "echo", "text": "hi"})

    assert (added.result, echoed.result) == (5, "hi")
    assert injector.get("calc").needs_agent is False


def test_create_agentool_returns_a_pydantic_ai_agent_named_after_the_agentool(injector: AgenToolInjector) -> None:
    agent = make_calc("direct")

    assert isinstance(agent, pydantic_ai.Agent)
    assert agent.name == "calc"
    assert injector.registry.get("calc").agent is agent


@pytest.mark.parametrize("path", ["direct", "agent"])
async def test_agent_run_with_a_json_prompt_gives_the_same_output_as_the_injector(
    injector: AgenToolInjector, path: str
) -> None:
    agent = make_calc(path)

    via_agent = await agent.run(json.dumps(ADD))
    via_injector = await injector.run("calc", ADD)

    assert via_agent.output == via_injector == CalcOutput(operation="add", result=5)


@pytest.mark.parametrize("path", ["direct", "agent"])
async def test_untyped_agent_run_outputs_json_text_of_the_injector_value(injector: AgenToolInjector, path: str) -> None:
    agent = make_calc(path, typed=False)

    via_agent = await agent.run(json.dumps({"operation": "echo", "text": "hi"}))
    via_injector = await injector.run("calc", {"operation": "echo", "text": "hi"})

    assert isinstance(via_agent.output, str)
    assert json.loads(via_agent.output) == via_injector == {"success": True, "operation": "echo", "result": "hi"}


async def test_run_context_tool_runs_through_the_agent_with_a_real_run_context(injector: AgenToolInjector) -> None:
    make_calc("agent")

    output = await injector.run("calc", ADD)

    assert injector.get("calc").needs_agent is True
    assert output == CalcOutput(operation="add", result=5)
    assert len(SEEN_CONTEXTS) == 1
    assert isinstance(SEEN_CONTEXTS[0], RunContext)


async def test_run_context_tools_and_plain_tools_give_the_same_result_shape(injector: AgenToolInjector) -> None:
    make_calc("direct", "plain")
    make_calc("agent", "ctx")
    inputs = [ADD, {"operation": "echo", "text": "x"}, {"operation": "echo"}]

    for data in inputs:
        plain, ctx = await injector.run("plain", data), await injector.run("ctx", data)
        assert type(plain) is type(ctx) is CalcOutput
        assert plain == ctx


class ShapesInput(BaseOperationInput):
    operation: Literal["items", "when", "text"]


class Item(BaseModel):
    n: int


def items() -> list[Item]:
    return [Item(n=1), Item(n=2)]


def when() -> dict[str, Any]:
    return {"at": dt.datetime(2024, 1, 2, 3, 4, 5)}


def text() -> str:
    return "plain text"


async def ctx_items(ctx: RunContext[Any]) -> list[Item]:
    return items()


async def ctx_when(ctx: RunContext[Any]) -> dict[str, Any]:
    return when()


async def ctx_text(ctx: RunContext[Any]) -> str:
    return text()


@pytest.mark.parametrize("operation", ["items", "when", "text"])
async def test_agent_path_serialises_untyped_results_exactly_like_the_direct_path(
    injector: AgenToolInjector, operation: str
) -> None:
    no_args = {op: (op, lambda m: {}) for op in ["items", "when", "text"]}
    register_agentool("plain", ShapesInput, RoutingConfig(operation_map=no_args), [items, when, text])
    ctx_routes = {op: (f"ctx_{op}", lambda m: {}) for op in ["items", "when", "text"]}
    register_agentool("ctx", ShapesInput, RoutingConfig(operation_map=ctx_routes), [ctx_items, ctx_when, ctx_text])

    plain = await injector.run("plain", {"operation": operation})
    ctx = await injector.run("ctx", {"operation": operation})

    assert plain == ctx
    assert (
        plain
        == {
            "items": [{"n": 1}, {"n": 2}],
            "when": {"at": "2024-01-02T03:04:05"},
            "text": "plain text",
        }[operation]
    )


class EchoAllInput(BaseOperationInput):
    operation: Literal["echo_all"]
    value: int = 1


def echo_all(operation: str, value: int) -> dict[str, Any]:
    return {"operation": operation, "value": value}


async def test_none_transform_passes_every_field_of_the_input_model(injector: AgenToolInjector) -> None:
    register_agentool("all", EchoAllInput, RoutingConfig(operation_map={"echo_all": ("echo_all", None)}), [echo_all])

    output = await injector.run("all", {"operation": "echo_all", "value": 7})

    assert output == {"operation": "echo_all", "value": 7}


class ActionInput(BaseModel):
    action: Literal["add"]
    a: int
    b: int


async def test_a_custom_operation_field_routes_by_that_field(injector: AgenToolInjector) -> None:
    routing = RoutingConfig(operation_field="action", operation_map={"add": ("add", lambda m: {"a": m.a, "b": m.b})})
    register_agentool("act", ActionInput, routing, [add], output_type=CalcOutput)

    output = await injector.run("act", {"action": "add", "a": 1, "b": 1})

    assert output.result == 2


async def test_validate_checks_input_without_running_the_tool(injector: AgenToolInjector) -> None:
    calls: list[Any] = []

    def spy_add(a: int, b: int) -> CalcOutput:
        calls.append((a, b))
        return add(a, b)

    routing = RoutingConfig(operation_map={"add": ("spy_add", lambda m: {"a": m.a, "b": m.b})})
    register_agentool("spy", CalcInput, routing, [spy_add])

    model = injector.validate("spy", '{"operation": "add", "a": 1}')

    assert model == CalcInput(operation="add", a=1)
    assert calls == []


def test_register_agentool_returns_the_registered_agentool_without_building_an_agent(
    injector: AgenToolInjector
) -> None:
    routing = RoutingConfig(operation_map={"add": ("add", lambda m: {"a": m.a, "b": m.b})})

    agentool = register_agentool("lazy", CalcInput, routing, [add])

    assert isinstance(agentool, AgenTool)
    assert injector.registry.get("lazy") is agentool
    assert agentool._agent is None


def test_routing_to_a_tool_that_was_not_given_is_rejected_and_nothing_is_registered(injector: AgenToolInjector) -> None:
    routing = RoutingConfig(
        operation_map={"add": ("add", None), "echo": ("missing_echo", None), "fail": ("missing_fail", None)}
    )

    with pytest.raises(AgenToolError, match="routes to tools that were not given: missing_echo, missing_fail"):
        create_agentool("broken", CalcInput, routing, [add, echo])
    assert injector.registry.names() == []


class NoOperationInput(BaseModel):
    a: int = 0


def test_an_input_schema_without_the_operation_field_is_rejected(injector: AgenToolInjector) -> None:
    routing = RoutingConfig(operation_map={"add": ("add", None)})

    with pytest.raises(AgenToolError, match="input schema NoOperationInput has no 'operation' field"):
        create_agentool("broken", NoOperationInput, routing, [add])
    assert injector.registry.names() == []


def test_an_input_schema_without_a_custom_operation_field_is_rejected(injector: AgenToolInjector) -> None:
    routing = RoutingConfig(operation_field="action", operation_map={"add": ("add", None)})

    with pytest.raises(AgenToolError, match="has no 'action' field"):
        register_agentool("broken", CalcInput, routing, [add])


def test_an_agentool_needs_a_non_empty_name(injector: AgenToolInjector) -> None:
    with pytest.raises(AgenToolError, match="non-empty string name"):
        register_agentool("", CalcInput, RoutingConfig(operation_map={"add": ("add", None)}), [add])


def test_an_agentool_goes_into_the_registry_given_even_an_empty_one(injector: AgenToolInjector) -> None:
    own = AgenToolRegistry()  # empty, so falsy: it must still be where the AgenTool goes

    make_calc("direct", registry=own)

    assert own.names() == ["calc"]
    assert injector.registry.names() == []
