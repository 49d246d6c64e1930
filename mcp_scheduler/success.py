"""Success checks: what a job says success means, beyond its call not raising.

`SuccessCheck` is the optional `success` object of schedule_job / update_job, stored with the job's definition.
Each key is one check; a run passes when all of them do (`runs.checks` evaluates them after the call returns).
Which checks fit which job kind is decided here, at schedule time (`check_fits`).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ConfigDict, Field, field_validator

from agentool_bridge.errors import clip

from ._frozen import FrozenModel
from .errors import InvalidJobInputError

__all__ = ["JsonEquals", "SuccessCheck", "check_fits", "path_steps"]

MAX_PATH = 200
MAX_TEXT = 1000

_ONLY: dict[str, frozenset[str]] = {
    "status": frozenset({"http"}),
    "no_error": frozenset({"mcp", "agent"}),
    "tools_used": frozenset({"agent"}),
}
"""The checks that fit some job kinds only; the others (json, contains, not_contains) fit every kind."""

_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def path_steps(path: str) -> tuple[str | int, ...]:
    """The keys and list indexes of `path`: a JSON pointer (`/data/items/0/id`) or a dotted path
    (`$.data.items[0].id`, `data.ok`; a leading `$` is optional). Raises ValueError for an unusable one."""
    if path.startswith("/"):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]
        return tuple(int(p) if p.isdigit() else p for p in parts)
    rest = path.removeprefix("$")
    steps: list[str | int] = []
    position = 0
    while position < len(rest):
        match = _STEP.match(rest, position)
        if match is None:
            raise ValueError(
                f"path {clip(path)} is not a JSON path: use $.key.key[0] (or a JSON pointer such as /key/0)"
            )
        key, index = match.groups()
        steps.append(int(index) if index is not None else key)
        position = match.end()
    return tuple(steps)


class JsonEquals(FrozenModel):
    """A value in the result that must equal `equals`."""

    path: str = Field(min_length=1, max_length=MAX_PATH, description="JSON path ($.a.b[0]) or pointer (/a/b/0).")
    equals: Any = Field(description="The JSON value it must equal (true and 1 differ).")

    @field_validator("path")
    @classmethod
    def _usable(cls, value: str) -> str:
        path_steps(value)
        return value


class SuccessCheck(FrozenModel):
    """What success means for a job's runs: every check given must pass, else the run is recorded `error`.

    The checks read what the job kind returned: for http its status and response body, for mcp the tool's
    structured content (else its text), for agent the model's output and its tool calls, for shell its stdout,
    for other kinds the result's data.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True,
    )

    status: tuple[int, ...] | None = Field(
        default=None, min_length=1, max_length=20, exclude_if=lambda v: v is None,
        description="HTTP statuses that count as success (http jobs), e.g. [200, 204].",
    )
    json_equals: JsonEquals | None = Field(
        default=None, alias="json", exclude_if=lambda v: v is None,
        description="A value in the result's JSON that must equal a given one: {path, equals}.",
    )
    contains: str | None = Field(
        default=None, min_length=1, max_length=MAX_TEXT, exclude_if=lambda v: v is None,
        description="Text the result must contain.",
    )
    not_contains: str | None = Field(
        default=None, min_length=1, max_length=MAX_TEXT, exclude_if=lambda v: v is None,
        description="Text the result must not contain.",
    )
    no_error: bool | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="true: the MCP call (mcp) or every tool call of the model (agent) came back without isError.",
    )
    tools_used: bool | tuple[str, ...] | None = Field(
        default=None, exclude_if=lambda v: v is None,
        description="agent jobs: true, the model called at least one tool; a list, it called each of these tools.",
    )

    @field_validator("status")
    @classmethod
    def _statuses(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is not None and any(not 100 <= code <= 599 for code in value):
            raise ValueError("status takes HTTP status codes from 100 to 599, e.g. [200, 204]")
        return value

    def given(self) -> list[str]:
        """The names of the checks this object states (as the request spells them)."""
        names = [name for name, value in (("status", self.status), ("json", self.json_equals),
                                          ("contains", self.contains), ("not_contains", self.not_contains),
                                          ("no_error", self.no_error), ("tools_used", self.tools_used))
                 if value is not None and value is not False]
        return names


def check_fits(success: SuccessCheck | None, agentool_name: str) -> SuccessCheck | None:
    """The checks to store for a job of `agentool_name` (None for none, `{}` included); refuses checks that cannot
    be judged on that kind's results, naming those that can."""
    if success is None or not success.given():
        return None
    unfit = [name for name in success.given() if name in _ONLY and agentool_name not in _ONLY[name]]
    if unfit:
        fits = ["json", "contains", "not_contains", *(n for n, kinds in _ONLY.items() if agentool_name in kinds)]
        where = "; ".join(f"{name} fits {' and '.join(sorted(_ONLY[name]))} jobs" for name in unfit)
        raise InvalidJobInputError(
            f"success check {', '.join(unfit)} does not fit job kind {clip(agentool_name)} ({where}): for this kind "
            f"use {', '.join(fits)}."
        )
    return success

