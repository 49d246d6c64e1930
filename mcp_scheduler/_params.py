"""Flat MCP tool parameters generated from `SchedulerInput`'s fields (the one source of truth)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

from .models import SchedulerInput

__all__ = ["field_parameter", "with_parameters"]


def field_parameter(
    name: str, *, required: bool = False, description: str | None = None, model: type[BaseModel] = SchedulerInput
) -> inspect.Parameter:
    """A keyword parameter with the type, constraints, default and description of `model.<name>`."""
    info: FieldInfo = model.model_fields[name]
    annotation: Any = info.annotation
    if required:
        args = getattr(annotation, "__args__", ())
        if type(None) in args:
            non_none = tuple(a for a in args if a is not type(None))
            annotation = non_none[0] if len(non_none) == 1 else annotation
    meta = [*info.metadata, Field(description=description or info.description)]
    default = inspect.Parameter.empty if required else info.get_default(call_default_factory=True)
    kind = inspect.Parameter.KEYWORD_ONLY
    return inspect.Parameter(name, kind, default=default, annotation=Annotated[annotation, *meta])


def with_parameters(
    func: Callable[..., Any],
    fields: Sequence[str | inspect.Parameter],
    *,
    required: Sequence[str] = (),
    returns: Any,
) -> Callable[..., Any]:
    """Give `func(ctx, **kwargs)` a signature made of `fields` so that MCP derives the tool schema from them.

    Plain names are fields of `SchedulerInput`; `inspect.Parameter` objects are extra parameters.
    """
    from mcp.server.mcpserver import Context

    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    for item in fields:
        params.append(item if isinstance(item, inspect.Parameter) else field_parameter(item, required=item in required))
    params.sort(key=lambda p: p.default is not inspect.Parameter.empty)
    func.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    func.__annotations__ = {p.name: p.annotation for p in params} | {"return": returns}
    return func
