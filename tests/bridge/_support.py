"""Small AgenTools shared by the bridge tests: a calculator with a direct and an Agent variant."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_ai import RunContext

from agentool_bridge import RoutingConfig, create_agentool
from agentool_bridge.models import BaseOperationInput


class CalcInput(BaseOperationInput):
    """Adds two numbers, echoes text or fails on purpose.

    This second paragraph is not part of the catalog description.
    """

    operation: Literal["add", "echo", "fail"] = Field(description="The operation to perform.")
    a: int = Field(0, description="The first addend.")
    b: int = Field(0, description="The second addend.")
    text: str | None = Field(None, description="The text to echo.")


class CalcOutput(BaseModel):
    success: bool = True
    operation: str
    result: Any = None


class CalcFailure(RuntimeError):
    """The calculator's own error type."""


# Direct path: plain tools (one sync, one async) -------------------------------------------------


def add(a: int, b: int) -> CalcOutput:
    return CalcOutput(operation="add", result=a + b)


async def echo(text: str | None) -> CalcOutput:
    return CalcOutput(operation="echo", result=text)


def fail(text: str | None) -> CalcOutput:
    raise CalcFailure(f"cannot do {text}")


# Agent path: the same tools, taking a RunContext ------------------------------------------------

SEEN_CONTEXTS: list[Any] = []


async def ctx_add(ctx: RunContext[Any], a: int, b: int) -> CalcOutput:
    SEEN_CONTEXTS.append(ctx)
    return CalcOutput(operation="add", result=a + b)


async def ctx_echo(ctx: RunContext[Any], text: str | None) -> CalcOutput:
    SEEN_CONTEXTS.append(ctx)
    return CalcOutput(operation="echo", result=text)


async def ctx_fail(ctx: RunContext[Any], text: str | None) -> CalcOutput:
    raise CalcFailure(f"cannot do {text}")


def _routing(prefix: str) -> RoutingConfig:
    return RoutingConfig(
        operation_map={
            "add": (f"{prefix}add", lambda m: {"a": m.a, "b": m.b}),
            "echo": (f"{prefix}echo", lambda m: {"text": m.text}),
            "fail": (f"{prefix}fail", lambda m: {"text": m.text}),
        }
    )


DIRECT_TOOLS = [add, echo, fail]
CONTEXT_TOOLS = [ctx_add, ctx_echo, ctx_fail]
PATHS = ["direct", "agent"]


def make_calc(path: str, name: str = "calc", *, typed: bool = True, **kwargs: Any) -> Any:
    """Create the calculator AgenTool on the `direct` or the `agent` path; return its Agent."""
    tools = DIRECT_TOOLS if path == "direct" else CONTEXT_TOOLS
    prefix = "" if path == "direct" else "ctx_"
    return create_agentool(
        name,
        CalcInput,
        _routing(prefix),
        tools,
        output_type=CalcOutput if typed else None,
        **kwargs,
    )
