"""The process-wide registry of AgenTools: names, schemas and how to run them.

Registering and listing AgenTools never imports pydantic-ai: the pydantic-ai `Agent` of an
AgenTool is built the first time somebody asks for it (see `AgenTool.agent`).
"""

from __future__ import annotations

import builtins
import inspect
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .errors import AgenToolError, AgenToolNotFoundError
from .models import RoutingConfig

if TYPE_CHECKING:
    from pydantic_ai import Agent

__all__ = ["AgenTool", "AgenToolRegistry"]

ToolFunction = Callable[..., Any]


def _takes_run_context(func: ToolFunction) -> bool:
    params = list(inspect.signature(func).parameters.values())
    if not params:
        return False
    annotation = params[0].annotation
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))
    return "RunContext" in str(text)


@dataclass(eq=False)
class AgenTool:
    """One registered AgenTool: its metadata, input schema, routing and tool functions.

    `agent` builds (once) the pydantic-ai `Agent` that runs this AgenTool with a deterministic
    model; everything else works without importing pydantic-ai.
    """

    name: str
    input_schema: type[BaseModel]
    routing_config: RoutingConfig
    tools: Sequence[ToolFunction]
    description: str = ""
    output_type: type[BaseModel] | None = None
    dependencies: Sequence[str] = ()
    version: str = "1.0.0"
    tags: Sequence[str] = ()
    examples: Sequence[dict[str, Any]] = ()
    _agent: Agent[Any, Any] | None = field(default=None, repr=False)
    _tools_by_name: dict[str, ToolFunction] = field(default_factory=dict, repr=False)
    _needs_agent: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise AgenToolError("An AgenTool needs a non-empty string name.")
        self._tools_by_name = {t.__name__: t for t in self.tools}
        self._needs_agent = any(_takes_run_context(t) for t in self.tools)
        missing = sorted(
            {tool for tool, _ in self.routing_config.operation_map.values()} - set(self._tools_by_name)
        )
        if missing:
            raise AgenToolError(
                f"AgenTool {self.name!r} routes to tools that were not given: {', '.join(missing)}."
            )
        if self.routing_config.operation_field not in self.input_schema.model_fields:
            raise AgenToolError(
                f"AgenTool {self.name!r}: input schema {self.input_schema.__name__} has no "
                f"{self.routing_config.operation_field!r} field."
            )
        if not self.description:
            # `__doc__`, not `inspect.getdoc`: getdoc would inherit BaseOperationInput's docstring.
            self.description = inspect.cleandoc(self.input_schema.__doc__ or "").split("\n\n")[0]

    @property
    def operations(self) -> list[str]:
        """The operations this AgenTool routes."""
        return self.routing_config.operations

    def tool(self, name: str) -> ToolFunction:
        """The tool function called `name`."""
        return self._tools_by_name[name]

    @property
    def needs_agent(self) -> bool:
        """True when a tool takes a pydantic-ai `RunContext`, so runs must go through the Agent."""
        return self._needs_agent

    @property
    def agent(self) -> Agent[Any, Any]:
        """The pydantic-ai `Agent` of this AgenTool, built on first use."""
        if self._agent is None:
            from ._agent import build_agent

            self._agent = build_agent(self)
        return self._agent

    def input_json_schema(self) -> dict[str, Any]:
        """The JSON schema of the input."""
        return self.input_schema.model_json_schema()

    def catalog_entry(self) -> dict[str, Any]:
        """What an LLM needs to call this AgenTool: operations and the JSON schema of its input."""
        return {
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "operations": self.operations,
            "input_schema": self.input_json_schema(),
            "output_schema": self.output_type.model_json_schema() if self.output_type else None,
            "dependencies": list(self.dependencies),
            "tags": list(self.tags),
            "examples": list(self.examples),
        }


class AgenToolRegistry:
    """Process-wide name -> `AgenTool` map. All methods are class methods."""

    _entries: dict[str, AgenTool] = {}
    _lock = threading.Lock()
    _listeners: list[Callable[[str, AgenTool | None], None]] = []

    @classmethod
    def register(cls, agentool: AgenTool) -> AgenTool:
        """Register (or replace) an AgenTool under its name and return it."""
        with cls._lock:
            cls._entries[agentool.name] = agentool
        for listener in list(cls._listeners):
            listener(agentool.name, agentool)
        return agentool

    @classmethod
    def get(cls, name: str) -> AgenTool:
        """The AgenTool called `name`; raises `AgenToolNotFoundError` listing registered names."""
        try:
            return cls._entries[name]
        except KeyError:
            raise AgenToolNotFoundError(name, cls._entries) from None

    @classmethod
    def exists(cls, name: str) -> bool:
        """True if an AgenTool called `name` is registered."""
        return name in cls._entries

    @classmethod
    def list(cls) -> list[str]:
        """The registered names, sorted."""
        return sorted(cls._entries)

    @classmethod
    def unregister(cls, name: str) -> None:
        """Remove the AgenTool called `name`; raises `AgenToolNotFoundError` if there is none."""
        with cls._lock:
            if name not in cls._entries:
                raise AgenToolNotFoundError(name, cls._entries)
            del cls._entries[name]
        for listener in list(cls._listeners):
            listener(name, None)

    @classmethod
    def clear(cls) -> None:
        """Remove every AgenTool."""
        with cls._lock:
            names = list(cls._entries)
            cls._entries.clear()
        for name in names:
            for listener in list(cls._listeners):
                listener(name, None)

    @classmethod
    def catalog(cls) -> builtins.list[dict[str, Any]]:
        """One entry per AgenTool: description, operations, input and output JSON schemas."""
        return [cls._entries[name].catalog_entry() for name in cls.list()]

    @classmethod
    def add_listener(cls, listener: Callable[[str, AgenTool | None], None]) -> None:
        """Call `listener(name, agentool_or_None)` whenever an AgenTool is added or removed."""
        cls._listeners.append(listener)

    @classmethod
    def remove_listener(cls, listener: Callable[[str, AgenTool | None], None]) -> None:
        """Stop calling `listener`."""
        if listener in cls._listeners:
            cls._listeners.remove(listener)
