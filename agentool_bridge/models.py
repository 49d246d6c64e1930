"""The input base model, the common output model and the routing configuration of an AgenTool."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BaseOperationInput", "OperationOutput", "RoutingConfig", "Transform"]


class BaseOperationInput(BaseModel):
    """Base of every AgenTool input: one JSON object with an `operation` field.

    Unknown fields are rejected (`extra='forbid'`), so a typo never passes silently.
    Subclasses narrow `operation` to a `Literal[...]` of the operations they route.
    Each input model is built (validator, schema) when it is first used, not when its module is imported:
    a server registers every built-in AgenTool at start and most of them never run.
    """

    model_config = ConfigDict(extra="forbid", defer_build=True)

    operation: str = Field(description="The operation to perform.")


class OperationOutput(BaseModel):
    """What an operation-routed AgenTool returns: a success flag, a summary and the data.

    Failures raise; `success=False` only says that the operation found nothing to act on.
    Built (with each subclass) when first used, as the input models are.
    """

    model_config = ConfigDict(defer_build=True)

    success: bool = Field(default=True, description="True when the operation did what was asked.")
    operation: str = Field(description="The operation that ran.")
    message: str = Field(description="A one-line, human-readable summary of the result.")
    data: dict[str, Any] | None = Field(default=None, description="The result of the operation.")


Transform = Callable[[Any], Mapping[str, Any]]
"""Maps a validated input model to the keyword arguments of a tool function."""


def _all_fields(model: BaseModel) -> dict[str, Any]:
    return {name: getattr(model, name) for name in type(model).model_fields}


@dataclass(frozen=True)
class RoutingConfig:
    """How an AgenTool routes an input to a tool function.

    `operation_map` maps each operation to `(tool_name, transform)`; `transform` turns the
    validated input model into the tool's keyword arguments. A `None` transform passes every
    field of the input model.
    """

    operation_field: str = "operation"
    operation_map: Mapping[str, tuple[str, Transform | None]] = field(default_factory=dict)

    @property
    def operations(self) -> list[str]:
        """The routed operations, in declaration order."""
        return list(self.operation_map)

    def route(self, model: BaseModel) -> tuple[str, dict[str, Any]]:
        """Return `(tool_name, kwargs)` for a validated input model."""
        operation = getattr(model, self.operation_field)
        tool_name, transform = self.operation_map[operation]
        kwargs = dict(transform(model)) if transform is not None else _all_fields(model)
        return tool_name, kwargs
