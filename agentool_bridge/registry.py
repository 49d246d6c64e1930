"""The registry of AgenTools: names, schemas and how to run them.

A registry is an instance, owned by whoever runs the AgenTools (an injector, a scheduler
runtime); the process-default one belongs to the default injector (`get_injector()`).
Registering and listing AgenTools never imports pydantic-ai: the pydantic-ai `Agent` of an
AgenTool is built the first time somebody asks for it (see `AgenTool.agent`).
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from .errors import AgenToolError, AgenToolNotFoundError
from .models import RoutingConfig

if TYPE_CHECKING:
    from pydantic_ai import Agent

__all__ = ["AgenTool", "AgenToolRegistry"]

logger = logging.getLogger(__name__)

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
    model; everything else works without importing pydantic-ai. `on_close` releases what the
    AgenTool's tools hold (a database, a file); the registry calls `close()` when it replaces or
    removes the AgenTool. `backend` is the object whose typed API the tools expose (a store, a
    client), for Python callers that want that API rather than JSON in and out. `check` is an
    optional async check of a validated input that a scheduler runs when a job is created or
    changed, for what only the AgenTool can know then (a remote tool's argument schema, an allowed
    executable): it raises `AgenToolInputError` (or another `AgenToolError`) to refuse the job, and may
    return warnings (sentences for the user) about what is accepted but may not work as meant (a host name
    that does not resolve now, a path read differently than written).
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
    on_close: Callable[[], None] | None = field(default=None, repr=False)
    backend: Any = field(default=None, repr=False)
    check: Callable[[Any], Awaitable[Sequence[str] | None]] | None = field(default=None, repr=False)
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

    def close(self) -> None:
        """Release what this AgenTool holds (runs `on_close` once; later calls do nothing)."""
        on_close, self.on_close = self.on_close, None
        if on_close is not None:
            on_close()

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
    """Name -> `AgenTool` map. It owns the AgenTools registered in it: replacing or removing one
    closes it (`AgenTool.close`), and `clear()` closes them all.

    Listeners (`add_listener`) hear every change as `(name, agentool_or_None)`.
    """

    def __init__(self) -> None:
        self._entries: dict[str, AgenTool] = {}
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str, AgenTool | None], None]] = []

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def register(self, agentool: AgenTool) -> AgenTool:
        """Register (or replace) an AgenTool under its name and return it; a replaced one is closed."""
        with self._lock:
            previous = self._entries.get(agentool.name)
            self._entries[agentool.name] = agentool
        if previous is not None and previous is not agentool:
            _close(previous)
        self._notify(agentool.name, agentool)
        return agentool

    def get(self, name: str) -> AgenTool:
        """The AgenTool called `name`; raises `AgenToolNotFoundError` listing registered names."""
        try:
            return self._entries[name]
        except KeyError:
            raise AgenToolNotFoundError(name, self._entries) from None

    def exists(self, name: str) -> bool:
        """True if an AgenTool called `name` is registered."""
        return name in self._entries

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def unregister(self, name: str) -> None:
        """Remove and close the AgenTool called `name`; raises `AgenToolNotFoundError` if there is none."""
        with self._lock:
            if name not in self._entries:
                raise AgenToolNotFoundError(name, self._entries)
            removed = self._entries.pop(name)
        _close(removed)
        self._notify(name, None)

    def clear(self) -> None:
        """Remove and close every AgenTool."""
        with self._lock:
            removed = list(self._entries.values())
            self._entries.clear()
        for agentool in removed:
            _close(agentool)
            self._notify(agentool.name, None)

    def catalog(self) -> list[dict[str, Any]]:
        """One entry per AgenTool, sorted by name: description, operations, input and output JSON schemas."""
        return [self._entries[name].catalog_entry() for name in self.names()]

    def add_listener(self, listener: Callable[[str, AgenTool | None], None]) -> None:
        """Call `listener(name, agentool_or_None)` whenever an AgenTool is added or removed."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[str, AgenTool | None], None]) -> None:
        """Stop calling `listener`."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self, name: str, agentool: AgenTool | None) -> None:
        for listener in list(self._listeners):
            listener(name, agentool)


def _close(agentool: AgenTool) -> None:
    try:
        agentool.close()
    except Exception:
        logger.exception("Closing AgenTool %r failed", agentool.name)
