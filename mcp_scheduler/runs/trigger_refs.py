"""`!trigger:` references in a job's input: what started a run, resolved when the run starts.

A string `"!trigger:NAME"` or `"!trigger:NAME/json/pointer"` anywhere in `input_data` (a whole string, as `!env:`)
is replaced by the value NAME has in the run's trigger data, or the part of it the JSON pointer (RFC 6901, without
its leading `/`) names. A run started by an inbound webhook has `body` (the request's JSON), `hook` (the hook's
name) and `id` (the delivery's `webhook-id`); a chained run (docs/chains.md) has `job`, `run_id`, `status`,
`summary` and `result` of the run it follows; a run started by its condition (policy.when, docs/triggers.md) has
`result` (what the check returned) and `checked_at`; a run started by a queue message (docs/triggers.md) has
`message` (its body), `message_id` and `queue`; a run started otherwise has no trigger data and its input is used as
written.

References are resolved after `!env:` secrets, and what they insert is not looked at again: a delivery's body that
holds `"!env:NAME"` stays that text and never reads a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentool_bridge.errors import clip

from ..errors import InvalidJobInputError

__all__ = ["TRIGGER_PREFIX", "resolve_trigger"]

TRIGGER_PREFIX = "!trigger:"


def resolve_trigger(value: Any, data: Mapping[str, Any]) -> Any:
    """A copy of `value` with every `!trigger:` string replaced from `data`; raise `InvalidJobInputError` naming a
    reference that names nothing in `data`."""
    if isinstance(value, str):
        return _look_up(value, data) if value.startswith(TRIGGER_PREFIX) else value
    if isinstance(value, Mapping):
        return {key: resolve_trigger(item, data) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [resolve_trigger(item, data) for item in value]
    return value


def _look_up(reference: str, data: Mapping[str, Any]) -> Any:
    name, slash, pointer = reference[len(TRIGGER_PREFIX) :].partition("/")
    if name not in data:
        raise InvalidJobInputError(
            f"{clip(reference)} names nothing this run's trigger gives: it gives {', '.join(sorted(data)) or 'nothing'}"
            " (a webhook gives '!trigger:body/a/b', a chain or a condition '!trigger:result/a/b', a queue"
            " '!trigger:message/a/b')."
        )
    found = data[name]
    if not slash:
        return found
    for raw in pointer.split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(found, Mapping) and part in found:
            found = found[part]
        elif isinstance(found, list) and part.isdigit() and int(part) < len(found):
            found = found[int(part)]
        else:
            raise InvalidJobInputError(
                f"{clip(reference)}: the trigger's {name} has nothing at /{clip(pointer)} (no {clip(part)!r} there)."
            )
    return found
