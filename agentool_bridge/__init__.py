"""agentool_bridge: a runtime for AgenTools, tools that an agent or a scheduler runs by name.

An AgenTool takes one JSON object with an `operation` field, validates it against a Pydantic
input schema, routes the operation to a typed tool function and returns its output. Every
AgenTool is reachable through the process-wide injector: `await get_injector().run(name, data)`.
"""

from .errors import (
    AgenToolError,
    AgenToolInputError,
    AgenToolNotFoundError,
    RefResolutionError,
    ToolkitLoadError,
    UnknownOperationError,
)
from .factory import create_agentool, register_agentool
from .injector import REF_PREFIX, AgenToolInjector, get_injector
from .models import BaseOperationInput, RoutingConfig
from .plugins import ENTRY_POINT_GROUP, discover_toolkits, load_toolkit
from .registry import AgenTool, AgenToolRegistry

__all__ = [
    "AgenTool",
    "AgenToolError",
    "AgenToolInjector",
    "AgenToolInputError",
    "AgenToolNotFoundError",
    "AgenToolRegistry",
    "BaseOperationInput",
    "ENTRY_POINT_GROUP",
    "REF_PREFIX",
    "RefResolutionError",
    "RoutingConfig",
    "ToolkitLoadError",
    "UnknownOperationError",
    "create_agentool",
    "discover_toolkits",
    "get_injector",
    "load_toolkit",
    "register_agentool",
]
