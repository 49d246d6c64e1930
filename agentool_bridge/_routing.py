"""Parse, validate and route one AgenTool input: shared by the injector and the Agent's model."""

from __future__ import annotations

import inspect
import json
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from .errors import AgenToolInputError, UnknownOperationError, clip, describe_errors, did_you_mean
from .registry import AgenTool

_JSON = TypeAdapter(Any)


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def input_error_from(
    agentool: str, operation: Any, exc: ValidationError, schema: type[BaseModel] | None = None
) -> AgenToolInputError:
    """Turn a pydantic `ValidationError` into an `AgenToolInputError` naming each field; a field `schema` does
    not have gets the nearest one it has."""
    errors = [{"loc": _loc(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    known = [] if schema is None else [f.alias or name for name, f in schema.model_fields.items()]
    for error in errors:
        if error["type"] == "extra_forbidden" and "." not in error["loc"]:
            error["msg"] = f"{error['msg']}.{did_you_mean(error['loc'], known)}".rstrip(".")
    details = describe_errors({"loc": e["loc"] or "(input)", "msg": e["msg"]} for e in errors)
    op = f" (operation {operation!r})" if operation is not None else ""
    return AgenToolInputError(f"Invalid input for AgenTool {agentool!r}{op}: {details}", errors,
                              reason=f"Invalid input{op}: {details}")


def to_mapping(agentool: AgenTool, raw: Any) -> dict[str, Any]:
    """Accept a dict, a pydantic model or a JSON string; return a plain dict."""
    if isinstance(raw, BaseModel):
        return raw.model_dump(exclude_unset=True)
    if isinstance(raw, str | bytes | bytearray):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise AgenToolInputError(
                f"Malformed JSON input for AgenTool {agentool.name!r}: {clip(str(exc))}. "
                'Send one JSON object such as {"operation": "..."}.',
                [{"loc": "", "msg": str(exc), "type": "json_invalid"}],
            ) from exc
    if not isinstance(raw, dict):
        raise AgenToolInputError(
            f"Input for AgenTool {agentool.name!r} must be a JSON object, got {type(raw).__name__}.",
            [{"loc": "", "msg": "not an object", "type": "dict_type"}],
        )
    return raw


def _is_routed(agentool: AgenTool, operation: Any) -> bool:
    try:
        return operation in agentool.routing_config.operation_map
    except TypeError:  # unhashable, e.g. a list or an object sent as the operation
        return False


def validate_input(agentool: AgenTool, raw: Any) -> BaseModel:
    """Validate `raw` against the AgenTool's input schema, checking the operation first."""
    field = agentool.routing_config.operation_field
    if isinstance(raw, agentool.input_schema):
        operation = getattr(raw, field)
        if not _is_routed(agentool, operation):
            raise UnknownOperationError(agentool.name, operation, agentool.operations)
        return raw
    data = to_mapping(agentool, raw)
    operation = data.get(field)
    if not _is_routed(agentool, operation):
        if field not in data:
            required = f"{field}: Field required (one of: {', '.join(agentool.operations)})."
            raise AgenToolInputError(
                f"Invalid input for AgenTool {agentool.name!r}: {required}",
                [{"loc": field, "msg": "Field required", "type": "missing"}],
                reason=f"Invalid input: {required}",
            )
        raise UnknownOperationError(agentool.name, operation, agentool.operations)
    try:
        return agentool.input_schema.model_validate(data)
    except ValidationError as exc:
        raise input_error_from(agentool.name, operation, exc, agentool.input_schema) from exc


def coerce_output(agentool: AgenTool, result: Any) -> Any:
    """The typed output model where the AgenTool declares one, otherwise a JSON value."""
    output_type = agentool.output_type
    if output_type is not None:
        if isinstance(result, output_type):
            return result
        if isinstance(result, BaseModel):
            result = result.model_dump()
        return output_type.model_validate(result)
    return _JSON.dump_python(result, mode="json")


def annotate(exc: BaseException, agentool: AgenTool, operation: Any) -> None:
    """Add where a tool exception came from, without changing its type."""
    exc.add_note(f"raised by AgenTool {agentool.name!r}, operation {operation!r}")


async def run_direct(agentool: AgenTool, model: BaseModel) -> Any:
    """Route a validated input to its tool function and return the coerced output."""
    tool_name, kwargs = agentool.routing_config.route(model)
    func = agentool.tool(tool_name)
    operation = getattr(model, agentool.routing_config.operation_field)
    try:
        result = func(**kwargs)
        if inspect.isawaitable(result):
            result = await result
        return coerce_output(agentool, result)
    except Exception as exc:
        annotate(exc, agentool, operation)
        raise
