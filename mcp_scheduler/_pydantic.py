"""The only module that uses pydantic beyond its public API (pinned `>=2.11,<3`): a shared fields-set.

pydantic keeps the names of the fields an instance was given in its `__pydantic_fields_set__`, a set of its
own, which `model_fields_set` and `model_dump(exclude_unset=True)` read and `model_copy` copies. For models
that never change (`FrozenModel`), one set per combination of names serves every instance:
`share_fields_set` puts that one in place. With 100,000 jobs this saves about 70 MB for the schedules and as
much again for the job definitions.

`check_pydantic()` checks the version range and that pydantic still keeps, reads and copies the attribute so;
a test runs it, so that an upgrade that changes it fails with a clear message instead of sharing a set that
pydantic then changes.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict

from agentool_bridge.versions import require_version

__all__ = ["SUPPORTED", "check_pydantic", "share_fields_set"]

SUPPORTED = ((2, 11), (3, 0))  # [lowest, first unsupported) versions of pydantic, as pinned in pyproject.toml


@cache
def _shared(names: frozenset[str]) -> set[str]:
    """The one set that the instances whose fields set holds `names` share (never changed: see the checks)."""
    return set(names)


def share_fields_set(model: BaseModel) -> None:
    """Give `model` (an immutable instance, just validated) the shared set of the names of its fields set."""
    object.__setattr__(model, "__pydantic_fields_set__", _shared(frozenset(model.__pydantic_fields_set__)))


def check_pydantic() -> None:
    """Raise `RuntimeError` naming what changed if the installed pydantic is not one this adapter knows.

    Checks the version range, that an assigned `__pydantic_fields_set__` is the one `model_fields_set`,
    `model_dump(exclude_unset=True)` and JSON validation use, and that `model_copy(update=...)` changes a copy
    of it, not the shared set.
    """
    installed = require_version("pydantic", SUPPORTED, "mcp-scheduler's pydantic adapter")

    class _Probe(BaseModel):  # built here, not on import: a model class costs start-up time
        model_config = ConfigDict(frozen=True)

        given: int = 0
        other: int = 0

        def model_post_init(self, context: Any, /) -> None:
            share_fields_set(self)

    first, second = _Probe(given=1), _Probe.model_validate_json('{"given": 2}')
    problems = []
    if first.__pydantic_fields_set__ is not second.__pydantic_fields_set__:
        problems.append("__pydantic_fields_set__ (an assigned set is not kept)")
    if first.model_fields_set != {"given"}:
        problems.append("model_fields_set (does not read __pydantic_fields_set__)")
    if first.model_dump(exclude_unset=True) != {"given": 1} or second.model_dump_json(exclude_unset=True) != (
        '{"given":2}'
    ):
        problems.append("model_dump(exclude_unset=True) (does not read __pydantic_fields_set__)")
    copied = first.model_copy(update={"other": 3})
    if copied.model_fields_set != {"given", "other"} or second.model_fields_set != {"given"}:
        problems.append("model_copy(update=...) (changes the shared set instead of a copy of it)")
    if problems:
        raise RuntimeError(f"pydantic {installed} changed what the pydantic adapter relies on: {', '.join(problems)}.")
