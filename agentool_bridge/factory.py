"""Create AgenTools: `create_agentool` (returns a pydantic-ai Agent) and the lazy `register_agentool`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from pydantic import BaseModel

from .injector import get_injector
from .models import RoutingConfig
from .registry import AgenTool, AgenToolRegistry

if TYPE_CHECKING:
    from pydantic_ai import Agent

__all__ = ["AgenToolOptions", "create_agentool", "register_agentool"]


class AgenToolOptions(TypedDict, total=False):
    """The optional keyword arguments of `register_agentool` and `create_agentool`."""

    description: str | None
    """What the AgenTool does (default: the first paragraph of the input schema's docstring)."""
    output_type: type[BaseModel] | None
    """The model every output is validated as; None passes JSON values through."""
    dependencies: Sequence[str]
    """Names of the AgenTools this one calls."""
    version: str
    tags: Sequence[str]
    examples: Sequence[dict[str, Any]]
    """Example inputs, shown in the catalog that an LLM reads."""
    on_close: Callable[[], None] | None
    """Releases what the tools hold; called when the AgenTool is replaced or removed."""
    check: Callable[[Any], Awaitable[Sequence[str] | None]] | None
    """Async check of a validated input, run when a job is scheduled or changed; may return warnings (see
    `AgenTool.check`)."""
    registry: AgenToolRegistry | None
    """Where to register (default: the registry of the active injector, see `get_injector`)."""
    backend: Any
    """The object whose typed API the tools expose, for Python callers (see `AgenTool.backend`)."""


def register_agentool(
    name: str,
    input_schema: type[BaseModel],
    routing_config: RoutingConfig,
    tools: Sequence[Callable[..., Any]],
    **options: Unpack[AgenToolOptions],
) -> AgenTool:
    """Register an AgenTool without importing pydantic-ai; its Agent is built on first use."""
    registry = options.get("registry")
    if registry is None:  # not `or`: an empty registry is falsy (it has a length)
        registry = get_injector().registry
    agentool = AgenTool(
        name=name,
        input_schema=input_schema,
        routing_config=routing_config,
        tools=tuple(tools),
        description=options.get("description") or "",
        output_type=options.get("output_type"),
        dependencies=tuple(options.get("dependencies", ())),
        version=options.get("version", "1.0.0"),
        tags=tuple(options.get("tags", ())),
        examples=tuple(options.get("examples", ())),
        on_close=options.get("on_close"),
        check=options.get("check"),
        backend=options.get("backend"),
    )
    return registry.register(agentool)


def create_agentool(
    name: str,
    input_schema: type[BaseModel],
    routing_config: RoutingConfig,
    tools: Sequence[Callable[..., Any]],
    **options: Unpack[AgenToolOptions],
) -> Agent[Any, Any]:
    """Create and register an AgenTool; return its pydantic-ai `Agent`.

    The Agent is driven by a deterministic model: it parses the JSON prompt, validates it
    against `input_schema`, routes `operation` through `routing_config` to one of `tools`, and
    returns that tool's output (validated as `output_type` when given). No LLM, no network.
    """
    return register_agentool(name, input_schema, routing_config, tools, **options).agent
