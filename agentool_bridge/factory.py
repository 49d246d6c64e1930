"""Create AgenTools: `create_agentool` (returns a pydantic-ai Agent) and the lazy `register_agentool`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .models import RoutingConfig
from .registry import AgenTool, AgenToolRegistry

if TYPE_CHECKING:
    from pydantic_ai import Agent

__all__ = ["create_agentool", "register_agentool"]


def register_agentool(
    name: str,
    input_schema: type[BaseModel],
    routing_config: RoutingConfig,
    tools: Sequence[Callable[..., Any]],
    *,
    description: str | None = None,
    output_type: type[BaseModel] | None = None,
    dependencies: Sequence[str] = (),
    version: str = "1.0.0",
    tags: Sequence[str] = (),
    examples: Sequence[dict[str, Any]] = (),
) -> AgenTool:
    """Register an AgenTool without importing pydantic-ai; its Agent is built on first use."""
    agentool = AgenTool(
        name=name,
        input_schema=input_schema,
        routing_config=routing_config,
        tools=tuple(tools),
        description=description or "",
        output_type=output_type,
        dependencies=tuple(dependencies),
        version=version,
        tags=tuple(tags),
        examples=tuple(examples),
    )
    return AgenToolRegistry.register(agentool)


def create_agentool(
    name: str,
    input_schema: type[BaseModel],
    routing_config: RoutingConfig,
    tools: Sequence[Callable[..., Any]],
    *,
    description: str | None = None,
    output_type: type[BaseModel] | None = None,
    dependencies: Sequence[str] = (),
    version: str = "1.0.0",
    tags: Sequence[str] = (),
    examples: Sequence[dict[str, Any]] = (),
) -> Agent[Any, Any]:
    """Create and register an AgenTool; return its pydantic-ai `Agent`.

    The Agent is driven by a deterministic model: it parses the JSON prompt, validates it
    against `input_schema`, routes `operation` through `routing_config` to one of `tools`, and
    returns that tool's output (validated as `output_type` when given). No LLM, no network.
    """
    agentool = register_agentool(
        name,
        input_schema,
        routing_config,
        tools,
        description=description,
        output_type=output_type,
        dependencies=dependencies,
        version=version,
        tags=tags,
        examples=examples,
    )
    return agentool.agent
