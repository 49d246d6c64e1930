"""Argument errors in the model's terms: which argument, what was wrong, and an example of a right value.

Pydantic's own messages name its error types and link to its documentation; a model calling a tool
needs the argument, the problem and a value that would do. `describe_argument_errors` words the
errors of a tool's argument validation (the SDK's, see `_sdk.close_input_schemas`, and the
scheduler's own `SchedulerInput` checks) from the tool's published input schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from agentool_bridge.errors import clip_text

from ..policies import PolicyInput

__all__ = ["EXAMPLES", "NESTED_FIELDS", "describe_argument_errors", "example_of"]

EXAMPLES: dict[str, Any] = {
    "input_data": {"operation": "log", "message": "hi"},
    "schedule": "0 9 * * 1-5",
    "job_id": "daily-report",
    "job_name": "Daily report",
    "agentool_name": "logging",
    "timezone": "Europe/Berlin",
    "since": "1h",
    "until": "2026-01-31T00:00:00",
    "result_queue": "results",
    "error_queue": "errors",
    "queue_name": "results",
    "cursor": "20",
    "policy": {"max_attempts": 3},
    "ack_ids": ["<message id from read_inbox>"],
    "start_at": "2026-01-01T09:00:00",
    "end_at": "2026-12-31T18:00:00",
    "catchup_window": "2h",
}
"""A right value per argument name, where its schema alone does not give one."""

NESTED_FIELDS: dict[str, tuple[str, ...]] = {"policy": tuple(PolicyInput.model_fields)}
"""The fields of object arguments whose published schema does not list them."""

MAX_LISTED = 5

_JSON_TYPES = {
    "dict_type": "a JSON object", "model_type": "a JSON object", "model_attributes_type": "a JSON object",
    "string_type": "a string", "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false", "list_type": "a list", "tuple_type": "a list",
}
_SUBJECTS = ("Input should", "String should", "List should", "Dictionary should", "Value should", "Tuple should")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def _subschema(schema: Mapping[str, Any], loc: tuple[Any, ...]) -> Mapping[str, Any]:
    node: Any = schema
    for part in loc:
        if not isinstance(node, Mapping):
            return {}
        if isinstance(part, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(part, {})
    return node if isinstance(node, Mapping) else {}


def example_of(name: str, schema: Mapping[str, Any]) -> Any:
    """A right value for argument `name` whose published schema is `schema` (None if none comes to mind)."""
    branches = [schema, *schema.get("anyOf", [])]
    for branch in branches:
        if branch.get("enum"):
            return branch["enum"][0]
    if name in EXAMPLES:
        return EXAMPLES[name]
    if schema.get("default") is not None:
        return schema["default"]
    for branch in branches:
        kind = branch.get("type")
        if kind in ("integer", "number"):
            low = branch.get("minimum", branch.get("exclusiveMinimum", 0) + 1)
            return max(low, 1)
        if kind == "boolean":
            return True
    return None


def _shown(value: Any) -> str:
    return clip_text(json.dumps(value, default=str), 100)  # escaped: a lone surrogate cannot be sent back


def describe_argument_error(error: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    """One problem of pydantic's `ValidationError.errors()`, in the model's terms."""
    loc = tuple(part for part in error.get("loc", ()) if part != "__root__")
    kind = str(error.get("type", ""))
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if kind == "unknown_argument" or not loc:
        return clip_text(message, 400)
    name = ".".join(str(part) for part in loc)
    if kind in ("value_error", "assertion_error"):  # our own checks say what to do
        return clip_text(message if message.startswith(name) else f"{name}: {message}", 400)
    field = next((str(part) for part in reversed(loc) if isinstance(part, str)), name)
    sub = _subschema(schema, loc)
    example = example_of(field, sub)
    if isinstance(loc[-1], int) and isinstance(example, list) and example:
        example = example[0]  # an item of a list argument
    hint = f"; e.g. {name}={_shown(example)}" if example is not None else ""
    given = error.get("input")
    if kind == "missing":
        return f"{name} is required{hint}"
    if kind in ("literal_error", "enum"):
        expected = error.get("ctx", {}).get("expected", "")
        return f"{name}: {_shown(given)} is not one of {expected}{hint}"
    if kind in _JSON_TYPES:
        return f"{name} must be {_JSON_TYPES[kind]}, not {_json_type(given)}{hint}"
    if kind == "extra_forbidden":
        parent = list(_subschema(schema, loc[:-1]).get("properties", {})) or NESTED_FIELDS.get(str(loc[0]), ())
        takes = f"; {'.'.join(map(str, loc[:-1]))} takes {', '.join(parent)}" if parent and len(loc) > 1 else ""
        return f"{name} is not a known field{takes}"
    for subject in _SUBJECTS:
        if message.startswith(subject):
            return f"{name}{message[len(subject) - len(' should'):]}, not {_shown(given)}{hint}"
    return f"{name}: {message} (got {_shown(given)}){hint}"


def describe_argument_errors(errors: Iterable[Mapping[str, Any]], schema: Mapping[str, Any]) -> str:
    """Every problem (at most MAX_LISTED, then how many more), joined with '; '."""
    listed = list(errors)
    parts = [describe_argument_error(e, schema) for e in listed[:MAX_LISTED]]
    if len(listed) > MAX_LISTED:
        parts.append(f"and {len(listed) - MAX_LISTED} more problem(s)")
    return "; ".join(parts)
