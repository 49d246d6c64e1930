"""Flat MCP tool parameters generated from `SchedulerInput`'s fields (the one source of truth)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Annotated, Any, cast

from pydantic import BaseModel, Field, WithJsonSchema
from pydantic.fields import FieldInfo

from ..models import SchedulerInput

__all__ = ["compact_schema", "field_parameter", "fields_in_words", "with_parameters"]


def field_parameter(
    name: str,
    *,
    required: bool = False,
    description: str | None = None,
    model: type[BaseModel] = SchedulerInput,
    optional: bool = False,
    schema: dict[str, Any] | None = None,
) -> inspect.Parameter:
    """A keyword parameter with the type, constraints, default and description of `model.<name>`.

    `description` words it for one tool; `optional`: default None whatever the field's default is (for
    tools where leaving it out means "keep"); `schema`: the JSON schema published for it instead of the
    field's (a shorter one where the tool needs less; arguments are still validated as the field says).
    """
    info: FieldInfo = model.model_fields[name]
    annotation: Any = info.annotation
    published = [WithJsonSchema(schema)] if schema is not None else []
    if optional:
        meta = [*info.metadata, *published, Field(description=description or info.description)]
        kind = inspect.Parameter.KEYWORD_ONLY
        return inspect.Parameter(name, kind, default=None, annotation=Annotated[annotation | None, *meta])
    if required:
        args = getattr(annotation, "__args__", ())
        if type(None) in args:
            non_none = tuple(a for a in args if a is not type(None))
            annotation = non_none[0] if len(non_none) == 1 else annotation
    meta = [*info.metadata, *published, Field(description=description or info.description)]
    default = inspect.Parameter.empty if required else info.get_default(call_default_factory=True)
    kind = inspect.Parameter.KEYWORD_ONLY
    return inspect.Parameter(name, kind, default=default, annotation=Annotated[annotation, *meta])


def fields_in_words(model: type[BaseModel]) -> str:
    """`model`'s fields as one line a model can read: `name=default: description; ...`.

    For an object parameter whose schema would cost more than it helps (the policy): the words come from
    the same field descriptions, and the arguments are still validated by the model, naming the field.
    """
    parts = []
    for name, info in model.model_fields.items():
        default = info.get_default(call_default_factory=True)
        if isinstance(default, tuple | list):
            default = ",".join(map(str, default))
        shown = f"={default:g}" if isinstance(default, float) else ("" if default is None else f"={default}")
        text = (info.description or "").rstrip(".")
        parts.append(f"{name}{shown}: {text[:1].lower()}{text[1:]}")
    return "; ".join(parts) + "."


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
_NOT_IN_OUTPUTS = frozenset({"default", "description", "format"})  # annotations only: they accept every value
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "dependentSchemas"})
_ANY_JSON: dict[str, Any] = {
    "anyOf": [{"type": t} for t in ("object", "array", "string", "number", "boolean", "null")]
}
"""Any JSON value, spelt with a type on every branch (an untyped `{}` is flagged as unportable)."""


def compact_schema(schema: dict[str, Any], *, output: bool = True) -> dict[str, Any]:
    """The same JSON schema, shorter and portable: what a model reads in `tools/list`.

    - Local references are inlined (unless a model refers to itself): a validator pays for each
      `$ref` on every item of a list result, and a model reads one schema instead of two places.
    - `title` keywords go (pydantic adds one per field, repeating its name).
    - Nullable values stay `anyOf: [X, {"type": "null"}]`, never a type array (`["string", "null"]`),
      which clients that map schemas onto a single-type dialect reject. In an input schema
      (`output=False`) a parameter whose default is null loses the null branch and the default:
      leaving it out means the same, and the arguments are still validated by the tool's model.
    - An output schema types the result's own fields (enums, nullability, required) and leaves the
      objects nested in them as `{"type": "object"}` (a job inside a page, runs in a history): the
      same values pass, a page of results costs the client little to validate, and `tools/list`
      stays short (get_job spells out a job; the tools' descriptions say what their items hold).
      It keeps no `default` (a result always carries every
      field), no `description` (the tool's description says what it answers, the field names say the
      rest, and the model reads the result itself) and no `format` (an annotation: date-time fields
      are named *_at, *_time or next_run*). A nullable enum is `enum: [..., null]`; an untyped value
      (`Any`) is written as any JSON type.
    Output schemas accept exactly the instances the original accepts.
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
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in ("$defs", "title") or (output and key in _NOT_IN_OUTPUTS):
                continue
            if key == "additionalProperties" and value is True:  # the default
                continue
            if key == "properties" and value == {}:  # a tool without parameters
                continue
            if not output and key == "maxLength" and "pattern" not in node:  # a model never nears it; still checked
                continue
            if output and key == "type" and value == "string" and "enum" in node:  # the enum says it
                continue
            if key in _SCHEMA_MAPS and isinstance(value, dict):  # keys here are names, not keywords
                out[key] = {name: walk(sub, stack) for name, sub in value.items()}
            else:
                out[key] = walk(value, stack)
        return _nullable_enum(out) if output else _optional_input(out)

    compact = walk(schema, ())
    if output:
        compact = _type_untyped(_shallow(compact))
    if recursive:
        compact["$defs"] = {name: walk(d, (name,)) for name, d in definitions.items()}
    return cast(dict[str, Any], compact)


def _optional_input(node: dict[str, Any]) -> dict[str, Any]:
    """`X | None = None` as X: for a parameter, null and leaving it out mean the same."""
    branches = node.get("anyOf")
    if node.get("default", 0) is not None:
        return node
    if not (isinstance(branches, list) and {"type": "null"} in branches):
        return {k: v for k, v in node.items() if k != "default"}
    others = [b for b in branches if b != {"type": "null"}]
    rest = {k: v for k, v in node.items() if k not in ("anyOf", "default")}
    if len(others) == 1 and isinstance(others[0], dict):
        return others[0] | rest
    return {"anyOf": others, **rest}


def _nullable_enum(node: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [{enum: [...], type: string}, {type: null}]` as `enum: [..., null]`: the same values, shorter."""
    branches = node.get("anyOf")
    if not (isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches):
        return node
    other = branches[0] if branches[1] == {"type": "null"} else branches[1]
    if not (isinstance(other, dict) and set(other) == {"enum", "type"}):
        return node
    return {"enum": [*other["enum"], None], **{k: v for k, v in node.items() if k != "anyOf"}}


def _type_untyped(node: Any) -> Any:
    """Give every property and item that accepts any value (`Any`) an explicit set of types."""
    if isinstance(node, list):
        return [_type_untyped(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {n: _typed(_type_untyped(s)) for n, s in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = _typed(_type_untyped(value))
        else:
            out[key] = _type_untyped(value)
    return out


def _typed(node: Any) -> Any:
    if isinstance(node, dict) and not (_CONSTRAINING & node.keys()):
        return {**node, **_ANY_JSON}
    return node


_CONSTRAINING = frozenset({"type", "enum", "const", "anyOf", "oneOf", "allOf", "not", "$ref", "properties", "items",
                           "additionalProperties", "required", "format", "pattern"})


def _shallow(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every object below its own properties (in a property, an item or a branch) left untyped inside."""

    def flat(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        if node.get("type") == "object" or "properties" in node:
            return {"type": "object"}
        out = dict(node)
        if isinstance(node.get("items"), dict):
            out["items"] = flat(node["items"])
        if isinstance(node.get("anyOf"), list):
            out["anyOf"] = [flat(branch) for branch in node["anyOf"]]
        return out

    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return schema
    return {**schema, "properties": {name: flat(sub) for name, sub in properties.items()}}
