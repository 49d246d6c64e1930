"""Errors always raise with a clear message; nothing is ever returned as a string."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ValidationError
from pydantic_ai import RunContext

from agentool_bridge import (
    AgenToolInjector,
    AgenToolInputError,
    AgenToolNotFoundError,
    BaseOperationInput,
    RoutingConfig,
    UnknownOperationError,
    get_injector,
    register_agentool,
)
from tests.bridge._support import CalcFailure, make_calc


async def test_malformed_json_raises_an_input_error_naming_the_agentool(injector: AgenToolInjector, calc: str) -> None:
    with pytest.raises(AgenToolInputError, match=r"Malformed JSON input for AgenTool 'calc'") as info:
        await injector.run(calc, '{"operation": "add",')

    assert isinstance(info.value, ValueError)
    assert info.value.errors[0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    ("raw", "kind"), [("[1, 2]", "list"), ('"add"', "str"), ("42", "int"), ("null", "NoneType"), ([1], "list")]
)
async def test_input_that_is_not_a_json_object_raises_an_input_error(
    injector: AgenToolInjector, calc: str, raw: Any, kind: str
) -> None:
    with pytest.raises(AgenToolInputError, match=rf"must be a JSON object, got {kind}\."):
        await injector.run(calc, raw)


async def test_an_unknown_field_is_rejected_by_extra_forbid(injector: AgenToolInjector, calc: str) -> None:
    with pytest.raises(AgenToolInputError) as info:
        await injector.run(calc, {"operation": "add", "a": 1, "bogus": 2})

    assert info.value.fields == ["bogus"]
    assert "bogus: Extra inputs are not permitted" in str(info.value)
    assert "(operation 'add')" in str(info.value)


async def test_a_wrong_type_names_the_field_in_fields_and_in_the_message(injector: AgenToolInjector, calc: str) -> None:
    with pytest.raises(AgenToolInputError) as info:
        await injector.run(calc, {"operation": "add", "a": "many", "b": 1})

    assert info.value.fields == ["a"]
    assert "a: Input should be a valid integer" in str(info.value)
    assert info.value.errors[0]["type"] == "int_parsing"
    assert not isinstance(info.value, UnknownOperationError)


async def test_a_missing_operation_names_the_field_and_lists_the_operations(
    injector: AgenToolInjector, calc: str
) -> None:
    with pytest.raises(AgenToolInputError) as info:
        await injector.run(calc, {"a": 1})

    assert not isinstance(info.value, UnknownOperationError)
    assert info.value.fields == ["operation"]
    assert "operation: Field required (one of: add, echo, fail)" in str(info.value)


@pytest.mark.parametrize("operation", ["divide", "", 5, None, ["add"], {"op": "add"}])
async def test_an_unknown_operation_is_a_value_error_listing_the_valid_operations(
    injector: AgenToolInjector, calc: str, operation: Any
) -> None:
    with pytest.raises(UnknownOperationError) as info:
        await injector.run(calc, {"operation": operation})

    error = info.value
    assert isinstance(error, ValueError)
    assert isinstance(error, AgenToolInputError)
    assert f"Unknown operation {operation!r} for AgenTool 'calc'" in str(error)
    assert "Valid operations: add, echo, fail." in str(error)
    assert error.valid_operations == ["add", "echo", "fail"]
    assert error.fields == ["operation"]


class OpenInput(BaseOperationInput):
    """Takes any operation string; only `ping` is routed."""


def ping() -> dict[str, str]:
    return {"pong": "yes"}


async def test_an_input_model_with_an_unrouted_operation_raises_unknown_operation(injector: AgenToolInjector) -> None:
    register_agentool("open", OpenInput, RoutingConfig(operation_map={"ping": ("ping", lambda m: {})}), [ping])

    assert await injector.run("open", OpenInput(operation="ping")) == {"pong": "yes"}
    with pytest.raises(UnknownOperationError, match="Unknown operation 'pong' for AgenTool 'open'"):
        await injector.run("open", OpenInput(operation="pong"))


async def test_an_unknown_agentool_is_a_lookup_error_listing_registered_names(injector: AgenToolInjector) -> None:
    make_calc("direct", "calc")
    make_calc("direct", "abacus")

    with pytest.raises(AgenToolNotFoundError) as info:
        await injector.run("calculator", {"operation": "add"})

    assert isinstance(info.value, LookupError)
    assert str(info.value) == "AgenTool 'calculator' is not registered. Registered AgenTools: abacus, calc."
    assert info.value.registered == ["abacus", "calc"]


async def test_an_unknown_agentool_with_nothing_registered_says_none(injector: AgenToolInjector) -> None:
    with pytest.raises(LookupError, match="Registered AgenTools: none"):
        await injector.run("calc", {"operation": "add"})


async def test_a_tool_exception_propagates_with_its_own_type_and_a_note_naming_the_agentool(
    injector: AgenToolInjector, calc: str
) -> None:
    with pytest.raises(CalcFailure, match="cannot do magic") as info:
        await injector.run(calc, {"operation": "fail", "text": "magic"})

    assert type(info.value) is CalcFailure
    assert info.value.__notes__ == ["raised by AgenTool 'calc', operation 'fail'"]


class Strict(BaseModel):
    count: int


class StrictInput(BaseOperationInput):
    operation: Literal["wrong", "delegate"]


def wrong() -> Any:
    return "not a Strict"


async def delegate() -> Any:
    return await get_injector().run("nowhere", {"operation": "get"})


async def ctx_wrong(ctx: RunContext[Any]) -> Any:
    return wrong()


async def ctx_delegate(ctx: RunContext[Any]) -> Any:
    return await delegate()


def _register_strict(path: str) -> None:
    prefix = "" if path == "direct" else "ctx_"
    tools = [wrong, delegate] if path == "direct" else [ctx_wrong, ctx_delegate]
    routing = RoutingConfig(operation_map={op: (prefix + op, lambda m: {}) for op in ["wrong", "delegate"]})
    register_agentool("strict", StrictInput, routing, tools, output_type=Strict)


@pytest.mark.parametrize("path", ["direct", "agent"])
async def test_a_tool_result_that_does_not_fit_the_output_type_raises_with_a_note(
    injector: AgenToolInjector, path: str
) -> None:
    _register_strict(path)

    with pytest.raises(ValidationError, match="Strict") as info:
        await injector.run("strict", {"operation": "wrong"})

    assert info.value.__notes__ == ["raised by AgenTool 'strict', operation 'wrong'"]


@pytest.mark.parametrize("path", ["direct", "agent"])
async def test_an_agentool_error_raised_inside_a_tool_gets_the_note_on_both_paths(
    injector: AgenToolInjector, path: str
) -> None:
    _register_strict(path)

    with pytest.raises(AgenToolNotFoundError, match="'nowhere' is not registered") as info:
        await injector.run("strict", {"operation": "delegate"})

    assert info.value.__notes__ == ["raised by AgenTool 'strict', operation 'delegate'"]


@pytest.mark.parametrize("path", ["direct", "agent"])
async def test_agent_run_raises_input_errors_instead_of_returning_them(injector: AgenToolInjector, path: str) -> None:
    agent = make_calc(path)

    with pytest.raises(UnknownOperationError, match="Valid operations: add, echo, fail"):
        await agent.run(json.dumps({"operation": "divide"}))
    with pytest.raises(AgenToolInputError, match="Malformed JSON"):
        await agent.run("add 2 and 3")


BAD_INPUTS = [
    "{not json",
    "[]",
    {"operation": "add", "bogus": 1},
    {"operation": "add", "a": "x"},
    {"a": 1},
    {"operation": "divide"},
    {"operation": "fail", "text": "x"},
]


async def test_no_failure_is_ever_returned_as_a_string(injector: AgenToolInjector, calc: str) -> None:
    for bad in BAD_INPUTS:
        try:
            returned = await injector.run(calc, bad)
        except (AgenToolInputError, CalcFailure):
            continue
        pytest.fail(f"{bad!r} returned {returned!r} instead of raising")
