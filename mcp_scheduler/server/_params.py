"""Flat MCP tool parameters generated from `SchedulerInput`'s fields (the one source of truth)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Annotated, Any, cast

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

from ..models import SchedulerInput

__all__ = ["compact_schema", "field_parameter", "with_parameters"]


def field_parameter(
    name: str,
    *,
    required: bool = False,
    description: str | None = None,
    model: type[BaseModel] = SchedulerInput,
    optional: bool = False,
) -> inspect.Parameter:
    """A keyword parameter with the type, constraints, default and description of `model.<name>`.

    `optional`: default None whatever the field's default is (for tools where leaving it out means "keep").
    """
    info: FieldInfo = model.model_fields[name]
    annotation: Any = info.annotation
    if optional:
        meta = [*info.metadata, Field(description=description or info.description)]
        kind = inspect.Parameter.KEYWORD_ONLY
        return inspect.Parameter(name, kind, default=None, annotation=Annotated[annotation | None, *meta])
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


_TYPE_BOUND = frozenset({"anyOf", "oneOf", "allOf", "not", "$ref", "const", "if"})


def compact_schema(schema: dict[str, Any], *, nullable: bool = True) -> dict[str, Any]:
    """The same JSON schema in a form that validators check faster.

    Pydantic writes nested models as `$ref`s into `$defs` and `X | None` as
    `anyOf: [X, {"type": "null"}]`. Interpreting validators (the Python SDK client validates
    every structured tool result with `jsonschema`) pay for each reference and each `anyOf`
    branch on every item of a list result. Here local references are inlined (unless a model
    refers to itself) and, with `nullable`, a nullable simple type becomes `type: [X, "null"]`. Instances
    that the input schema accepts are exactly the ones the output schema accepts.
    """
    definitions = schema.get("$defs", {})
    recursive = False

    def walk(node: Any, stack: tuple[str, ...]) -> Any:
        nonlocal recursive
        if isinstance(node, list):
            return [walk(item, stack) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in definitions:
            name = ref[8:]
            if name in stack:
                recursive = True
                return dict(node)
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            return walk({**definitions[name], **siblings}, (*stack, name))
        out = {k: walk(v, stack) for k, v in node.items() if k != "$defs"}
        return _collapse_nullable(out) if nullable else out

    compact = walk(schema, ())
    if recursive:
        compact["$defs"] = {name: walk(d, (name,)) for name, d in definitions.items()}
    return cast(dict[str, Any], compact)


def _collapse_nullable(node: dict[str, Any]) -> dict[str, Any]:
    branches = node.get("anyOf")
    if not (isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches):
        return node
    other = branches[0] if branches[1] == {"type": "null"} else branches[1]
    if not isinstance(other, dict) or not isinstance(other.get("type"), str) or _TYPE_BOUND & other.keys():
        return node
    # Every keyword besides enum applies to one type only (items to arrays, format to strings...), so null
    # passes them; annotations next to anyOf (description, default) stay as they were.
    merged = other | {k: v for k, v in node.items() if k != "anyOf"} | {"type": [other["type"], "null"]}
    if "enum" in other:  # enum is not bound to a type: null must be listed to stay valid
        merged["enum"] = [*other["enum"], None]
    return merged
