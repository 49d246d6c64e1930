"""agentool_bridge: a runtime for AgenTools, tools that an agent or a scheduler runs by name.

An AgenTool takes one JSON object with an `operation` field, validates it against a Pydantic
input schema, routes the operation to a typed tool function and returns its output. Every
AgenTool is reachable through an injector: `await get_injector().run(name, data)` uses the one
active in this context (`AgenToolInjector.activate`) or the process-default one. Outside content in
results and errors is labelled with `untrusted()` and `quote()` (module `untrusted`).
"""

from .errors import (
    AgenToolError,
    AgenToolInputError,
    AgenToolNotFoundError,
    MissingExtraError,
    RefResolutionError,
    ToolkitLoadError,
    UnknownOperationError,
)
from .factory import AgenToolOptions, create_agentool, register_agentool
from .injector import REF_PREFIX, AgenToolInjector, get_injector
from .models import BaseOperationInput, OperationOutput, RoutingConfig
from .plugins import ENTRY_POINT_GROUP, discover_toolkits, load_toolkit
from .registry import AgenTool, AgenToolRegistry
from .untrusted import clip_content, is_untrusted, quote, untrusted

__all__ = [
    "AgenTool",
    "AgenToolError",
    "AgenToolInjector",
    "AgenToolInputError",
    "AgenToolNotFoundError",
    "AgenToolOptions",
    "AgenToolRegistry",
    "BaseOperationInput",
    "OperationOutput",
    "ENTRY_POINT_GROUP",
    "MissingExtraError",
    "REF_PREFIX",
    "RefResolutionError",
    "RoutingConfig",
    "ToolkitLoadError",
    "UnknownOperationError",
    "clip_content",
    "create_agentool",
    "discover_toolkits",
    "get_injector",
    "is_untrusted",
    "load_toolkit",
    "quote",
    "register_agentool",
    "untrusted",
]
